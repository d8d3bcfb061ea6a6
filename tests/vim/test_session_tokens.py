"""The OpenStack session's Keystone token: taken on the event loop while it is far from expiry, renewed near it.

A fault's calls to Nova each asked keystoneauth for the token in a worker
thread, so a hundred concurrent calls queued for the executor's few
threads. A token the plugin holds with more than its minimum life left
(keystoneauth's own rule, 120 s) is now taken without a thread; one nearer
expiry still goes through keystoneauth, which authenticates again. Against
the stand-in Keystone and Nova (``openstack_standin``).
"""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from vigil.vim.openstack import session as session_module
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession
from vim.openstack_standin import OpenStackStandIn


def auth(standin: OpenStackStandIn) -> OpenStackAuth:
    o = standin.vim_settings()["openstack"]
    return OpenStackAuth(
        o["auth_url"], username="admin", password="secret", project_name="admin",
        endpoint_overrides=o["endpoint_overrides"],
    )  # fmt: skip


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the session sends to a worker thread."""
    sent: list[str] = []
    real = asyncio.to_thread

    async def counted(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(session_module.asyncio, "to_thread", counted)
    return sent


async def test_a_token_far_from_expiry_is_taken_without_a_thread(standin: OpenStackStandIn, threads: list[str]) -> None:
    async with OpenStackSession(auth(standin)) as session:
        await session.get("compute", "/os-services")  # the first authenticates, in a thread
        first = len(threads)
        await asyncio.gather(*(session.get("compute", "/os-services") for _ in range(20)))
    assert "get_token" in threads[:first]
    assert threads[first:] == []
    assert standin.tokens_issued == 1


async def test_a_token_near_expiry_is_renewed(standin: OpenStackStandIn, threads: list[str]) -> None:
    standin.token_life_s = 60  # under keystoneauth's minimum life: renewed before every use
    async with OpenStackSession(auth(standin)) as session:
        for _ in range(3):
            await session.get("compute", "/os-services")
    assert threads.count("get_token") == 3
    assert standin.tokens_issued == 3


async def test_a_process_that_no_longer_leads_makes_no_call(standin: OpenStackStandIn, threads: list[str]) -> None:
    """High availability: once the leader's lease lapsed by this process's clock, no call leaves it."""
    from vigil.domain.errors import NotLeader

    leads = [True]
    async with OpenStackSession(auth(standin)) as session:
        session.acting = lambda: leads[0]
        await session.get("compute", "/os-services")
        issued = standin.tokens_issued
        leads[0] = False
        with pytest.raises(NotLeader, match="new leader"):
            await session.request("compute", "PUT", "/os-services/x", json={"forced_down": True})
    assert standin.tokens_issued == issued
    assert standin.forced_down == {f"compute-{i}": False for i in range(1, standin.computes + 1)}
