"""The rule engine in a running Vigil: its templates from the settings, what triggers it, what its actions reach.

* :class:`AlarmTrigger` stands between the engines and the notifier: every
  alarm change published also marks the rule engine dirty (a list append on
  the notification's path; the evaluation runs in the engine's own task).
* :class:`RuleActionsHub` is where ``fence`` and ``execute_mistral`` go:
  fence first (``vigil.recovery.fence_first``, which recovers after a
  confirmed fence; a host with no open fault is reported down first), and
  the recovery workflows by name: ``evacuate_host`` (fence the host, input
  ``host`` or ``host_name``, else the target; then evacuate it by the
  recovery policies) and ``restart_instance`` (restart the instance, input
  ``instance`` or ``instance_id``, else the target, in place).
* :class:`RulesControl` is what the API reaches (``GET /v1/rules``,
  ``POST /v1/rules/reload``).
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.domain.alarms import AlarmChange
from vigil.domain.deliveries import Delivery
from vigil.domain.faults import EventId, EventStatus, Fault, FaultEvent
from vigil.domain.rules import RuleResource, RuleSet
from vigil.inspector.rule_engine import RuleEngine
from vigil.inspector.rule_graph import Vertex
from vigil.notifier.service import Notifier
from vigil.recovery.fence_first import FenceFirst
from vigil.recovery.restart import Restarter
from vigil.rules.loader import load_rules
from vigil.rules.problems import TemplateError

log = logging.getLogger(__name__)

WORKFLOWS = ("evacuate_host", "restart_instance")
RULES_MONITOR = "vigil.rules"  # the monitor of the reports rules make (a fence's host down)

Report = Callable[[Sequence[FaultEvent]], Awaitable[Any]]  # the southbound intake's receive


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlarmTrigger:
    """The notifier as the engines publish to it, telling the rule engine (once there is one) of alarm changes."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.engine: RuleEngine | None = None

    def publish(
        self, changes: Sequence[AlarmChange], fault: Fault | None, uow: Any, *, start: bool = True
    ) -> list[Delivery]:
        if self.engine is not None and changes:
            self.engine.alarms_changed(changes)
        return self.notifier.publish(changes, fault, uow, start=start)

    def deliver(self, deliveries: Sequence[Delivery], fault: Fault | None) -> None:
        self.notifier.deliver(deliveries, fault)

    async def settle(self, deliveries: Sequence[Delivery], timeout_s: float) -> None:
        await self.notifier.settle(deliveries, timeout_s)


class RuleActionsHub:
    """``fence`` and ``execute_mistral`` of the rules, on what this Vigil runs (either may be absent).

    A rule that fences a host with no open host fault (a template fencing on a NIC alarm Vigil alone only warns
    of) first reports the host down, as monitor :data:`RULES_MONITOR`, through the southbound intake: powering a
    host off kills its instances, so the inspector marks them down and notifies their owners, and fence first
    then fences it and recovers its instances, as for any failed host."""

    def __init__(self, report: Report | None = None, clock: Callable[[], datetime] = _utcnow) -> None:
        self.fencing: FenceFirst | None = None
        self.restarter: Restarter | None = None
        self._report = report
        self._clock = clock
        self._reports: set[asyncio.Task[None]] = set()

    def fence(self, host: str, why: str) -> None:
        if self.fencing is None or not self.fencing.can_fence(host):
            log.warning("rule %s asks to fence %s, which has no fence device (fencing.devices)", why, host)
            return
        if self.fencing.fence_host(host, why):
            return
        if self._report is None:
            log.warning("rule %s asks to fence %s, which has no open fault: not fenced", why, host)
            return
        now = self._clock()
        event = FaultEvent(
            id=EventId(str(uuid.uuid4())),
            time=now,
            type="compute.host.down",
            hostname=host,
            status=EventStatus.DOWN,
            monitor=RULES_MONITOR,
            monitor_event_id=f"fence:{host}:{uuid.uuid4()}",
            received_at=now,
            cause=f"rule {why} fences it",
        )
        log.info("rule %s fences %s: reported down first, so its owners are told before the fence", why, host)
        task = asyncio.get_running_loop().create_task(self._send(event), name=f"vigil.rules.fence.{host}")
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _send(self, event: FaultEvent) -> None:
        assert self._report is not None
        try:
            await self._report([event])
        except Exception:  # the rule's round is over; what went wrong is for the log
            log.exception("the fence of %s asked by a rule could not be reported", event.hostname)

    async def aclose(self) -> None:
        """Wait for the reports rules made (each is journaled before it is answered)."""
        if self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)

    def run_workflow(self, name: str, inputs: Mapping[str, str], target: Vertex | None) -> None:
        if name == "evacuate_host":
            host = _input(inputs, "host", "host_name") or (
                target[1] if target and target[0] == RuleResource.HOST else None
            )
            if host is not None:
                self.fence(host, f"workflow {name}")
                return
        elif name == "restart_instance" and self.restarter is not None:
            ident = _input(inputs, "instance", "instance_id") or (
                target[1] if target and target[0] == RuleResource.INSTANCE else None
            )
            for fault in self.restarter.open_instance_faults(ident):
                self.restarter.consider(fault, forced=True)
            return
        log.warning("execute_mistral: no workflow %r for %s (known: %s)", name, target, ", ".join(WORKFLOWS))


def _input(inputs: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` the workflow's inputs give (Mistral's workflows name them either way)."""
    return next((inputs[n] for n in names if inputs.get(n)), None)


class RulesControl:
    """The loaded templates, and reloading them from the same paths."""

    def __init__(
        self, engine: RuleEngine, paths: Sequence[Path], alarm_types: Sequence[str], hub: RuleActionsHub | None = None
    ) -> None:
        self.engine = engine
        self._paths = list(paths)
        self._types = list(alarm_types)
        self._hub = hub

    async def aclose(self) -> None:
        if self._hub is not None:
            await self._hub.aclose()

    def describe(self) -> dict[str, Any]:
        return {"paths": [str(p) for p in self._paths], "templates": self.engine.describe()}

    def reload(self) -> dict[str, Any]:
        """Read the templates again; raises :class:`TemplateError` (and keeps the old ones) if any is bad."""
        self.engine.load(load_rules(self._paths, alarm_types=self._types))
        return self.describe()


def load_configured(paths: Sequence[Path], alarm_types: Sequence[str]) -> RuleSet:
    """The operator's templates; raises :class:`TemplateError` naming each problem's file and line."""
    return load_rules(paths, alarm_types=alarm_types)


__all__ = ["AlarmTrigger", "Report", "RuleActionsHub", "RulesControl", "TemplateError", "load_configured"]
