"""A real Vigil (tests/api's harness: ``serving(settings)``, its tokens) with the ingest mappings these tests use."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api.conftest import EXAMPLE, Api, serving

from vigil.settings import Settings, load_settings

INGEST = {
    "alertmanager": {
        "alerts": {"NodeDown": "compute.host.down", "NicDown": "network.link.down"},
        "hosts": {"10.0.0.11": "compute-1", "10.0.0.12": "compute-2"},
    },
    "zabbix": {"hosts": {"node-3.domain.tld": "compute-3"}},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path,
        cloud={"topology": EXAMPLE},
        server={"max_body_bytes": 65536},
        inspector={"hold_down_s": 0},
        ingest=INGEST,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with serving(settings) as running:
        yield running
