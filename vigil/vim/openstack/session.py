"""Keystone authentication and the service catalog, through keystoneauth.

keystoneauth is what every OpenStack client uses: password or application
credential, token renewal before expiry, endpoints from the catalog by
service type, interface and region. It is synchronous, so its calls run in
a worker thread; the API calls themselves go out on an asyncio HTTP client
with the token it hands out, and a 401 makes it authenticate again. A
token it holds that is far from expiry is taken on the event loop, without
a thread: a fault's hundred concurrent calls each waited for one of the
executor's few threads before.

Secrets (the password, the application credential's secret, tokens) are
never logged or shown: :class:`OpenStackAuth`'s ``repr`` leaves them out.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from vigil.domain.errors import NotLeader


@dataclass(frozen=True)
class OpenStackAuth:
    """Where and as whom to authenticate: a password, or an application credential."""

    auth_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    application_credential_id: str | None = None
    application_credential_secret: str | None = field(default=None, repr=False)
    region_name: str | None = None
    interface: str = "public"
    endpoint_overrides: dict[str, str] = field(default_factory=dict)  # service type -> URL

    def plugin(self) -> Any:
        if self.application_credential_id is not None:
            if self.application_credential_secret is None:
                raise ValueError("an application credential needs its secret")
            return v3.ApplicationCredential(
                auth_url=self.auth_url,
                application_credential_id=self.application_credential_id,
                application_credential_secret=self.application_credential_secret,
            )
        if self.password is None:
            raise ValueError("password authentication needs a password (or use an application credential)")
        return v3.Password(
            auth_url=self.auth_url,
            username=self.username,
            password=self.password,
            project_name=self.project_name,
            user_domain_name=self.user_domain_name,
            project_domain_name=self.project_domain_name,
        )


CONNECTIONS = 256  # as many calls in flight as vim.openstack.push_concurrency allows at most
IDENTITY = "identity"  # Keystone's service type: every call needs its token, and the catalog is its own


class ApiError(Exception):
    """An OpenStack API answered with an error (``status``), or could not be reached (``status`` None); the
    message has the method, path, status and the body's start. ``service`` is the service type that failed
    (``identity`` when it was Keystone, for a token or the catalog, on the way to another service). ``body`` is
    the answer's text, whose message the driver hands on when a service refuses a call."""

    def __init__(self, message: str, *, status: int | None = None, service: str | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.service = service
        self.body = body

    @property
    def unreachable(self) -> bool:
        """No answer (refused, reset, timed out) or a 5xx: the service is away, not refusing this call."""
        return self.status is None or self.status >= 500


class OpenStackSession:
    """Authenticated asyncio calls to Nova and Neutron (and any service in the catalog)."""

    def __init__(self, auth: OpenStackAuth, *, timeout_s: float = 30.0, connections: int = CONNECTIONS) -> None:
        self._auth = auth
        self.acting: Callable[[], bool] | None = None  # with high availability: whether this process still leads
        self._ks = ks_session.Session(auth=auth.plugin(), timeout=timeout_s)
        # httpx's default pool (100 connections) would be narrower than the pusher's bound; 20 are kept alive
        # between bursts, as by default (a fault's burst opens the rest again).
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=20)
        self._http = httpx.AsyncClient(timeout=timeout_s, limits=limits)
        self._endpoints: dict[str, str] = dict(auth.endpoint_overrides)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "OpenStackSession":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def token(self) -> str:
        held = self._held_token()
        if held is not None:
            return held
        try:
            token = await asyncio.to_thread(self._ks.get_token)
        except ks_exceptions.ClientException as exc:
            status = getattr(exc, "http_status", None)
            raise ApiError(f"Keystone: {type(exc).__name__}: {exc}", status=status, service=IDENTITY) from exc
        if not token:
            raise ApiError("Keystone gave no token", service=IDENTITY)
        return token

    def _held_token(self) -> str | None:
        """The plugin's token if it needs no renewal (its own rule: more than its minimum life left), else None."""
        plugin = self._ks.auth
        ref = getattr(plugin, "auth_ref", None)
        life = getattr(plugin, "MIN_TOKEN_LIFE_SECONDS", 120)
        if ref is None or ref.will_expire_soon(life):
            return None
        token: str | None = ref.auth_token
        return token

    def known_endpoint(self, service_type: str) -> str | None:
        """The endpoint already found for ``service_type`` (no call: for an alarm about it while it is away)."""
        return self._endpoints.get(service_type)

    async def endpoint(self, service_type: str) -> str:
        if service_type not in self._endpoints:
            try:
                found = await asyncio.to_thread(
                    self._ks.get_endpoint,
                    service_type=service_type,
                    interface=self._auth.interface,
                    region_name=self._auth.region_name,
                )
            except ks_exceptions.ClientException as exc:
                status = getattr(exc, "http_status", None)
                raise ApiError(f"Keystone: {type(exc).__name__}: {exc}", status=status, service=IDENTITY) from exc
            if found is None:  # not an outage: the catalog will not change by itself
                raise ApiError(f"the catalog has no {self._auth.interface} endpoint for {service_type}", status=404)
            self._endpoints[service_type] = str(found).rstrip("/")
        return self._endpoints[service_type]

    async def request(
        self,
        service_type: str,
        method: str,
        path: str,
        *,
        microversion: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call; authenticated again once if the token was refused. An error status raises ApiError; a
        process that no longer leads (high availability) calls nothing and raises NotLeader."""
        if self.acting is not None and not self.acting():
            raise NotLeader(f"not the leader: {method} {service_type}{path} is the new leader's to make")
        base = await self.endpoint(service_type)
        headers = dict(kwargs.pop("headers", {}))
        if microversion is not None:
            headers["OpenStack-API-Version"] = f"{service_type} {microversion}"
        for attempt in (1, 2):
            headers["X-Auth-Token"] = await self.token()
            try:
                response = await self._http.request(method, f"{base}{path}", headers=headers, **kwargs)
            except httpx.TransportError as exc:
                raise ApiError(
                    f"{method} {service_type}{path}: {type(exc).__name__}: {exc}", service=service_type
                ) from exc
            if response.status_code == 401 and attempt == 1:
                await asyncio.to_thread(self._ks.invalidate)
                continue
            break
        if response.status_code >= 400:
            raise ApiError(
                f"{method} {service_type}{path}: {response.status_code} {response.text[:300]}",
                status=response.status_code,
                service=service_type,
                body=response.text,
            )
        return response

    async def get(self, service_type: str, path: str, *, microversion: str | None = None, **params: Any) -> Any:
        response = await self.request(service_type, "GET", path, microversion=microversion, params=params or None)
        return response.json()
