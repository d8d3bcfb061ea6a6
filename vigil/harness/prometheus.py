"""Prometheus, Alertmanager and node_exporter on loopback, posting to Vigil's Alertmanager ingest.

For the Alertmanager ingest's end-to-end test and ``python -m bench.alertmanager``:
Debian's binaries (``prometheus``, ``prometheus-alertmanager``,
``prometheus-node-exporter``; ``make sysdeps`` installs them), each started
here with its own configuration in a scratch directory, on free loopback
ports, its logs beside it. Debian's services are not used (the packages'
systemd units, which would need systemd and the default ports).

* node_exporter serves its default collectors;
* Prometheus scrapes it every second (job ``node``, ``instance``
  ``127.0.0.1:<port>``) and evaluates one rule every second:
  ``NodeDown``, ``up{job="node"} == 0``, firing at once (``for: 0s``);
* Alertmanager (gossip off: ``--cluster.listen-address=``) groups by
  alert name and instance, sends a new group at once (``group_wait: 0s``),
  changes and resolutions within a second (``group_interval: 1s``), and
  posts them to ``webhook_url`` with ``send_resolved``, the token as a
  Bearer token read from a file (``http_config.authorization.credentials_file``).

:meth:`PrometheusStack.stop_node_exporter` stops the exporter with SIGTERM
and returns when it has exited; Prometheus's next scrape fails, the rule
fires, and Alertmanager posts the alert.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from vigil.harness.server import free_port

BINARIES = {
    "prometheus": ("prometheus",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "node_exporter": ("prometheus-node-exporter", "node_exporter"),
}
ALERT = "NodeDown"
JOB = "node"


def binary(name: str) -> str | None:
    """The path of one of the stack's programs (Debian's name first), or None."""
    return next((found for candidate in BINARIES[name] if (found := shutil.which(candidate))), None)


def missing_binaries() -> list[str]:
    """The stack's programs not installed here (Debian packages: prometheus, prometheus-alertmanager,
    prometheus-node-exporter)."""
    return [name for name in BINARIES if binary(name) is None]


@dataclass
class PrometheusStack:
    """The three programs under ``directory``; ``webhook_url`` is Vigil's ``/v1/ingest/alertmanager``."""

    directory: Path
    webhook_url: str
    token: str
    node_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    alertmanager_port: int = field(default_factory=free_port)
    _procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @property
    def instance(self) -> str:
        """node_exporter's ``instance`` label as Prometheus gives it."""
        return f"127.0.0.1:{self.node_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    def write_configs(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        token_file = self.directory / "vigil-token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        rules = {
            "groups": [
                {
                    "name": "vigil",
                    "interval": "1s",
                    "rules": [
                        {
                            "alert": ALERT,
                            "expr": f'up{{job="{JOB}"}} == 0',
                            "for": "0s",
                            "labels": {"severity": "critical"},
                            "annotations": {"summary": "node_exporter on {{ $labels.instance }} is down"},
                        }
                    ],
                }
            ]
        }
        prometheus = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(self.directory / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.alertmanager_port}"]}]}]},
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [self.instance]}]}],
        }
        alertmanager = {
            "route": {
                "receiver": "vigil",
                "group_by": ["alertname", "instance"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "vigil",
                    "webhook_configs": [
                        {
                            "url": self.webhook_url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}},
                        }
                    ],
                }
            ],
        }
        for name, document in (
            ("rules.yml", rules),
            ("prometheus.yml", prometheus),
            ("alertmanager.yml", alertmanager),
        ):
            (self.directory / name).write_text(yaml.safe_dump(document))

    async def start(self) -> None:
        """Write the configurations, start the three programs, and wait until Prometheus sees the exporter up."""
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"not installed: {', '.join(missing)} (make sysdeps, as root)")
        self.write_configs()
        d = self.directory
        await self._spawn(
            "alertmanager",
            f"--config.file={d / 'alertmanager.yml'}",
            f"--storage.path={d / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.alertmanager_port}",
            "--cluster.listen-address=",
        )
        await self.start_node_exporter()
        await self._spawn(
            "prometheus",
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
        )
        await self._ready(f"{self.alertmanager_url}/-/ready", "alertmanager")
        await self._ready(f"{self.prometheus_url}/-/ready", "prometheus")
        await self.until_scraped(up=True)

    async def start_node_exporter(self) -> None:
        await self._spawn("node_exporter", f"--web.listen-address={self.instance}")
        await self._ready(f"http://{self.instance}/metrics", "node_exporter")

    async def stop_node_exporter(self) -> float:
        """SIGTERM to node_exporter; returns when it has exited, with that moment (epoch)."""
        proc = self._procs.pop("node_exporter")
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        await proc.wait()
        return time.time()

    async def until_scraped(self, *, up: bool, timeout_s: float = 30.0) -> None:
        """Wait until Prometheus's latest scrape of the exporter says ``up`` (1) or not (0)."""
        want = "1" if up else "0"
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.prometheus_url, timeout=2.0) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
                    response = await client.get("/api/v1/query", params={"query": f'up{{job="{JOB}"}}'})
                    if response.json()["data"]["result"][0]["value"][1] == want:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Prometheus did not see up={want} within {timeout_s} s: {self.tail()}")
                await asyncio.sleep(0.1)

    async def active_alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's alerts now (API v2)."""
        async with httpx.AsyncClient(base_url=self.alertmanager_url, timeout=2.0) as client:
            response = await client.get("/api/v2/alerts", params={"active": "true"})
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    async def aclose(self) -> None:
        """SIGTERM to every program still running (SIGKILL after 10 s), and reap them."""
        for name, proc in list(self._procs.items()):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            del self._procs[name]

    def tail(self, lines: int = 10) -> str:
        out = []
        for name in BINARIES:
            path = self.directory / f"{name}.log"
            if path.exists():
                out.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    async def _spawn(self, name: str, *args: str) -> None:
        program = binary(name)
        assert program is not None
        with (self.directory / f"{name}.log").open("ab") as log:
            self._procs[name] = await asyncio.create_subprocess_exec(
                program, *args, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL, env=dict(os.environ)
            )

    async def _ready(self, url: str, name: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                proc = self._procs.get(name)
                if proc is not None and proc.returncode is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer within {timeout_s} s: {self.tail()}")
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def prometheus_stack(directory: Path, webhook_url: str, token: str) -> AsyncIterator[PrometheusStack]:
    """A started :class:`PrometheusStack`, stopped on exit."""
    stack = PrometheusStack(directory, webhook_url, token)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.aclose()
