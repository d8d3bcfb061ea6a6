"""A bounded, seeded schemathesis run over every operation, as admin, member and monitor (``bench.fuzz``).

It found, before it passed: a callback host no resolver can encode (a 500),
``false`` and ``0`` taken for a number and a time, ``3.0`` refused for an
integer, undocumented 404/409s, bounds the document did not state, an
``Allow`` naming a shadowed route's method, and a BASIC authentication
without its parameters accepted by the document. ``python -m bench.fuzz``
is the longer run.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 1
MAX_EXAMPLES = 10
OPERATIONS = 53  # every documented operation (test_contract checks the document itself)


def isolation_available() -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        from bench.fuzz import isolation_command
    finally:
        sys.path.remove(str(ROOT))
    return isolation_command() is not None


@pytest.mark.skipif(not isolation_available(), reason="needs unshare (root, or user namespaces) to isolate the run")
@pytest.mark.timeout(900)
def test_fuzzing_finds_no_failure_of_any_kind_for_any_role() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.fuzz", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=850,
    )
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [r["role"] for r in results] == ["admin", "member", "monitor"], run.stdout + run.stderr[-3000:]
    for result in results:
        assert result["operations"] == result["tested"] == OPERATIONS, result
        assert result["cases"] > 1000, result
        assert result["failures"] == {}, result
        assert result["errors"] == [], result
    assert run.returncode == 0
