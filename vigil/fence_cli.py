"""``vigil fence``: a host's fence device, tried from a shell without a server.

An operator configures a fence device per host (``fencing.devices`` in the
settings) long before a host fails; these commands prove it works, as
Pacemaker's ``stonith_admin`` does: ``list`` shows the devices (never a
secret's value), ``status HOST`` asks the BMC for the power through the
agent, ``off HOST`` fences (off, then a status that must read off: exit 0
only when confirmed), ``on HOST`` powers it back. Nothing here touches
Vigil's store: a host fenced by hand stays as the running Vigil sees it.
"""

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.domain.fencing import FenceAction, FenceAnswer
from vigil.fencing.fencer import AgentFencer, NoFenceDevice
from vigil.settings import SettingsError, load_settings
from vigil.wiring import fencer

fence_app = typer.Typer(
    help="Fence devices: list them, read a host's power, fence it (no server needed).", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Settings file (fencing.devices).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
HostArg = Annotated[str, typer.Argument(help="The host, as fencing.devices names it.")]


def _fencer(config: Path | None) -> AgentFencer:
    try:
        return fencer(load_settings(config).fencing)
    except SettingsError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _call(fences: AgentFencer, host: str, action: FenceAction) -> FenceAnswer:
    try:
        return asyncio.run(fences.call(host, action))
    except NoFenceDevice:
        err.print(f"[bold red]error:[/] no fence device for host {host!r} (fencing.devices)", soft_wrap=True)
        raise typer.Exit(2) from None


def _answer_json(answer: FenceAnswer) -> dict[str, object]:
    return {
        "host": answer.host,
        "action": str(answer.action),
        "ok": answer.ok,
        "power": str(answer.power),
        "detail": answer.detail,
        "elapsed_ms": answer.elapsed_ms,
        "timed_out": answer.timed_out,
    }


def _print(answer: FenceAnswer, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(_answer_json(answer)))
    elif answer.ok:
        console.print(f"{answer.host}: power {answer.power} ({answer.elapsed_ms:.0f} ms)")
    else:
        err.print(f"[bold red]{answer.host}: {answer.action} failed[/]: {answer.detail}", soft_wrap=True)


@fence_app.command("list")
def fence_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The configured fence devices (secrets by name only)."""
    devices = _fencer(config).devices()
    if as_json:
        console.print_json(json.dumps(devices))
        return
    table = Table("host", "agent", "options", "secrets", "timeout")
    for d in devices:
        options = " ".join(f"{k}={v}" for k, v in d["options"].items())  # type: ignore[attr-defined]
        table.add_row(str(d["host"]), str(d["agent"]), options, ", ".join(d["secrets"]), f"{d['timeout_s']:g} s")  # type: ignore[arg-type]
    console.print(table)


@fence_app.command("status")
def fence_status(host: HostArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Ask HOST's BMC for its power through its fence agent (exit 1 if it cannot be read)."""
    answer = _call(_fencer(config), host, FenceAction.STATUS)
    _print(answer, as_json)
    raise typer.Exit(0 if answer.ok else 1)


@fence_app.command("on")
def fence_on(host: HostArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Power HOST on through its fence agent. Vigil re-admits it only once an admin enables it."""
    answer = _call(_fencer(config), host, FenceAction.ON)
    _print(answer, as_json)
    raise typer.Exit(0 if answer.ok else 1)


@fence_app.command("off")
def fence_off(
    host: HostArg,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do it: HOST loses power at once.")] = False,
) -> None:
    """Fence HOST: power off, then read the power back; exit 0 only when it reads off."""
    if not yes:
        err.print(f"[bold red]error:[/] fencing cuts {host}'s power at once: add --yes", soft_wrap=True)
        raise typer.Exit(2)
    fences = _fencer(config)
    try:
        outcome = asyncio.run(fences.fence(host))
    except NoFenceDevice:
        err.print(f"[bold red]error:[/] no fence device for host {host!r} (fencing.devices)", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        body = {
            "host": host,
            "confirmed": outcome.confirmed,
            "reason": outcome.reason,
            "answers": [_answer_json(a) for a in outcome.answers],
        }
        console.print_json(json.dumps(body))
    elif outcome.confirmed:
        console.print(f"{host}: fenced, power off confirmed ({sum(a.elapsed_ms for a in outcome.answers):.0f} ms)")
    else:
        err.print(f"[bold red]{host}: not fenced[/]: {outcome.reason}", soft_wrap=True)
    raise typer.Exit(0 if outcome.confirmed else 1)
