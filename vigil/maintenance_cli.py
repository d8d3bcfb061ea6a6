"""``vigil maintenance``: the infrastructure admin's side of NFVI maintenance, from a shell.

It drives a running Vigil over its Fenix-compatible API, as an operator's
script would: ``start`` opens a session (and with ``--wait`` follows it to
its end, exiting 0 only for MAINTENANCE_DONE), ``list`` and ``show`` print
sessions and one session's hosts and projects, ``cancel`` rolls a session
back. The admin token comes from ``--token``, ``VIGIL_TOKEN``, or the
server's ``admin-token`` file in the data directory.
"""

import asyncio
import json
import os
import time
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from vigil.consumer.client import ApiError, VigilClient
from vigil.settings import SettingsError, load_settings

maintenance_app = typer.Typer(help="Maintenance sessions of a running Vigil (admin).", no_args_is_help=True)
console = Console()

UrlOpt = Annotated[str, typer.Option(help="The Vigil API.", envvar="VIGIL_URL")]
DEFAULT_URL = "http://127.0.0.1:8770"
TokenOpt = Annotated[str | None, typer.Option(help="An admin token (default: the data dir's admin-token file).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
FINAL = ("MAINTENANCE_DONE", "MAINTENANCE_FAILED")


def _token(token: str | None) -> str:
    """``--token``, else ``VIGIL_TOKEN``, else the admin token ``vigil serve`` wrote beside its token file."""
    token = token or os.environ.get("VIGIL_TOKEN")
    if token:
        return token
    admin_file = load_settings(None).tokens_file.parent / "admin-token"
    if admin_file.exists():
        return admin_file.read_text().strip()
    raise SettingsError(f"give --token (or VIGIL_TOKEN): no {admin_file}")


def _call(url: str, token: str | None, method: str, path: str, body: Any = None) -> Any:
    """One API call through the same client the sample VNF manager uses."""

    async def call() -> Any:
        client = VigilClient(url, _token(token), timeout_s=30)
        try:
            return await client.request(method, path, body)
        finally:
            await client.aclose()

    try:
        return asyncio.run(call())
    except httpx.HTTPError as exc:
        raise SettingsError(f"cannot reach {url}: {exc}") from None


def _run(action: Any) -> Any:
    try:
        return action()
    except (SettingsError, ApiError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _actions(upgrade_s: float | None, action: str | None, params: list[str] | None) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    if upgrade_s is not None:
        actions.append({"action": "upgrade", "duration_s": upgrade_s})
    if action is not None:
        named: dict[str, Any] = {"action": action}
        for param in params or []:
            key, sep, value = param.partition("=")
            if not sep or not key:
                raise typer.BadParameter(f"--param takes KEY=VALUE, not {param!r}")
            named[key] = _number_or_text(value)
        actions.append(named)
    elif params:
        raise typer.BadParameter("--param gives parameters to --action NAME")
    return actions


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


@maintenance_app.command("start")
def start(
    url: UrlOpt = DEFAULT_URL,
    hosts: Annotated[list[str] | None, typer.Argument(help="Hosts to maintain (none: every compute host).")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="maintenance_at, ISO 8601 or '2026-11-22 10:00:00' (UTC).")
    ] = None,
    upgrade_s: Annotated[float | None, typer.Option("--upgrade-s", min=0, help="Run the upgrade action (s).")] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Run this action per host (one the server's maintenance.actions names)."),
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE: a parameter of --action (repeat for each).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the session to its end.")] = False,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a maintenance session; with --wait, exit 0 only if it ends MAINTENANCE_DONE."""
    body: dict[str, Any] = {
        "hosts": list(hosts or []),
        "state": "MAINTENANCE",
        "actions": _actions(upgrade_s, action, params),
    }
    if at is not None:
        body["maintenance_at"] = at
    created = _run(lambda: _call(url, token, "POST", "/v1/maintenance", body))
    session = str(created["session_id"])
    if not wait:
        if as_json:
            console.print_json(json.dumps(created))
        else:
            console.print(f"session {session} started")
        return
    shown = _follow(url, token, session, quiet=as_json)
    if as_json:
        console.print_json(json.dumps(shown))
    else:
        console.print(_detail_table(_run(lambda: _call(url, token, "GET", f"/v1/maintenance/{session}/detail"))))
    raise typer.Exit(0 if shown["state"] == "MAINTENANCE_DONE" else 1)


def _follow(url: str, token: str | None, session: str, *, quiet: bool) -> dict[str, Any]:
    """Poll the session (every 0.2 s) until it ends, printing each new state."""
    last = None
    while True:
        shown: dict[str, Any] = _run(lambda: _call(url, token, "GET", f"/v1/maintenance/{session}"))
        if shown["state"] != last and not quiet:
            console.print(f"{shown['state']} ({shown['percent_done']}% of hosts maintained)", highlight=False)
            last = shown["state"]
        if shown["state"] in FINAL:
            if shown.get("reason") and not quiet:
                console.print(f"reason: {shown['reason']}", highlight=False)
            return shown
        time.sleep(0.2)


@maintenance_app.command("list")
def list_sessions(url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """The sessions, oldest first."""
    sessions = _run(lambda: _call(url, token, "GET", "/v1/maintenance"))["sessions"]
    if as_json:
        console.print_json(json.dumps(sessions))
        return
    table = Table(title="Maintenance sessions")
    for column in ("session", "state", "hosts", "done", "migrations", "created", "reason"):
        table.add_column(column)
    for s in sessions:
        table.add_row(
            s["session_id"],
            s["state"],
            ", ".join(s["hosts"]),
            f"{s['percent_done']}%",
            str(s["migrations"]),
            s["created_at"],
            s["reason"] or "-",
        )
    console.print(table)


def _detail_table(detail: dict[str, Any]) -> Table:
    table = Table(title=f"Session {detail['session_id']}: {detail['state']} ({detail['percent_done']}%)")
    for column in ("host", "state", "maintained", "instances now"):
        table.add_column(column)
    on_host: dict[str, int] = {}
    for inst in detail["instances"]:
        on_host[inst["host"]] = on_host.get(inst["host"], 0) + 1
    for h in detail["hosts"]:
        table.add_row(h["host"], h["state"], "yes" if h["maintained"] else "no", str(on_host.get(h["host"], 0)))
    return table


@maintenance_app.command("show")
def show(
    session: Annotated[str, typer.Argument(help="Session id.")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One session: its hosts, projects and their replies, instances, percent done."""
    detail = _run(lambda: _call(url, token, "GET", f"/v1/maintenance/{session}/detail"))
    if as_json:
        console.print_json(json.dumps(detail))
        return
    console.print(_detail_table(detail))
    for p in detail["projects"]:
        console.print(f"project {p['project_id']}: asked {p['state']}, answered {p['reply'] or '-'}", highlight=False)
    if detail["reason"]:
        console.print(f"reason: {detail['reason']}", highlight=False)


@maintenance_app.command("cancel")
def cancel(
    session: Annotated[str, typer.Argument(help="Session id.")], url: UrlOpt = DEFAULT_URL, token: TokenOpt = None
) -> None:
    """Cancel an open session (its hosts are rolled back), or forget a finished one."""
    shown = _run(lambda: _call(url, token, "DELETE", f"/v1/maintenance/{session}"))
    console.print(f"session {session} forgotten" if shown is None else f"session {session}: {shown['state']}")
