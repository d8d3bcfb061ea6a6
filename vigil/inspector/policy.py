"""What each kind of fault event means, configurable per event family.

An event's type is ``<family>.down`` or ``<family>.up`` (Doctor's monitors
also send ``compute.host.down`` with ``status: up`` for a recovery; the
``status`` field decides the direction). Each family has a policy:

* ``critical``: one event acts at once;
* otherwise the event counts toward ``threshold`` distinct failures of the
  same host within ``window_s`` (failures of every non-critical family
  count together: one NIC down plus a failed process check is two), and
  below the threshold raises only a warning for admins;
* ``target``: whether the event names a host, a switch, or an instance (its
  id in ``related_to``, its host in ``hostname``: a workload that died on a
  host that is fine; always acted on at once, one fault per instance).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from vigil.domain.faults import EventStatus


class Target(StrEnum):
    HOST = "host"
    SWITCH = "switch"
    INSTANCE = "instance"


@dataclass(frozen=True, slots=True)
class FaultPolicy:
    critical: bool = True
    target: Target = Target.HOST
    threshold: int = 2
    window_s: float = 10.0


DEFAULT_POLICIES: Mapping[str, FaultPolicy] = {
    "compute.host": FaultPolicy(critical=True),
    "network.switch": FaultPolicy(critical=True, target=Target.SWITCH),
    "network.link": FaultPolicy(critical=False, threshold=2, window_s=10.0),
    "compute.process": FaultPolicy(critical=False, threshold=2, window_s=10.0),
    "compute.instance": FaultPolicy(critical=True, target=Target.INSTANCE),
}


def split_type(event_type: str, status: EventStatus) -> tuple[str, EventStatus]:
    """``("compute.host", DOWN)`` from ``compute.host.down``; a ``.up`` type is a recovery."""
    family, _, suffix = event_type.rpartition(".")
    if suffix == "up":
        return family, EventStatus.UP
    if suffix == "down":
        return family, status
    return event_type, status


def known_types(policies: Mapping[str, FaultPolicy]) -> list[str]:
    return sorted(f"{family}.{direction}" for family in policies for direction in ("down", "up"))
