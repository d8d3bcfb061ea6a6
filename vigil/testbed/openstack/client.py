"""A small admin client of the running stack, for ``up``'s readiness wait, ``status`` and the tests.

It authenticates with Keystone like any client (the admin's password,
project-scoped token) and talks to Nova at an explicit microversion: 2.53 is
the first where compute services and hypervisors are named by UUID, which
Doctor's force-down uses.
"""

from types import TracebackType
from typing import Any

import httpx

from vigil.testbed.openstack import keystone
from vigil.testbed.openstack.layout import COMPUTE_URL

MICROVERSION = "2.53"


class StackClient:
    def __init__(self, admin_password: str, *, timeout_s: float = 30.0) -> None:
        token, _ = keystone.issue_token(admin_password)
        self.token = token
        self.http = httpx.Client(headers={"X-Auth-Token": token}, timeout=timeout_s)

    def __enter__(self) -> "StackClient":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def compute(self, method: str, path: str, version: str = MICROVERSION, **kwargs: Any) -> httpx.Response:
        headers = {"OpenStack-API-Version": f"compute {version}"}
        return self.http.request(method, f"{COMPUTE_URL}{path}", headers=headers, **kwargs)

    def _get(self, path: str, key: str) -> list[dict[str, Any]]:
        response = self.compute("GET", path)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()[key]
        return items

    def hypervisors(self) -> list[dict[str, Any]]:
        return self._get("/os-hypervisors/detail", "hypervisors")

    def compute_services(self) -> list[dict[str, Any]]:
        return self._get("/os-services?binary=nova-compute", "services")
