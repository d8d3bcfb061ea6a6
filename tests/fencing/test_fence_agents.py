"""Fencing through Debian's real fence_ipmilan and fence_redfish, against real BMC emulators (pyghmi's IPMI BMC and
sushy-tools' Redfish), called as Pacemaker's fencer calls them: options on stdin."""

import asyncio
import socket
from pathlib import Path

import psutil
import pytest
from bmc_support import AGENTS, PASSWORD, Bmcs

from vigil.domain.fencing import FenceAction, PowerState
from vigil.fencing.agents import FenceDevice, call_agent
from vigil.fencing.fencer import AgentFencer, NoFenceDevice

PROTOCOLS = ["ipmi", "redfish"]


def device(bmcs: Bmcs, protocol: str, host: str, **kwargs: object) -> FenceDevice:
    make = bmcs.ipmi if protocol == "ipmi" else bmcs.redfish
    return make(host, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_status_reads_the_bmcs_power_and_a_fence_is_confirmed_off(bmcs: Bmcs, protocol: str) -> None:
    fencer = AgentFencer({"compute-1": device(bmcs, protocol, "compute-1")}, AGENTS)

    before = await fencer.call("compute-1", FenceAction.STATUS)
    outcome = await fencer.fence("compute-1")

    assert (before.ok, before.power) == (True, PowerState.ON)
    assert outcome.confirmed, outcome
    assert [a.action for a in outcome.answers] == [FenceAction.OFF, FenceAction.STATUS]
    assert not bmcs.powered("compute-1")
    assert bmcs.powered("compute-2"), "only the fenced host's power went"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_on_powers_a_fenced_host_back(bmcs: Bmcs, protocol: str) -> None:
    fencer = AgentFencer({"compute-2": device(bmcs, protocol, "compute-2")}, AGENTS)
    assert (await fencer.fence("compute-2")).confirmed

    on = await fencer.call("compute-2", FenceAction.ON)
    status = await fencer.call("compute-2", FenceAction.STATUS)

    assert (on.ok, on.power) == (True, PowerState.ON)
    assert status.power is PowerState.ON
    assert bmcs.powered("compute-2")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_wrong_credentials_fail_the_fence_leaving_the_power_on(bmcs: Bmcs, protocol: str) -> None:
    wrong = "not-" + PASSWORD
    fencer = AgentFencer({"compute-1": device(bmcs, protocol, "compute-1", password=wrong)}, AGENTS)

    outcome = await fencer.fence("compute-1")

    assert not outcome.confirmed
    assert outcome.reason.startswith("off failed"), outcome.reason
    assert len(outcome.answers) == 1, "no status is asked after an off that failed"
    assert bmcs.powered("compute-1")
    assert wrong not in outcome.reason
    assert wrong not in repr(outcome)


async def test_an_unreachable_bmc_times_out_and_its_agent_is_killed_whole(bmcs: Bmcs) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # a BMC address that never answers
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        spec = bmcs.ipmi("compute-1", timeout_s=1.5)
        mute = FenceDevice(
            host="compute-1",
            agent=spec.agent,
            options={**spec.options, "ipport": str(port), "login_timeout": "30"},
            secrets=spec.secrets,
            timeout_s=1.5,
        )
        fencer = AgentFencer({"compute-1": mute}, AGENTS)

        outcome = await fencer.fence("compute-1")

    assert not outcome.confirmed
    assert outcome.answers[-1].timed_out
    assert outcome.reason == "off timed out after 1.5 s" or outcome.reason.startswith("off timed out"), outcome
    # ipmitool, started by the agent, names the silent BMC's port; other tests' agents (run alongside) do not
    left = [p for p in psutil.process_iter(["cmdline"]) if f"-p {port}" in " ".join(p.info["cmdline"] or [])]
    assert left == [], "the agent and the ipmitool it started are killed at the timeout"
    assert bmcs.powered("compute-1")


async def test_fences_of_one_host_at_once_power_it_off_once(bmcs: Bmcs) -> None:
    fencer = AgentFencer({"compute-1": bmcs.ipmi("compute-1")}, AGENTS)

    first, second = await asyncio.gather(fencer.fence("compute-1"), fencer.fence("compute-1"))

    assert first.confirmed
    assert first is second, "the second fence took the running one's outcome"


async def test_a_secret_file_is_read_at_each_call(bmcs: Bmcs, tmp_path: Path) -> None:
    secret = tmp_path / "compute-1.password"
    secret.write_text("stale\n")
    secret.chmod(0o600)
    spec = bmcs.redfish("compute-1")
    from_file = FenceDevice("compute-1", spec.agent, spec.options, secret_files={"password": secret})
    fencer = AgentFencer({"compute-1": from_file}, AGENTS)

    refused = await fencer.call("compute-1", FenceAction.STATUS)
    secret.write_text(PASSWORD + "\n")  # rotated: no restart
    read = await fencer.call("compute-1", FenceAction.STATUS)

    assert not refused.ok
    assert (read.ok, read.power) == (True, PowerState.ON)
    assert "password" in from_file.described()["secrets"]  # type: ignore[operator]
    assert PASSWORD not in repr(from_file.described())


async def test_a_missing_agent_or_device_is_a_clear_failure() -> None:
    fencer = AgentFencer({"compute-1": FenceDevice("compute-1", "fence_nosuchthing")}, AGENTS)

    answer = await fencer.call("compute-1", FenceAction.STATUS)

    assert (answer.ok, answer.power) == (False, PowerState.UNKNOWN)
    assert "no fence agent 'fence_nosuchthing'" in answer.detail
    assert not fencer.configured("compute-9")
    with pytest.raises(NoFenceDevice):
        await fencer.fence("compute-9")


def test_options_reach_the_agent_on_stdin_never_on_its_command_line(tmp_path: Path) -> None:
    """A stand-in agent (the outermost edge: it records what a fence agent is given) shows the Pacemaker form."""
    seen = tmp_path / "seen"
    agent = tmp_path / "fence_recorder"
    agent.write_text(f'#!/bin/sh\necho "$@" > {seen}.argv\ncat > {seen}.stdin\nexit 2\n')
    agent.chmod(0o755)
    recorder = FenceDevice("compute-1", str(agent), {"ip": "10.0.0.1"}, secrets={"password": "pw"})

    answer = asyncio.run(call_agent(recorder, FenceAction.STATUS, []))

    assert (answer.ok, answer.power) == (True, PowerState.OFF), "status exits 2 when the power is off"
    assert Path(f"{seen}.argv").read_text().strip() == ""
    assert Path(f"{seen}.stdin").read_text() == "ip=10.0.0.1\npassword=pw\naction=status\n"


async def test_a_process_that_no_longer_leads_fences_nothing(bmcs: Bmcs) -> None:
    """High availability: once the leader's lease lapsed by this process's clock, no agent runs."""
    from vigil.domain.errors import NotLeader

    fencer = AgentFencer({"compute-1": device(bmcs, "ipmi", "compute-1")}, AGENTS, acting=lambda: False)
    with pytest.raises(NotLeader):
        await fencer.fence("compute-1")
    assert bmcs.powered("compute-1") is True
