"""Keystone tokens validated for the API, as keystonemiddleware does.

A token that is not one of Vigil's own is sent to Keystone as
``GET /v3/auth/tokens`` with ``X-Subject-Token``, authenticated with Vigil's own
session. Its roles decide what it may do: ``admin`` is Vigil's admin; a role of
``vim.openstack.monitor_roles`` a monitor of the token's project; any other a
member of the token's project (its id). A valid token is remembered until it
expires (at most :data:`VALID_FOR_S`), a refused one for :data:`INVALID_FOR_S`,
by its SHA-256 digest, at most :data:`CACHE_SIZE` of them. A Keystone that
cannot answer raises :class:`KeystoneUnavailable` (a ``ConnectionError``, which
the API answers 503); that is never remembered.
"""

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from vigil.vim.openstack.session import IDENTITY, ApiError, OpenStackSession

VALID_FOR_S = 300.0
INVALID_FOR_S = 10.0
CACHE_SIZE = 10_000
ADMIN_ROLE = "admin"

Identity = tuple[str, str]  # (project id, Vigil role: admin, member or monitor)


class KeystoneUnavailable(ConnectionError):
    """Keystone could not be reached, failed, or would not validate tokens for Vigil's user."""


def _expires_at(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def identity_of(token: dict[str, object], monitor_roles: Iterable[str]) -> Identity | None:
    """Vigil's (project, role) for Keystone's ``token`` body; None if it names no project and is not admin."""
    roles = {str(r.get("name")) for r in token.get("roles") or [] if isinstance(r, dict)}  # type: ignore[attr-defined]
    project = token.get("project")
    project_id = str(project["id"]) if isinstance(project, dict) and project.get("id") else None
    if ADMIN_ROLE in roles:
        return (project_id or "admin", "admin")
    if project_id is None or not roles:
        return None
    if roles & set(monitor_roles):
        return (project_id, "monitor")
    return (project_id, "member")


class KeystoneTokens:
    """The API's external token validation (``vigil.api.deps.ExternalTokens``) against Keystone."""

    def __init__(
        self,
        session: OpenStackSession,
        monitor_roles: Iterable[str] = ("service",),
        *,
        valid_for_s: float = VALID_FOR_S,
        invalid_for_s: float = INVALID_FOR_S,
        size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._monitor_roles = frozenset(monitor_roles)
        self._valid_for_s = valid_for_s
        self._invalid_for_s = invalid_for_s
        self._size = size
        self._clock = clock
        self._cache: dict[str, tuple[float, Identity | None]] = {}

    async def identify(self, token: str) -> Identity | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None:
            if cached[0] > now:
                return cached[1]
            del self._cache[key]
        identity, ttl = await self._validate(token)
        self._remember(key, now + ttl, identity)
        return identity

    def _remember(self, key: str, until: float, identity: Identity | None) -> None:
        if len(self._cache) >= self._size:
            now = self._clock()
            for stale in [k for k, (t, _) in self._cache.items() if t <= now]:
                del self._cache[stale]
            while len(self._cache) >= self._size:  # the oldest entry first (dicts keep insertion order)
                del self._cache[next(iter(self._cache))]
        self._cache[key] = (until, identity)

    async def _validate(self, token: str) -> tuple[Identity | None, float]:
        try:  # Vigil's own token and Keystone's endpoint first: their failures are not the caller's token's
            await self._session.token()
            base = await self._session.endpoint(IDENTITY)
        except ApiError as exc:
            raise KeystoneUnavailable(f"Keystone cannot validate tokens: {exc}") from exc
        path = "/auth/tokens" if base.rstrip("/").endswith("/v3") else "/v3/auth/tokens"
        try:
            response = await self._session.request(IDENTITY, "GET", path, headers={"X-Subject-Token": token})
        except ApiError as exc:
            if exc.status in (401, 404):  # Keystone's answers for an unknown, expired or revoked token
                return None, self._invalid_for_s
            if exc.unreachable or exc.status == 403:
                raise KeystoneUnavailable(f"Keystone cannot validate tokens: {exc}") from exc
            return None, self._invalid_for_s
        try:
            body = response.json()["token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeystoneUnavailable("Keystone answered a token validation with no token") from exc
        expires = _expires_at(body.get("expires_at"))
        if expires is None:
            return None, self._invalid_for_s
        left = (expires - datetime.now(UTC)).total_seconds()
        if left <= 0:
            return None, self._invalid_for_s
        identity = identity_of(body, self._monitor_roles)
        return identity, min(left, self._valid_for_s) if identity is not None else self._invalid_for_s
