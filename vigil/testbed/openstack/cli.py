"""``vigil testbed openstack``: up, status, down of a real Keystone, Nova, Placement and Neutron."""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigil.testbed.openstack import stack
from vigil.testbed.openstack.backing import BackingError
from vigil.testbed.openstack.install import InstallError
from vigil.testbed.openstack.keystone import KeystoneError
from vigil.testbed.openstack.layout import default_base_dir

openstack_app = typer.Typer(
    help="A real OpenStack (Keystone, Nova with fake computes, Placement, Neutron) here, for tests and demos.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

BaseDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--base-dir", help="The stack's directory (default /var/tmp/vigil-openstack).", envvar="VIGIL_OPENSTACK_DIR"
    ),
]
ERRORS = (stack.StackError, BackingError, InstallError, KeystoneError, OSError, ValueError)


def _base(base_dir: Path | None) -> Path:
    return (base_dir or default_base_dir()).absolute()


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    if isinstance(exc, stack.StackError) and exc.tail:
        err.rule(f"the end of {exc.log}'s log")
        err.print(exc.tail, markup=False, highlight=False)
        err.print("(run 'vigil testbed openstack down' to remove what was made)")
    return typer.Exit(1)


@openstack_app.command("up")
def cmd_up(
    computes: Annotated[int, typer.Option("--computes", "-n", min=1, max=stack.MAX_COMPUTES, help="Fake hosts.")] = 3,
    base_dir: BaseDirOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the hypervisors.")] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Install (once), set up and start the stack; wait until N hypervisors are up and mapped.

    Needs the machine's MariaDB (127.0.0.1:3306, root, no password) and RabbitMQ (127.0.0.1:5672,
    guest/guest, rabbitmqctl). Writes the client's credentials to BASE/credentials.json and
    BASE/admin-openrc (0600).
    """
    base = _base(base_dir)
    try:
        result = stack.up(base, computes, timeout_s=timeout)
    except ERRORS as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({**asdict(result), "base_dir": str(result.base_dir)}))
        return
    creds = result.credentials
    if result.already_up:
        console.print(f"[bold]already up[/]: {result.computes} computes, in {base}")
    else:
        installed = "installed" if result.installed else "reused"
        console.print(
            f"[bold]up[/]: {result.computes} computes (compute-1 .. compute-{result.computes}) in "
            f"{result.timings_s.get('total', 0):.1f} s; venv {installed}; in {base}"
        )
        console.print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings_s.items() if k != "total"))
    console.print(
        f"  Keystone: {creds['auth_url']} (region {creds['region_name']}), user {creds['username']}, "
        f"project {creds['project_name']}; password in {base / 'credentials.json'}"
    )
    console.print(
        f"  Nova: {creds['endpoints']['compute']}  Neutron: {creds['endpoints']['network']}  "
        f"Placement: {creds['endpoints']['placement']}"
    )
    notifications = creds["notifications"]
    console.print(
        f"  notifications: {notifications['amqp_url']} exchange {notifications['exchange']}, "
        f"queue {notifications['queue']}"
    )
    console.print(f"  openstack client: source {base / 'admin-openrc'}")


def _mark(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


@openstack_app.command("status")
def cmd_status(
    base_dir: BaseDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Services (pid alive, HTTP health, memory) and hypervisors (state, status, forced down)."""
    try:
        report = stack.status(_base(base_dir))
    except ERRORS as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    if not report["set_up"]:
        console.print(f"no stack in {report['base_dir']}")
        return
    state = "[green]up[/]" if report["up"] else "[red]not fully up[/]"
    console.print(f"stack in {report['base_dir']}: {state}, {report['computes']} computes, {report['rss_mib']} MiB RSS")
    table = Table(title="services")
    for column in ("service", "pid", "alive", "port", "HTTP", "healthy", "RSS MiB"):
        table.add_column(column)
    for row in report["services"]:
        rss: Any = row["rss_kib"]
        table.add_row(
            row["name"],
            str(row["pid"] or "-"),
            _mark(row["alive"]),
            str(row["port"] or "-"),
            str(row["http"] or "-"),
            _mark(row["healthy"]),
            f"{rss / 1024:.0f}" if rss else "-",
        )
    console.print(table)
    if report["hypervisors"]:
        hypervisors = Table(title="hypervisors")
        for column in ("hypervisor", "state", "status", "forced down", "service id"):
            hypervisors.add_column(column)
        for h in report["hypervisors"]:
            hypervisors.add_row(h["name"], h["state"], h["status"], str(h["forced_down"]), str(h["service_id"]))
        console.print(hypervisors)
    if report["error"]:
        console.print(f"[red]Nova did not answer:[/] {report['error']}")


@openstack_app.command("down")
def cmd_down(
    base_dir: BaseDirOpt = None,
    purge: Annotated[bool, typer.Option("--purge", help="Remove the virtual environment too.")] = False,
) -> None:
    """Stop every process, drop the vigil_os_* databases and the vhost, remove the directory (but the venv)."""
    try:
        result = stack.down(_base(base_dir), purge=purge)
    except ERRORS as exc:
        raise _fail(exc) from None
    console.print(
        f"stopped {len(result.stopped)} processes, dropped {len(result.databases)} databases"
        f"{', the vhost' if result.vhost else ''}, removed {len(result.removed)} entries in {result.seconds:.1f} s"
        + ("" if purge else " (venv kept; --purge removes it)")
    )
