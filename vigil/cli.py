"""The ``vigil`` command.

``vigil serve`` runs the API and the engines in one process on the
embedded defaults; ``vigil cloud show`` prints the hosts of a cloud (a
running server's, the local store's, or one built from a topology on the
spot); ``vigil token create`` adds an API token; ``vigil consumer`` runs
the sample VNF manager against a running server; ``vigil demo fault``
runs Doctor's fault management test case in one process (``--testbed``: on
network namespaces), ``vigil demo maintenance`` its NFVI maintenance test
case (a rolling maintenance under an app probed 200 times a second;
``--testbed``: on network namespaces, with the testbed's traffic probe);
``vigil testbed`` builds and breaks those namespaces
(:mod:`vigil.testbed.cli`); ``vigil fence`` tries a host's fence device
(:mod:`vigil.fence_cli`); ``vigil rules check`` validates rule templates
(:mod:`vigil.rules_cli`). Configuration
errors end with a one-line message and exit status 2, never a traceback.
"""

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.table import Table

import vigil
from vigil.agent.command import agent_command
from vigil.api.app import create_app
from vigil.api.auth import Role, TokenFileError, TokenRegistry, add_token, ensure_admin_token, revoke_token
from vigil.api.schemas import HostOut, InstanceOut
from vigil.api.tokens import read_entries, rewrite_hashed
from vigil.api.views import host_view, instance_view
from vigil.consumer.client import ApiError
from vigil.consumer.webhook import running_consumer
from vigil.controller.resource_map import ResourceMap
from vigil.demo import checkpoint_table, run_fault_demo, run_testbed_demo, table_of_testbed_demo
from vigil.demo_maintenance import (
    MIN_HOSTS,
    DemoSetup,
    MaintenanceDemoResult,
    result_table,
    run_maintenance_demo,
    run_testbed_maintenance_demo,
)
from vigil.domain.errors import DomainError
from vigil.domain.subscriptions import PayloadFormat
from vigil.fence_cli import fence_app
from vigil.ha_gateway import HaGateway
from vigil.maintenance_cli import maintenance_app
from vigil.rules_cli import rules_app
from vigil.settings import Settings, SettingsError, load_settings
from vigil.store.sql import SqlStore
from vigil.testbed.cli import testbed_app
from vigil.wiring import running

app = typer.Typer(
    help="Vigil: fault management and maintenance for virtualized infrastructure (OPNFV Doctor).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
cloud_app = typer.Typer(help="Look at the embedded cloud.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
demo_app = typer.Typer(help="Demonstrations on an embedded cloud, in one process.", no_args_is_help=True)
app.add_typer(cloud_app, name="cloud")
app.add_typer(token_app, name="token")
app.add_typer(demo_app, name="demo")
app.add_typer(testbed_app, name="testbed")
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(fence_app, name="fence")
app.add_typer(rules_app, name="rules")
app.command("agent")(agent_command)  # the host agent: vigil/agent/

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings file.", envvar="VIGIL_CONFIG")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Where the database and tokens live.")]
TopologyOpt = Annotated[Path | None, typer.Option("--topology", "-t", help="Topology YAML for a first start.")]
HostsOpt = Annotated[int | None, typer.Option("--hosts", help="Generate a cloud of this many hosts.")]
PerHostOpt = Annotated[int | None, typer.Option("--instances-per-host", help="Instances on each generated host.")]
ProjectsOpt = Annotated[int | None, typer.Option("--projects", help="Projects in the generated cloud.")]
FormatOpt = Annotated[PayloadFormat, typer.Option("--format", help="Notification payload: aodh or sol003.")]


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Turn configuration and input errors into one line and exit status 2."""
    try:
        yield
    except (SettingsError, TokenFileError, DomainError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _settings(
    config: Path | None,
    data_dir: Path | None = None,
    topology: Path | None = None,
    hosts: int | None = None,
    per_host: int | None = None,
    projects: int | None = None,
    **server: Any,
) -> Settings:
    cloud = {"topology": topology, "hosts": hosts, "instances_per_host": per_host, "projects": projects}
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "cloud": {k: v for k, v in cloud.items() if v is not None},
        "server": {k: v for k, v in server.items() if v is not None},
    }
    return load_settings(config, **overrides)


@app.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    topology: TopologyOpt = None,
    hosts: HostsOpt = None,
    instances_per_host: PerHostOpt = None,
    projects: ProjectsOpt = None,
) -> None:
    """Run the API and the engines (one process, SQLite, embedded cloud)."""
    with _friendly_errors():
        settings = _settings(config, data_dir, topology, hosts, instances_per_host, projects, host=host, port=port)
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        _own_data_dir(settings.data_dir)
        created = ensure_admin_token(settings.tokens_file)
        if rewrite_hashed(settings.tokens_file):
            err.print(f"tokens in {settings.tokens_file} were kept in plain text: now only their digests are")
        tokens = TokenRegistry.load(settings.tokens_file)

    def announce() -> None:
        server = settings.server
        console.print(f"[bold]Vigil {vigil.__version__}[/] listening on http://{server.host}:{server.port}")
        console.print(f"  API reference: http://{server.host}:{server.port}/docs")
        console.print(f"  database: {settings.store_url}")
        console.print(f"  tokens: {settings.tokens_file} ({len(tokens)} configured)")
        if settings.monitor.listen is not None:
            console.print(f"  heartbeat monitor: udp://{settings.monitor.listen}")
        admin_file = settings.tokens_file.parent / "admin-token"
        if created is not None:
            console.print(f"  created an admin token in {admin_file}")
        elif admin_file.exists():
            console.print(f"  admin token: {admin_file}")

    with _friendly_errors(), contextlib.suppress(KeyboardInterrupt):
        _run_loop(_serve(settings, tokens, announce))


def _own_data_dir(path: Path) -> None:
    """The data dir holds the database and the tokens: created owner-only (0700)."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)


async def _reloading(tokens: TokenRegistry, every_s: float = 1.0) -> None:
    """Re-read the token file when it changes (and on SIGHUP): made and revoked tokens count at once."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
        loop.add_signal_handler(signal.SIGHUP, wake.set)
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), every_s)
            wake.clear()
            try:
                if tokens.reload():
                    logging.getLogger("vigil.api.auth").info("token file reloaded: %d tokens", len(tokens))
            except (OSError, TokenFileError) as exc:
                logging.getLogger("vigil.api.auth").error("token file not reloaded, the old tokens stay: %s", exc)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGHUP)


async def _serve(settings: Settings, tokens: TokenRegistry, announce: Callable[[], None]) -> None:
    """The engines first (the store's writer lease, the restore), then the API on its port.

    A store another server holds stops here, with one line naming the holder,
    before anything is bound or announced.
    """
    if settings.ha.enabled:
        await _serve_ha(settings, tokens, announce)
        return
    async with running(settings) as runtime, _background(_reloading(tokens), "vigil.api.tokens"):
        context = runtime.api_context(tokens)
        app = create_app(lambda: contextlib.nullcontext(context), max_body_bytes=settings.server.max_body_bytes)
        announce()
        await uvicorn.Server(_uvicorn_config(settings, app)).serve()


def _uvicorn_config(settings: Settings, app: Any) -> uvicorn.Config:
    server = settings.server
    return uvicorn.Config(
        app, host=server.host, port=server.port, log_level=settings.log_level.lower(), access_log=False
    )


EXIT_DEPOSED = 75  # EX_TEMPFAIL: a leader that lost its lease; its supervisor starts it again, as a standby


def _exit_deposed(why: str) -> None:
    """A leader that lost its lease stops acting at once: nothing after this line runs (no notification, no VIM
    call, no fence, no write), and its supervisor (systemd, Pacemaker) starts it again as a standby."""
    logging.getLogger("vigil.ha").critical("no longer the leader (%s): exiting with %d", why, EXIT_DEPOSED)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_DEPOSED)


async def _serve_ha(settings: Settings, tokens: TokenRegistry, announce: Callable[[], None]) -> None:
    """High availability: the port answers at once (503 while a standby), the engines start once this process
    takes the leader's lease, and a deposed leader exits (:func:`_exit_deposed`)."""
    gateway = HaGateway(retry_after_s=math.ceil(settings.ha.lease_s))
    server = uvicorn.Server(_uvicorn_config(settings, gateway))
    serving = asyncio.create_task(server.serve(), name="vigil.api")

    async def lead() -> None:
        async with (
            running(settings, on_deposed=_exit_deposed) as runtime,
            _background(_reloading(tokens), "vigil.api.tokens"),
        ):
            context = runtime.api_context(tokens)
            app = create_app(lambda: contextlib.nullcontext(context), max_body_bytes=settings.server.max_body_bytes)
            leader = runtime.store.leader
            epoch = leader.epoch if leader is not None else 0
            await gateway.lead(app, epoch)
            console.print(f"  leader (epoch {epoch}): the engines run")
            try:
                await asyncio.Event().wait()  # until the server stops
            finally:
                await gateway.aclose()

    announce()
    console.print("  high availability: a standby until this process takes the leader's lease")
    leading = asyncio.create_task(lead(), name="vigil.ha.lead")
    done, _ = await asyncio.wait({serving, leading}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    leading.cancel()
    await asyncio.gather(leading, return_exceptions=True)
    await serving
    if leading in done and not leading.cancelled() and (failed := leading.exception()) is not None:
        raise failed


@contextlib.asynccontextmanager
async def _background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop, as uvicorn would, or on asyncio's loop without it."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _fetch_remote(url: str, token: str) -> tuple[list[HostOut], list[InstanceOut]]:
    headers = {"X-Auth-Token": token}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        responses = [client.get("/v1/hosts", params={"limit": 10000}), client.get("/v1/instances")]
        for response in responses:
            if response.status_code != 200:
                message = response.json().get("error", {}).get("message", response.text)
                raise SettingsError(f"{url} answered {response.status_code}: {message}")
    hosts = [HostOut.model_validate(h) for h in responses[0].json()["hosts"]]
    instances = [InstanceOut.model_validate(i) for i in responses[1].json()["instances"]]
    return hosts, instances


async def _fetch_built(settings: Settings) -> tuple[list[HostOut], list[InstanceOut]]:
    """A cloud built from a topology in a scratch store."""
    async with running(settings) as runtime:
        return _views(runtime.cloud.map)


async def _fetch_stored(settings: Settings) -> tuple[list[HostOut], list[InstanceOut]]:
    """The cloud a store holds, read without a lease and without starting anything:
    a server may be running on it, and this only reads."""
    async with SqlStore(settings.store_url, read_only=True) as store:
        snapshot = await store.load()
    rmap = ResourceMap()
    rmap.add_all(snapshot.resources)
    return _views(rmap)


def _views(rmap: ResourceMap) -> tuple[list[HostOut], list[InstanceOut]]:
    return [host_view(rmap, h) for h in rmap.hosts()], [instance_view(rmap, i) for i in rmap.instances()]


def _host_table(hosts: list[HostOut], instances: list[InstanceOut]) -> Table:
    states: dict[str, Counter[str]] = {}
    for inst in instances:
        if inst.host is not None:
            states.setdefault(inst.host, Counter())[inst.state] += 1
    table = Table(title="Hosts")
    widest = max((len(h.name) for h in hosts), default=4)
    table.add_column("host", no_wrap=True, min_width=widest)
    for column in ("zone", "switch", "status", "vCPUs used", "instances", "instance states"):
        table.add_column(column, justify="right" if column in ("vCPUs used", "instances") else "left")
    colours = {"UP": "green", "DOWN": "red", "MAINTENANCE": "yellow", "UNKNOWN": "magenta"}
    for h in hosts:
        counted = states.get(h.name, Counter())
        table.add_row(
            h.name,
            h.zone,
            h.switch or "-",
            f"[{colours[h.status]}]{h.status}[/]",
            f"{h.vcpus_used}/{h.vcpus}",
            str(h.instances),
            ", ".join(f"{state} {n}" for state, n in sorted(counted.items())) or "-",
        )
    return table


def _instance_table(instances: list[InstanceOut]) -> Table:
    table = Table(title="Instances")
    table.add_column("name", no_wrap=True, min_width=max((len(i.name) for i in instances), default=4))
    for column in ("project", "host", "host_status", "state", "group", "metadata"):
        table.add_column(column)
    for i in sorted(instances, key=lambda i: (i.project, i.name)):
        meta = ", ".join(f"{k}={v}" for k, v in i.metadata.items())
        table.add_row(i.name, i.project, i.host or "-", i.host_status or "-", i.state, i.group or "-", meta or "-")
    return table


@cloud_app.command("show")
def cloud_show(
    url: Annotated[str | None, typer.Option(help="Ask a running Vigil at this URL.")] = None,
    token: Annotated[str | None, typer.Option(help="API token for --url.", envvar="VIGIL_TOKEN")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    topology: TopologyOpt = None,
    hosts: HostsOpt = None,
    instances_per_host: PerHostOpt = None,
    projects: ProjectsOpt = None,
    show_instances: Annotated[bool, typer.Option("--instances", help="Also list every instance.")] = False,
) -> None:
    """Print a table of hosts with their instance counts and states.

    With --url, of a running server; with --topology or --hosts, of a cloud
    built from them on the spot; otherwise of the local store (--data-dir).
    """
    with _friendly_errors():
        if url is not None:
            settings = _settings(config, data_dir)
            admin_file = settings.tokens_file.parent / "admin-token"
            if token is None and admin_file.exists():
                token = admin_file.read_text().strip()
            if token is None:
                raise SettingsError("--url needs --token (or VIGIL_TOKEN)")
            host_rows, instance_rows = _fetch_remote(url, token)
        elif topology is not None or hosts is not None:
            with tempfile.TemporaryDirectory(prefix="vigil-show-") as scratch:
                settings = _settings(config, Path(scratch), topology, hosts, instances_per_host, projects)
                host_rows, instance_rows = asyncio.run(_fetch_built(settings))
        else:
            settings = _settings(config, data_dir)
            if settings.store.url is None and not (settings.data_dir / "vigil.db").exists():
                raise SettingsError(
                    f"no cloud in {settings.data_dir} yet: run 'vigil serve', or give --topology FILE or --hosts N"
                )
            host_rows, instance_rows = asyncio.run(_fetch_stored(settings))
    console.print(_host_table(host_rows, instance_rows))
    if show_instances:
        console.print(_instance_table(instance_rows))
    by_status = Counter(h.status for h in host_rows)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
    console.print(f"{len(host_rows)} hosts ({summary}), {len(instance_rows)} instances")


@token_app.command("create")
def token_create(
    project: Annotated[str, typer.Option(help="Project the token acts for.")],
    role: Annotated[Role, typer.Option(help="admin, member or monitor.")] = Role.MEMBER,
    name: Annotated[str, typer.Option(help="What it is for (shown by token list).")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Make a token and print it: it is shown this once; the file keeps only its digest.

    A running server takes it within a second (it watches the file)."""
    with _friendly_errors():
        settings = _settings(config, data_dir)
        _own_data_dir(settings.data_dir)
        token = add_token(settings.tokens_file, project, role, name=name)
    console.print(token, soft_wrap=True)
    err.print(f"added a {role} token for project {project} to {settings.tokens_file}")


@token_app.command("list")
def token_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """The tokens of the token file: id, project, role, name, created (never the token)."""
    with _friendly_errors():
        settings = _settings(config, data_dir)
        entries, plain = read_entries(settings.tokens_file)
    table = Table(title=f"Tokens in {settings.tokens_file}")
    for column in ("id", "project", "role", "name", "created"):
        table.add_column(column, no_wrap=column == "id")
    for entry in entries:
        table.add_row(entry.ident, entry.project, entry.role, entry.name or "-", entry.created or "-")
    console.print(table)
    if plain:
        err.print("some tokens are kept in plain text: vigil serve keeps only their digests from its next start")


@token_app.command("revoke")
def token_revoke(
    ident: Annotated[str, typer.Argument(help="The token's id, or its first characters (token list).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a token: a running server refuses it within a second (it watches the file)."""
    with _friendly_errors():
        settings = _settings(config, data_dir)
        gone = revoke_token(settings.tokens_file, ident)
    console.print(f"revoked token {gone.ident} ({gone.role} of {gone.project})")


def _listen_address(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"--listen takes HOST:PORT, not {listen!r}")
    return host, int(port)


async def _run_consumer(
    url: str,
    token: str,
    host: str,
    port: int,
    project: str | None,
    payload_format: PayloadFormat,
    maintenance: bool = False,
) -> None:
    async with running_consumer(
        url,
        token,
        host=host,
        port=port,
        project=project,
        payload_format=payload_format,
        on_event=lambda line: console.print(f"[dim]{datetime.now().time()}[/] {line}", highlight=False),
        unsubscribe_at_exit=True,
        maintenance=maintenance,
    ) as (vnfm, server):
        kind = "app" if maintenance else "VNF"
        console.print(f"[bold]sample {kind} manager[/] of {vnfm.project}: notifications to {vnfm.callback}")
        console.print(f"  subscription {vnfm.state()['subscription']} ({payload_format}); state at {server.url}/state")
        await server.wait()


@app.command()
def consumer(
    url: Annotated[str, typer.Option(help="The Vigil API, e.g. http://127.0.0.1:8770.")],
    token: Annotated[str, typer.Option(help="A member token of the project (or an admin's).", envvar="VIGIL_TOKEN")],
    listen: Annotated[str, typer.Option(help="HOST:PORT for the webhook Vigil posts to.")] = "127.0.0.1:8771",
    project: Annotated[str | None, typer.Option(help="The project to manage (default: the token's).")] = None,
    payload_format: FormatOpt = PayloadFormat.AODH,
    maintenance: Annotated[
        bool, typer.Option("--maintenance", help="Also take part in maintenance sessions (Aodh format).")
    ] = False,
) -> None:
    """Run the sample VNF manager: it owns an ACT/STBY pair and non-redundant instances,
    switches to the standby when notified of a failure, and recreates what failed.

    It adopts the project's instances (the pair by metadata role ACT and STBY), boots
    what is missing, and subscribes to them. With --maintenance it is the sample app
    manager: it also answers maintenance messages (ACK, moves its active role off a host
    before the host is emptied, MIGRATE, scales in and back out). Stop it with Ctrl-C.
    """
    with _friendly_errors():
        host, port = _listen_address(listen)
        try:
            if maintenance and payload_format is not PayloadFormat.AODH:
                raise SettingsError("--maintenance needs the aodh format: maintenance messages come as Aodh events")
            asyncio.run(_run_consumer(url, token, host, port, project, payload_format, maintenance))
        except KeyboardInterrupt:
            pass
        except ApiError as exc:
            err.print(f"[bold red]error:[/] {url} answered {exc}")
            raise typer.Exit(2) from None
        except httpx.HTTPError as exc:
            err.print(f"[bold red]error:[/] cannot reach {url}: {exc}")
            raise typer.Exit(2) from None


@demo_app.command("fault")
def demo_fault(
    instances: Annotated[
        int, typer.Option("--instances", "-n", min=1, max=2000, help="Instances on the host that fails.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
    payload_format: FormatOpt = PayloadFormat.AODH,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each step.")] = 10.0,
    testbed: Annotated[bool, typer.Option("--testbed", help="On real namespaces (root): see below.")] = False,
    hosts: Annotated[int, typer.Option("--hosts", min=2, max=200, help="With --testbed: hosts.")] = 3,
    openstack: Annotated[
        bool, typer.Option("--openstack", help="On the real OpenStack of 'vigil testbed openstack': see below.")
    ] = False,
    credentials: Annotated[
        Path | None,
        typer.Option(help="With --openstack: the credentials file (default: the test stack's credentials.json)."),
    ] = None,
) -> None:
    """Doctor's fault management test: fail a host under a VNF and profile the notification.

    Builds an embedded cloud in a scratch directory, runs the server and the sample VNF
    manager, injects the failure of the host running the VNF's active instance and N
    instances in all, and prints the checkpoints T00..T09 in ms after detection (T01).
    Exits 0 only if the VNF manager got the notification.

    With --testbed: on a testbed of network namespaces (brought up and down again), the ACT
    host's data-plane link goes down; prints detection (T01 - T00), notification (T09 - T01)
    and the service outage a probe client saw; exits 0 only if all three were measured.

    With --openstack: N servers booted through Nova on compute-1, Vigil with vim.driver
    openstack, a consumer subscribed; prints notification_ms (T09 - T01) and
    nova_consistent_ms (T01 until Nova shows every server ERROR and host_status DOWN);
    exits 0 only if both were measured. The servers are deleted afterwards.
    """
    if testbed:
        _demo_testbed(hosts, payload_format, timeout, as_json)
    if openstack:
        _demo_openstack(instances, credentials, max(timeout, 60.0), as_json)
    with _friendly_errors():
        result = asyncio.run(run_fault_demo(instances, payload_format, timeout_s=timeout))
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        console.print(checkpoint_table(result))
        for line in result.consumer_log:
            console.print(f"  [dim]VNF manager:[/] {line}", highlight=False)
        if result.notification_ms is not None:
            console.print(
                f"notification time (T09 - T01): [bold]{result.notification_ms:.3f} ms[/] "
                "(Doctor requires < 1000 ms; OPNFV measured 117 ms for 1 VM, 584-704 ms for 50)"
            )
        if result.error:
            err.print(f"[bold red]error:[/] {result.error}")
    raise typer.Exit(0 if result.notified else 1)


def _demo_openstack(instances: int, credentials: Path | None, timeout: float, as_json: bool) -> None:
    from vigil.demo_openstack import run_openstack_demo
    from vigil.testbed.openstack.layout import default_base_dir

    path = credentials or default_base_dir() / "credentials.json"
    if not path.exists():
        err.print(f"[bold red]error:[/] no credentials at {path}: run 'vigil testbed openstack up' first")
        raise typer.Exit(2)
    with _friendly_errors():
        result = asyncio.run(run_openstack_demo(instances, json.loads(path.read_text()), timeout_s=timeout))
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        console.print(f"notification time (T09 - T01): [bold]{result.notification_ms} ms[/]")
        console.print(
            f"Nova consistent (T01 until every server ERROR, host DOWN): [bold]{result.nova_consistent_ms} ms[/]"
        )
        if result.error:
            err.print(f"[bold red]error:[/] {result.error}")
    ok = result.notification_ms is not None and result.nova_consistent_ms is not None
    raise typer.Exit(0 if ok else 1)


def _demo_testbed(hosts: int, payload_format: PayloadFormat, timeout: float, as_json: bool) -> None:
    with _friendly_errors():
        result = asyncio.run(run_testbed_demo(hosts, payload_format, timeout_s=timeout))
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        console.print(table_of_testbed_demo(result))
    if result.error:
        err.print(f"[bold red]error:[/] {result.error}")
    raise typer.Exit(0 if result.ok else 1)


@demo_app.command("recovery")
def demo_recovery(
    instances: Annotated[
        int, typer.Option("--instances", "-n", min=1, max=500, help="Instances on the host that fails.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the recovery.")] = 120.0,
    evacuate_s: Annotated[float, typer.Option(help="How long an evacuation takes in the embedded cloud.")] = 0.5,
    testbed: Annotated[bool, typer.Option("--testbed", help="On real namespaces (root): see below.")] = False,
    hosts: Annotated[int, typer.Option("--hosts", min=3, max=200, help="With --testbed: hosts.")] = 3,
) -> None:
    """Masakari's test: a host fails, is fenced through its BMC, and its instances come back elsewhere.

    An embedded cloud with N instances on compute-1, every one's recovery policy evacuate;
    compute-1's BMC emulated on loopback and fenced through Debian's fence_ipmilan. Prints
    fence_ms (T01 to the fence confirmed), recovered_ms (T01 to the last evacuation ended),
    instances_recovered and double_active (instances rebuilt while the failed host still had
    power: 0). Needs fence-agents and ipmitool (make sysdeps, as root). Exits 0 only if every
    instance of the failed host was recovered and none while it had power.

    With --testbed: on a testbed of network namespaces (brought up with fencing and the VNF's
    recovery policy evacuate, and down again), the VNF's instances are processes (the ACT/STBY
    pair and two non-redundant ones per host; -n and --evacuate-s are for the embedded cloud).
    The active's host loses its management network: Vigil declares it lost and fences it
    through its BMC while its instances still answer; a probe sends requests to them at the
    host's own address. double_active counts their answers after the fence was confirmed and
    instances answering from two hosts at once; recovered_ms waits until every recovered
    instance's process answers at its new host. Exits 0 only if every instance of the failed
    host was recovered and double_active is 0.
    """
    if testbed:
        _demo_recovery_testbed(hosts, timeout, as_json)
    from vigil.demo_recovery import run_recovery_demo

    with _friendly_errors():
        result = asyncio.run(run_recovery_demo(instances, timeout_s=timeout, evacuate_s=evacuate_s))
    ok = result.error is None and result.double_active == 0 and result.instances_recovered >= instances
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        table = Table("step", "ms after T01")
        for name, ms in (result.checkpoints_ms or {}).items():
            table.add_row(name, f"{ms:.1f}")
        console.print(table)
        console.print(
            f"fenced in [bold]{_ms(result.fence_ms)}[/], {result.instances_recovered} instances ACTIVE elsewhere in "
            f"[bold]{_ms(result.recovered_ms)}[/] (Masakari's defaults: about 4 minutes); "
            f"double active: {result.double_active}"
        )
        if result.error:
            err.print(f"[bold red]error:[/] {result.error}")
    raise typer.Exit(0 if ok else 1)


def _demo_recovery_testbed(hosts: int, timeout: float, as_json: bool) -> NoReturn:
    from vigil.demo_recovery import run_testbed_recovery_demo

    with _friendly_errors():
        result = asyncio.run(run_testbed_recovery_demo(hosts, timeout_s=min(timeout, 600.0)))
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        table = Table("step", "ms after T01", title=f"{result.host or 'The active host'} loses its management network")
        for name, ms in result.checkpoints_ms.items():
            table.add_row(name, f"{ms:.1f}")
        table.add_section()
        table.add_row("BMC: power off", _ms(result.power_off_ms))
        table.add_row("failed host's last answer", _ms(result.last_answer_ms))
        for instance, seen in sorted(result.recovered.items()):
            table.add_row(f"{instance} answers on {seen['host']}", _ms(seen["answered_ms"]))
        console.print(table)
        console.print(
            f"fenced in [bold]{_ms(result.fence_ms)}[/], {result.instances_recovered} of {len(result.instances)} "
            f"instances ACTIVE elsewhere and answering in [bold]{_ms(result.recovered_ms)}[/]; double active: "
            f"[bold]{result.double_active}[/] ({result.answers_after_fence} answers from {result.host} to "
            f"{result.requests_after_fence} requests after the fence, {result.two_hosts} instances on two hosts); "
            f"service outage {_ms(result.outage_ms)}"
        )
        for line in result.notes:
            console.print(f"  [dim]note:[/] {line}", highlight=False)
    if result.error:
        err.print(f"[bold red]error:[/] {result.error}")
    raise typer.Exit(0 if result.ok else 1)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


@demo_app.command("maintenance")
def demo_maintenance(
    hosts: Annotated[int, typer.Option("--hosts", "-n", min=MIN_HOSTS, max=500, help="Compute hosts to maintain.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Use every vCPU, so the app must scale in before any host can be emptied.")
    ] = False,
    vcpus: Annotated[int, typer.Option("--vcpus", min=2, max=256, help="vCPUs per host.")] = 4,
    migration_s: Annotated[float, typer.Option("--migration-s", min=0, help="Seconds a migration takes.")] = 0.2,
    upgrade_s: Annotated[float, typer.Option("--upgrade-s", min=0, help="Seconds each host's upgrade takes.")] = 0.3,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the session (default: from the timings).")
    ] = None,
    testbed: Annotated[bool, typer.Option("--testbed", help="On real namespaces (root): see below.")] = False,
) -> None:
    """Doctor's NFVI maintenance test: upgrade every host under a VNF that must lose no request.

    Builds an embedded cloud in a scratch directory: N hosts, the VNF's ACT/STBY pair in an
    anti-affinity group plus non-redundant instances filling all but one host's worth of
    vCPUs (--full: all of them), no host empty. Runs Vigil and the sample app manager,
    probes the app 200 times a second, and has the admin maintain every host with an
    upgrade action. Prints the session's end state, hosts maintained, migrations and the
    failed requests; exits 0 only for MAINTENANCE_DONE with no failed request.

    With --testbed: on a testbed of network namespaces (brought up and down again), the app's
    instances are processes (the pair plus two non-redundant ones per host) that follow
    their migrations, the testbed's traffic probe sends 500 requests/s to the service, and
    each host's data plane is down for --upgrade-s while it is in maintenance (Vigil's own
    migration time applies; --full, --vcpus and --migration-s are for the embedded cloud).
    """
    if testbed:
        if full:
            err.print("[bold red]error:[/] --full is for the embedded cloud, not --testbed")
            raise typer.Exit(2)
        with _friendly_errors():
            result = asyncio.run(run_testbed_maintenance_demo(hosts, down_s=upgrade_s, timeout_s=timeout))
        setup = DemoSetup(hosts=hosts, upgrade_s=upgrade_s)
        _print_maintenance(result, setup, as_json)
    setup = DemoSetup(hosts=hosts, vcpus=vcpus, full=full, migration_s=migration_s, upgrade_s=upgrade_s)
    with _friendly_errors():
        result = asyncio.run(run_maintenance_demo(setup, timeout_s=timeout))
    _print_maintenance(result, setup, as_json)


def _print_maintenance(result: MaintenanceDemoResult, setup: DemoSetup, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        console.print(result_table(result, setup))
        for line in result.app_log:
            if not line.endswith("INSTANCE_ACTION_DONE"):  # one per migration: the table counts them
                console.print(f"  [dim]app manager:[/] {line}", highlight=False)
        for line in result.notes:
            console.print(f"  [dim]note:[/] {line}", highlight=False)
        if result.reason:
            err.print(f"[bold red]session failed:[/] {result.reason}")
    if result.error:
        err.print(f"[bold red]error:[/] {result.error}")
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def version() -> None:
    """Print Vigil's version."""
    console.print(vigil.__version__)
