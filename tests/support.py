"""Helpers for tests that need a server: import as ``from support import ...``
(``tests`` is on pytest's ``pythonpath``)."""

import os
import socket

import pytest

POSTGRES_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) unless something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc})"
    if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
    pytest.skip(reason)
