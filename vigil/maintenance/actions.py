"""Per-host maintenance actions: what is done to a host while it is in maintenance.

The operator names the actions in the server's configuration
(``maintenance.actions``), and a session refers to them by name with typed
parameters: ``[{"action": "upgrade", "duration_s": 30}, {"action":
"firmware", "version": "2.4"}]``. They run in order on each host once it is
empty and flagged in maintenance, as Fenix's per-host action plug-ins do. No
request ever carries a command line: an API token is not a shell on the
server. An action is built from an :class:`ActionSpec` by its plug-in;
:func:`build_actions` checks a session's references and parameters when the
session is created, so a typo is a 422 at once, not a failed session an
hour later. (``plugin`` is read as ``action`` for older clients.)

Plug-ins:

* ``upgrade``: stands for an upgrade (or a reboot) taking ``duration_s``
  seconds; in the embedded cloud nothing else happens to the host. An
  ``upgrade`` action is configured by default.
* ``script``: runs the configured ``command`` (a list of arguments, no
  shell) with ``VIGIL_HOST``, ``VIGIL_SESSION`` and one
  ``VIGIL_PARAM_<NAME>`` per parameter in its environment; a non-zero exit
  or running past ``timeout_s`` fails the session. It exists only where the
  operator configured it.
"""

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    unknown = set(params) - allowed
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no parameters"
        raise InvalidAction(f"action {plugin!r} takes {takes}; unknown: {', '.join(sorted(unknown))}")


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
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = "script"

    async def run(self, host: str, session_id: str) -> None:
        env = {**os.environ, **self.env, "VIGIL_HOST": host, "VIGIL_SESSION": session_id}
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


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action as the operator configured it: its plug-in, and for a script its command,
    time limit and the parameters (``string`` or ``number``) a session may give it."""

    plugin: str
    command: tuple[str, ...] = ()
    timeout_s: float = 600.0
    parameters: Mapping[str, str] = field(default_factory=dict)


def _configured_script(name: str, spec: ActionSpec) -> ActionFactory:
    def build(params: Mapping[str, object]) -> HostAction:
        _known(params, set(spec.parameters), name)
        env: dict[str, str] = {}
        for key, kind in spec.parameters.items():
            if key not in params:
                continue
            value = params[key]
            if kind == "number":
                value = _number(params, key, 0.0)
            elif not isinstance(value, str):
                raise InvalidAction(f"{key} of action {name!r} is a string, not {value!r}")
            env[f"VIGIL_PARAM_{key.upper()}"] = f"{value:g}" if isinstance(value, float) else str(value)
        return Script(command=spec.command, timeout_s=spec.timeout_s, env=env, name=name)

    return build


def configured(actions: Mapping[str, ActionSpec]) -> dict[str, ActionFactory]:
    """The factories of the operator's actions, by name; ValueError for a spec that cannot run."""
    factories: dict[str, ActionFactory] = {}
    for name, spec in actions.items():
        if spec.plugin == "upgrade":
            factories[name] = upgrade
        elif spec.plugin == "script":
            if not spec.command:
                raise ValueError(f"maintenance action {name!r}: a script needs a command")
            unknown = {k: v for k, v in spec.parameters.items() if v not in ("string", "number")}
            if unknown:
                raise ValueError(f"maintenance action {name!r}: parameters are string or number, not {unknown}")
            factories[name] = _configured_script(name, spec)
        else:
            raise ValueError(f"maintenance action {name!r}: unknown plug-in {spec.plugin!r}")
    return factories


BUILTIN: dict[str, ActionFactory] = configured({"upgrade": ActionSpec("upgrade")})


def build_actions(
    specs: Sequence[Mapping[str, object]], plugins: Mapping[str, ActionFactory] = BUILTIN
) -> list[HostAction]:
    """The actions a session's ``actions`` list names, checked; InvalidAction otherwise."""
    actions: list[HostAction] = []
    for spec in specs:
        name = spec.get("action", spec.get("plugin"))
        factory = plugins.get(name) if isinstance(name, str) else None
        if factory is None:
            known = ", ".join(sorted(plugins))
            raise InvalidAction(f"unknown action {name!r}; the server's maintenance.actions name: {known}")
        actions.append(factory({k: v for k, v in spec.items() if k not in ("action", "plugin")}))
    return actions
