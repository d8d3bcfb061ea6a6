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
from vigil.api.deps import ApiContext
from vigil.api.errors import install_error_handlers
from vigil.api.limits import BodySizeLimit, NulRefusal
from vigil.api.routes import (
    alarms,
    events,
    faults,
    groups,
    hosts,
    instances,
    maintenance,
    monitor,
    network,
    southbound,
    subscriptions,
)

ContextFactory = Callable[[], AbstractAsyncContextManager[ApiContext]]


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
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(NulRefusal)
    for module in (hosts, instances, network, groups, events, monitor, maintenance):
        app.include_router(module.router, prefix="/v1")
    for module in (southbound, faults, alarms, subscriptions):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"], summary="Liveness: answers while the process serves")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
