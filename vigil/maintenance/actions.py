"""Per-host maintenance actions: what is done to a host while it is in maintenance.

A session names its actions as ``[{"plugin": "upgrade", "duration_s": 30},
{"plugin": "script", "command": ["/usr/local/bin/upgrade-host"]}]``; they run
in order on each host once it is empty and flagged in maintenance, as
Fenix's per-host action plug-ins do. A plug-in is a factory from its
parameters to a :class:`HostAction`; :func:`build_actions` checks the
parameters when the session is created, so a typo is a 422 at once, not a
failed session an hour later.

Built in:

* ``upgrade``: stands for an upgrade (or a reboot) taking ``duration_s``
  seconds; in the embedded cloud nothing else happens to the host.
* ``script``: runs ``command`` (a list of arguments, no shell) with
  ``VIGIL_HOST`` and ``VIGIL_SESSION`` in its environment; a non-zero exit
  or running past ``timeout_s`` fails the session.
"""

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from vigil.domain.errors import DomainError


class InvalidAction(DomainError):
    """A session names an unknown action or gives it bad parameters (HTTP 422)."""


class ActionFailed(DomainError):
    """An action did not complete on a host; the session fails with this reason."""


class HostAction(Protocol):
    @property
    def name(self) -> str: ...

    async def run(self, host: str, session_id: str) -> None: ...


ActionFactory = Callable[[Mapping[str, object]], HostAction]


def _number(params: Mapping[str, object], key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidAction(f"{key} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _known(params: Mapping[str, object], allowed: set[str], plugin: str) -> None:
    unknown = set(params) - allowed - {"plugin"}
    if unknown:
        raise InvalidAction(
            f"action {plugin!r} takes {', '.join(sorted(allowed))}; unknown: {', '.join(sorted(unknown))}"
        )


@dataclass(frozen=True, slots=True)
class Upgrade:
    duration_s: float
    name: str = "upgrade"

    async def run(self, host: str, session_id: str) -> None:
        await asyncio.sleep(self.duration_s)


def upgrade(params: Mapping[str, object]) -> HostAction:
    _known(params, {"duration_s"}, "upgrade")
    return Upgrade(duration_s=_number(params, "duration_s", 0.0))


@dataclass(frozen=True, slots=True)
class Script:
    command: tuple[str, ...]
    timeout_s: float
    name: str = "script"

    async def run(self, host: str, session_id: str) -> None:
        env = {**os.environ, "VIGIL_HOST": host, "VIGIL_SESSION": session_id}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ActionFailed(f"script {self.command[0]!r} on {host} could not start: {exc}") from exc
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=self.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ActionFailed(f"script {self.command[0]!r} on {host} ran past {self.timeout_s:g} s") from None
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip()[-200:]
            raise ActionFailed(f"script {self.command[0]!r} on {host} exited {proc.returncode}: {tail}")


def script(params: Mapping[str, object]) -> HostAction:
    _known(params, {"command", "timeout_s"}, "script")
    command = params.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise InvalidAction("script needs command: a non-empty list of strings (no shell)")
    return Script(command=tuple(command), timeout_s=_number(params, "timeout_s", 600.0))


BUILTIN: dict[str, ActionFactory] = {"upgrade": upgrade, "script": script}


def build_actions(
    specs: Sequence[Mapping[str, object]], plugins: Mapping[str, ActionFactory] = BUILTIN
) -> list[HostAction]:
    """The actions a session's ``actions`` list names, checked; InvalidAction otherwise."""
    actions: list[HostAction] = []
    for spec in specs:
        plugin = spec.get("plugin")
        factory = plugins.get(plugin) if isinstance(plugin, str) else None
        if factory is None:
            raise InvalidAction(f"unknown action plugin {plugin!r}; known: {', '.join(sorted(plugins))}")
        actions.append(factory(spec))
    return actions
