"""The testbed's state directory: what was built, and the processes it runs.

Default ``/run/vigil-testbed`` (``VIGIL_TESTBED_DIR`` or ``--state-dir``
to change it; ``/run`` is emptied at boot, as the namespaces are)::

    state.json            what ``up`` built: hosts, project, tokens, active faults
    pids/NAME.pid         "PID STARTTIME" of each process the testbed started
    logs/NAME.log         its output
    ctl/                  the controller's data directory (database, tokens, topology,
                          vigil.yaml: its settings, fencing.yaml: the fence devices alone)
    instances/            the workload's control sockets
    bmc/                  the BMC emulators' configuration, password file (0600, the fence
                          devices read it), certificate and htpasswd
    power/HOST            each host's power as its BMC last switched it (on or off)

A pid file holds the process's start time (``/proc/PID/stat``) too, so a
recycled pid is never mistaken for a testbed process. Every process is
started in a new session inside a ``vgt-`` namespace, so ``down`` finds it
by pid file and by namespace.
"""

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vigil.testbed.netns import in_netns

DEFAULT_STATE_DIR = Path("/run/vigil-testbed")
STATE_FILE = "state.json"


def default_state_dir() -> Path:
    return Path(os.environ.get("VIGIL_TESTBED_DIR") or DEFAULT_STATE_DIR)


@dataclass(slots=True)
class InjectedFault:
    host: str  # compute name
    kind: str
    t00: float  # Unix time immediately before the breaking call
    broken: float  # Unix time when it returned
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TestbedState:
    __test__ = False  # not a pytest test class
    dir: Path
    hosts: int
    project: str
    python: str
    agent: list[str]  # the agent command before its per-host options
    tokens: dict[str, str]
    agent_priority: int = 0  # real-time (SCHED_FIFO) priority of the agents (0: the normal policy)
    bmc_password: str = ""  # the BMCs' one login (user plan.BMC_USER), random per testbed
    fencing: bool = False  # whether Vigil itself fences failed hosts (its settings have the fence devices)
    recovery: dict[str, Any] | None = None  # Vigil's recovery settings, if up was given any
    created_at: float = field(default_factory=time.time)
    ready: bool = False
    faults: list[InjectedFault] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def ctl_dir(self) -> Path:
        return self.dir / "ctl"

    @property
    def bmc_dir(self) -> Path:
        return self.dir / "bmc"

    @property
    def bmc_password_file(self) -> Path:
        """The BMC password alone (0600), as the fence devices' ``secret_files`` name it."""
        return self.bmc_dir / "password"

    @property
    def vigil_config(self) -> Path:
        """The controller's settings file (``vigil serve --config``)."""
        return self.ctl_dir / "vigil.yaml"

    @property
    def fence_config(self) -> Path:
        """Settings with the hosts' fence devices (``fencing``) alone, for ``vigil fence ... --config``."""
        return self.ctl_dir / "fencing.yaml"

    def save(self) -> None:
        data = asdict(self)
        data["dir"] = str(self.dir)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.chmod(tmp, 0o600)  # it holds the tokens and the BMC password
        tmp.replace(self.path)

    @classmethod
    def load(cls, directory: Path) -> "TestbedState | None":
        try:
            data = json.loads((directory / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        data["dir"] = Path(data["dir"])
        data["faults"] = [InjectedFault(**f) for f in data.get("faults", [])]
        return cls(**data)


def prepare(directory: Path) -> None:
    for sub in ("pids", "logs", "ctl", "instances", "bmc"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


# -- processes -------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def start_process(
    directory: Path,
    name: str,
    ns: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` inside namespace ``ns`` in a session of its own; record its pid.

    It is spawned (``posix_spawn``), not a :class:`subprocess.Popen`: it outlives
    whoever started it, and ``down`` stops it. Its environment is this one's
    without ``VIGIL_*`` variables (a testbed process is configured by its
    options and files alone), plus ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    environment.update(env or {})
    command = in_netns(ns, argv)
    log = os.open(directory / "logs" / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
        pid = os.posix_spawnp(command[0], command, environment, file_actions=actions, setsid=True)
    finally:
        os.close(log)
        os.close(devnull)
    # 'ip netns exec' execs argv: the pid stays. Its start time tells it from a later process of the same pid.
    started = None
    for _ in range(100):
        started = _start_time(pid)
        if started is not None:
            break
        time.sleep(0.001)
    (directory / "pids" / f"{name}.pid").write_text(f"{pid} {started}\n")
    return pid


def recorded_pids(directory: Path) -> dict[str, int]:
    """Processes whose pid file still names a live process (same start time)."""
    found: dict[str, int] = {}
    pids = directory / "pids"
    if not pids.is_dir():
        return found
    for pid_file in pids.glob("*.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parts = pid_file.read_text().split()
            pid = int(parts[0])
            started = _start_time(pid)
            if started is not None and (len(parts) < 2 or parts[1] in ("None", started)) and is_alive(pid):
                found[pid_file.stem] = pid
    return found


def pid_of(directory: Path, name: str) -> int | None:
    return recorded_pids(directory).get(name)


def is_frozen(pid: int) -> bool:
    return _proc_state(pid) == "T"


def is_alive(pid: int) -> bool:
    """Running or stopped; a zombie is dead (and reaped here if it is our child)."""
    _reap([pid])
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def terminate(pids: Sequence[int], timeout_s: float = 3.0) -> None:
    """SIGTERM (and SIGCONT, in case they are frozen) each one's group, then SIGKILL what is left."""
    for pid in pids:
        for signum in (signal.SIGTERM, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
    deadline = time.monotonic() + timeout_s
    left = [p for p in pids if is_alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        _reap(left)
        left = [p for p in left if is_alive(p)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _reap(left)


def _reap(pids: Sequence[int]) -> None:
    """Collect those that are our own children, so they do not linger as zombies."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
