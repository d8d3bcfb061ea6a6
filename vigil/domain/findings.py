"""What the inspector remembers of one host between reports, kept durable.

The inspector's decisions depend on more than the resource map: how many
non-critical failures a host has (aggregation), which reports it put aside
while the host was in maintenance (suppression), and which recoveries it is
holding back until they prove stable (damping). That memory used to live only
in the process, so a restart forgot it, and a report applied again after a
crash could be judged differently the second time (a second NIC failure read
as a first: a warning instead of the fault the consumer was already told of).

:class:`HostFindings` is that memory for one host, recorded with every unit of
work that changes it and restored at start. Failures and holds are keyed by
the failure they name: the event family and what it relates to, e.g.
``network.link/eth1`` or ``compute.host/``.
"""

from dataclasses import dataclass, field


@dataclass(slots=True)
class HostFindings:
    """One host's open findings; a host with none has no record.

    ``failures``: non-critical failures still down, each with when it began
    (the event's time, Unix seconds), for the aggregation window.
    ``suppressed``: per failure, the id of the latest event reported while the
    host was in maintenance (applied when it leaves, if still down).
    ``held``: per failure, the id of the recovery event being held back until
    the failure has stayed away for the hold-down (flap damping).
    """

    host: str
    failures: dict[str, float] = field(default_factory=dict)
    suppressed: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return self.host

    @property
    def empty(self) -> bool:
        return not (self.failures or self.suppressed or self.held)
