"""Fencing's vocabulary: what a fence device is asked, and what its answer means.

A host is fenced by powering it off through its BMC, so that its instances
can be recovered elsewhere without two actives: a host that only lost its
network would otherwise come back with its instances still running. Only a
*confirmed* fence allows recovery: the agent said the power is off, asked
after the off. Every other answer (an error, a timeout, power still on, an
agent that is not there) means the host may still run, and nothing of it is
recovered.
"""

from dataclasses import dataclass
from enum import StrEnum

# A fenced host's disabled reason: it stays disabled, when it comes back, until an admin enables it.
FENCED_REASON_PREFIX = "fenced: "


class FenceAction(StrEnum):
    """The actions of the fence-agents API that Vigil sends (``action=`` on the agent's stdin)."""

    OFF = "off"
    ON = "on"
    REBOOT = "reboot"
    STATUS = "status"
    MONITOR = "monitor"


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"  # the device did not say: a failure, a timeout


@dataclass(frozen=True, slots=True)
class FenceAnswer:
    """One call of a host's fence device. ``ok``: the agent did what was asked (for ``status``, it could read the
    power). ``power``: the power state the answer shows, ``UNKNOWN`` when it shows none. ``detail`` is the agent's
    own words (secrets removed), for the operator."""

    host: str
    action: FenceAction
    ok: bool
    power: PowerState
    detail: str
    elapsed_ms: float
    timed_out: bool = False

    @property
    def confirms_off(self) -> bool:
        """Whether this answer proves the host is powered off: the only answer recovery may follow."""
        return self.ok and self.power is PowerState.OFF


@dataclass(frozen=True, slots=True)
class FenceOutcome:
    """A fence: the off, then the status asked after it. ``confirmed`` only if the status read the power off;
    ``answers`` are the calls made, in order."""

    host: str
    answers: tuple[FenceAnswer, ...]

    @property
    def confirmed(self) -> bool:
        return bool(self.answers) and self.answers[-1].action is FenceAction.STATUS and self.answers[-1].confirms_off

    @property
    def reason(self) -> str:
        """Why the fence is not confirmed (empty when it is)."""
        if self.confirmed:
            return ""
        if not self.answers:
            return "no fence device"
        last = self.answers[-1]
        if last.timed_out:
            return f"{last.action} timed out after {last.elapsed_ms / 1000:.1f} s"
        if last.ok and last.power is PowerState.ON:
            return "power still on after the off"
        return f"{last.action} failed: {last.detail}"
