"""A consumer away for minutes: everything is delivered once it is back, and admins saw why.

``vigil serve`` runs in its own process with the default retry settings
(backoff capped at 60 s, a 24 h horizon). A tenant's consumer is away for
``--minutes`` (nothing listens on its port) while a monitor fails and
repairs hosts under it every ``--every-s`` seconds; an admin's receiver
listens throughout. Then the consumer comes back on its port. Reported: the
notifications Vigil owed it and how many it got (each once, by notification
id), the seconds from its return to the last of them, the probes made while
it was away (delivery attempts beyond one per notification), and whether the
admin heard ``subscription.unreachable`` raised and then cleared. Target: every
notification delivered, the alarm raised and cleared.

    python -m bench.consumer_outage [--minutes 10] [--every-s 30]
"""

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from vigil.domain.callbacks import LOOPBACK
from vigil.harness.consumers import Recorder
from vigil.harness.crash import TOPOLOGY
from vigil.harness.server import ServeProcess, free_port

TOKENS = {
    "o-admin": {"project": "admin", "role": "admin"},
    "o-monitor": {"project": "monitoring", "role": "monitor"},
    "o-p1": {"project": "p1", "role": "member"},
}


def report(host: str, ident: str, status: str) -> dict[str, Any]:
    details = {"hostname": host, "status": status, "monitor": "outage", "monitor_event_id": ident}
    return {"time": datetime.now(UTC).isoformat(), "type": f"compute.host.{status}", "details": details}


def kinds(recorder: Recorder) -> list[tuple[str, bool]]:
    found = []
    for heard in recorder.heard:
        traits = {n: v for n, _, v in json.loads(heard.body)["reason_data"]["event"]["traits"]}
        found.append((str(traits["vigil_alarm_kind"]), heard.cleared))
    return found


async def run(minutes: float, every_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-outage-") as scratch:
        data_dir = Path(scratch)
        (data_dir / "topology.yaml").write_text(TOPOLOGY)
        settings = {
            "cloud": {"topology": str(data_dir / "topology.yaml")},
            "notifier": {"allowed_callback_networks": list(LOOPBACK)},
        }
        server = ServeProcess(data_dir / "vigil", TOKENS, settings)
        admin_hooks, consumer = Recorder("admin"), Recorder("p1")
        await admin_hooks.start()
        port = free_port()
        await server.start()
        clients = {name: httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": name}) for name in TOKENS}
        try:
            await clients["o-admin"].post("/v1/subscriptions", json={"callbacks": [admin_hooks.url]})
            body = {"callbacks": [f"http://127.0.0.1:{port}/p1"], "filter": {"event_types": ["instance.down"]}}
            subscription = (await clients["o-p1"].post("/v1/subscriptions", json=body)).json()["subscription"]
            away_until = time.monotonic() + minutes * 60
            cycle = 0
            while time.monotonic() < away_until:
                host = ["compute-1", "compute-2", "compute-3", "compute-6"][cycle % 4]
                for status in ("down", "up"):
                    answer = await clients["o-monitor"].post("/v1/event", json=report(host, f"{status}{cycle}", status))
                    answer.raise_for_status()
                cycle += 1
                await asyncio.sleep(min(every_s, max(0.0, away_until - time.monotonic())))
            owed = (await clients["o-admin"].get("/v1/deliveries", params={"subscription": subscription["id"]})).json()
            attempts_away = sum(d["attempts"] for d in owed["deliveries"])
            back = time.time()
            await consumer.start(port=port)
            for _ in range(3000):  # at most 300 s
                if len({h.notification for h in consumer.heard}) >= len(owed["deliveries"]):
                    break
                await asyncio.sleep(0.1)
            last = max((h.at for h in consumer.heard), default=back)
            await asyncio.sleep(2)  # the clearing of the alarm reaches the admin
            logged = (
                await clients["o-admin"].get("/v1/deliveries", params={"subscription": subscription["id"]})
            ).json()
            unreachable = [cleared for kind, cleared in kinds(admin_hooks) if kind == "subscription.unreachable"]
            return {
                "benchmark": "consumer_outage",
                "minutes_away": minutes,
                "fault_cycles": cycle,
                "notifications_owed": len(owed["deliveries"]),
                "delivered": sum(d["state"] == "DELIVERED" for d in logged["deliveries"]),
                "received_distinct": len({h.notification for h in consumer.heard}),
                "received_twice": len(consumer.heard) - len({h.notification for h in consumer.heard}),
                "seconds_to_last_after_return": round(last - back, 2),
                "attempts_while_away": attempts_away,
                "admin_saw_unreachable": unreachable[:1] == [False],
                "admin_saw_it_cleared": unreachable[-1:] == [True],
            }
        finally:
            for client in clients.values():
                await client.aclose()
            await server.stop()
            await consumer.stop()
            await admin_hooks.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every-s", type=float, default=30.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.minutes, args.every_s))), flush=True)


if __name__ == "__main__":
    main()
