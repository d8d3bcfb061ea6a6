"""A host's compute service is forced down in the form Nova takes, by the UUID Nova has now.

Vigil in front of the stand-in Nova (``openstack_standin``). Two Novas the
2.53 form alone would miss: one without 2.53 (answered 406), which takes
the 2.11 ``PUT /os-services/force-down`` by host and binary; and one whose
compute service was registered again under a new UUID after Vigil learnt
the old one (a 404 for it), where the push gave up and Nova never showed
the host down. ``tests/openstack/test_fault_push.py`` sends the 2.11 form
to the real Nova.
"""

from pathlib import Path

import pytest

from vigil.settings import Settings, load_settings
from vim.openstack_standin import OpenStackStandIn, report, until, vigil


@pytest.fixture
def settings(tmp_path: Path, standin: OpenStackStandIn) -> Settings:
    return load_settings(None, data_dir=tmp_path, inspector={"hold_down_s": 0}, vim=standin.vim_settings())


async def test_a_nova_without_2_53_is_forced_down_and_up_in_the_2_11_form(
    settings: Settings, standin: OpenStackStandIn
) -> None:
    standin.before_2_53 = True
    async with vigil(settings) as client, client("monitor") as monitor:
        answer = await monitor.post("/v1/event", json=report("compute-1", "d-1"))
        assert answer.json()["event"]["outcome"] == "fault_opened"
        await until(lambda: standin.shows_fault("compute-1"), "compute-1 down in Nova")
        answer = await monitor.post("/v1/event", json=report("compute-1", "u-1", "up"))
        assert answer.json()["event"]["outcome"] == "fault_cleared"
        await until(lambda: not standin.forced_down["compute-1"], "compute-1 up in Nova")
    assert standin.forms == ["2.11", "2.11"]


async def test_a_service_registered_again_under_a_new_uuid_is_found_again(
    settings: Settings, standin: OpenStackStandIn
) -> None:
    async with vigil(settings) as client, client("monitor") as monitor:
        standin.register_again("compute-1")  # after Vigil learnt its UUID at start
        answer = await monitor.post("/v1/event", json=report("compute-1", "d-1"))
        assert answer.json()["event"]["outcome"] == "fault_opened"
        await until(lambda: standin.shows_fault("compute-1"), "compute-1 down in Nova")
    assert standin.forms == ["2.53"]
