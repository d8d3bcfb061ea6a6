"""The API calls the sample VNF manager makes, over HTTP (httpx).

Only what a VNF manager of one project needs: list, boot, show and delete
its instances, find its server groups, and subscribe to alarms. Every
non-2xx answer raises :class:`ApiError` with Vigil's own error message.
"""

import asyncio
import time
from typing import Any

import httpx


class ApiError(Exception):
    """Vigil answered with an error; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class VigilClient:
    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, headers={"X-Auth-Token": token}, timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        if response.is_success or response.status_code in ok:
            return response.json() if response.content else None
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise ApiError(response.status_code, str(message))

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Any call of the API: its JSON answer (None for an empty one), or ApiError."""
        return await self._call(method, path, json=body)

    # -- instances and groups ----------------------------------------------

    async def instances(self, project: str | None = None) -> list[dict[str, Any]]:
        """Every instance visible to the token (of ``project``), paging through."""
        found: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if project is not None:
                params["project"] = project
            if marker is not None:
                params["marker"] = marker
            batch: list[dict[str, Any]] = (await self._call("GET", "/v1/instances", params=params))["instances"]
            found.extend(batch)
            if len(batch) < 1000:
                return found
            marker = batch[-1]["id"]

    async def instance(self, ident: str) -> dict[str, Any]:
        return (await self._call("GET", f"/v1/instances/{ident}"))["instance"]  # type: ignore[no-any-return]

    async def boot(
        self,
        name: str,
        *,
        project: str | None = None,
        vcpus: int = 1,
        group: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "vcpus": vcpus, "metadata": metadata or {}}
        if project is not None:
            body["project"] = project
        if group is not None:
            body["group"] = group
        return (await self._call("POST", "/v1/instances", json=body))["instance"]  # type: ignore[no-any-return]

    async def delete(self, ident: str) -> None:
        """Delete an instance; one that is already gone is no error."""
        await self._call("DELETE", f"/v1/instances/{ident}", ok=(404,))

    async def wait_state(
        self, ident: str, state: str = "ACTIVE", *, timeout_s: float = 30.0, poll_s: float = 0.02
    ) -> dict[str, Any]:
        """Poll an instance until it reaches ``state``; TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            inst = await self.instance(ident)
            if inst["state"] == state:
                return inst
            if inst["state"] == "ERROR" and state != "ERROR":
                raise ApiError(409, f"instance {ident} went to ERROR instead of {state}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"instance {ident} is {inst['state']} after {timeout_s} s, not {state}")
            await asyncio.sleep(poll_s)

    async def server_groups(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/v1/server-groups"))["server_groups"]  # type: ignore[no-any-return]

    # -- subscriptions -----------------------------------------------------

    async def subscribe(
        self,
        callback: str,
        *,
        name: str = "",
        resource_ids: list[str] | None = None,
        event_types: list[str] | None = None,
        payload_format: str = "aodh",
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "filter": {"resource_ids": resource_ids or [], "event_types": event_types or []},
            "callbacks": [callback],
            "format": payload_format,
        }
        return (await self._call("POST", "/v1/subscriptions", json=body))["subscription"]  # type: ignore[no-any-return]

    async def unsubscribe(self, ident: str) -> None:
        await self._call("DELETE", f"/v1/subscriptions/{ident}", ok=(404,))

    # -- maintenance (Fenix's project endpoints) -------------------------------

    async def maintenance_reply(
        self, session_id: str, project: str, state: str, instance_actions: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Answer a maintenance message: ``ACK_<STATE>`` or ``NACK_<STATE>``."""
        body = {"state": state, "instance_actions": instance_actions or {}}
        return await self._call("PUT", f"/v1/maintenance/{session_id}/{project}", json=body)  # type: ignore[no-any-return]

    async def maintenance_instances(self, session_id: str, project: str) -> list[str]:
        answer = await self._call("GET", f"/v1/maintenance/{session_id}/{project}")
        return list(answer["instance_ids"])
