"""Resource states and the tables of transitions between them.

States are ``str`` enums so they serialize as the strings Nova and Neutron
use. Each state machine is an explicit :class:`TransitionTable`; the resource
map checks every change of a state field against its table and raises
:class:`~vigil.domain.errors.IllegalTransition` for anything not listed, so
an impossible state never reaches the store or a consumer.
"""

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from vigil.domain.errors import IllegalTransition


class InstanceState(StrEnum):
    """Nova's ``vm_state`` values that Vigil models."""

    BUILD = "BUILD"
    ACTIVE = "ACTIVE"
    SHUTOFF = "SHUTOFF"
    MIGRATING = "MIGRATING"
    ERROR = "ERROR"
    DELETED = "DELETED"


class AdminState(StrEnum):
    """A compute service's scheduling switch (``nova service-disable``)."""

    ENABLED = "enabled"
    DISABLED = "disabled"


class HostStatus(StrEnum):
    """``host_status`` as Nova API 2.16 shows it on a server; derived, never stored."""

    UP = "UP"
    DOWN = "DOWN"
    MAINTENANCE = "MAINTENANCE"
    UNKNOWN = "UNKNOWN"


class DataPlaneStatus(StrEnum):
    """Neutron's ``data_plane_status`` port extension."""

    ACTIVE = "ACTIVE"
    DOWN = "DOWN"


class GroupPolicy(StrEnum):
    """Server group placement policy."""

    ANTI_AFFINITY = "anti-affinity"
    AFFINITY = "affinity"


S = TypeVar("S", bound=StrEnum)


class TransitionTable(Generic[S]):
    """Which state may follow which; staying in the same state is always allowed."""

    def __init__(self, kind: str, table: Mapping[S, Iterable[S]]) -> None:
        self.kind = kind
        self._next: dict[S, frozenset[S]] = {old: frozenset(new) for old, new in table.items()}

    def allows(self, old: S, new: S) -> bool:
        return old == new or new in self._next.get(old, frozenset())

    def check(self, ident: str, old: S, new: S) -> S:
        """Return ``new`` if the table allows it, else raise IllegalTransition."""
        if not self.allows(old, new):
            raise IllegalTransition(self.kind, ident, str(old), str(new))
        return new

    def successors(self, old: S) -> frozenset[S]:
        return self._next.get(old, frozenset())


_I = InstanceState
INSTANCE_TRANSITIONS: TransitionTable[InstanceState] = TransitionTable(
    "instance",
    {
        # A rebuild of a stopped instance (evacuate) ends stopped.
        _I.BUILD: {_I.ACTIVE, _I.SHUTOFF, _I.ERROR, _I.DELETED},
        # BUILD again from a running state is a rebuild on another host (evacuate).
        _I.ACTIVE: {_I.SHUTOFF, _I.MIGRATING, _I.ERROR, _I.BUILD, _I.DELETED},
        _I.SHUTOFF: {_I.ACTIVE, _I.MIGRATING, _I.ERROR, _I.BUILD, _I.DELETED},
        # A migration ends where it started from (ACTIVE or SHUTOFF) or fails.
        _I.MIGRATING: {_I.ACTIVE, _I.SHUTOFF, _I.ERROR},
        # Out of ERROR only by the owner's or admin's action: reset-state to
        # ACTIVE, rebuild elsewhere (evacuate goes through BUILD), or delete.
        _I.ERROR: {_I.ACTIVE, _I.BUILD, _I.DELETED},
        _I.DELETED: set(),
    },
)

ADMIN_TRANSITIONS: TransitionTable[AdminState] = TransitionTable(
    "host",
    {
        AdminState.ENABLED: {AdminState.DISABLED},
        AdminState.DISABLED: {AdminState.ENABLED},
    },
)

DATA_PLANE_TRANSITIONS: TransitionTable[DataPlaneStatus] = TransitionTable(
    "port",
    {
        DataPlaneStatus.ACTIVE: {DataPlaneStatus.DOWN},
        DataPlaneStatus.DOWN: {DataPlaneStatus.ACTIVE},
    },
)

# The states an admin may force with reset-state, as Nova's os-resetState allows.
RESETTABLE_STATES: frozenset[InstanceState] = frozenset({_I.ACTIVE, _I.ERROR})


def derive_host_status(*, admin_state: AdminState, forced_down: bool, reachable: bool) -> HostStatus:
    """Nova's rule: forced down wins, then disabled, then liveness of the service."""
    if forced_down:
        return HostStatus.DOWN
    if admin_state is AdminState.DISABLED:
        return HostStatus.MAINTENANCE
    if not reachable:
        return HostStatus.UNKNOWN
    return HostStatus.UP
