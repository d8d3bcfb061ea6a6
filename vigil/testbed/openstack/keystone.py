"""Keystone for the stack: bootstrap, the service users and the catalog, and tokens.

Operators run Keystone, and Vigil's OpenStack driver will authenticate
through it (keystoneauth, the catalog), so the test stack runs a real one
(30.0.0, fernet tokens) rather than a paste filter that trusts a header.
Setting it up is two steps: ``keystone-manage`` (schema, keys, the admin
user, project, roles and the identity endpoint) before it runs, then, over
its REST API, what ``keystone-manage`` cannot make: the ``service`` project,
a user per service (roles admin and service, as Nova's and Neutron's
policies expect of a service), and the catalog entries of compute,
placement, network and image. Both steps are idempotent, so ``up`` may run
them again on a stack that was set up before.
"""

import grp
import os
import pwd
import subprocess
from typing import Any

import httpx

from vigil.testbed.openstack.layout import (
    ADMIN_PROJECT,
    ADMIN_USER,
    COMPUTE_URL,
    IMAGE_URL,
    KEYSTONE_URL,
    NETWORK_URL,
    PLACEMENT_URL,
    REGION,
    SERVICE_PROJECT,
    SERVICE_USERS,
    Layout,
)

CATALOG = (
    ("nova", "compute", COMPUTE_URL),
    ("placement", "placement", PLACEMENT_URL),
    ("neutron", "network", NETWORK_URL),
    ("glance", "image", IMAGE_URL),
)
SERVICE_ROLES = ("admin", "service")
INTERFACES = ("public", "internal")


class KeystoneError(RuntimeError):
    pass


def manage_commands(layout: Layout, admin_password: str) -> list[list[str]]:
    """The ``keystone-manage`` steps, in order (run before Keystone serves)."""
    base = [str(layout.bin("keystone-manage")), "--config-file", str(layout.etc / "keystone" / "keystone.conf")]
    owner = [
        "--keystone-user",
        pwd.getpwuid(os.getuid()).pw_name,
        "--keystone-group",
        grp.getgrgid(os.getgid()).gr_name,
    ]
    return [
        [*base, "db_sync"],
        [*base, "fernet_setup", *owner],
        [*base, "credential_setup", *owner],
        [
            *base,
            "bootstrap",
            "--bootstrap-password",
            admin_password,
            "--bootstrap-username",
            ADMIN_USER,
            "--bootstrap-project-name",
            ADMIN_PROJECT,
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-region-id",
            REGION,
            "--bootstrap-admin-url",
            KEYSTONE_URL,
            "--bootstrap-internal-url",
            KEYSTONE_URL,
            "--bootstrap-public-url",
            KEYSTONE_URL,
        ],
    ]


def bootstrap(layout: Layout, admin_password: str) -> None:
    log = layout.log("setup-keystone")
    with log.open("a") as out:
        for argv in manage_commands(layout, admin_password):
            shown = [a if a != admin_password else "***" for a in argv]
            out.write(f"$ {' '.join(shown)}\n")
            out.flush()
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=300)
            if done.returncode != 0:
                raise KeystoneError(f"keystone-manage {argv[3]} failed (exit {done.returncode}); see {log}")


def password_auth(
    username: str, password: str, project: str, *, user_domain: str = "Default", project_domain: str = "Default"
) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": username, "domain": {"name": user_domain}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"name": project_domain}}},
        }
    }


def issue_token(password: str, *, username: str = ADMIN_USER, project: str = ADMIN_PROJECT) -> tuple[str, Any]:
    """A project-scoped token and its body (with the catalog), by password."""
    response = httpx.post(f"{KEYSTONE_URL}/auth/tokens", json=password_auth(username, password, project), timeout=30)
    if response.status_code != 201:
        raise KeystoneError(f"Keystone refused {username}'s password: {response.status_code} {response.text[:200]}")
    return response.headers["X-Subject-Token"], response.json()


class _Admin:
    """Find-or-create over Keystone's v3 API with the admin's token."""

    def __init__(self, token: str) -> None:
        self.http = httpx.Client(base_url=KEYSTONE_URL, headers={"X-Auth-Token": token}, timeout=30)

    def close(self) -> None:
        self.http.close()

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise KeystoneError(
                f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
            )
        return response.json() if response.content else None

    def find(self, collection: str, **filters: str) -> dict[str, Any] | None:
        items: list[dict[str, Any]] = self._ok(self.http.get(f"/{collection}", params=filters))[collection]
        return items[0] if items else None

    def ensure(self, collection: str, singular: str, body: dict[str, Any], **filters: str) -> dict[str, Any]:
        found = self.find(collection, **filters)
        if found is not None:
            return found
        created: dict[str, Any] = self._ok(self.http.post(f"/{collection}", json={singular: body}))[singular]
        return created

    def set_password(self, user_id: str, password: str) -> None:
        self._ok(self.http.patch(f"/users/{user_id}", json={"user": {"password": password}}))

    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        self._ok(self.http.put(f"/projects/{project_id}/users/{user_id}/roles/{role_id}"))

    def endpoints(self, service_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._ok(self.http.get("/endpoints", params={"service_id": service_id}))[
            "endpoints"
        ]
        return found


def register_services(admin_password: str, service_password: str) -> None:
    """The service project and users, their roles, and the catalog (idempotent)."""
    token, _ = issue_token(admin_password)
    admin = _Admin(token)
    try:
        project = admin.ensure(
            "projects",
            "project",
            {"name": SERVICE_PROJECT, "domain_id": "default", "description": "OpenStack's own services"},
            name=SERVICE_PROJECT,
        )
        roles = {name: admin.ensure("roles", "role", {"name": name}, name=name) for name in SERVICE_ROLES}
        for name in SERVICE_USERS:
            user = admin.ensure(
                "users",
                "user",
                {"name": name, "domain_id": "default", "password": service_password, "enabled": True},
                name=name,
            )
            admin.set_password(user["id"], service_password)  # the same password, whoever made the user
            for role in roles.values():
                admin.grant(project["id"], user["id"], role["id"])
        for name, kind, endpoint_url in CATALOG:
            service = admin.ensure("services", "service", {"name": name, "type": kind, "enabled": True}, type=kind)
            have = {(e["interface"], e["region_id"]) for e in admin.endpoints(service["id"])}
            for interface in INTERFACES:
                if (interface, REGION) not in have:
                    body = {
                        "service_id": service["id"],
                        "interface": interface,
                        "url": endpoint_url,
                        "region_id": REGION,
                        "enabled": True,
                    }
                    admin._ok(admin.http.post("/endpoints", json={"endpoint": body}))
    finally:
        admin.close()
