"""Files and tokens (finding 5 of the security issue), on a real ``vigil serve``.

Seen before: ``vigil.db`` was world-readable (it holds callback credentials),
the admin-token file was written first and made 0600 afterwards, tokens were
kept in plain text, and a token could be neither listed nor revoked, nor
added without a restart. Now the data dir is made 0700 and every file in it
owner-only from its first byte, the token file keeps SHA-256 digests only,
and ``vigil token create | list | revoke`` take effect on a running server
within a second (it watches the file; SIGHUP makes it look at once).
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from vigil.api.tokens import digest
from vigil.cli import app

runner = CliRunner()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    data_dir = tmp_path / "fresh" / "vigil"  # made by vigil serve itself
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil", "serve", "--data-dir", str(data_dir), "--port", str(port), "--hosts", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "VIGIL_LOG_LEVEL": "WARNING"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the server did not start"
            assert proc.poll() is None
            time.sleep(0.05)
    yield url, data_dir, proc
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)
    assert proc.stdout is not None
    proc.stdout.close()


def status_with(url: str, token: str) -> int:
    return httpx.get(f"{url}/v1/instances", headers={"X-Auth-Token": token}, timeout=5).status_code


def until_status(url: str, token: str, wanted: int, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while status_with(url, token) != wanted:
        assert time.monotonic() < deadline, f"the server never answered {wanted} to that token"
        time.sleep(0.05)


def test_the_data_dir_and_every_secret_in_it_are_the_owners_only(
    served: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    _, data_dir, _ = served
    assert data_dir.stat().st_mode & 0o777 == 0o700
    for name in ("vigil.db", "tokens.yaml", "admin-token", "vigil.db.lock"):
        assert (data_dir / name).stat().st_mode & 0o077 == 0, name
    assert not [p for p in data_dir.iterdir() if p.name.endswith(".tmp")]


def test_the_token_file_keeps_digests_only(served: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, data_dir, _ = served
    admin = (data_dir / "admin-token").read_text().strip()
    stored = (data_dir / "tokens.yaml").read_text()
    assert admin not in stored
    assert f"sha256:{digest(admin)}" in stored
    assert status_with(url, admin) == 200


def test_tokens_made_and_revoked_count_on_a_running_server(served: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, data_dir, proc = served
    made = runner.invoke(app, ["token", "create", "--project", "p1", "--name", "vnfm", "--data-dir", str(data_dir)])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    until_status(url, token, 200)  # no restart
    listed = runner.invoke(app, ["token", "list", "--data-dir", str(data_dir)])
    assert listed.exit_code == 0, listed.output
    ident = digest(token)[:12]
    assert ident in listed.output
    assert "vnfm" in listed.output
    assert token not in listed.output
    revoked = runner.invoke(app, ["token", "revoke", ident[:6], "--data-dir", str(data_dir)])
    assert revoked.exit_code == 0, revoked.output
    proc.send_signal(signal.SIGHUP)  # look at once
    until_status(url, token, 401, within_s=2.0)
    unknown = runner.invoke(app, ["token", "revoke", "ffffffffffff", "--data-dir", str(data_dir)])
    assert unknown.exit_code == 2
    assert "no token" in unknown.output


def test_a_token_file_in_plain_text_is_rewritten_as_digests_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "old"
    data_dir.mkdir(mode=0o700)
    (data_dir / "tokens.yaml").write_text(yaml.safe_dump({"old-plain-token": {"project": "admin", "role": "admin"}}))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil", "serve", "--data-dir", str(data_dir), "--port", str(port), "--hosts", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "VIGIL_LOG_LEVEL": "WARNING"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert status_with(url, "old-plain-token") == 200
        stored = (data_dir / "tokens.yaml").read_text()
        assert "old-plain-token" not in stored
        assert (data_dir / "tokens.yaml").stat().st_mode & 0o077 == 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
