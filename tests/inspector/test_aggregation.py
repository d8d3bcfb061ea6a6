"""Aggregation of non-critical failures, and how event types are read."""

from hypothesis import given
from hypothesis import strategies as st

from vigil.domain.faults import EventStatus
from vigil.inspector.aggregation import Aggregator
from vigil.inspector.policy import DEFAULT_POLICIES, known_types, split_type


def test_distinct_failures_within_the_window_count_together() -> None:
    agg = Aggregator()
    agg.add("h1", "network.link/eth1", 100.0)
    agg.add("h1", "compute.process/nova-compute", 105.0)
    assert agg.count("h1", 105.0, window_s=10) == 2
    assert agg.count("h2", 105.0, window_s=10) == 0


def test_a_failure_older_than_the_window_no_longer_counts() -> None:
    agg = Aggregator()
    agg.add("h1", "network.link/eth1", 100.0)
    agg.add("h1", "network.link/eth2", 120.0)
    assert agg.count("h1", 120.0, window_s=10) == 1


def test_the_same_failure_reported_twice_counts_once_from_its_first_report() -> None:
    agg = Aggregator()
    agg.add("h1", "network.link/eth1", 100.0)
    agg.add("h1", "network.link/eth1", 109.0)
    assert agg.count("h1", 109.0, window_s=10) == 1
    assert agg.count("h1", 111.0, window_s=10) == 0


def test_a_recovery_removes_its_failure_and_reset_forgets_the_host() -> None:
    agg = Aggregator()
    agg.add("h1", "a", 1.0)
    agg.add("h1", "b", 1.0)
    agg.remove("h1", "a")
    assert agg.keys("h1") == ["b"]
    agg.reset("h1")
    assert agg.keys("h1") == []


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.floats(0, 100)), max_size=30), st.floats(0, 50))
def test_the_count_never_exceeds_the_distinct_failures(reports: list[tuple[str, float]], window: float) -> None:
    agg = Aggregator()
    for key, at in reports:
        agg.add("h", key, at)
    assert agg.count("h", 100.0, window) <= len({k for k, _ in reports})


def test_event_types_split_into_family_and_direction() -> None:
    assert split_type("compute.host.down", EventStatus.DOWN) == ("compute.host", EventStatus.DOWN)
    assert split_type("compute.host.down", EventStatus.UP) == ("compute.host", EventStatus.UP)
    assert split_type("compute.host.up", EventStatus.DOWN) == ("compute.host", EventStatus.UP)
    assert split_type("network.link.down", EventStatus.DOWN) == ("network.link", EventStatus.DOWN)


def test_the_known_types_are_every_family_down_and_up() -> None:
    types = known_types(DEFAULT_POLICIES)
    assert "compute.host.down" in types
    assert "network.switch.up" in types
    assert len(types) == 2 * len(DEFAULT_POLICIES)
