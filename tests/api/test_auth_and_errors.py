"""Who may call what, and how refusals look: always JSON, never a 500."""

from collections.abc import Callable

import httpx
import pytest


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == response.status_code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


async def test_a_request_without_a_token_is_401(clients: Callable[[str | None], httpx.AsyncClient]) -> None:
    response = await clients(None).get("/v1/instances")
    assert response.status_code == 401
    assert "X-Auth-Token" in error_of(response)["message"]


async def test_an_unknown_token_is_401(clients: Callable[[str | None], httpx.AsyncClient]) -> None:
    response = await clients("not-a-token").get("/v1/instances")
    assert response.status_code == 401
    assert error_of(response)["message"] == "invalid token"


@pytest.mark.parametrize("path", ["/v1/hosts", "/v1/hosts/compute-1"])
async def test_members_may_not_read_hosts(vnf_a: httpx.AsyncClient, path: str) -> None:
    response = await vnf_a.get(path)
    assert response.status_code == 403
    assert "admin" in error_of(response)["message"]


@pytest.mark.parametrize("path", ["/v1/instances", "/v1/ports", "/v1/server-groups", "/v1/hosts"])
async def test_the_monitor_role_reads_no_resources(monitor: httpx.AsyncClient, path: str) -> None:
    response = await monitor.get(path)
    assert response.status_code == 403
    error_of(response)


async def test_members_may_not_move_instances(vnf_a: httpx.AsyncClient) -> None:
    response = await vnf_a.post("/v1/instances/vnf-a-app-act/action", json={"action": "migrate"})
    assert response.status_code == 403


async def test_a_missing_resource_is_404(admin: httpx.AsyncClient) -> None:
    for path in ("/v1/hosts/nowhere", "/v1/instances/nothing", "/v1/ports/none", "/v1/server-groups/none"):
        response = await admin.get(path)
        assert response.status_code == 404, path
        assert "not found" in str(error_of(response)["message"])


async def test_a_body_over_the_limit_is_413(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/instances", json={"name": "big", "metadata": {"blob": "x" * 8000}})
    assert response.status_code == 413
    assert "4096" in str(error_of(response)["message"])


async def test_a_chunked_body_over_the_limit_is_413(admin: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b'{"name": "' + b"x" * 1000

    response = await admin.post("/v1/instances", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    error_of(response)


async def test_a_body_that_is_not_json_is_400(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/instances", content=b"{name: ", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in str(error_of(response)["message"])


async def test_a_body_of_the_wrong_shape_is_422_naming_the_field(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/instances", json={"name": "x", "project": "vnf-a", "vcpus": "many"})
    assert response.status_code == 422
    error = error_of(response)
    assert "vcpus" in str(error["message"])
    assert error["details"][0]["loc"][-1] == "vcpus"  # type: ignore[index]


async def test_an_unknown_field_is_422_not_ignored(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/hosts/compute-1/action", json={"action": "disable", "forever": True})
    assert response.status_code == 422
    assert "forever" in str(error_of(response)["message"])


async def test_a_bad_query_parameter_is_422(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/v1/instances", params={"state": "SLEEPING"})
    assert response.status_code == 422
    error_of(response)


async def test_an_illegal_transition_is_409(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/v1/instances/vnf-a-app-act/action", json={"action": "reset-state", "state": "MIGRATING"}
    )
    assert response.status_code == 409
    assert "reset-state" in str(error_of(response)["message"])


async def test_the_openapi_document_is_served(clients: Callable[[str | None], httpx.AsyncClient]) -> None:
    response = await clients(None).get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/v1/hosts", "/v1/instances/{ident}", "/v1/ports", "/v1/server-groups"):
        assert path in paths


async def test_an_unknown_path_is_a_json_404(clients: Callable[[str | None], httpx.AsyncClient]) -> None:
    response = await clients(None).get("/v2/nothing")
    assert response.status_code == 404
    error_of(response)
