"""The ``vigil agent`` command line (registered in :mod:`vigil.cli`)."""

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from vigil.agent.agent import AgentConfig, run_agent


def _address(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise typer.BadParameter(f"takes HOST:PORT, not {value!r}", param_hint=option)
    return host, int(port)


async def _run(config: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_agent(config, stop)


def agent_command(
    host: Annotated[str, typer.Option("--host", help="The compute host this agent represents (its name in Vigil).")],
    vigil: Annotated[
        list[str] | None,
        typer.Option(
            "--vigil",
            help="Vigil's API base URL, for events (repeatable: the leader and its standbys; events go to the"
            " one that takes them). Default http://127.0.0.1:8770.",
            envvar="VIGIL_URL",
        ),
    ] = None,
    token: Annotated[str, typer.Option("--token", help="A monitor token for the events.", envvar="VIGIL_TOKEN")] = "",
    heartbeat: Annotated[
        list[str] | None,
        typer.Option(
            "--heartbeat",
            help="HOST:PORT of Vigil's heartbeat monitor (UDP), or 'off' (repeatable: each beat goes to every"
            " one). Default 127.0.0.1:8771.",
        ),
    ] = None,
    interval_ms: Annotated[float, typer.Option("--interval-ms", min=1, help="Heartbeat interval.")] = 20.0,
    detect_mult: Annotated[
        int, typer.Option("--detect-mult", min=1, max=255, help="Missed intervals before the host counts as lost.")
    ] = 3,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Shared key (monitor.key) signing heartbeats and event reports (HMAC-SHA256).",
            envvar="VIGIL_HEARTBEAT_KEY",
        ),
    ] = None,
    nic: Annotated[
        list[str] | None, typer.Option("--nic", help="A data-plane NIC whose carrier to watch (repeatable).")
    ] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="The data-plane gateway IP to probe.")] = None,
    probe_interval_ms: Annotated[
        float, typer.Option("--probe-interval-ms", min=1, help="Gateway probe interval.")
    ] = 100.0,
    probe_mult: Annotated[
        int, typer.Option("--probe-mult", min=1, help="Missed probe replies before the gateway counts as lost.")
    ] = 3,
    process: Annotated[
        list[str] | None,
        typer.Option("--process", help="A process that must be alive: a name, or pidfile:PATH (repeatable)."),
    ] = None,
    instances_dir: Annotated[
        Path | None,
        typer.Option(
            "--instances-dir",
            help="A directory of <instance id>.pid files, one per instance's workload on this host: a workload"
            " whose process dies is compute.instance.down for that instance (a removed file is no failure).",
        ),
    ] = None,
    check_interval_s: Annotated[
        float, typer.Option("--check-interval-s", min=0.01, help="Process and instance check interval.")
    ] = 1.0,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime/--no-realtime",
            help="Run at real-time priority (SCHED_FIFO) with memory locked, so heartbeats stay on time (root);"
            " taken once the agent has started, before its first heartbeat.",
        ),
    ] = False,
    realtime_priority: Annotated[
        int, typer.Option("--realtime-priority", min=1, max=99, help="SCHED_FIFO priority with --realtime.")
    ] = 10,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")] = "INFO",
) -> None:
    """Run the host agent: heartbeats to Vigil's monitor, NIC carrier (netlink), gateway
    probes, process checks and instances' workloads reported as southbound events. Stop it
    with Ctrl-C or SIGTERM.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    beats = heartbeat or ["127.0.0.1:8771"]
    off = [b for b in beats if b.strip().lower() == "off"]
    targets = () if off else tuple(_address(b, "--heartbeat") for b in beats)
    urls = tuple(vigil or ["http://127.0.0.1:8770"])
    nics = tuple(nic or ())
    processes = tuple(process or ())
    if (nics or gateway or processes or instances_dir) and not token:
        raise typer.BadParameter("needs a monitor token to report events", param_hint="--token")
    config = AgentConfig(
        host=host,
        vigil_url=urls,
        token=token,
        heartbeat=targets or None,
        interval_ms=interval_ms,
        detect_mult=detect_mult,
        key=key.encode() if key else None,
        nics=nics,
        gateway=gateway,
        probe_interval_s=probe_interval_ms / 1000,
        probe_mult=probe_mult,
        processes=processes,
        instances_dir=instances_dir,
        check_interval_s=check_interval_s,
        realtime_priority=realtime_priority if realtime else 0,
    )
    try:
        asyncio.run(_run(config))
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
