"""The rule engine in a running Vigil: its templates from the settings, what triggers it, what its actions reach.

* :class:`AlarmTrigger` stands between the engines and the notifier: every
  alarm change published also marks the rule engine dirty (a list append on
  the notification's path; the evaluation runs in the engine's own task).
* :class:`RuleActionsHub` is where ``fence`` and ``execute_mistral`` go:
  fence first (``vigil.recovery.fence_first``, which recovers after a
  confirmed fence), and the recovery workflows by name: ``evacuate_host``
  (fence the target host, then evacuate it by the recovery policies) and
  ``restart_instance`` (restart the target instance in place).
* :class:`RulesControl` is what the API reaches (``GET /v1/rules``,
  ``POST /v1/rules/reload``).
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vigil.domain.alarms import AlarmChange
from vigil.domain.deliveries import Delivery
from vigil.domain.faults import Fault
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
    """``fence`` and ``execute_mistral`` of the rules, on what this Vigil runs (either may be absent)."""

    def __init__(self) -> None:
        self.fencing: FenceFirst | None = None
        self.restarter: Restarter | None = None

    def fence(self, host: str, why: str) -> None:
        if self.fencing is None:
            log.warning("rule %s asks to fence %s, but no host has a fence device (fencing.devices)", why, host)
            return
        self.fencing.fence_host(host, why)

    def run_workflow(self, name: str, inputs: Mapping[str, str], target: Vertex | None) -> None:
        if name == "evacuate_host":
            host = inputs.get("host") or (target[1] if target and target[0] == RuleResource.HOST else None)
            if host is not None:
                self.fence(host, f"workflow {name}")
                return
        elif name == "restart_instance" and self.restarter is not None:
            ident = inputs.get("instance") or (target[1] if target and target[0] == RuleResource.INSTANCE else None)
            for fault in self.restarter.open_instance_faults(ident):
                self.restarter.consider(fault, forced=True)
            return
        log.warning("execute_mistral: no workflow %r for %s (known: %s)", name, target, ", ".join(WORKFLOWS))


class RulesControl:
    """The loaded templates, and reloading them from the same paths."""

    def __init__(self, engine: RuleEngine, paths: Sequence[Path], alarm_types: Sequence[str]) -> None:
        self.engine = engine
        self._paths = list(paths)
        self._types = list(alarm_types)

    def describe(self) -> dict[str, Any]:
        return {"paths": [str(p) for p in self._paths], "templates": self.engine.describe()}

    def reload(self) -> dict[str, Any]:
        """Read the templates again; raises :class:`TemplateError` (and keeps the old ones) if any is bad."""
        self.engine.load(load_rules(self._paths, alarm_types=self._types))
        return self.describe()


def load_configured(paths: Sequence[Path], alarm_types: Sequence[str]) -> RuleSet:
    """The operator's templates; raises :class:`TemplateError` naming each problem's file and line."""
    return load_rules(paths, alarm_types=alarm_types)


__all__ = ["AlarmTrigger", "RuleActionsHub", "RulesControl", "TemplateError", "load_configured"]
