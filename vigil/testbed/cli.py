"""``vigil testbed``: up, status, fault, repair, down (root needed)."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigil.testbed import bed, plan
from vigil.testbed.faults import KINDS, Injector
from vigil.testbed.netns import TestbedError
from vigil.testbed.openstack.cli import openstack_app

testbed_app = typer.Typer(
    help="Real hosts as network namespaces on this machine, with real fault injection (root needed).",
    no_args_is_help=True,
)
testbed_app.add_typer(openstack_app, name="openstack")
console = Console()
err = Console(stderr=True)

StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="State directory (default /run/vigil-testbed).", envvar="VIGIL_TESTBED_DIR"),
]


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(2)


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


@testbed_app.command("up")
def cmd_up(
    hosts: Annotated[int, typer.Option("--hosts", "-n", min=1, max=plan.MAX_HOSTS, help="Compute hosts.")] = 3,
    state_dir: StateDirOpt = None,
    interval_ms: Annotated[float | None, typer.Option(help="The heartbeat monitor's default interval (ms).")] = None,
    agent_priority: Annotated[
        int, typer.Option(min=0, max=99, help="Real-time (SCHED_FIFO) priority of the agents (0: the normal policy).")
    ] = bed.AGENT_PRIORITY,
    fencing: Annotated[
        bool,
        typer.Option(
            "--fencing",
            help="Vigil fences the hosts it finds failed, through their BMCs (a fault then powers its host off).",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Vigil and the agents.")] = 60.0,
) -> None:
    """Build N host namespaces on a management and a data-centre bridge, start their BMCs, Vigil and the agents.

    Each host has an IPMI and a Redfish BMC on the BMC network (198.18.2.0/24, reached from here too);
    its fence device (odd hosts fence_ipmilan, even ones fence_redfish) is in <state>/ctl/fencing.yaml,
    for 'vigil fence', and in Vigil's settings with --fencing.
    The agent command is 'python -m vigil agent', or VIGIL_TESTBED_AGENT (split like a shell).
    """
    try:
        state = bed.up(
            hosts,
            state_dir,
            interval_ms=interval_ms,
            agent_priority=agent_priority,
            fencing=fencing,
            timeout_s=timeout,
        )
    except (TestbedError, OSError, ValueError) as exc:
        raise _fail(exc) from None
    console.print(f"[bold]testbed up[/]: {hosts} hosts (compute-1 .. compute-{hosts}), state in {state.dir}")
    console.print(f"  Vigil API: {plan.api_url()} (from here), {plan.mgmt_api_url()} (from the hosts)")
    console.print(f"  admin token: {state.ctl_dir / 'admin-token'}")
    console.print(f"  heartbeats to {plan.heartbeat_address()}; agent: {' '.join(state.agent)}")
    first, last = plan.hosts(hosts)[0], plan.hosts(hosts)[-1]
    console.print(
        f"  BMCs: {first.bmc_ip} .. {last.bmc_ip} (IPMI udp/{plan.IPMI_PORT}, Redfish https/{plan.REDFISH_PORT}),"
        f" user {plan.BMC_USER}, password in {state.bmc_password_file}"
    )
    console.print(f"  fence devices: vigil fence status compute-1 --config {state.fence_config}")
    if fencing:
        console.print("  Vigil fences the hosts it finds failed (one fenced stays disabled until an admin enables it)")


@testbed_app.command("status")
def cmd_status(
    state_dir: StateDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Hosts, their power and BMCs, links, loss rules, agents, Vigil's view of each host, and injected faults."""
    try:
        report = bed.status(state_dir)
    except (TestbedError, OSError) as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    if not report["up"]:
        left = {k: v for k, v in report["leftovers"].items() if v}
        console.print(f"no testbed is up (state dir {report['state_dir']})")
        if left:
            console.print(f"  left over: {left}: run 'vigil testbed down'")
        return
    console.print(f"testbed of {report['hosts']} hosts; Vigil at {report['api']} (serve pid {report['serve']})")
    console.print(f"  BMCs pid {report['bmc'] or '- (not running)'}; fence devices in {report['fence_config']}")
    console.print(f"  Vigil fences failed hosts: {'yes' if report['fencing'] else 'no (up --fencing)'}")
    table = Table()
    for column in ("host", "netns", "power", "BMC", "mgmt", "dc", "loss", "agent", "heartbeat", "Vigil"):
        table.add_column(column)
    for row in report["host_status"]:
        table.add_row(
            row["host"],
            row["netns"],
            row["power"] if row["power"] == "on" else f"[bold red]{row['power']}[/]",
            f"{row['bmc_ip']} ({row['fence_agent'].removeprefix('fence_')})",
            f"{row['mgmt_ip']} {row['mgmt']}",
            f"{row['dc_ip']} {row['dc']}",
            "yes" if row["loss_rule"] else "-",
            f"{row['agent']} ({row['agent_pid'] or '-'})",
            row["heartbeat"] or "-",
            row["vigil"] or "-",
        )
    console.print(table)
    for fault in report["faults"]:
        detail = ", ".join(f"{k} {v}" for k, v in fault.items() if k not in ("host", "kind", "t00"))
        console.print(f"  fault: {fault['host']} {fault['kind']} ({detail}) since T00 {_when(fault['t00'])}")


@testbed_app.command("fault")
def cmd_fault(
    host: Annotated[str, typer.Argument(help="compute-N, vgt-hN or N.")],
    kind: Annotated[str, typer.Argument(help=" | ".join(KINDS))],
    pct: Annotated[int | None, typer.Argument(help="For loss: the percentage dropped.")] = None,
    on: Annotated[str, typer.Option(help="For loss: the NIC, mgmt or dc.")] = "mgmt",
    clear: Annotated[bool, typer.Option("--clear", help="Undo this fault instead.")] = False,
    state_dir: StateDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Inject a real fault into a host and print its T00 (or undo it with --clear)."""
    try:
        state = bed.load(state_dir)
        target = plan.host_by_name(state.hosts, host)
        injector = Injector(state)
        try:
            if clear:
                undone = injector.clear(target, kind)
                result: dict[str, Any] = {"host": target.name, "cleared": undone}
            else:
                fault = injector.inject(target, kind, pct, on)
                result = {
                    "host": fault.host,
                    "kind": fault.kind,
                    "t00": fault.t00,
                    "t00_iso": _when(fault.t00),
                    "syscall_ms": round((fault.broken - fault.t00) * 1000, 3),
                    **fault.detail,
                }
        finally:
            injector.close()
    except (TestbedError, OSError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(result))
    elif clear:
        console.print(f"{target.name}: cleared {', '.join(result['cleared']) or 'nothing (no such fault)'}")
    else:
        console.print(f"{target.name}: {kind} injected; T00 = {result['t00']:.6f} ({result['t00_iso']})")


@testbed_app.command("repair")
def cmd_repair(
    host: Annotated[str, typer.Argument(help="compute-N, vgt-hN or N.")],
    state_dir: StateDirOpt = None,
) -> None:
    """Undo every fault of a host: links up, loss rule removed, agent resumed or restarted."""
    try:
        state = bed.load(state_dir)
        target = plan.host_by_name(state.hosts, host)
        injector = Injector(state)
        try:
            undone = injector.clear(target)
        finally:
            injector.close()
    except (TestbedError, OSError, ValueError) as exc:
        raise _fail(exc) from None
    console.print(f"{target.name}: repaired {', '.join(undone) or 'nothing (no fault)'}")


@testbed_app.command("down")
def cmd_down(state_dir: StateDirOpt = None) -> None:
    """Remove everything the testbed made (found by the vgt- prefix), even after a crash."""
    try:
        removed = bed.down(state_dir)
    except (TestbedError, OSError) as exc:
        raise _fail(exc) from None
    if not removed:
        console.print("nothing to remove")
        return
    console.print(
        f"removed {len(removed.namespaces)} namespaces, {len(removed.links)} links, "
        f"{len(removed.nft_tables)} nft tables, stopped {len(removed.processes)} processes"
    )
