"""The FastAPI application.

``create_app`` takes a factory for the :class:`~vigil.api.deps.ApiContext`
(an async context manager: the wiring opens the store and starts the
engines in it, and closes them on the way out), so the app itself knows no
concrete adapter and tests run it against the real engines.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

import vigil
from vigil.api.contract import install as install_contract
from vigil.api.deps import ApiContext
from vigil.api.docs import install as install_docs
from vigil.api.errors import install_error_handlers
from vigil.api.limits import BodySizeLimit, NulRefusal
from vigil.api.routes import (
    alarms,
    events,
    faults,
    groups,
    hosts,
    ingest,
    instances,
    maintenance,
    monitor,
    network,
    rules,
    southbound,
    subscriptions,
    vim,
)

ContextFactory = Callable[[], AbstractAsyncContextManager[ApiContext]]

DESCRIPTION = """\
Vigil detects infrastructure faults, marks the affected virtual resources down
and notifies their owners at once (OPNFV Doctor's fault management), and
coordinates host maintenance with each project's application manager.

Every call but `/healthz` needs a token in `X-Auth-Token` (the Authorize
button). Its role decides what it may do: `admin` everything, `member` its
own project's resources (another project's answer 404, as a missing one
does), `monitor` only the southbound event reports. Errors are always
`{"error": {"code", "message", "details"?}}`.
"""


def create_app(start: ContextFactory, *, max_body_bytes: int = 1_048_576) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start() as ctx:
            app.state.context = ctx
            yield

    app = FastAPI(
        title="Vigil",
        version=vigil.__version__,
        summary="Fault management and maintenance coordination for virtualized infrastructure (OPNFV Doctor)",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(NulRefusal)
    for module in (hosts, instances, network, groups, events, monitor, maintenance, vim, ingest, rules):
        app.include_router(module.router, prefix="/v1")
    for module in (southbound, faults, alarms, subscriptions):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"], summary="Liveness: answers while the process serves")
    async def healthz() -> dict[str, str]:
        """Answers ``{"status": "ok"}`` without a token while the process serves requests."""
        return {"status": "ok"}

    install_docs(app)
    install_contract(app)
    return app
