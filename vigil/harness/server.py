"""``vigil serve`` as a real child process that a test can kill with SIGKILL.

:class:`ServeProcess` starts ``python -m vigil serve`` on a data directory
(SQLite) or a store URL (PostgreSQL), with a config file the harness writes,
tokens it chose, and optionally ``VIGIL_CRASH_AT`` (``vigil.crashpoints``).
It waits until ``/healthz`` answers, and can be killed (SIGKILL: no clean-up
at all), stopped (SIGINT, as Ctrl-C) or awaited after it killed itself at a
crash point.
"""

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from vigil.api.tokens import TokenEntry, digest, write_entries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    """One ``vigil serve`` on ``data_dir`` (and ``store_url`` if given), on a fixed port across restarts."""

    data_dir: Path
    tokens: dict[str, dict[str, str]]
    settings: dict[str, Any] = field(default_factory=dict)
    store_url: str | None = None
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        entries = [TokenEntry(digest(t), e["project"], e["role"]) for t, e in self.tokens.items()]
        write_entries(self.data_dir / "tokens.yaml", entries)  # digests only, as vigil token create writes
        config: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "log_level": "WARNING",
            "server": {"host": "127.0.0.1", "port": self.port},
            "monitor": {"listen": "off"},
            **self.settings,
        }
        if self.store_url is not None:
            config["store"] = {"url": self.store_url}
        path = self.data_dir / "vigil.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    async def start(self, *, crash_at: str | None = None, timeout_s: float = 60.0, standby: bool = False) -> None:
        """Start the server and wait until it answers (or fail, with its output); with ``standby`` (high
        availability) a standby's 503 is an answer too."""
        config = self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env["VIGIL_CONFIG"] = str(config)
        if crash_at:
            env["VIGIL_CRASH_AT"] = crash_at
        log = (self.data_dir / "serve.log").open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "vigil", "serve", stdout=log, stderr=log, env=env
            )
        finally:
            log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"vigil serve exited with {self.proc.returncode}: {self.tail()}")
                with contextlib.suppress(httpx.TransportError):
                    status = (await client.get(f"{self.url}/healthz")).status_code
                    if status == 200 or (standby and status == 503):
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"vigil serve did not answer within {timeout_s} s: {self.tail()}")
                await asyncio.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        """SIGKILL, then reap."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        await self.wait()

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT (Ctrl-C), then reap; SIGKILL if it does not end in time."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except TimeoutError:
                await self.kill()
        await self.wait()

    async def wait(self, timeout_s: float | None = None) -> int | None:
        if self.proc is None:
            return None
        return await asyncio.wait_for(self.proc.wait(), timeout_s)

    def killed_itself(self) -> bool:
        """Whether the process ended by SIGKILL (a crash point, or a kill)."""
        return self.proc is not None and self.proc.returncode == -signal.SIGKILL

    def tail(self, lines: int = 30) -> str:
        path = self.data_dir / "serve.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
