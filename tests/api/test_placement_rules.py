"""The scheduler honours FEAT03 group constraints, as the maintenance planner does (one set of placement rules).

Found (OpenStack issue, part 1): ``PUT /v1/instance_group/{id}`` with
``max_instances_per_host`` bound the maintenance planner only; a boot into
an affinity group still stacked a third member on a host the group had
limited to two.
"""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from conftest import Api

from vigil.settings import Settings

TOPOLOGY = """
hosts:
  - {name: compute-1, vcpus: 8}
  - {name: compute-2, vcpus: 8}
projects:
  - {id: vnf-a, name: VNF A}
server_groups:
  - {id: cache, name: cache, project: vnf-a, policy: affinity}
instances:
  - {id: c1, name: c1, project: vnf-a, group: cache, host: compute-1}
  - {id: c2, name: c2, project: vnf-a, group: cache, host: compute-1}
"""


async def test_a_boot_honours_the_groups_max_instances_per_host(
    settings: Settings, tmp_path: Path, restart: Callable[[Settings], AbstractAsyncContextManager[Api]]
) -> None:
    topology = tmp_path / "cloud.yaml"
    topology.write_text(TOPOLOGY)
    cloud = settings.cloud.model_copy(update={"topology": topology})
    async with restart(settings.model_copy(update={"cloud": cloud})) as api, api.client("vnf-a-token") as member:
        third = await member.post("/v1/instances", json={"name": "c3", "group": "cache"})
        assert third.status_code == 202, third.text  # no constraint yet: affinity puts it beside the others
        assert third.json()["instance"]["host"] == (await member.get("/v1/instances/c1")).json()["instance"]["host"]
        limited = await member.put("/v1/instance_group/cache", json={"max_instances_per_host": 3})
        assert limited.status_code == 200, limited.text
        fourth = await member.post("/v1/instances", json={"name": "c4", "group": "cache"})
        assert fourth.status_code == 409, fourth.text
        assert "in group cache" in fourth.json()["error"]["message"]
        listed = (await member.get("/v1/instances")).json()["instances"]
        assert sorted(i["name"] for i in listed) == ["c1", "c2", "c3"]
