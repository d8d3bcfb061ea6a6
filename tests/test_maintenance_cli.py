"""``vigil maintenance`` against a real ``vigil serve`` process: start and follow a
session, list and show it, cancel one, and the errors an admin meets."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from vigil.cli import app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Three empty hosts (a session needs no app manager's answer), and a ``mark`` action."""
    port = free_port()
    env = {**os.environ, "VIGIL_LOG_LEVEL": "WARNING", "VIGIL_MONITOR__LISTEN": "off"}
    mark = {
        "plugin": "script",
        "command": ["sh", "-c", 'touch "$VIGIL_PARAM_DIR/$VIGIL_HOST"'],
        "parameters": {"dir": "string"},
    }
    config = tmp_path / "vigil.yaml"
    config.write_text(json.dumps({"maintenance": {"actions": {"upgrade": {"plugin": "upgrade"}, "mark": mark}}}))
    args = ["serve", "--config", str(config), "--data-dir", str(tmp_path), "--port", str(port), "--hosts", "3"]
    args += ["--instances-per-host", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield url, (tmp_path / "admin-token").read_text().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        assert proc.stdout is not None
        proc.stdout.close()


def test_start_wait_list_show_and_forget(server: tuple[str, str], tmp_path: Path) -> None:
    url, token = server
    runner = CliRunner()
    marks = tmp_path / "marks"
    marks.mkdir()
    script = ["--action", "mark", "--param", f"dir={marks}"]
    started = runner.invoke(
        app,
        ["maintenance", "start", "--url", url, "--token", token, "--upgrade-s", "0.01", *script, "--wait", "--json"],
    )
    assert started.exit_code == 0, started.output
    shown = json.loads(started.output)
    assert shown["state"] == "MAINTENANCE_DONE"
    assert shown["percent_done"] == 100
    assert sorted(p.name for p in marks.iterdir()) == sorted(shown["hosts"])
    assert len(shown["hosts"]) == 3  # every host, as none was named
    session = shown["session_id"]

    listed = runner.invoke(app, ["maintenance", "list", "--url", url, "--token", token, "--json"])
    assert [s["session_id"] for s in json.loads(listed.output)] == [session]
    detail = runner.invoke(app, ["maintenance", "show", session, "--url", url, "--token", token])
    assert detail.exit_code == 0
    assert "MAINTENANCE_DONE" in detail.output
    assert shown["hosts"][-1] in detail.output
    forgotten = runner.invoke(app, ["maintenance", "cancel", session, "--url", url, "--token", token])
    assert "forgotten" in forgotten.output
    assert (
        json.loads(runner.invoke(app, ["maintenance", "list", "--url", url, "--token", token, "--json"]).output) == []
    )


def test_cancel_rolls_a_waiting_session_back(server: tuple[str, str]) -> None:
    url, token = server
    runner = CliRunner()
    later = ["maintenance", "start", "compute-00001", "--at", "2099-01-01 00:00:00", "--url", url, "--token", token]
    started = runner.invoke(app, [*later, "--json"])
    session = json.loads(started.output)["session_id"]
    cancelled = runner.invoke(app, ["maintenance", "cancel", session, "--url", url, "--token", token])
    assert f"session {session}: MAINTENANCE_FAILED" in cancelled.output


def test_errors_are_one_line_and_status_2(server: tuple[str, str]) -> None:
    url, token = server
    runner = CliRunner()
    unknown = runner.invoke(app, ["maintenance", "start", "compute-9", "--url", url, "--token", token])
    assert unknown.exit_code == 2
    assert "host 'compute-9' does not exist" in unknown.output
    missing = runner.invoke(app, ["maintenance", "show", "nope", "--url", url, "--token", token])
    assert missing.exit_code == 2
    assert "404" in missing.output
    refused = runner.invoke(app, ["maintenance", "list", "--url", url, "--token", "wrong"])
    assert refused.exit_code == 2
    assert "401" in refused.output
    gone = runner.invoke(app, ["maintenance", "list", "--url", "http://127.0.0.1:1", "--token", token])
    assert gone.exit_code == 2
    assert "cannot reach" in gone.output
