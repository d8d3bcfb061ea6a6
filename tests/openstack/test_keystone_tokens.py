"""Keystone tokens on Vigil's API, as keystonemiddleware takes them (issue 11).

With ``vim.driver: openstack`` a real ``vigil serve`` validates a token that is
not one of its own with the stack's Keystone (``GET /v3/auth/tokens``): the
``admin`` role is Vigil's admin, a role of ``vim.openstack.monitor_roles`` a
monitor, any other a member of the token's project. The users, project and
role assignments are made in Keystone through its API here, and deleted after.
"""

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openstack_support import Stack

from vigil.demo_openstack import vim_settings
from vigil.harness.server import ServeProcess
from vigil.vim.openstack.keystone_tokens import KeystoneTokens, KeystoneUnavailable
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(300)]

VIGIL_ADMIN = "keystone-test-vigil-admin"
MONITOR_ROLE = "vigil-test-monitor"


def dead_url() -> str:
    """A local URL nothing listens on (a port just bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v3"


def user_token(stack: Stack, name: str, password: str, project_id: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": name, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"id": project_id}},
        }
    }
    response = httpx.post(f"{stack.credentials['auth_url']}/auth/tokens", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


@pytest.fixture
def keystone(openstack_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=openstack_stack.credentials["auth_url"],
        headers={"X-Auth-Token": openstack_stack.token()},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def tenant(openstack_stack: Stack, keystone: httpx.Client) -> Iterator[dict[str, str]]:
    """A project of its own, a member user and a monitor user in it (deleted after)."""
    tag = uuid.uuid4().hex[:8]
    made: list[str] = []  # paths to DELETE, newest last
    try:
        project = keystone.post("/projects", json={"project": {"name": f"vigil-kt-{tag}", "domain_id": "default"}})
        assert project.status_code == 201, project.text
        project_id = project.json()["project"]["id"]
        made.append(f"/projects/{project_id}")
        roles = {r["name"]: r["id"] for r in keystone.get("/roles").json()["roles"]}
        assert "member" in roles, sorted(roles)
        if MONITOR_ROLE not in roles:
            created = keystone.post("/roles", json={"role": {"name": MONITOR_ROLE}})
            assert created.status_code == 201, created.text
            roles[MONITOR_ROLE] = created.json()["role"]["id"]
            made.append(f"/roles/{roles[MONITOR_ROLE]}")
        users: dict[str, str] = {}
        password = uuid.uuid4().hex
        for kind, role in (("member", "member"), ("monitor", MONITOR_ROLE)):
            body = {"user": {"name": f"vigil-kt-{kind}-{tag}", "password": password, "domain_id": "default"}}
            user = keystone.post("/users", json=body)
            assert user.status_code == 201, user.text
            users[kind] = user.json()["user"]["id"]
            made.append(f"/users/{users[kind]}")
            granted = keystone.put(f"/projects/{project_id}/users/{users[kind]}/roles/{roles[role]}")
            assert granted.status_code == 204, granted.text
        yield {
            "project": project_id,
            "member": user_token(openstack_stack, f"vigil-kt-member-{tag}", password, project_id),
            "member_again": user_token(openstack_stack, f"vigil-kt-member-{tag}", password, project_id),
            "monitor": user_token(openstack_stack, f"vigil-kt-monitor-{tag}", password, project_id),
        }
    finally:
        for path in reversed(made):
            keystone.delete(path)


def serve(stack: Stack, data_dir: Path, **openstack: Any) -> ServeProcess:
    vim = vim_settings(stack.credentials)
    vim["openstack"].update(openstack)
    return ServeProcess(data_dir, {VIGIL_ADMIN: {"project": "admin", "role": "admin"}}, settings={"vim": vim})


def up_report(ident: str) -> dict[str, Any]:
    """A recovery of a host that is up: taken, and nothing to push to Nova."""
    return {
        "time": "2026-12-07T00:00:00Z",
        "type": "compute.host.up",
        "details": {"hostname": "compute-2", "status": "up", "monitor": "keystone-test", "monitor_event_id": ident},
    }


def test_keystone_tokens_are_taken_by_their_roles(
    openstack_stack: Stack, keystone: httpx.Client, tenant: dict[str, str], tmp_path: Path
) -> None:
    server = serve(openstack_stack, tmp_path / "vigil", monitor_roles=["service", MONITOR_ROLE])
    admin_token = openstack_stack.token()
    revoked = tenant.pop("member_again")
    gone = keystone.delete("/auth/tokens", headers={"X-Subject-Token": revoked})
    assert gone.status_code == 204, gone.text

    async def scenario() -> dict[str, httpx.Response]:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

                def as_(token: str) -> dict[str, str]:
                    return {"X-Auth-Token": token}

                seen = {
                    "admin event": await client.post(
                        "/v1/event", json=up_report(f"kt-{uuid.uuid4().hex}"), headers=as_(admin_token)
                    ),
                    "admin hosts": await client.get("/v1/hosts", headers=as_(admin_token)),
                    "admin hosts again": await client.get("/v1/hosts", headers=as_(admin_token)),
                    "admin instances": await client.get("/v1/instances", headers=as_(admin_token)),
                    "member instances": await client.get("/v1/instances", headers=as_(tenant["member"])),
                    "member hosts": await client.get("/v1/hosts", headers=as_(tenant["member"])),
                    "member event": await client.post(
                        "/v1/event", json=up_report(f"kt-{uuid.uuid4().hex}"), headers=as_(tenant["member"])
                    ),
                    "monitor event": await client.post(
                        "/v1/event", json=up_report(f"kt-{uuid.uuid4().hex}"), headers=as_(tenant["monitor"])
                    ),
                    "monitor instances": await client.get("/v1/instances", headers=as_(tenant["monitor"])),
                    "garbage": await client.get("/v1/hosts", headers=as_(uuid.uuid4().hex)),
                    "revoked": await client.get("/v1/instances", headers=as_(revoked)),
                    "vigil's own": await client.get("/v1/hosts", headers=as_(VIGIL_ADMIN)),
                }
                return seen
        finally:
            await server.stop()

    seen = asyncio.run(scenario())
    assert seen["admin event"].status_code == 200, seen["admin event"].text
    assert seen["admin hosts"].status_code == 200, seen["admin hosts"].text
    assert seen["admin hosts again"].status_code == 200, seen["admin hosts again"].text
    assert seen["admin instances"].status_code == 200, seen["admin instances"].text
    member = seen["member instances"]
    assert member.status_code == 200, member.text
    assert all(i["project"] == tenant["project"] for i in member.json()["instances"]), member.text
    others = [i for i in seen["admin instances"].json()["instances"] if i["project"] != tenant["project"]]
    assert not {i["id"] for i in others} & {i["id"] for i in member.json()["instances"]}
    assert seen["member hosts"].status_code == 403, seen["member hosts"].text
    assert seen["member event"].status_code == 403, seen["member event"].text
    assert seen["monitor event"].status_code == 200, seen["monitor event"].text
    assert seen["monitor instances"].status_code == 403, seen["monitor instances"].text
    assert seen["garbage"].status_code == 401, seen["garbage"].text
    assert seen["revoked"].status_code == 401, seen["revoked"].text
    assert seen["vigil's own"].status_code == 200, seen["vigil's own"].text


def test_a_keystone_that_cannot_be_reached_is_503_not_401(openstack_stack: Stack, tmp_path: Path) -> None:
    """Vigil authenticates itself with the real Keystone; the validation goes to an identity endpoint nobody
    listens on. Vigil's own tokens still work."""
    server = serve(openstack_stack, tmp_path / "vigil", endpoint_overrides={"identity": dead_url()})

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                keystone_s = await client.get("/v1/hosts", headers={"X-Auth-Token": openstack_stack.token()})
                own = await client.get("/v1/hosts", headers={"X-Auth-Token": VIGIL_ADMIN})
                return keystone_s, own
        finally:
            await server.stop()

    keystone_s, own = asyncio.run(scenario())
    assert keystone_s.status_code == 503, keystone_s.text
    assert "cannot be validated" in keystone_s.json()["error"]["message"], keystone_s.text
    assert own.status_code == 200, own.text


def test_the_validator_remembers_refusals_and_says_when_keystone_is_away(openstack_stack: Stack) -> None:
    c = openstack_stack.credentials
    auth = OpenStackAuth(
        auth_url=c["auth_url"],
        username=c["username"],
        password=c["password"],
        project_name=c["project_name"],
        region_name=c.get("region_name"),
    )
    now = [0.0]

    async def scenario() -> None:
        async with OpenStackSession(auth) as session:
            tokens = KeystoneTokens(session, clock=lambda: now[0], size=2)
            admin = await tokens.identify(openstack_stack.token())
            assert admin is not None
            assert admin[1] == "admin"
            garbage = uuid.uuid4().hex
            assert await tokens.identify(garbage) is None
            assert await tokens.identify(garbage) is None  # remembered
            assert await tokens.identify(uuid.uuid4().hex) is None  # a third token: the oldest is forgotten
            assert len(tokens._cache) == 2
        away = OpenStackAuth(**{**auth.__dict__, "endpoint_overrides": {"identity": dead_url()}})
        async with OpenStackSession(away) as session:
            with pytest.raises(KeystoneUnavailable):
                await KeystoneTokens(session).identify(uuid.uuid4().hex)

    asyncio.run(scenario())
