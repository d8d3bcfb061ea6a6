"""``up``, ``status`` and ``down`` of the stack: the order of the steps, and what each leaves.

``up`` is idempotent and resumable: the slow one-time work (venv, databases,
vhost, migrations, Keystone's bootstrap) is recorded in ``stack.json`` once
done, and each start only starts the services that are not running. So a
second ``up`` on a running stack reports it and returns, and an ``up``
after a crash or a failed start finishes the job. Keystone starts first,
and the other services only once their Keystone users exist: a nova-compute
that fails its first report to Placement would wait for its next periodic
task (a minute) before it shows as a hypervisor.

``down`` works from the pid files and the recorded names, never from what
is running elsewhere on the machine: it stops the stack's processes, drops
the ``vigil_os_*`` databases and the vhost, and removes the directory but
the venv (``purge`` removes that too).
"""

import contextlib
import fcntl
import json
import os
import secrets as random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vigil.testbed import state as procs
from vigil.testbed.openstack import backing, config, install, keystone, schema, services
from vigil.testbed.openstack.client import StackClient
from vigil.testbed.openstack.config import Secrets
from vigil.testbed.openstack.layout import DATABASES, HOST, VHOST, Layout, database

MAX_COMPUTES = 20


class StackError(RuntimeError):
    """A failed step; ``log`` names the service whose log tells why."""

    def __init__(self, message: str, log: str | None = None, tail: str = "") -> None:
        super().__init__(message)
        self.log = log
        self.tail = tail


@dataclass(slots=True)
class StackRecord:
    """``stack.json``: what ``up`` made, so ``down`` removes exactly that."""

    computes: int
    admin_password: str
    service_password: str
    set_up: bool = False
    registered: bool = False
    created_at: float = field(default_factory=time.time)
    databases: list[str] = field(default_factory=lambda: [database(n) for n in DATABASES])
    vhost: str = VHOST

    @property
    def secrets(self) -> Secrets:
        return Secrets(self.admin_password, self.service_password)

    def save(self, layout: Layout) -> None:
        tmp = layout.stack_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self), out, indent=2)
        tmp.replace(layout.stack_file)

    @classmethod
    def load(cls, layout: Layout) -> "StackRecord | None":
        try:
            return cls(**json.loads(layout.stack_file.read_text()))
        except FileNotFoundError:
            return None


@dataclass(slots=True)
class UpResult:
    already_up: bool
    computes: int
    base_dir: Path
    installed: bool = False
    timings_s: dict[str, float] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)


def _fail_with_log(layout: Layout, name: str, message: str) -> StackError:
    return StackError(message, name, services.log_tail(layout, name))


def _start_missing(layout: Layout, wanted: list[services.Service]) -> list[services.Service]:
    """Start those not running, after checking that their ports are free (else another process would
    answer the health checks in their place)."""
    alive = services.running(layout)
    missing = [s for s in wanted if s.name not in alive]
    for service in missing:
        if service.port is not None and backing.reachable(HOST, service.port, timeout_s=0.5):
            raise StackError(
                f"port {HOST}:{service.port} of {service.name} is taken by a process that is not the stack's "
                "(or one whose pid file was lost: 'down' stops those)"
            )
    started = []
    for service in missing:
        if service.name not in alive:
            services.start(layout, service)
            started.append(service)
    return started


def _wait_services(layout: Layout, wanted: list[services.Service], timeout_s: float) -> None:
    failed = services.wait_healthy(layout, wanted, timeout_s)
    if failed is not None:
        alive = failed in services.running(layout)
        why = "did not answer in time" if alive else "died"
        raise _fail_with_log(layout, failed, f"{failed} {why} (log {layout.log(failed)})")


def wait_hypervisors(layout: Layout, record: StackRecord, computes: int, timeout_s: float) -> float:
    """Wait until compute-1..N are hypervisors that are up and mapped to a cell; return the seconds taken."""
    started = time.monotonic()
    wanted = {f"compute-{i}" for i in range(1, computes + 1)}
    deadline = started + timeout_s
    up: set[str] = set()
    with StackClient(record.admin_password) as client:
        while True:
            alive = services.running(layout)
            for index in range(1, computes + 1):
                name = f"nova-compute-{index}"
                if name not in alive:
                    raise _fail_with_log(layout, name, f"{name} died (log {layout.log(name)})")
            try:
                up = {h["hypervisor_hostname"] for h in client.hypervisors() if h.get("state") == "up"}
            except httpx.HTTPError:
                up = set()
            if wanted <= up and wanted <= backing.mapped_hosts():
                return time.monotonic() - started
            if time.monotonic() > deadline:
                missing = sorted(wanted - up)
                name = f"nova-compute-{missing[0].split('-')[1]}" if missing else "nova-scheduler"
                raise _fail_with_log(
                    layout, name, f"hypervisors not up and mapped after {timeout_s:.0f} s: missing {missing or 'maps'}"
                )
            time.sleep(0.5)


def is_up(layout: Layout, record: StackRecord | None) -> bool:
    if record is None or not record.set_up:
        return False
    alive = services.running(layout)
    return all(s.name in alive for s in services.all_services(layout, record.computes))


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per stack (two test runs starting at once wait for each other)."""
    layout.base.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def up(base_dir: Path, computes: int = 3, *, timeout_s: float = 300.0) -> UpResult:
    """Bring the stack up (or finish bringing it up); see the module's docstring."""
    if not 1 <= computes <= MAX_COMPUTES:
        raise ValueError(f"--computes must be between 1 and {MAX_COMPUTES}")
    layout = Layout(base_dir)
    layout.prepare()
    with _locked(layout):
        return _up(layout, base_dir, computes, timeout_s)


def _up(layout: Layout, base_dir: Path, computes: int, timeout_s: float) -> UpResult:
    backing.check_servers()
    record = StackRecord.load(layout)
    if record is not None and computes <= record.computes and is_up(layout, record):
        config.copy_helpers(layout)  # a newer Vigil's tap works on a stack an older one started
        return UpResult(True, record.computes, base_dir, credentials=config.credentials(record.secrets))
    timings: dict[str, float] = {}
    clock = time.monotonic()
    result = install.ensure_venv(layout)
    timings["install"] = result.seconds
    if record is None:
        record = StackRecord(computes, random.token_urlsafe(18), random.token_urlsafe(18))
    record.computes = max(record.computes, computes)
    record.save(layout)
    config.write_all(layout, record.secrets, record.computes)

    mark = time.monotonic()
    if record.set_up and set(record.databases) - set(backing.existing_databases()):
        record.set_up = record.registered = False  # a database was dropped behind our back: set up again
    backing.create_databases()  # idempotent
    backing.create_vhost(record.vhost)
    if not record.set_up:
        try:
            schema.migrate_all(layout, record.admin_password)
        except schema.SchemaError as exc:
            raise _fail_with_log(layout, f"setup-{exc.log}", str(exc)) from exc
        record.set_up = True
        record.save(layout)
    timings["setup"] = time.monotonic() - mark

    mark = time.monotonic()
    first = [services.keystone(layout), services.glance(layout)]
    _start_missing(layout, first)
    _wait_services(layout, first, timeout_s=120)
    if not record.registered:  # idempotent, but ~30 calls: once per set-up is enough
        keystone.register_services(record.admin_password, record.service_password)
        record.registered = True
        record.save(layout)
    timings["keystone"] = time.monotonic() - mark

    mark = time.monotonic()
    rest = [*services.apis(layout), *services.nova_workers(layout, record.computes)]
    _start_missing(layout, rest)
    _wait_services(layout, rest, timeout_s=180)
    timings["apis"] = time.monotonic() - mark
    timings["hypervisors"] = wait_hypervisors(layout, record, record.computes, timeout_s)
    config.write_credentials(layout, record.secrets)
    timings["total"] = time.monotonic() - clock
    return UpResult(
        False,
        record.computes,
        base_dir,
        installed=result.installed,
        timings_s={k: round(v, 2) for k, v in timings.items()},
        credentials=config.credentials(record.secrets),
    )


def status(base_dir: Path) -> dict[str, Any]:
    """Each service (pid, HTTP health) and each hypervisor (state, status, forced down) as Nova sees it."""
    layout = Layout(base_dir)
    record = StackRecord.load(layout) if layout.base.is_dir() else None
    alive = services.running(layout) if layout.base.is_dir() else {}
    computes = record.computes if record else 0
    rss = services.rss_kib(layout) if alive else {}
    rows = []
    for service in services.all_services(layout, computes):
        http = services.healthy(service.health_url) if service.name in alive else None
        rows.append(
            {
                "name": service.name,
                "pid": alive.get(service.name),
                "alive": service.name in alive,
                "port": service.port,
                "http": http,
                "healthy": service.name in alive and (service.health_url is None or services.is_ready(http)),
                "rss_kib": rss.get(service.name),
            }
        )
    hypervisors: list[dict[str, Any]] = []
    error = None
    if record is not None and alive:
        try:
            with StackClient(record.admin_password, timeout_s=10) as client:
                forced = {s["host"]: s for s in client.compute_services()}
                for h in client.hypervisors():
                    compute = forced.get(h["hypervisor_hostname"], {})
                    hypervisors.append(
                        {
                            "name": h["hypervisor_hostname"],
                            "state": h.get("state"),
                            "status": h.get("status"),
                            "forced_down": compute.get("forced_down"),
                            "service_state": compute.get("state"),
                            "service_id": compute.get("id"),
                        }
                    )
        except (httpx.HTTPError, keystone.KeystoneError) as exc:
            error = str(exc)
    return {
        "base_dir": str(base_dir),
        "set_up": bool(record and record.set_up),
        "up": is_up(layout, record),
        "computes": computes,
        "services": rows,
        "hypervisors": sorted(hypervisors, key=lambda h: str(h["name"])),
        "rss_mib": round(sum(rss.values()) / 1024, 1),
        "error": error,
        "credentials_file": str(layout.credentials_file) if layout.credentials_file.exists() else None,
    }


@dataclass(slots=True)
class DownResult:
    stopped: list[str]
    databases: list[str]
    vhost: bool
    removed: list[str]
    seconds: float


def down(base_dir: Path, *, purge: bool = False) -> DownResult:
    """Stop, drop, delete; the venv stays unless ``purge`` (a later ``up`` then needs no install)."""
    layout = Layout(base_dir)
    if not layout.base.is_dir():
        return _down(layout, purge)
    with _locked(layout):
        result = _down(layout, purge)
    if purge:
        layout.lock_file.unlink(missing_ok=True)
        layout.base.rmdir()
    return result


def _down(layout: Layout, purge: bool) -> DownResult:
    started = time.monotonic()
    record = StackRecord.load(layout) if layout.base.is_dir() else None
    stopped = services.stop(layout) if layout.base.is_dir() else []
    strays = services.marked_processes(layout)  # those whose pid file was lost, and their children
    if strays:
        procs.terminate(strays, timeout_s=5.0)
        stopped.extend(f"pid {p} (no pid file)" for p in strays)
    dropped: list[str] = []
    vhost = False
    if backing.reachable("127.0.0.1", 3306):
        dropped = backing.drop_databases()
    if backing.reachable("127.0.0.1", 5672):
        vhost = backing.delete_vhost(record.vhost if record else VHOST)
    removed: list[str] = []
    if layout.base.is_dir():
        for child in sorted(layout.base.iterdir()):
            if (child == layout.venv and not purge) or child == layout.lock_file:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
            removed.append(child.name)
    return DownResult(stopped, dropped, vhost, removed, round(time.monotonic() - started, 2))
