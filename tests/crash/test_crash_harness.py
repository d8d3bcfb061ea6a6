"""The crash harness, a bounded run on each store: no invariant may break.

``python -m bench.crash`` runs 200+ kills per store; here a few rounds each on
SQLite and PostgreSQL (``vigil.harness.crash``): ``vigil serve`` killed with
SIGKILL at named crash points and at random moments during a storm of reports
with slow and absent consumers and maintenance sessions, restarted, and
checked against the four invariants after every kill.
"""

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import fresh_postgres_database

from vigil.harness.crash import CrashRun

ROUNDS = 5


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.mark.timeout(300)
# Seen twice on a loaded machine: a loopback socket of the harness (its client to a server it had just
# SIGKILLed, or a consumer's accepted connection at shutdown) collected unclosed, once inside this test
# and once in a later one. The invariants are what this test checks; a ResourceWarning from a peer killed
# mid-connection is not one of them. The collection is forced here, so it is filtered here.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
async def test_no_invariant_breaks_across_kills(tmp_path: Path, store_url: str | None) -> None:
    run = CrashRun(tmp_path, store_url=store_url, seed=7)
    try:
        rounds = await run.run(ROUNDS)
    finally:
        gc.collect()
    assert len(rounds) == ROUNDS
    violations = [f"round {r.round} ({r.kill}): {v}" for r in rounds for v in r.violations]
    assert violations == []
    assert any(r.died_at_point for r in rounds), "no round died at a named crash point"
    assert sum(r.acknowledged for r in rounds) > 0
    assert sum(m.duplicates_checked for m in run.monitors) > 0
