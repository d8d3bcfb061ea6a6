"""A real Vigil (uvicorn on a loopback port, SQLite store) for the sample VNF
manager to run against, with the example cloud or a cloud of the test's own."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.settings import load_settings
from vigil.wiring import BackgroundServer, create_server_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"

TOKENS = {
    "admin-token": Principal("admin", Role.ADMIN),
    "monitor-token": Principal("monitoring", Role.MONITOR),
    "vnf-a-token": Principal("vnf-a", Role.MEMBER),
    "vnf-x-token": Principal("vnf-x", Role.MEMBER),
}

# A cloud where the VNF manager finds nothing of its own and boots it all.
EMPTY_VNF = {
    "switches": [{"name": "tor-1"}],
    "hosts": [{"name": f"compute-{h}", "switch": "tor-1", "vcpus": 4} for h in range(1, 4)],
    "projects": [{"id": "vnf-x", "name": "VNF X"}],
    "server_groups": [{"id": "vnf-x-ha", "name": "x-ha", "project": "vnf-x"}],
}


@dataclass
class Vigil:
    url: str
    admin: httpx.AsyncClient
    monitor: httpx.AsyncClient

    async def fail_host(self, host: str, ident: str = "e1") -> str:
        """Report ``host`` down as a monitor would; return the fault id."""
        details = {"hostname": host, "status": "down", "monitor": "test", "monitor_event_id": ident}
        event = {"time": datetime.now(UTC).isoformat(), "type": "compute.host.down", "details": details}
        response = await self.monitor.post("/v1/event", json=event)
        assert response.status_code == 200, response.text
        return str(response.json()["event"]["fault"])

    async def instance(self, ident: str) -> httpx.Response:
        return await self.admin.get(f"/v1/instances/{ident}")


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, Any] | None], Awaitable[Vigil]]]:
    """``await serve(topology)`` starts a Vigil on ``topology`` (a dict; None: the example cloud)."""
    started: list[tuple[BackgroundServer, list[httpx.AsyncClient]]] = []

    async def start(topology: dict[str, Any] | None = None) -> Vigil:
        path = EXAMPLE
        if topology is not None:
            path = tmp_path / "cloud.yaml"
            path.write_text(yaml.safe_dump(topology))
        settings = load_settings(
            None,
            data_dir=tmp_path,
            cloud={"topology": path},
            notifier={"retry_initial_s": 0.01, "retry_max_delay_s": 0.05, "retry_horizon_s": 30, "timeout_s": 2.0},
        )
        server = BackgroundServer(create_server_app(settings, TokenRegistry(TOKENS)))
        await server.start()
        clients = [
            httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": token}, timeout=10)
            for token in ("admin-token", "monitor-token")
        ]
        started.append((server, clients))
        return Vigil(server.url, *clients)

    yield start
    for server, clients in started:
        for client in clients:
            await client.aclose()
        await server.stop()
