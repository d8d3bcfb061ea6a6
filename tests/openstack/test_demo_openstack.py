"""``vigil demo fault --openstack``: Doctor's fault test on the real stack, through the CLI as a person runs it."""

import json

import pytest
from openstack_support import Stack, vigil

pytestmark = pytest.mark.openstack


def test_the_openstack_demo_measures_notification_and_nova_consistency(openstack_stack: Stack) -> None:
    credentials = openstack_stack.base / "credentials.json"
    done = vigil("demo", "fault", "--openstack", "--instances", "3", "--json", "--credentials", str(credentials))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["error"] is None
    assert result["instances"] == 3
    assert result["notification_ms"] > 0
    assert result["nova_consistent_ms"] > 0
    assert {"T01", "T03", "T04", "T09"} <= set(result["checkpoints_ms"])
