"""What every route needs: the running engines, and who is calling.

The app's lifespan puts an :class:`ApiContext` on ``app.state``; routes take
it and the caller's :class:`~vigil.api.auth.Principal` as dependencies.
``require(...)`` answers 401 for a missing or unknown token and 403 for a
role that may not call the route. A token that is not one of Vigil's own is
handed to the context's :class:`ExternalTokens`, when there is one (Keystone,
with the OpenStack driver); if that cannot answer, the call is 503.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.controller.transactions import Transactions
from vigil.controller.vim import Vim
from vigil.domain.alarms import Alarm
from vigil.domain.deliveries import Delivery
from vigil.domain.events import ResourceEvent
from vigil.domain.faults import Fault, FaultEvent
from vigil.inspector.inspector import Inspector
from vigil.inspector.intake import Intake
from vigil.maintenance.service import MaintenanceService
from vigil.monitor.ingest import Ingest
from vigil.monitor.monitor import HeartbeatMonitor
from vigil.notifier.alarms import AlarmBook
from vigil.notifier.service import Notifier
from vigil.notifier.subscriptions import SubscriptionRegistry


class EventLog(Protocol):
    async def events(
        self,
        *,
        after_seq: int = 0,
        resource_type: str | None = None,
        resource_id: str | None = None,
        project: str | None = None,
        limit: int = 100,
    ) -> list[ResourceEvent]: ...


class RecordLog(Protocol):
    async def deliveries(
        self,
        *,
        state: str | None = None,
        subscription: str | None = None,
        fault: str | None = None,
        project: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]: ...

    async def delivery(self, ident: str) -> Delivery | None: ...

    async def fault_events(
        self, *, limit: int = 100, outcome: str | None = None, marker: str | None = None
    ) -> list[FaultEvent]: ...

    async def alarms(
        self,
        *,
        project: str | None = None,
        admin: bool = True,
        resource_id: str | None = None,
        severity: str | None = None,
        state: str | None = None,
        kind: str | None = None,
        marker: str | None = None,
        limit: int = 100,
    ) -> list[Alarm]: ...

    async def alarm(self, ident: str) -> Alarm | None: ...

    async def faults(self, *, state: str | None = None, marker: str | None = None, limit: int = 100) -> list[Fault]: ...

    async def fault(self, ident: str) -> Fault | None: ...


class ExternalTokens(Protocol):
    """Validates a token that is not one of Vigil's own with an identity service (Keystone)."""

    async def identify(self, token: str) -> tuple[str, str] | None:
        """The token's (project, role), the role ``admin``, ``member`` or ``monitor``; None if it is refused.

        Raises ``ConnectionError`` when the identity service cannot answer."""
        ...


@dataclass(frozen=True, slots=True)
class SubscriptionLimits:
    """The notifier's quotas (``notifier.max_subscriptions_per_project``, ``max_callbacks_per_subscription``)."""

    max_subscriptions_per_project: int = 20
    max_callbacks_per_subscription: int = 3


@dataclass(frozen=True, slots=True)
class ReportSigning:
    """How southbound reports are authenticated beyond the token: the shared
    ``monitor.key`` a signature is checked with, and whether one is required."""

    key: bytes | None = None
    required: bool = False


@dataclass(slots=True)
class FaultServices:
    """The fault-management engines the routes drive."""

    inspector: Inspector
    alarms: AlarmBook
    subscriptions: SubscriptionRegistry
    notifier: Notifier
    log: RecordLog
    intake: Intake
    monitor: HeartbeatMonitor | None = None
    limits: SubscriptionLimits = SubscriptionLimits()
    signing: ReportSigning = ReportSigning()
    ingest: Ingest | None = None  # Alertmanager's and Zabbix's events (vigil.monitor.ingest)


def embedded_vim() -> dict[str, Any]:
    """What ``GET /v1/vim`` shows of the embedded cloud: it follows nothing, being its own truth."""
    return {"driver": "embedded"}


class RulesApi(Protocol):
    """The rule templates in force (``vigil.rules_runtime.RulesControl``)."""

    def describe(self) -> dict[str, Any]: ...

    def reload(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class ApiContext:
    cloud: Vim  # the VIM driver the server runs: the embedded cloud by default
    transactions: Transactions
    events: EventLog
    tokens: TokenRegistry
    faults: FaultServices
    maintenance: MaintenanceService | None = None
    external_tokens: ExternalTokens | None = None  # tokens not Vigil's own: Keystone's, with vim.driver openstack
    vim_state: Callable[[], dict[str, Any]] = embedded_vim  # what GET /v1/vim shows of the VIM driver
    rules: RulesApi | None = None  # the rule templates, with rules.paths set


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]


# The token travels in X-Auth-Token (as Keystone's do); declared as an apiKey
# security scheme so the OpenAPI document, and Swagger UI's Authorize button, know it.
# auto_error is off so a missing token gets Vigil's own 401 (with WWW-Authenticate).
token_header = APIKeyHeader(
    name="X-Auth-Token",
    scheme_name="token",
    description="A Vigil API token (`vigil token create`); its role is admin, member (of one project) or monitor. "
    "`Authorization: Bearer <token>` is taken too (what Prometheus Alertmanager's http_config sends).",
    auto_error=False,
)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (what Prometheus Alertmanager's ``http_config``
    sends), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def authenticate(
    ctx: Context, request: Request, x_auth_token: Annotated[str | None, Depends(token_header)]
) -> Principal:
    token = x_auth_token or bearer(request.headers.get("authorization"))
    if not token:
        raise HTTPException(
            401, "missing X-Auth-Token header (or Authorization: Bearer)", headers={"WWW-Authenticate": "X-Auth-Token"}
        )
    principal = ctx.tokens.authenticate(token)
    if principal is None and ctx.external_tokens is not None:
        try:
            found = await ctx.external_tokens.identify(token)
        except ConnectionError as exc:
            raise HTTPException(503, f"the token cannot be validated now: {exc}") from exc
        if found is not None:
            principal = Principal(found[0], Role(found[1]))
    if principal is None:
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "X-Auth-Token"})
    return principal


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that lets only ``roles`` through."""
    allowed = ", ".join(roles)

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"this call needs the role {allowed}; the token has {principal.role}")
        return principal

    return check


Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Reader = Annotated[Principal, Depends(require(Role.ADMIN, Role.MEMBER))]
Reporter = Annotated[Principal, Depends(require(Role.ADMIN, Role.MONITOR))]
