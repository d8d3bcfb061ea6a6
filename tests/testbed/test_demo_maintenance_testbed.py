"""vigil demo maintenance --testbed: the rolling maintenance on real namespaces, measured by the
testbed's probe; and the pieces it is made of that need no root."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.conftest import require_nothing_up, require_root
from vigil.testbed import maintain
from vigil.testbed.scenario import ProbeLog


@pytest.mark.timeout(300)
def test_the_testbed_maintenance_demo_maintains_every_host_without_a_failed_request() -> None:
    require_root()
    require_nothing_up()
    result = subprocess.run(
        [sys.executable, "-m", "vigil", "demo", "maintenance", "--testbed", "--hosts", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=250,
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0, (report, result.stderr)
    assert report["probe"] == "testbed"
    assert report["state"] == "MAINTENANCE_DONE"
    assert report["hosts_maintained"] == 3
    assert report["failed_requests"] == 0
    assert report["requests"] >= 200 * report["duration_s"] * 0.5, report
    assert report["migrations"] >= report["minimum_migrations"] > 0
    assert report["switchovers"] >= 1  # the ACT's host was maintained too: the role moved first
    # Each host's data plane really went down: its agent reported it, and the inspector
    # suppressed the reports (the host was in maintenance) instead of raising a fault.
    assert report["faults_opened"] == 0
    assert report["suppressed_reports"] >= 3
    require_nothing_up()  # it took its testbed down again


def _probe_file(path: Path, lines: list[str]) -> ProbeLog:
    path.write_text("".join(f"{line}\n" for line in lines))
    return ProbeLog(path)


def test_the_probe_window_counts_requests_failures_and_missing_outcomes(tmp_path: Path) -> None:
    log = _probe_file(
        tmp_path / "probe.out",
        [
            "ok 1 100.000 100.001 a",
            "ok 2 100.002 100.003 a",
            "ok 4 100.006 100.007 b",  # 3 has no line: never answered, counted as failed
            "lost 5 100.008",
            "lost 6 100.010",
            "ok 7 100.012 100.013 b",
            "lost 8 100.014",  # after the window
        ],
    )
    window = log.window(100.001, 100.012)
    assert (window.requests, window.failed, window.longest_failures) == (6, 3, 2)
    assert log.window(100.000, 100.002) == type(window)(2, 0, 0)
    assert log.window(200.0, 201.0).requests == 0


def test_the_maintenance_action_runs_this_module_with_the_down_time() -> None:
    assert maintain.action(down_s=0.5, settle_s=0.25) == {"action": "link-down", "down_s": 0.5, "settle_s": 0.25}
    configured = maintain.configuration("/usr/bin/python3")
    assert configured["plugin"] == "script"
    assert configured["command"] == ["/usr/bin/python3", "-m", "vigil.testbed.maintain"]
    assert configured["parameters"] == {"down_s": "number", "settle_s": "number"}


def test_the_maintenance_action_needs_a_known_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_HOST", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        maintain.main([])
    assert exit_info.value.code == 2
    assert maintain.main(["--host", "switch-9", "--down-s", "0"]) == 1
