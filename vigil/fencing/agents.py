"""Fence agents, called the way Pacemaker's fencer calls them.

A fence agent (``fence_ipmilan``, ``fence_redfish``, ... from fence-agents)
is a program that reads its options as ``key=value`` lines on stdin, one of
them ``action=``, and answers by its exit status: 0 for done (for
``status``: the power is on), 2 for ``status`` when the power is off,
anything else a failure, with the reason on stderr. Pacemaker's
stonith-ng calls them so, and so does Vigil: no option on a command line,
where ``ps`` would show a password.

Each call runs in its own process group and is killed whole at its timeout
(an agent may have started ``ipmitool`` or ``ssh``). The agent's words are
kept for the operator with the secret values removed.
"""

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vigil.domain.fencing import FenceAction, FenceAnswer, PowerState

STATUS_OFF = 2  # the fence-agents API: status exits 2 when the power is off
DETAIL_CHARS = 500


@dataclass(frozen=True, slots=True)
class FenceDevice:
    """One host's fence device: the agent, its plain options, and its secret ones (values, or files read at each
    call). ``repr`` never shows a secret."""

    host: str
    agent: str
    options: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_files: Mapping[str, Path] = field(default_factory=dict)
    timeout_s: float = 60.0

    def stdin(self, action: FenceAction) -> tuple[str, list[str]]:
        """The agent's stdin for ``action``, and the secret values in it (to keep out of what is shown)."""
        secrets = dict(self.secrets)
        for key, path in self.secret_files.items():
            secrets[key] = path.read_text().strip()
        lines = {**self.options, **secrets, "action": str(action)}
        return "".join(f"{key}={value}\n" for key, value in lines.items()), [v for v in secrets.values() if v]

    def described(self) -> dict[str, object]:
        """What an operator may see of the device: everything but the secrets' values."""
        return {
            "host": self.host,
            "agent": self.agent,
            "options": dict(self.options),
            "secrets": sorted({*self.secrets, *self.secret_files}),
            "timeout_s": self.timeout_s,
        }


def find_agent(agent: str, search: Iterable[Path]) -> Path | None:
    """The program ``agent`` names: an absolute path as it is, a name looked up in ``search``."""
    if agent.startswith("/"):
        return Path(agent) if os.access(agent, os.X_OK) else None
    for folder in search:
        candidate = folder / agent
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _scrubbed(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _detail(stdout: bytes, stderr: bytes, secrets: list[str]) -> str:
    """The agent's answer in a line: its ERROR lines if it printed any, else the last line it printed."""
    lines = [line.strip() for line in (stdout + b"\n" + stderr).decode(errors="replace").splitlines() if line.strip()]
    errors = [line.split("ERROR:", 1)[1].strip() for line in lines if "ERROR:" in line]
    shown = "; ".join(errors) if errors else (lines[-1] if lines else "")
    return _scrubbed(shown, secrets)[:DETAIL_CHARS]


def _power(action: FenceAction, returncode: int) -> tuple[bool, PowerState]:
    """What an exit status means for ``action``."""
    if action is FenceAction.STATUS:
        if returncode == 0:
            return True, PowerState.ON
        if returncode == STATUS_OFF:
            return True, PowerState.OFF
        return False, PowerState.UNKNOWN
    if returncode != 0:
        return False, PowerState.UNKNOWN
    return True, {FenceAction.OFF: PowerState.OFF, FenceAction.ON: PowerState.ON}.get(action, PowerState.UNKNOWN)


async def call_agent(device: FenceDevice, action: FenceAction, search: Iterable[Path]) -> FenceAnswer:
    """Run ``device``'s agent once for ``action``, at most ``device.timeout_s``."""
    began = time.monotonic()

    def answer(ok: bool, power: PowerState, detail: str, timed_out: bool = False) -> FenceAnswer:
        elapsed = round((time.monotonic() - began) * 1000, 1)
        return FenceAnswer(device.host, action, ok, power, detail, elapsed, timed_out)

    program = find_agent(device.agent, search)
    if program is None:
        return answer(False, PowerState.UNKNOWN, f"no fence agent {device.agent!r} (is fence-agents installed?)")
    try:
        stdin, secrets = device.stdin(action)
    except OSError as exc:
        return answer(False, PowerState.UNKNOWN, f"cannot read a secret file: {exc.strerror}: {exc.filename}")
    process = await asyncio.create_subprocess_exec(
        str(program),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, killed whole at the timeout
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PYTHONWARNINGS": "ignore", "LANG": "C"},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin.encode()), device.timeout_s)
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        return answer(False, PowerState.UNKNOWN, f"no answer within {device.timeout_s:g} s", timed_out=True)
    except BaseException:  # cancelled: the agent must not go on fencing on its own
        _kill_group(process.pid)
        await asyncio.shield(_reaped(process))
        raise
    assert process.returncode is not None
    ok, power = _power(action, process.returncode)
    detail = _detail(stdout, stderr, secrets)
    if not ok and not detail:
        detail = f"exit status {process.returncode}"
    return answer(ok, power, detail)


async def _reaped(process: asyncio.subprocess.Process) -> None:
    """Wait for a killed agent and drain its pipes, so nothing of it outlives the call."""
    await process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            await pipe.read()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
