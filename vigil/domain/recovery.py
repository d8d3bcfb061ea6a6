"""Recovery policies: what becomes of a failed host's instances once the host is fenced.

Masakari's vocabulary, which operators of OpenStack HA already use:

* ``none``: the owner is notified and recovers by itself (Doctor's own
  model, and Vigil's default: a VNF manager with a standby switches over);
* ``restart``: an instance that failed alone (its workload died on a host
  that is fine, ``compute.instance.down``) is restarted in place, as
  Masakari's instance recovery does; a host failure leaves it to its owner;
* ``evacuate``: Vigil rebuilds the instances on other hosts, only after the
  failed host's fence is confirmed, by one of Masakari's methods:

  - ``auto``: any host the placement rules allow (capacity, anti-affinity,
    affinity, ``max_instances_per_host``), reserved hosts excepted;
  - ``reserved_host``: only the reserved hosts (kept empty and disabled for
    this; enabled when one is used);
  - ``auto_priority``: as ``auto``, then the reserved hosts for what did not fit;
  - ``rh_priority``: the reserved hosts first, then as ``auto``.

A policy is set per server group, per project, or as the default, the most
specific winning.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class RecoveryAction(StrEnum):
    NONE = "none"
    EVACUATE = "evacuate"  # its host failed and was fenced: rebuilt on another host
    RESTART = "restart"  # it failed alone (compute.instance.down): stopped and started again where it is


class EvacuationMethod(StrEnum):
    AUTO = "auto"
    RESERVED_HOST = "reserved_host"
    AUTO_PRIORITY = "auto_priority"
    RH_PRIORITY = "rh_priority"


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    action: RecoveryAction = RecoveryAction.NONE
    method: EvacuationMethod = EvacuationMethod.AUTO

    @property
    def tiers(self) -> tuple[bool, ...]:
        """The hosts tried, in order: False for the ordinary hosts, True for the reserved ones."""
        return {
            EvacuationMethod.AUTO: (False,),
            EvacuationMethod.RESERVED_HOST: (True,),
            EvacuationMethod.AUTO_PRIORITY: (False, True),
            EvacuationMethod.RH_PRIORITY: (True, False),
        }[self.method]


@dataclass(frozen=True, slots=True)
class RecoveryPolicies:
    """Each instance's policy: its server group's, else its project's, else ``default``."""

    default: RecoveryPolicy = RecoveryPolicy()
    projects: Mapping[str, RecoveryPolicy] = field(default_factory=dict)
    groups: Mapping[str, RecoveryPolicy] = field(default_factory=dict)
    reserved_hosts: frozenset[str] = frozenset()

    def of(self, project: str, group: str | None) -> RecoveryPolicy:
        if group is not None and group in self.groups:
            return self.groups[group]
        return self.projects.get(project, self.default)

    @property
    def evacuates(self) -> bool:
        """Whether any instance may be evacuated at all."""
        policies = [self.default, *self.projects.values(), *self.groups.values()]
        return any(p.action is RecoveryAction.EVACUATE for p in policies)

    @property
    def restarts(self) -> bool:
        """Whether any instance may be restarted in place."""
        policies = [self.default, *self.projects.values(), *self.groups.values()]
        return any(p.action is RecoveryAction.RESTART for p in policies)
