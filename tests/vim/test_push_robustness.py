"""An answer Nova does not document gives up that one call, never the pusher.

The pusher is one task for the life of ``vigil serve``: an exception that
escaped a call (a body without the key Nova documents, a bug) would end it,
and every later fault would reach Nova no more, silently. Such a call is
given up and logged like a refused one; if it was probing a service that
was away, another call takes the probe over rather than waiting for ever.
A stand-in Nova (``openstack_standin``) answers ``os-services`` with ``{}``.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.model import ResourceType
from vigil.domain.retry import RetryPolicy
from vigil.vim.openstack.push import FaultPusher
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession
from vim.openstack_standin import OpenStackStandIn

QUICK = RetryPolicy(initial_s=0.01, max_delay_s=0.02, max_attempts=3)


@pytest.fixture
async def pusher(standin: OpenStackStandIn) -> AsyncIterator[FaultPusher]:
    o = standin.vim_settings()["openstack"]
    auth = OpenStackAuth(
        o["auth_url"], username="admin", password="x", project_name="admin", endpoint_overrides=o["endpoint_overrides"]
    )
    async with OpenStackSession(auth) as session:
        yield FaultPusher(session, policy=QUICK)


def forced(host: str) -> ResourceEvent:
    return ResourceEvent(
        1, datetime.now(UTC), ResourceType.HOST, host, EventAction.UPDATED, {"forced_down": (False, True)},
        reason="fault event",
    )  # fmt: skip


def reset(server: str) -> ResourceEvent:
    return ResourceEvent(
        1, datetime.now(UTC), ResourceType.INSTANCE, server, EventAction.UPDATED, {"state": ("ACTIVE", "ERROR")},
        reason="fault event",
    )  # fmt: skip


async def test_a_malformed_answer_gives_up_its_call_and_the_others_land(
    standin: OpenStackStandIn, pusher: FaultPusher
) -> None:
    standin.malformed = True
    await asyncio.wait_for(pusher.push(pusher.pushes_for([forced("compute-1"), reset("s-1")])), 10)
    assert standin.servers["s-1"]["status"] == "ERROR"
    assert not standin.forced_down["compute-1"]
    assert pusher.counters.failed == 1

    standin.malformed = False  # the pusher is still there for the next fault
    await asyncio.wait_for(pusher.push(pusher.pushes_for([forced("compute-1")])), 10)
    assert standin.forced_down["compute-1"]


async def test_a_probe_that_fails_so_hands_the_probe_to_a_waiting_call(
    standin: OpenStackStandIn, pusher: FaultPusher
) -> None:
    standin.nova_status = 503
    probing = asyncio.create_task(pusher.push(pusher.pushes_for([forced("compute-1")])), name="test.probe")
    waiting: asyncio.Task[None] | None = None
    try:
        deadline = time.monotonic() + 10
        while standin.refused < 2:  # the outage began: the forced_down push probes Nova
            assert time.monotonic() < deadline, "Nova was not asked"
            await asyncio.sleep(0.01)
        waiting = asyncio.create_task(pusher.push(pusher.pushes_for([reset("s-1")])), name="test.waiting")
        await asyncio.sleep(0.05)
        standin.malformed, standin.nova_status = True, None  # back, but the probe's own call breaks
        await asyncio.wait_for(asyncio.gather(probing, waiting), 10)
    finally:
        for task in (probing, waiting):
            if task is not None:
                task.cancel()
    assert standin.servers["s-1"]["status"] == "ERROR"
    assert pusher.counters.failed == 1
