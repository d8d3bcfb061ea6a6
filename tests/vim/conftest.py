"""The stand-in Keystone, Nova and Neutron (``openstack_standin``) with one server, s-1 on compute-1, for each test."""

from collections.abc import AsyncIterator

import pytest

from vim.openstack_standin import OpenStackStandIn


@pytest.fixture
async def standin() -> AsyncIterator[OpenStackStandIn]:
    cloud = OpenStackStandIn()
    cloud.add_server("s-1", "compute-1")
    await cloud.start()
    try:
        yield cloud
    finally:
        await cloud.stop()
