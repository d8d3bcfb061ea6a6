"""The stack's processes: what each one runs, starting it, checking it, stopping it.

Every process is spawned in a session of its own with its output in
``logs/NAME.log`` and ``"PID STARTTIME"`` in ``pids/NAME.pid`` (the same
convention as the namespace testbed, whose helpers read them): a pid file
whose process is gone, or whose pid now belongs to another process, is
stale and ignored, so a crashed stack never fools ``up`` or ``status``.
Stopping signals the whole session (gunicorn's workers, oslo's forked
workers) with SIGTERM and, after a grace period, SIGKILL.

The APIs (Keystone, Placement, Neutron, Nova) ship only WSGI modules, so
gunicorn serves them: one worker with threads, as a small cloud would run
them under uwsgi; the image service is Vigil's own stand-in.
"""

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from vigil.testbed import state as procs
from vigil.testbed.openstack.layout import HOST, PORTS, Layout


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health_url: str | None = None  # answers without a token when the service is ready

    @property
    def port(self) -> int | None:
        return PORTS.get(self.name)


def _gunicorn(layout: Layout, name: str, app: str) -> list[str]:
    return [
        str(layout.bin("gunicorn")),
        "--workers",
        "1",
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--timeout",
        "120",
        "--no-control-socket",
        "--graceful-timeout",
        "3",
        "--bind",
        f"{HOST}:{PORTS[name]}",
        "--pythonpath",
        str(layout.lib),
        "--name",
        f"vigil-os-{name}",
        f'vigil_os_wsgi:app("{app}")',
    ]


def keystone(layout: Layout) -> Service:
    return Service(
        "keystone",
        _gunicorn(layout, "keystone", "keystone"),
        {"OS_KEYSTONE_CONFIG_DIR": str(layout.etc / "keystone")},
        f"http://{HOST}:{PORTS['keystone']}/v3",
    )


def glance(layout: Layout) -> Service:
    argv = [sys.executable, "-m", "vigil.testbed.openstack.glance", "--host", HOST, "--port", str(PORTS["glance"])]
    argv += ["--stack-dir", f"{layout.base}/"]
    return Service("glance", argv, {}, f"http://{HOST}:{PORTS['glance']}/healthcheck")


def apis(layout: Layout) -> list[Service]:
    """The APIs that need Keystone's users: Placement, Neutron, Nova."""
    return [
        Service(
            "placement",
            _gunicorn(layout, "placement", "placement"),
            {"OS_PLACEMENT_CONFIG_DIR": str(layout.etc / "placement")},
            f"http://{HOST}:{PORTS['placement']}/",
        ),
        Service(
            "neutron-api",
            _gunicorn(layout, "neutron-api", "neutron"),
            {"OS_NEUTRON_CONFIG_DIR": str(layout.etc / "neutron")},
            f"http://{HOST}:{PORTS['neutron-api']}/",
        ),
        Service(
            "nova-api",
            _gunicorn(layout, "nova-api", "nova"),
            {"OS_NOVA_CONFIG_DIR": str(layout.etc / "nova")},
            f"http://{HOST}:{PORTS['nova-api']}/",
        ),
    ]


def nova_workers(layout: Layout, computes: int) -> list[Service]:
    """Conductor, scheduler and one nova-compute per fake host."""
    conf = ["--config-file", str(layout.etc / "nova" / "nova.conf")]
    found = [
        Service(name, [str(layout.bin(name)), *conf, "--log-file", str(layout.log(name))])
        for name in ("nova-conductor", "nova-scheduler")
    ]
    for index in range(1, computes + 1):
        name = f"nova-compute-{index}"
        argv = [
            str(layout.bin("nova-compute")),
            *conf,
            "--config-file",
            str(layout.compute_conf(index)),
            "--log-file",
            str(layout.log(name)),
        ]
        found.append(Service(name, argv))
    return found


def all_services(layout: Layout, computes: int) -> list[Service]:
    return [keystone(layout), glance(layout), *apis(layout), *nova_workers(layout, computes)]


# -- processes ----------------------------------------------------------------------


def running(layout: Layout) -> dict[str, int]:
    """Name → pid of every process of the stack that is still the one ``up`` started."""
    return procs.recorded_pids(layout.base)


def start(layout: Layout, service: Service) -> int:
    """Spawn it detached (it outlives ``up``); its environment is this one's without VIGIL_* variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    environment.update(service.env)
    environment["PYTHONUNBUFFERED"] = "1"
    layout.pids.mkdir(parents=True, exist_ok=True)
    log = os.open(layout.log(service.name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
        pid = os.posix_spawn(service.argv[0], service.argv, environment, file_actions=actions, setsid=True)
    finally:
        os.close(log)
        os.close(devnull)
    started = None
    for _ in range(200):
        started = _start_time(pid)
        if started is not None:
            break
        time.sleep(0.001)
    (layout.pids / f"{service.name}.pid").write_text(f"{pid} {started}\n")
    return pid


def _start_time(pid: int) -> str | None:
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - one read of a proc file
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def stop(layout: Layout, names: Sequence[str] | None = None, grace_s: float = 10.0) -> list[str]:
    """SIGTERM each one's session, SIGKILL what is left after ``grace_s``; remove the pid files."""
    alive = running(layout)
    chosen = {n: p for n, p in alive.items() if names is None or n in names}
    procs.terminate(list(chosen.values()), timeout_s=grace_s)
    for pid_file in layout.pids.glob("*.pid") if layout.pids.is_dir() else []:
        if names is None or pid_file.stem in names:
            pid_file.unlink(missing_ok=True)
    return sorted(chosen)


def healthy(service_url: str | None, timeout_s: float = 2.0) -> int | None:
    """The HTTP status of the health URL (None: no answer)."""
    if service_url is None:
        return None
    try:
        return httpx.get(service_url, timeout=timeout_s).status_code
    except httpx.HTTPError:
        return None


def is_ready(status: int | None) -> bool:
    # Version documents answer 200 or 300 (Multiple Choices); anything from the app means it serves.
    return status is not None and status < 500


def log_tail(layout: Layout, name: str, lines: int = 30) -> str:
    try:
        text = layout.log(name).read_text(errors="replace")
    except OSError:
        return f"(no log at {layout.log(name)})"
    return "\n".join(text.splitlines()[-lines:])


def wait_healthy(layout: Layout, services: Sequence[Service], timeout_s: float) -> str | None:
    """Wait until each answers on its health URL; return the name of one that died or never answered."""
    deadline = time.monotonic() + timeout_s
    waiting = [s for s in services if s.health_url]
    while waiting:
        alive = running(layout)
        for service in list(waiting):
            if service.name not in alive:
                return service.name
            if is_ready(healthy(service.health_url, timeout_s=1.0)):
                waiting.remove(service)
        if not waiting:
            return None
        if time.monotonic() > deadline:
            return waiting[0].name
        time.sleep(0.2)
    return None


def rss_kib(layout: Layout) -> dict[str, int]:
    """Resident memory of each service with its whole session (gunicorn workers, forked workers)."""
    sessions = running(layout)
    by_sid = {pid: name for name, pid in sessions.items()}
    total: dict[str, int] = dict.fromkeys(sessions, 0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            sid = os.getsid(int(entry))
            if sid not in by_sid:
                continue
            with open(f"/proc/{entry}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total[by_sid[sid]] += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


def marked_processes(layout: Layout) -> list[int]:
    """Every process whose output goes to one of the stack's logs, whatever its pid files say.

    Each service (and each worker it forks) inherits its log as stdout: that finds the processes
    of a stack whose pid files were lost. Not the command line nor the environment: gunicorn and
    oslo.service rewrite both when they set their process titles."""
    prefix = f"{layout.logs}/"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            target = os.readlink(f"/proc/{entry}/fd/1")
        except OSError:
            continue
        if target.startswith(prefix):
            found.append(int(entry))
    return found
