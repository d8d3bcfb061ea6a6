"""A refusal from Nova or Neutron reaches Vigil's caller in the service's own words, with a status that says whose
problem it is, never as a 500.

The bodies are the shapes Nova 34, Neutron 29 and Keystone 30 answer with
(the first two seen on the test stack: ``tests/openstack/test_maintenance_openstack.py``
meets them for real). The statuses are checked through Vigil's own error
handlers, on a real HTTP server.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from vigil.api.errors import install_error_handlers
from vigil.domain.errors import Conflict, InvalidRequest, NotFound, VimFailed
from vigil.serving import BackgroundServer
from vigil.vim.openstack.refusals import refusal, service_message
from vigil.vim.openstack.session import ApiError

NOVA_400 = '{"badRequest": {"code": 400, "message": "Compute service of compute-3 is still in use."}}'
NOVA_409 = (
    '{"conflictingRequest": {"code": 409, "message": "Cannot \'os-migrateLive\' instance 42 while it is in '
    'vm_state stopped"}}'
)
NOVA_404 = '{"itemNotFound": {"code": 404, "message": "Instance 42 could not be found."}}'
NEUTRON_404 = '{"NeutronError": {"type": "PortNotFound", "message": "Port p-1 could not be found.", "detail": ""}}'
KEYSTONE_401 = '{"error": {"code": 401, "message": "The request you have made requires authentication."}}'


def nova_error(status: int | None, body: str, service: str = "compute") -> ApiError:
    return ApiError(f"POST {service}/servers/42/action: {status} {body}", status=status, service=service, body=body)


def test_each_services_message_is_found_in_its_own_wrapping() -> None:
    assert service_message(NOVA_400) == "Compute service of compute-3 is still in use."
    assert service_message(NEUTRON_404) == "Port p-1 could not be found."
    assert service_message(KEYSTONE_401) == "The request you have made requires authentication."
    assert service_message('{"message": "Nova is away"}') == "Nova is away"
    assert service_message("<html>Bad Gateway</html>") is None
    assert service_message("[1, 2]") is None


def test_a_refusal_becomes_the_domain_error_of_its_kind_with_the_services_words() -> None:
    bad = refusal(nova_error(400, NOVA_400), "evacuate server 42")
    assert isinstance(bad, InvalidRequest)
    assert str(bad) == "Nova refused to evacuate server 42: Compute service of compute-3 is still in use."

    conflict = refusal(nova_error(409, NOVA_409), "live-migrate server 42")
    assert isinstance(conflict, Conflict)
    assert str(conflict).endswith("while it is in vm_state stopped")

    missing = refusal(nova_error(404, NOVA_404), "stop server 42", kind="server", ident="42")
    assert isinstance(missing, NotFound)
    assert (missing.kind, missing.ident) == ("server", "42")
    assert str(missing) == "Nova refused to stop server 42: Instance 42 could not be found."

    port = refusal(nova_error(404, NEUTRON_404, "network"), "set port p-1's data_plane_status DOWN")
    assert str(port) == "Neutron refused to set port p-1's data_plane_status DOWN: Port p-1 could not be found."


def test_what_the_caller_cannot_change_is_the_vims_failure() -> None:
    for status, body in ((403, '{"forbidden": {"code": 403, "message": "Policy does not allow it."}}'), (429, "")):
        failed = refusal(nova_error(status, body), "migrate server 42")
        assert isinstance(failed, VimFailed)
        assert f"({status})" in str(failed)
    away = refusal(ApiError("POST compute/servers/42/action: ConnectError", service="compute"), "migrate server 42")
    assert isinstance(away, VimFailed)
    assert str(away).startswith("cannot migrate server 42: Nova could not be reached or failed")
    broken = refusal(nova_error(500, '{"computeFault": {"code": 500, "message": "Unexpected API Error."}}'), "x")
    assert isinstance(broken, VimFailed)
    token = refusal(nova_error(401, KEYSTONE_401, "identity"), "disable compute-1")
    assert isinstance(token, VimFailed)
    assert "Keystone refused to disable compute-1" in str(token)


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """Vigil's error handlers on a real server, with one route per kind of answer."""
    app = FastAPI()
    install_error_handlers(app)
    answers = {
        "bad": refusal(nova_error(400, NOVA_400), "evacuate server 42"),
        "conflict": refusal(nova_error(409, NOVA_409), "live-migrate server 42"),
        "missing": refusal(nova_error(404, NOVA_404), "stop server 42", kind="server", ident="42"),
        "away": refusal(ApiError("refused", service="compute"), "migrate server 42"),
    }

    @app.get("/{kind}")
    async def fail(kind: str) -> None:
        raise answers[kind]

    async with BackgroundServer(app, lifespan="off") as server, httpx.AsyncClient(base_url=server.url) as client:
        yield client


async def test_the_api_answers_each_with_its_status_and_the_services_message(api: httpx.AsyncClient) -> None:
    expected = {
        "bad": (400, "Nova refused to evacuate server 42: Compute service of compute-3 is still in use."),
        "conflict": (409, "Nova refused to live-migrate server 42: Cannot 'os-migrateLive' instance 42 while it is"),
        "missing": (404, "Nova refused to stop server 42: Instance 42 could not be found."),
        "away": (502, "cannot migrate server 42: Nova could not be reached or failed"),
    }
    for kind, (status, start) in expected.items():
        answer = await api.get(f"/{kind}")
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == status
        assert answer.json()["error"]["message"].startswith(start)
