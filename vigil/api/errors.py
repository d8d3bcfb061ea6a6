"""Every error the API returns is JSON: ``{"error": {"code", "message", "details"?}}``.

``code`` is the HTTP status. Domain errors map by class: NotFound 404,
AlreadyExists and Conflict (illegal transitions, no valid host) 409,
InvalidRequest (a VIM refused the request as malformed) 400, VimFailed
(the VIM could not be reached or failed) 502, InvalidTopology and other
domain errors 422. A body that is not JSON is
400, whatever its content type (FastAPI would hand a ``text/plain`` body on
as a string and fail its validation with a 422); one that is JSON of the
wrong shape is 422, with each problem listed in ``details``. Anything unexpected is logged and answered
500 in the same shape, never as an HTML page or a dropped connection.

:class:`ErrorBody` is both what the handlers serialize and what the OpenAPI
document declares (:mod:`vigil.api.contract`), so the two cannot drift.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.domain.errors import AlreadyExists, Conflict, DomainError, InvalidRequest, NotFound, VimFailed

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """One problem with a request's fields."""

    loc: list[str] = Field(description="Where: the part of the request (body, query, path, header), then the field.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of problem, e.g. missing, string_too_long, json_invalid.")


class ErrorInfo(BaseModel):
    code: int = Field(description="The HTTP status again.", examples=[404])
    message: str = Field(description="What went wrong, for a person.", examples=["instance 42 not found"])
    details: list[ErrorDetail] | None = Field(None, description="For 400 and 422: each problem with the request.")


class ErrorBody(BaseModel):
    """Vigil's one error shape."""

    error: ErrorInfo


def error_response(status: int, message: str, details: list[ErrorDetail] | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorInfo(code=status, message=message, details=details or None))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


def _domain_status(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AlreadyExists | Conflict):
        return 409
    if isinstance(exc, InvalidRequest):
        return 400
    if isinstance(exc, VimFailed):
        return 502
    return 422


def _validation_details(exc: RequestValidationError) -> list[ErrorDetail]:
    return [
        ErrorDetail(loc=[str(p) for p in e.get("loc", ())], msg=str(e.get("msg", "")), type=str(e.get("type", "")))
        for e in exc.errors()
    ]


def _json_media_type(content_type: str) -> bool:
    """What FastAPI parses as JSON: no content type, ``application/json`` or ``application/*+json``."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


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
        if any(d.type == "json_invalid" for d in details):
            return error_response(400, "request body is not valid JSON", details)
        content_type = request.headers.get("content-type", "")
        if any(d.loc[:1] == ["body"] for d in details) and not _json_media_type(content_type):
            return error_response(400, f"request body must be JSON (application/json), not {content_type}")
        summary = "; ".join(f"{'.'.join(d.loc)}: {d.msg}" for d in details)
        return error_response(422, f"invalid request: {summary}", details)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return error_response(_domain_status(exc), str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server log has the details")
