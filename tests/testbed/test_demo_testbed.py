"""vigil demo fault --testbed: Doctor's fault test on real namespaces, as a user runs it."""

import json
import subprocess
import sys

import pytest

from testbed.conftest import require_nothing_up, require_root


@pytest.mark.timeout(240)
def test_the_testbed_demo_prints_detection_notification_and_outage_and_exits_0() -> None:
    require_root()
    require_nothing_up()
    result = subprocess.run(
        [sys.executable, "-m", "vigil", "demo", "fault", "--testbed", "--json"],
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"detection_ms", "notification_ms", "outage_ms"}
    assert all(isinstance(report[k], float) and report[k] >= 0 for k in report), report
    require_nothing_up()  # it took its testbed down again
