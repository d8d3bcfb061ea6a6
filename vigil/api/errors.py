"""Every error the API returns is JSON: ``{"error": {"code", "message"}}``.

``code`` is the HTTP status. Domain errors map by class: NotFound 404,
AlreadyExists and Conflict (illegal transitions, no valid host) 409,
InvalidTopology and other domain errors 422. A body that is not JSON is
400; one that is JSON of the wrong shape is 422, with each problem listed
in ``details``. Anything unexpected is logged and answered 500 in the same
shape, never as an HTML page or a dropped connection.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.domain.errors import AlreadyExists, Conflict, DomainError, NotFound

log = logging.getLogger(__name__)


def error_response(status: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": status, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def _domain_status(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AlreadyExists | Conflict):
        return 409
    return 422


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "request body is not valid JSON", details)
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details)
        return error_response(422, f"invalid request: {summary}", details)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return error_response(_domain_status(exc), str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server log has the details")
