"""The OpenAPI document is a complete contract, and /docs shows it without the internet.

Found when probing (security issue, part 5): no security scheme (Swagger UI had
no Authorize button), errors documented in FastAPI's ``{"detail"}`` shape
instead of Vigil's, a 405 whose ``Allow`` named only the first matching route's
methods, a ``text/plain`` body answered 422, internal schema names
(``vigil__api__schemas__InstanceAction``), operations without descriptions, one
example in the whole document, and /docs loading Swagger UI from a CDN.
"""

import asyncio
import re
import shutil
import tempfile
from typing import Any

import httpx
import pytest
from conftest import Api

from vigil.api.contract import MEANINGS, derived_errors

METHODS = ("get", "put", "post", "delete", "patch")
ERROR_REF = "#/components/schemas/ErrorBody"


async def document(api: Api) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api.url) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), path, op) for path, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


async def test_an_api_key_scheme_guards_every_operation_but_the_health_check(api: Api) -> None:
    doc = await document(api)
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {"token"}
    assert {k: schemes["token"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Auth-Token",
    }
    for method, path, op in operations(doc):
        if path == "/healthz":
            assert "security" not in op
        else:
            assert op.get("security") == [{"token": []}], (method, path)


async def test_every_error_an_operation_can_answer_is_documented_in_vigils_shape(api: Api) -> None:
    doc = await document(api)
    for method, path, op in operations(doc):
        responses = op["responses"]
        for code in derived_errors(op):
            assert str(code) in responses, (method, path, code)
        for code, response in responses.items():
            if int(code) >= 400:
                assert response["description"] == MEANINGS[int(code)], (method, path, code)
                assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (method, path, code)
    error = doc["components"]["schemas"]["ErrorInfo"]
    assert set(error["properties"]) == {"code", "message", "details"}
    assert set(error["required"]) == {"code", "message"}
    by_route = {(m, p): set(op["responses"]) for m, p, op in operations(doc)}
    assert {"404", "409"} <= by_route[("POST", "/v1/instances")]  # a missing group, an anti-affinity conflict
    assert {"409", "503"} <= by_route[("POST", "/v1/maintenance")]
    assert "404" in by_route[("GET", "/v1/alarms")]  # a marker that names no alarm


async def test_no_internal_or_framework_schema_names_leak(api: Api) -> None:
    names = set((await document(api))["components"]["schemas"])
    assert not [n for n in names if "__" in n or n.startswith("vigil")]
    assert not names & {"HTTPValidationError", "ValidationError"}
    assert {"ErrorBody", "InstanceActionRequest", "SouthboundEvent"} <= names


async def test_every_operation_is_described_and_every_body_has_an_example(api: Api) -> None:
    doc = await document(api)
    schemas = doc["components"]["schemas"]
    for method, path, op in operations(doc):
        assert op.get("summary"), (method, path)
        assert len(op.get("description", "")) > 40, (method, path)
        body = op.get("requestBody")
        if body is None:
            continue
        schema = body["content"]["application/json"]["schema"]
        target = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
        assert target.get("examples"), (method, path)
    described = [
        (name, field)
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if "description" not in prop and "$ref" not in prop
    ]
    assert described == []


async def test_the_document_states_the_limits_the_server_enforces(api: Api) -> None:
    """No NUL in text, 64-bit integers: a client generating requests from the document is not refused."""
    schemas = (await document(api))["components"]["schemas"]
    assert schemas["BootRequest"]["properties"]["name"]["pattern"] == r"^[^\x00]*$"
    vcpus = schemas["BootRequest"]["properties"]["vcpus"]
    assert (vcpus["minimum"], vcpus["maximum"]) == (1, 1024)
    assert schemas["FaultOut"]["properties"]["id"]["pattern"] == r"^[^\x00]*$"
    reply = schemas["ReplyIn"]["properties"]["state"]
    assert {"ACK_PLANNED_MAINTENANCE", "NACK_MAINTENANCE"} <= set(reply["enum"])


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/alarms/some-alarm", "GET, HEAD, PATCH"),
        ("POST", "/v1/maintenance/some-session/detail", "GET, HEAD"),
        ("DELETE", "/v1/hosts", "GET, HEAD"),
        ("PUT", "/v1/subscriptions", "GET, HEAD, POST"),
    ],
)
async def test_a_405_allows_exactly_the_documented_methods(api: Api, method: str, path: str, allow: str) -> None:
    async with api.client("admin-token") as admin:
        response = await admin.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"error": {"code": 405, "message": "Method Not Allowed"}}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", '{"alarm_threshold": 2}'),
        ("application/x-www-form-urlencoded", "alarm_threshold=2"),
        ("application/xml", "<alarm_threshold>2</alarm_threshold>"),
        ("application/json", "{not json"),
    ],
)
async def test_a_body_that_is_not_json_is_a_400_whatever_its_content_type(
    api: Api, content_type: str, body: str
) -> None:
    async with api.client("admin-token") as admin:
        response = await admin.patch("/v1/server-groups/vnf-a-ha", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == 400
        unchanged = await admin.get("/v1/server-groups/vnf-a-ha")
    assert unchanged.json()["server_group"]["alarm_threshold"] != 2


async def test_docs_reference_only_assets_the_server_ships(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        html = page.text
        assert not re.search(r"https?://", html), "the page must not load anything from another host"
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert {a.rsplit("/", 1)[1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
        for asset in assets:
            assert asset.startswith("/docs/assets/"), asset
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 500, asset


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (make sysdeps installs it as root)")
@pytest.mark.timeout(120)
async def test_swagger_ui_renders_every_operation_and_authorize_without_the_internet(api: Api) -> None:
    """A real headless Chromium that can resolve no host name but loopback's address: the page, its script and
    the document come from Vigil, or nothing renders."""
    assert CHROMIUM is not None
    expected = len(operations(await document(api)))
    with tempfile.TemporaryDirectory(prefix="vigil-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--no-pings",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no CDN, no Google services
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{api.url}/docs",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        dom, _ = await asyncio.wait_for(proc.communicate(), 100)
    text = dom.decode(errors="replace")
    assert text.count('class="opblock-summary-path"') == expected, text[-2000:]
    assert re.search(r'class="btn authorize[^"]*"', text)
    assert "Vigil" in text
