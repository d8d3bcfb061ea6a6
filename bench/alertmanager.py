"""Prometheus Alertmanager's path: node_exporter stopped to Vigil's consumer notified, beside Alertmanager's own.

One Vigil (embedded cloud, example topology, SQLite) with the Alertmanager
ingest mapping ``NodeDown`` to ``compute.host.down`` and node_exporter's
instance to compute-1, an admin subscription to ``host.down`` whose callback
is a ``bench.receivers`` server in its own process (it answers
``{"received_at"}``: the fault's T09), and Debian's Prometheus, Alertmanager
and node_exporter on loopback (:mod:`vigil.harness.prometheus`: 1 s scrape
and evaluation, ``NodeDown`` firing at once, Alertmanager's ``group_wait``
0 s). Each run waits a random part of a second (seeded: failures do not
keep time with the scrapes), stops node_exporter (SIGTERM; the time it has
exited is the start), waits for the consumer's notification, then starts node_exporter
again and waits until the alert resolved and compute-1 is back (untimed).
One JSON line per figure, p50/p90/p99/max over the runs, all from the same
runs:

* ``alertmanager.firing``: stopped to the alert firing (its ``startsAt``,
  Prometheus's evaluation: the scrape that failed and the rule after it);
* ``alertmanager.webhook``: stopped to Vigil's endpoint receiving
  Alertmanager's POST (the report's ``received_at``): what Alertmanager itself
  delivers;
* ``alertmanager.notified``: stopped to the consumer notified (T09);
* ``alertmanager.vigil``: the POST received to the consumer notified: Vigil's
  own share.

    python -m bench.alertmanager [--runs 20] [--seed 1]

Needs the Debian packages prometheus, prometheus-alertmanager and
prometheus-node-exporter (``make sysdeps`` as root); without them it says so
and exits 0.
"""

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.notify import Receivers
from bench.stats import emit, percentile
from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.harness.prometheus import ALERT, PrometheusStack, missing_binaries, prometheus_stack
from vigil.settings import load_settings
from vigil.wiring import BackgroundServer, create_server_app

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "examples" / "cloud.yaml"
ADMIN, MONITOR = "bench-admin", "bench-monitor"
HOST = "compute-1"


async def until(check: Any, what: str, within_s: float = 60.0) -> Any:
    deadline = time.monotonic() + within_s
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within_s} s")
        await asyncio.sleep(0.02)
    return value


async def measure(runs: int, seed: int) -> dict[str, list[float]]:
    logging.getLogger().setLevel(logging.WARNING)
    figures: dict[str, list[float]] = {"firing": [], "webhook": [], "notified": [], "vigil": []}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-alertmanager-") as scratch:
        data_dir = Path(scratch)
        settings = load_settings(
            None,
            data_dir=data_dir,
            log_level="WARNING",
            cloud={"topology": TOPOLOGY},
            monitor={"listen": "off"},
            inspector={"hold_down_s": 0},  # the host comes back at once, so each run starts from the same state
            notifier={"allowed_callback_networks": ["127.0.0.0/8"]},
            ingest={"alertmanager": {"alerts": {ALERT: "compute.host.down"}, "hosts": {"127.0.0.1": HOST}}},
        )
        tokens = {ADMIN: Principal("admin", Role.ADMIN), MONITOR: Principal("monitoring", Role.MONITOR)}
        receivers = Receivers(1)
        try:
            app = create_server_app(settings, TokenRegistry(tokens))
            async with (
                BackgroundServer(app) as server,
                httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": ADMIN}, timeout=30) as admin,
                prometheus_stack(data_dir / "prometheus", f"{server.url}/v1/ingest/alertmanager", MONITOR) as stack,
            ):
                callback = f"http://127.0.0.1:{receivers.ports[0]}/admin"
                body = {"callbacks": [callback], "filter": {"event_types": ["host.down"]}}
                (await admin.post("/v1/subscriptions", json=body)).raise_for_status()
                rng = random.Random(seed)
                for run in range(runs):
                    sample = await one_run(stack, admin, rng.random())
                    print(f"run {run + 1}/{runs}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in sample.items()))
                    for name, value in sample.items():
                        figures[name].append(value)
        finally:
            receivers.close()
    return figures


async def one_run(stack: PrometheusStack, admin: httpx.AsyncClient, phase_s: float) -> dict[str, float]:
    await until(lambda: _steady(stack, admin), "compute-1 up and no alert active")
    await asyncio.sleep(phase_s)
    stopped_at = await stack.stop_node_exporter()
    fault = await until(lambda: _notified(admin), "the consumer notified")
    profile = (await admin.get(f"/v1/faults/{fault}/profile")).json()["checkpoints"]
    events = (await admin.get("/v1/fault-events", params={"limit": 10})).json()["fault_events"]
    [report] = [e for e in events if e["monitor"] == "alertmanager" and e["fault"] == fault]
    firing_at = datetime.fromisoformat(report["time"]).timestamp()
    received_at = datetime.fromisoformat(report["received_at"]).timestamp()
    notified_at = profile["T09"]
    await stack.start_node_exporter()
    await until(lambda: _cleared(admin, fault), "the fault cleared")
    return {
        "firing": (firing_at - stopped_at) * 1000,
        "webhook": (received_at - stopped_at) * 1000,
        "notified": (notified_at - stopped_at) * 1000,
        "vigil": (notified_at - received_at) * 1000,
    }


async def _steady(stack: PrometheusStack, admin: httpx.AsyncClient) -> bool:
    faults = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
    host = (await admin.get(f"/v1/hosts/{HOST}")).json()["host"]
    return not faults and host["status"] == "UP" and not await stack.active_alerts()


async def _notified(admin: httpx.AsyncClient) -> str | None:
    faults = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
    for fault in faults:
        profile = (await admin.get(f"/v1/faults/{fault['id']}/profile")).json()
        if "T09" in profile["checkpoints"]:
            return str(fault["id"])
    return None


async def _cleared(admin: httpx.AsyncClient, fault: str) -> bool:
    return bool((await admin.get(f"/v1/faults/{fault}")).json()["fault"]["state"] == "CLEARED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alertmanager", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    missing = missing_binaries()
    if missing:
        print(
            f"bench.alertmanager skipped: {', '.join(missing)} not installed (make sysdeps, as root)", file=sys.stderr
        )
        return 0
    figures = asyncio.run(measure(args.runs, args.seed))
    params = {
        "runs": args.runs,
        "seed": args.seed,
        "scrape_interval_s": 1,
        "evaluation_interval_s": 1,
        "group_wait_s": 0,
    }
    for name, samples in figures.items():
        values = [round(v, 1) for v in samples]
        emit(f"alertmanager.{name}", params, "ms", samples, p90=round(percentile(samples, 90), 1), values=values)
    return 0


if __name__ == "__main__":
    sys.exit(main())
