"""``vigil demo recovery``: a host fenced through its (emulated) BMC and Debian's fence_ipmilan, its instances
evacuated after the fence, never before."""

import json

from bmc_support import require_fence_agents
from typer.testing import CliRunner

from vigil.cli import app
from vigil.demo_recovery import run_recovery_demo


async def test_the_demo_recovers_every_instance_only_after_the_fence() -> None:
    require_fence_agents()

    result = await run_recovery_demo(4, evacuate_s=0.05)

    assert result.error is None, result.error
    assert result.instances_recovered == 4
    assert result.double_active == 0
    checkpoints = result.checkpoints_ms or {}
    assert checkpoints["fence_requested"] < checkpoints["fence_confirmed"] <= checkpoints["recovery_started"]
    assert result.fence_ms == checkpoints["fence_confirmed"]
    assert result.recovered_ms == checkpoints["recovered"]


def test_the_command_prints_json_and_exits_0_when_all_were_recovered() -> None:
    require_fence_agents()

    run = CliRunner().invoke(app, ["demo", "recovery", "-n", "2", "--json", "--evacuate-s", "0.05"])

    assert run.exit_code == 0, run.output
    shown = json.loads(run.output)
    assert (shown["instances"], shown["instances_recovered"], shown["double_active"]) == (2, 2, 0)
