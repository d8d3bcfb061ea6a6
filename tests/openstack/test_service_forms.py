"""The forms before 2.53 that Vigil falls back to on a Nova without it, as the real Nova takes them.

Nova 34 still takes them below 2.53: ``PUT /os-services/force-down`` at
2.11 and ``/disable-log-reason`` and ``/enable`` by host and binary. The
directory set to use them (as it sets itself when Nova answers 2.53 with
406: ``tests/vim/test_service_forms.py``) forces compute-3 down and up and
disables and enables it, and Nova's 2.53 listing shows each.
"""

import asyncio
import time
from typing import Any

import pytest
from openstack_support import Stack

from vigil.demo_openstack import auth_from
from vigil.vim.openstack.services import SERVICES_MICROVERSION, ComputeServices
from vigil.vim.openstack.session import OpenStackSession

pytestmark = pytest.mark.openstack

HOST = "compute-3"


async def service(session: OpenStackSession) -> dict[str, Any]:
    found = await session.get(
        "compute", "/os-services", microversion=SERVICES_MICROVERSION, binary="nova-compute", host=HOST
    )
    return dict(found["services"][0])


async def each_form(stack: Stack, reason: str) -> list[tuple[str, bool, str | None]]:
    seen: list[tuple[str, bool, str | None]] = []
    async with OpenStackSession(auth_from(stack.credentials)) as session:
        services = ComputeServices(session)
        services.before_2_53 = True
        try:
            for body in (
                {"forced_down": True},
                {"forced_down": False},
                {"status": "disabled", "disabled_reason": reason},
                {"status": "enabled"},
            ):
                await services.update(HOST, body)
                now = await service(session)
                seen.append((now["status"], now["forced_down"], now["disabled_reason"]))
        finally:
            await services.update(HOST, {"forced_down": False, "status": "enabled"})
    return seen


def test_the_forms_before_2_53_force_and_disable_a_real_compute(openstack_stack: Stack) -> None:
    reason = f"forms-{time.time_ns()}"
    seen = asyncio.run(each_form(openstack_stack, reason))
    assert seen == [
        ("enabled", True, None),
        ("enabled", False, None),
        ("disabled", False, reason),
        ("enabled", False, None),
    ]
