"""Southbound reports signed with the shared monitor key (HMAC-SHA256 of the
body), against a real server: the agent's own reporter, and raw requests that
forge or tamper."""

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import serving
from test_fault_path import host_down

from vigil.agent.reporter import EventReporter
from vigil.domain.signatures import SIGNATURE_HEADER, sign
from vigil.settings import Settings, SettingsError, load_settings

KEY = b"southbound-shared-key"


def _settings(settings: Settings, *, required: bool) -> Settings:
    monitor = settings.monitor.model_copy(update={"key": KEY.decode(), "require_signed_reports": required})
    return settings.model_copy(update={"monitor": monitor})


def _body(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


async def _put(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"X-Auth-Token": "monitor-token", "Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.put("/events", content=body, headers=headers)


async def _faults(url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, headers={"X-Auth-Token": "admin-token"}, timeout=10) as client:
        response = await client.get("/v1/faults")
    return [host for f in response.json()["faults"] for host in f["hosts"]]


async def _report_with(url: str, key: bytes | None) -> EventReporter:
    reporter = EventReporter(url, "monitor-token", "compute-1", key=key, retry_initial_s=0.01)
    await reporter.start()
    try:
        reporter.report("compute.host.down", time.time(), cause="test")
        await reporter.flushed()
    finally:
        await reporter.aclose()
    return reporter


async def test_where_signatures_are_required_only_the_agent_holding_the_key_reports(settings: Settings) -> None:
    async with serving(_settings(settings, required=True)) as api:
        unsigned = await _report_with(api.url, None)
        wrong = await _report_with(api.url, b"another-key")
        assert (unsigned.counters.refused, wrong.counters.refused) == (1, 1)
        assert await _faults(api.url) == []

        signed = await _report_with(api.url, KEY)
        assert (signed.counters.sent, signed.counters.refused) == (1, 0)
        assert await _faults(api.url) == ["compute-1"]


async def test_a_signature_covers_the_exact_body(settings: Settings) -> None:
    async with serving(_settings(settings, required=True)) as api:
        body = _body(host_down("compute-1", "e-1"))
        tampered = body.replace(b"compute-1", b"compute-2")
        response = await _put(api.url, tampered, sign(KEY, body))
        assert response.status_code == 401
        assert "does not match" in response.json()["error"]["message"]

        missing = await _put(api.url, body, None)
        assert missing.status_code == 401
        assert SIGNATURE_HEADER in missing.json()["error"]["message"]

        assert (await _put(api.url, body, "sha256=" + "0" * 64)).status_code == 401
        assert (await _put(api.url, body, "not-a-signature")).status_code == 401
        assert await _faults(api.url) == []
        assert (await _put(api.url, body, sign(KEY, body))).status_code == 200
        assert await _faults(api.url) == ["compute-1"]


async def test_with_a_key_but_not_required_unsigned_reports_pass_and_bad_signatures_do_not(settings: Settings) -> None:
    async with serving(_settings(settings, required=False)) as api:
        body = _body(host_down("compute-2", "e-2"))
        assert (await _put(api.url, body, sign(b"wrong", body))).status_code == 401
        assert (await _put(api.url, body, None)).status_code == 200
        assert await _faults(api.url) == ["compute-2"]


async def test_the_token_is_checked_before_the_signature(settings: Settings) -> None:
    async with serving(_settings(settings, required=True)) as api:
        body = _body(host_down("compute-1", "e-3"))
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            response = await client.put(
                "/events", content=body, headers={"X-Auth-Token": "vnf-a-token", SIGNATURE_HEADER: sign(KEY, body)}
            )
        assert response.status_code == 403


def test_requiring_signed_reports_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="require_signed_reports needs monitor"):
        load_settings(None, data_dir=tmp_path, monitor={"require_signed_reports": True})
