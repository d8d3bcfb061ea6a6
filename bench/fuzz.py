"""Fuzz the API against its own OpenAPI document with schemathesis, as each role.

For each role (admin, member of project vnf-a, monitor) a fresh ``vigil
serve`` (the example cloud, SQLite) is started and schemathesis runs every
operation of ``/openapi.json`` with that role's token: examples, the
coverage phase's boundaries, random fuzzing (valid and invalid data) and
stateful sequences, seeded so a run can be repeated. Every check is on, the
built-in ``positive_data_acceptance`` replaced by
:func:`bench.fuzz_checks.justified_rejection`. The target is no failure of
any kind: no server error, no undocumented status, no response outside its
schema, no valid request refused for its shape.

Generated callbacks name arbitrary hosts, which Vigil resolves before it
refuses or calls them. So the run happens in a network namespace of its own
that has only a loopback interface (``unshare``: root, or an unprivileged
user namespace): no packet can leave the machine whatever schemathesis
makes up. Prints one JSON line per role (operations, test cases, failures by
kind with the operations) and exits 1 if any role had a failure.

    python -m bench.fuzz [--max-examples 100] [--seed 1] [--roles admin member monitor]

``tests/api/test_fuzz.py`` runs it bounded in ``make test``.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vigil.harness.server import ServeProcess

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "examples" / "cloud.yaml"
ISOLATED = "VIGIL_FUZZ_ISOLATED"
ROLES = {
    "admin": {"project": "admin", "role": "admin"},
    "member": {"project": "vnf-a", "role": "member"},
    "monitor": {"project": "monitoring", "role": "monitor"},
}
SETTINGS: dict[str, Any] = {
    "cloud": {"topology": str(TOPOLOGY), "cold_migration_s": 0.05, "live_migration_s": 0.05, "evacuate_s": 0.05},
    "notifier": {"allowed_callback_networks": ["127.0.0.0/8", "::1/128"], "timeout_s": 1.0},
    "inspector": {"hold_down_s": 0},
}


@dataclass
class RoleResult:
    """What one role's run found."""

    role: str
    operations: int
    tested: int
    cases: int
    failures: dict[str, int] = field(default_factory=dict)
    failing: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.failures and not self.errors and self.tested == self.operations


def isolation_command() -> list[str] | None:
    """The ``unshare`` that gives a process a network namespace of its own, or None where none can be made."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for command in ([unshare, "--net"], [unshare, "--net", "--map-root-user"]):
        if subprocess.run([*command, "true"], capture_output=True).returncode == 0:
            return command
    return None


def _loopback_up() -> None:
    """Bring up ``lo`` in this (new) namespace, where it starts down."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def _schemathesis(url: str, token: str, report: Path, max_examples: int, seed: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--header",
        f"X-Auth-Token: {token}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]


async def fuzz_role(scratch: Path, role: str, max_examples: int, seed: int) -> RoleResult:
    """One role against a fresh server: its own data directory, so each role's run is repeatable alone."""
    token = f"fuzz-{role}-token"
    server = ServeProcess(scratch / role, {token: ROLES[role]}, settings=SETTINGS)
    await server.start()
    report = scratch / f"{role}.json"
    began = time.monotonic()
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "bench.fuzz_checks", "PYTHONPATH": str(ROOT)}
    try:
        proc = await asyncio.create_subprocess_exec(
            *_schemathesis(server.url, token, report, max_examples, seed),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=scratch,
        )
        output, _ = await proc.communicate()
    finally:
        await server.stop()
    (scratch / f"{role}.txt").write_bytes(output)
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report for {role}: {output.decode(errors='replace')[-2000:]}")
    result = summarize(role, json.loads(report.read_text()))
    result.seconds = round(time.monotonic() - began, 1)
    return result


def summarize(role: str, report: dict[str, Any]) -> RoleResult:
    """The counts of a schemathesis JSON report."""
    result = RoleResult(
        role=role,
        operations=report["operations"]["selected"],
        tested=report["operations"]["tested"],
        cases=report["test_cases"]["generated"],
    )
    for failure in report["failures"]:
        kind = f"{failure.get('code') or failure['type']} {failure['title']}"
        result.failures[kind] = result.failures.get(kind, 0) + failure["count"]
        result.failing.setdefault(kind, []).extend(failure.get("operations", []))
    result.errors = [str(error.get("message", error)) for error in report.get("errors", [])]
    return result


async def fuzz(scratch: Path, roles: Sequence[str], max_examples: int, seed: int) -> list[RoleResult]:
    return [await fuzz_role(scratch, role, max_examples, seed) for role in roles]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=100, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--roles", nargs="+", choices=sorted(ROLES), default=list(ROLES))
    parser.add_argument("--keep", type=Path, help="keep the servers' data, logs and schemathesis's output here")
    args = parser.parse_args(argv)
    if os.environ.get(ISOLATED) != "1":
        command = isolation_command()
        if command is None:
            print("bench.fuzz needs a network namespace of its own (unshare, as root or with user namespaces)")
            return 2
        argv_now = sys.argv[1:] if argv is None else list(argv)
        env = {**os.environ, ISOLATED: "1"}
        return subprocess.run([*command, sys.executable, "-m", "bench.fuzz", *argv_now], env=env, cwd=ROOT).returncode
    _loopback_up()
    with tempfile.TemporaryDirectory(prefix="vigil-fuzz-") as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(fuzz(scratch, args.roles, args.max_examples, args.seed))
    for result in results:
        print(json.dumps({"benchmark": "fuzz", "seed": args.seed, "max_examples": args.max_examples, **asdict(result)}))
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
