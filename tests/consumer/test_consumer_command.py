"""``vigil consumer`` as a user runs it: real processes for the server and the VNF manager."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from vigil.cli import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"
VIGIL = [sys.executable, "-m", "vigil"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def until(probe: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = probe()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def stop(proc: "subprocess.Popen[str]") -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.stdout is not None
    output = proc.stdout.read()
    proc.stdout.close()
    return output


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {**os.environ, "VIGIL_LOG_LEVEL": "WARNING"}
    args = ["serve", "--data-dir", str(tmp_path), "--port", str(port), "--topology", str(EXAMPLE)]
    proc = subprocess.Popen([*VIGIL, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, "the server")
        yield url, (tmp_path / "admin-token").read_text().strip()
    finally:
        stop(proc)


def test_the_consumer_command_switches_over_and_removes_its_subscription_when_stopped(
    server: tuple[str, str],
) -> None:
    url, token = server
    port = free_port()
    args = ["consumer", "--url", url, "--token", token, "--project", "vnf-a", "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*VIGIL, *args, "--format", "sol003"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    hooks = f"http://127.0.0.1:{port}"
    admin = httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=10)
    try:
        state = until(lambda: (s := httpx.get(f"{hooks}/state", timeout=1).json())["subscription"] and s, "start-up")
        assert state["act"] == "vnf-a-app-act"
        assert state["format"] == "sol003"
        [subscription] = admin.get("/v1/subscriptions").json()["subscriptions"]
        assert subscription["callbacks"] == [f"{hooks}/notify"]

        details = {"hostname": "compute-1", "status": "down", "monitor": "test", "monitor_event_id": "c1"}
        event = {"time": datetime.now(UTC).isoformat(), "type": "compute.host.down", "details": details}
        assert admin.post("/v1/event", json=event).status_code == 200
        state = until(lambda: (s := httpx.get(f"{hooks}/state").json())["switchovers"] and s, "the switchover")
        assert state["act"] == "vnf-a-app-stby"
        until(lambda: all(r["active_at"] for r in httpx.get(f"{hooks}/state").json()["recreations"]), "recreation")
    finally:
        output = stop(proc)
        subscriptions = admin.get("/v1/subscriptions").json()["subscriptions"]
        admin.close()
    assert proc.returncode == 0, output
    assert "switched over" in output
    assert subscriptions == []


def test_a_bad_listen_address_or_an_unreachable_server_is_one_line_and_status_2() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["consumer", "--url", "http://127.0.0.1:1", "--token", "t", "--listen", "nowhere"])
    assert bad.exit_code == 2
    assert "HOST:PORT" in bad.output
    port = free_port()
    listen = f"127.0.0.1:{port}"
    gone = runner.invoke(app, ["consumer", "--url", "http://127.0.0.1:1", "--token", "t", "--listen", listen])
    assert gone.exit_code == 2
    assert "cannot reach" in gone.output


def test_the_consumer_command_with_maintenance_answers_a_session(server: tuple[str, str]) -> None:
    url, token = server
    port = free_port()
    args = ["consumer", "--url", url, "--token", token, "--project", "vnf-a", "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*VIGIL, *args, "--maintenance"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    hooks = f"http://127.0.0.1:{port}"
    admin = httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=10)
    try:
        until(lambda: httpx.get(f"{hooks}/state", timeout=1).json()["subscription"], "start-up")
        instances = admin.get("/v1/instances").json()["instances"]
        foreign = {i["host"] for i in instances if i["project"] != "vnf-a"}
        hosts = [h["name"] for h in admin.get("/v1/hosts").json()["hosts"] if h["status"] == "UP"]
        ours = [h for h in hosts if h not in foreign]  # no other project's app manager runs here
        assert any(i["host"] in ours for i in instances), "the session must move some of vnf-a's instances"
        session = admin.post("/v1/maintenance", json={"hosts": ours}).json()["session_id"]
        done = until(
            lambda: (
                (s := admin.get(f"/v1/maintenance/{session}").json())["state"]
                in ("MAINTENANCE_DONE", "MAINTENANCE_FAILED")
                and s
            ),
            "the session",
        )
        assert done["state"] == "MAINTENANCE_DONE", done
        state = httpx.get(f"{hooks}/state").json()
        assert state["maintenance"][0]["state"] == "MAINTENANCE"
        assert all(s["error"] is None for s in state["maintenance"])
    finally:
        output = stop(proc)
        admin.close()
    assert proc.returncode == 0, output
    assert "sample app manager" in output


def test_maintenance_needs_the_aodh_format() -> None:
    runner = CliRunner()
    args = ["consumer", "--url", "http://127.0.0.1:1", "--token", "t", "--maintenance", "--format", "sol003"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert "aodh" in refused.output
