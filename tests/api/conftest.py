"""A real Vigil server (uvicorn on a loopback port, SQLite store, the example
cloud) and HTTP clients holding tokens of each role."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support import Receiver

from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.settings import Settings, load_settings
from vigil.wiring import BackgroundServer, create_server_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"

TOKENS = {
    "admin-token": Principal("admin", Role.ADMIN),
    "vnf-a-token": Principal("vnf-a", Role.MEMBER),
    "vnf-b-token": Principal("vnf-b", Role.MEMBER),
    "monitor-token": Principal("monitoring", Role.MONITOR),
}


# The per-host maintenance actions sessions may name in these tests: the upgrade, and two scripts.
MAINTENANCE_ACTIONS = {
    "upgrade": {"plugin": "upgrade"},
    "mark": {
        "plugin": "script",
        "command": ["sh", "-c", 'touch "$VIGIL_PARAM_DIR/$VIGIL_HOST"'],
        "parameters": {"dir": "string"},
    },
    "disk-full": {"plugin": "script", "command": ["sh", "-c", "echo disk full >&2; exit 3"]},
}


@dataclass
class Api:
    url: str
    settings: Settings

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Api]:
    app = create_server_app(settings, TokenRegistry(TOKENS))
    async with BackgroundServer(app) as server:
        yield Api(server.url, settings)


@pytest.fixture
def restart() -> Callable[[Settings], AbstractAsyncContextManager[Api]]:
    """Start another server on the same settings (data dir, store)."""
    return serving


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path,
        cloud={"topology": EXAMPLE, "cold_migration_s": 0.05, "live_migration_s": 0.05, "evacuate_s": 0.05},
        server={"max_body_bytes": 4096},
        notifier={"retry_initial_s": 0.01, "retry_max_delay_s": 0.05, "retry_horizon_s": 30, "timeout_s": 2.0},
        inspector={"hold_down_s": 0},  # recoveries at once; flap damping has tests of its own
        maintenance={"actions": MAINTENANCE_ACTIONS},
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with serving(settings) as running_api:
        yield running_api


@pytest.fixture
async def clients(api: Api) -> AsyncIterator[Callable[[str | None], httpx.AsyncClient]]:
    opened: list[httpx.AsyncClient] = []

    def make(token: str | None) -> httpx.AsyncClient:
        client = api.client(token)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def admin(clients: Callable[[str | None], httpx.AsyncClient]) -> httpx.AsyncClient:
    return clients("admin-token")


@pytest.fixture
def vnf_a(clients: Callable[[str | None], httpx.AsyncClient]) -> httpx.AsyncClient:
    return clients("vnf-a-token")


@pytest.fixture
def vnf_b(clients: Callable[[str | None], httpx.AsyncClient]) -> httpx.AsyncClient:
    return clients("vnf-b-token")


@pytest.fixture
def monitor(clients: Callable[[str | None], httpx.AsyncClient]) -> httpx.AsyncClient:
    return clients("monitor-token")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a loopback port; ``receiver.url`` is its base URL."""
    hooks = Receiver()
    async with BackgroundServer(hooks.app) as server:
        hooks.url = server.url
        yield hooks
