"""The ``vigil`` command as a user runs it: a real process for ``serve``."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from vigil.api.auth import Role, TokenRegistry
from vigil.cli import app

EXAMPLE = Path(__file__).parents[1] / "examples" / "cloud.yaml"
VIGIL = [sys.executable, "-m", "vigil"]
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    port = free_port()
    env = {**os.environ, "VIGIL_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [*VIGIL, "serve", "--data-dir", str(tmp_path), "--port", str(port), "--topology", str(EXAMPLE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0]
    yield url, tmp_path, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.stdout is not None
    proc.stdout.close()


def test_serve_creates_an_admin_token_and_says_where(served: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, data_dir, proc = served
    token = (data_dir / "admin-token").read_text().strip()
    assert (data_dir / "tokens.yaml").stat().st_mode & 0o077 == 0
    response = httpx.get(f"{url}/v1/hosts", headers={"X-Auth-Token": token})
    assert response.status_code == 200
    assert len(response.json()["hosts"]) == 6
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert f"listening on {url}" in output
    assert str(data_dir / "admin-token") in output


def test_cloud_show_reads_a_running_server(served: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, data_dir, _ = served
    result = runner.invoke(app, ["cloud", "show", "--url", url, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "compute-6" in result.output
    assert "6 hosts (1 MAINTENANCE, 5 UP), 8 instances" in result.output


def test_a_second_server_on_the_same_store_is_refused_naming_the_first(
    served: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    url, data_dir, first = served
    second = subprocess.run(
        [*VIGIL, "serve", "--data-dir", str(data_dir), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "VIGIL_LOG_LEVEL": "WARNING"},
    )
    assert second.returncode == 2, second.stdout + second.stderr
    lines = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"pid {first.pid}" in lines[0]
    assert "listening" not in second.stdout
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # the first one serves on


def test_cloud_show_reads_a_served_store_without_starting_anything(
    served: tuple[str, Path, subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, data_dir, _ = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:  # the default heartbeat port, taken
        busy.bind(("127.0.0.1", 0))
        monkeypatch.setenv("VIGIL_MONITOR__LISTEN", f"127.0.0.1:{busy.getsockname()[1]}")
        before = {p.name: p.stat().st_size for p in data_dir.glob("vigil.db*")}
        result = runner.invoke(app, ["cloud", "show", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "6 hosts (1 MAINTENANCE, 5 UP), 8 instances" in result.output
    assert {p.name: p.stat().st_size for p in data_dir.glob("vigil.db*")} == before


def test_cloud_show_builds_a_generated_cloud() -> None:
    result = runner.invoke(app, ["cloud", "show", "--hosts", "3", "--instances-per-host", "4", "--projects", "2"])
    assert result.exit_code == 0, result.output
    assert "3 hosts (3 UP), 12 instances" in result.output
    assert "compute-00003" in result.output


def test_cloud_show_without_a_cloud_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cloud", "show", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "vigil serve" in " ".join(result.output.split())  # the message may wrap at 80 columns


def test_a_bad_topology_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts:\n  - {name: h1, switch: nowhere}\n")
    result = runner.invoke(app, ["cloud", "show", "--topology", str(bad)])
    assert result.exit_code == 2
    assert "nowhere" in result.output
    assert "Traceback" not in result.output


def test_a_bad_setting_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text("server: {port: 99999}\n")
    result = runner.invoke(app, ["cloud", "show", "--config", str(config), "--hosts", "1"])
    assert result.exit_code == 2
    assert "server.port" in result.output


def test_token_create_adds_a_working_member_token(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["token", "create", "--project", "vnf-a", "--role", "member", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    registry = TokenRegistry.load(tmp_path / "tokens.yaml")
    token = result.stdout.strip().splitlines()[0]
    principal = registry.authenticate(token)
    assert principal is not None
    assert principal.project == "vnf-a"
    assert principal.role is Role.MEMBER


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "cloud", "token"):
        assert command in result.output
