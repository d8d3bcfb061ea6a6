"""The OpenAPI contract's error answers, and the ``Allow`` header that follows from it.

FastAPI documents only a 422, in its own ``{"detail": ...}`` shape. Vigil
answers every error as :class:`~vigil.api.errors.ErrorBody` instead, so
:func:`install` completes the generated document: each operation gets the
error statuses that follow from its shape (401 and 403 where it needs a
token, 404 where its path names a resource, 422 where there is input to
validate, 400 and 413 everywhere, for a body that is not JSON, a NUL in the
path or query, or a body over the size limit), and a route adds those that
follow from what it does with ``responses=errors(409)`` and the like. The
fuzzing suite (``tests/api/test_fuzz.py``) holds the document to what the
server really answers. The work is done on the document rather than on the
route objects, whose shape FastAPI keeps changing.

It also states two rules every input obeys that pydantic's schemas leave
out (:mod:`vigil.api.storable`): text holds no NUL character, and integers
fit 64 bits. A client generating requests from the document (schemathesis
does) then never sends a "valid" request the server must refuse.

A 405's ``Allow`` is taken from the same document: Starlette would name only
the methods of the first route whose path matches.
"""

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vigil.api.errors import ErrorBody, error_response

MEANINGS = {
    400: "The body is not JSON, or the path or a query parameter holds a NUL character (or the VIM refused the "
    "request as malformed: its message is given).",
    401: "The X-Auth-Token header is missing or the token unknown (or a report's signature is wrong).",
    403: "The token's role may not make this call, or the resource is not the caller's to change.",
    404: "No such resource, or none the caller may see: both get the same answer.",
    409: "The request conflicts with the resource's state or a limit (the message says which).",
    413: "The body is over the server's limit (server.max_body_bytes).",
    422: "The request is well-formed but cannot be acted on; `details` lists each problem.",
    502: "The VIM (Nova, Neutron) could not be reached or failed the call (the message says which).",
    503: "The part of Vigil the call needs is not running in this server.",
}
NO_NUL = r"^[^\x00]*$"
INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
_NOT_SCHEMAS = frozenset({"examples", "example", "default", "enum", "const", "properties"})
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error statuses it can answer beyond those derived from its shape."""
    return {code: _error(code) for code in codes}


def _error(code: int) -> dict[str, Any]:
    return {"description": MEANINGS[code], "content": _ERROR_CONTENT}


def derived_errors(operation: dict[str, Any]) -> set[int]:
    """The error statuses that follow from an operation's inputs and authentication."""
    codes = {400, 413}
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        codes |= {401, 403}
    if any(p["in"] == "path" or p["name"] == "marker" for p in parameters):
        codes.add(404)  # a missing resource, or a page marker that names none
    if parameters or "requestBody" in operation:
        codes.add(422)
    return codes


def storable(schema: Any) -> None:
    """State the store's limits in a schema and those it holds (in place): no NUL in free text or in the keys of
    free-form objects, 64-bit integers."""
    if isinstance(schema, list):
        for item in schema:
            storable(item)
        return
    if not isinstance(schema, dict):
        return
    free = not any(key in schema for key in ("format", "enum", "const", "pattern"))
    if schema.get("type") == "string" and free:
        schema["pattern"] = NO_NUL
    if schema.get("type") == "object" and schema.get("additionalProperties", False) is not False:
        schema.setdefault("propertyNames", {"pattern": NO_NUL})
    if schema.get("type") == "integer":
        for key, bound in INT64.items():
            schema.setdefault(key, bound)
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            storable(list(value.values()))
        elif key not in _NOT_SCHEMAS:
            storable(value)


def complete(document: dict[str, Any]) -> None:
    """Add the derived error responses and the error schemas to a generated document, and state the store's
    limits in its schemas (in place)."""
    storable(document.get("components", {}).get("schemas", {}))
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            storable([p.get("schema") for p in operation.get("parameters", [])])
            storable(operation.get("requestBody"))
            responses = operation.setdefault("responses", {})
            for code in sorted(derived_errors(operation)):
                declared = responses.get(str(code))
                if declared is None or "HTTPValidationError" in str(declared):
                    responses[str(code)] = _error(code)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorBody"] = error
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


class PathMethods:
    """Which methods each documented path serves, for a 405's ``Allow``."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._paths = [
            (
                re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"),
                _literals(path),
                _methods(item),
            )
            for path, item in document.get("paths", {}).items()
        ]

    def allowed(self, path: str) -> list[str]:
        """The methods of the most specific documented template matching ``path``: ``/{id}/detail`` rather than
        ``/{id}/{project}``, as a client reading the document would take it."""
        matches = [(literals, served) for pattern, literals, served in self._paths if pattern.match(path)]
        if not matches:
            return []
        best = max(literals for literals, _ in matches)
        return sorted(set().union(*(served for literals, served in matches if literals == best)))


def _literals(template: str) -> int:
    return sum(1 for segment in template.split("/") if segment and not segment.startswith("{"))


def _methods(item: dict[str, Any]) -> set[str]:
    methods = {m.upper() for m in _METHODS if m in item}
    return methods | {"HEAD"} if "GET" in methods else methods


def install(app: FastAPI) -> None:
    """Complete the app's OpenAPI document as it is generated, and answer 405s with the full ``Allow``."""
    generate = app.openapi
    index: list[PathMethods] = []

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(generate())
        return app.openapi_schema  # type: ignore[return-value]

    async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
        if not index:
            index.append(PathMethods(app.openapi()))
        detail, headers = (exc.detail, exc.headers or {}) if isinstance(exc, HTTPException) else ("", {})
        response = error_response(405, str(detail) or "Method Not Allowed")
        # A path the document leaves out (/docs, /openapi.json) keeps Starlette's answer.
        allowed = index[0].allowed(request.url.path)
        response.headers["Allow"] = ", ".join(allowed) if allowed else headers.get("Allow", "")
        return response

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(405, method_not_allowed)
