"""ChangeLog: what changed after a version, with bounded memory that errs on "changed"."""

from hypothesis import given
from hypothesis import strategies as st

from vigil.controller.resource_map import ResourceMap
from vigil.domain.changelog import ChangeLog
from vigil.domain.ids import HostName
from vigil.domain.model import Host


def test_only_what_changed_after_the_version_counts() -> None:
    log = ChangeLog()
    log.mark("a")
    before = log.version
    log.mark("b")
    assert (log.changed_since("a", before), log.changed_since("b", before)) == (False, True)
    log.mark("a")
    assert log.changed_since("a", before)


@given(st.lists(st.sampled_from("abcdefgh"), max_size=60), st.integers(min_value=1, max_value=4))
def test_forgetting_never_answers_unchanged_for_something_that_changed(marks: list[str], kept: int) -> None:
    log, exact = ChangeLog(kept=kept), ChangeLog(kept=10_000)
    versions = [0]
    for ident in marks:
        log.mark(ident)
        exact.mark(ident)
        versions.append(log.version)
    for version in versions:
        for ident in "abcdefgh":
            if exact.changed_since(ident, version):
                assert log.changed_since(ident, version)
    assert not log.changed_since("a", log.version)  # nothing changed after now


def test_the_map_logs_adds_updates_and_removes() -> None:
    rmap = ResourceMap()
    start = rmap.changes.version
    host = Host(HostName("compute-1"), vcpus=4)
    rmap.add(host)
    added = rmap.changes.version
    assert rmap.changes.changed_since("compute-1", start)
    rmap.update(host, vcpus=4)  # no change: not logged
    assert not rmap.changes.changed_since("compute-1", added)
    rmap.update(host, vcpus=8)
    assert rmap.changes.changed_since("compute-1", added)
    updated = rmap.changes.version
    rmap.remove(host)
    assert rmap.changes.changed_since("compute-1", updated)


def test_a_bulk_load_is_a_change_of_everything_before_it() -> None:
    rmap = ResourceMap()
    rmap.add(Host(HostName("compute-1"), vcpus=4))
    before = rmap.changes.version
    rmap.add_all([Host(HostName("compute-2"), vcpus=4)])  # a restore
    after = rmap.changes.version
    assert rmap.changes.changed_since("compute-1", before)  # safe: a reader from before reads again
    assert rmap.changes.changed_since("compute-2", before)
    assert not rmap.changes.changed_since("compute-2", after)
