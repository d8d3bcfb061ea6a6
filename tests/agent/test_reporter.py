"""The agent's event reporter against a real loopback HTTP receiver standing in for Vigil."""

import socket
import time

from agent.nets import EventSink
from vigil.agent.reporter import EventReporter


async def test_events_go_in_order_in_doctors_format(sink: tuple[EventSink, str]) -> None:
    receiver, url = sink
    reporter = EventReporter(url, "monitor-token", "compute-1")
    await reporter.start()
    try:
        reporter.report("network.link.down", 1_800_000_000.25, related_to="eth1", cause="eth1: carrier lost")
        reporter.report("network.link.up", 1_800_000_001.5, related_to="eth1")
        await reporter.flushed()
    finally:
        await reporter.aclose()
    down, up = receiver.events
    assert down["type"] == "network.link.down"
    assert down["time"] == "2027-01-15T08:00:00.250000+00:00"
    details = down["details"]
    assert (details["hostname"], details["status"], details["monitor"]) == ("compute-1", "down", "vigil-agent")
    assert (details["related_to"], details["cause"]) == ("eth1", "eth1: carrier lost")
    assert up["details"]["status"] == "up"
    assert up["details"]["monitor_event_id"] != details["monitor_event_id"]


async def test_events_are_retried_with_the_same_ids_while_vigil_fails(sink: tuple[EventSink, str]) -> None:
    receiver, url = sink
    receiver.statuses = [503, 500]
    reporter = EventReporter(url, "t", "compute-1", retry_initial_s=0.01)
    await reporter.start()
    try:
        reporter.report("compute.process.down", time.time(), related_to="nova-compute")
        await reporter.flushed()
    finally:
        await reporter.aclose()
    ids = [batch[0]["details"]["monitor_event_id"] for _, batch in receiver.requests]
    assert len(ids) == 3
    assert len(set(ids)) == 1
    assert reporter.counters.retries == 2
    assert reporter.counters.sent == 1


async def test_events_wait_while_vigil_is_unreachable_and_a_refusal_drops_them(sink: tuple[EventSink, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here
    reporter = EventReporter(f"http://127.0.0.1:{port}", "t", "compute-1", max_queue=2, retry_initial_s=0.01)
    await reporter.start()
    try:
        for i in range(3):
            reporter.report("network.link.down", time.time(), related_to=f"eth{i}")
        assert reporter.pending == 2
        assert reporter.counters.dropped_full == 1
    finally:
        await reporter.aclose()

    receiver, url = sink
    receiver.statuses = [422]
    refused = EventReporter(url, "t", "no-such-host", retry_initial_s=0.01)
    await refused.start()
    try:
        refused.report("network.link.down", time.time(), related_to="eth0")
        await refused.flushed()
    finally:
        await refused.aclose()
    assert (refused.counters.refused, refused.counters.sent, len(receiver.requests)) == (1, 0, 1)


async def test_with_several_vigil_addresses_events_go_to_the_leader_past_a_standby(
    sink: tuple[EventSink, str],
) -> None:
    """High availability: a standby answers 503 (vigil.ha_gateway, as it runs in vigil serve); the reporter
    tries the next address at once, and keeps sending to the one that took its events."""
    from vigil.ha_gateway import HaGateway
    from vigil.serving import BackgroundServer

    receiver, leader = sink
    async with BackgroundServer(HaGateway(), lifespan="off") as standby:
        reporter = EventReporter([standby.url, leader], "t", "compute-1", retry_initial_s=5.0)
        await reporter.start()
        try:
            reporter.report("network.link.down", time.time(), related_to="eth1")
            await reporter.flushed()
            reporter.report("network.link.up", time.time(), related_to="eth1")
            await reporter.flushed()
        finally:
            await reporter.aclose()

    assert [batch[0]["type"] for _, batch in receiver.requests] == ["network.link.down", "network.link.up"]
    assert (reporter.counters.sent, reporter.counters.retries) == (2, 1), "one 503, no backoff before the leader"
    assert reporter.url == leader
