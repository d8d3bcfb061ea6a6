"""What must hold after every crash and restart, checked against the live API.

The four invariants of the crash-safety issue:

1. **Acknowledged means applied.** Every report a monitor got a 2xx for has
   its effect: each host shows the state of the last report about it that
   was acknowledged (when none is still unanswered), and no acknowledged
   report is still ``accepted`` (journaled, unapplied) once Vigil is up.
2. **Nothing notified is forgotten.** Every alarm a consumer heard of exists
   in Vigil under the same id; one the consumer heard cleared is cleared in
   Vigil, and one Vigil holds cleared was told cleared to every consumer
   that heard it raised (checked once deliveries have settled).
3. **A fault is one record set.** No ACTIVE host fault without its host
   forced down, and no host forced down by a fault without an ACTIVE fault.
4. **One body per notification id.** No notification id reached a consumer
   with two different bodies.

:func:`check` returns the violations as sentences (empty when all hold).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from vigil.harness.consumers import Recorder
from vigil.harness.monitors import Monitor

FAULT_REASON = "fault: "


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Vigil shows, read through the admin API."""

    hosts: dict[str, dict[str, Any]]
    faults: list[dict[str, Any]]
    alarms: dict[str, dict[str, Any]]
    accepted: set[str]  # monitor_event_ids still journaled but not applied


async def snapshot(admin: httpx.AsyncClient) -> Snapshot:
    hosts = (await admin.get("/v1/hosts", params={"limit": 10_000})).json()["hosts"]
    faults = (await admin.get("/v1/faults", params={"state": "ACTIVE", "limit": 1000})).json()["faults"]
    alarms = await _all_alarms(admin)
    events = (await admin.get("/v1/fault-events", params={"outcome": "accepted", "limit": 1000})).json()
    return Snapshot(
        hosts={h["name"]: h for h in hosts},
        faults=faults,
        alarms={a["id"]: a for a in alarms},
        accepted={e["monitor_event_id"] for e in events["fault_events"]},
    )


async def _all_alarms(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if marker is not None:
            params["marker"] = marker
        page = (await admin.get("/v1/alarms", params=params)).json()["alarms"]
        found.extend(page)
        if len(page) < 1000:
            return found
        marker = page[-1]["id"]


def check_state(view: Snapshot, monitors: Iterable[Monitor]) -> list[str]:
    """Invariants 1 and 3: acknowledged reports are applied; faults and hosts agree."""
    violations: list[str] = []
    for monitor in monitors:
        for host in monitor.hosts:
            expected = monitor.expected_down(host)
            shown = view.hosts.get(host)
            if expected is None or shown is None or shown.get("in_maintenance"):
                continue
            if bool(shown["forced_down"]) != expected:
                last = monitor.last.get(host)
                said = f"{last.event_id} ({last.status}, {last.outcome})" if last else "nothing"
                violations.append(
                    f"acknowledged but not applied: {host} is {'' if shown['forced_down'] else 'not '}forced down, "
                    f"but the last report acknowledged was {said}"
                )
        for report in monitor.acknowledged:
            if report.event_id in view.accepted:
                violations.append(f"acknowledged report {report.event_id} is still unapplied in the journal")
    faulted = {f["resource_id"] for f in view.faults if f["resource_type"] == "host"}
    for name, state in view.hosts.items():
        by_fault = state["forced_down"] and (state.get("disabled_reason") or "").startswith(FAULT_REASON)
        if name in faulted and not state["forced_down"]:
            violations.append(f"fault without its host change: {name} has an ACTIVE fault but is not forced down")
        if by_fault and name not in faulted:
            violations.append(f"host change without its fault: {name} is forced down by a fault that is not ACTIVE")
    return violations


def check_notifications(view: Snapshot, consumers: Iterable[Recorder], *, settled: bool) -> list[str]:
    """Invariants 2 and 4: every alarm heard exists and agrees; one body per notification id."""
    violations: list[str] = []
    bodies: dict[str, set[bytes]] = {}
    for consumer in consumers:
        last_heard: dict[str, bool] = {}
        for heard in consumer.heard:
            bodies.setdefault(heard.notification, set()).add(heard.body)
            last_heard[heard.alarm_id] = last_heard.get(heard.alarm_id, False) or heard.cleared
        for alarm_id, cleared in last_heard.items():
            alarm = view.alarms.get(alarm_id)
            if alarm is None:
                violations.append(
                    f"phantom alarm: {consumer.name} heard of alarm {alarm_id}, which Vigil does not know"
                )
                continue
            if cleared and alarm["state"] != "CLEARED":
                violations.append(
                    f"{consumer.name} heard alarm {alarm_id} cleared, but Vigil holds it {alarm['state']}"
                )
            if settled and not cleared and alarm["state"] == "CLEARED":
                violations.append(f"alarm {alarm_id} is cleared in Vigil, but {consumer.name} was never told")
        if consumer.unreadable:
            violations.append(f"{consumer.name} got {len(consumer.unreadable)} bodies it could not read")
    for notification, seen in bodies.items():
        if len(seen) > 1:
            violations.append(f"notification {notification} was delivered with {len(seen)} different bodies")
    return violations
