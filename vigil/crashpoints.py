"""Named crash points, for the crash harness (``vigil.harness``, ``python -m bench.crash``).

``VIGIL_CRASH_AT=after-notify`` makes the process kill itself with SIGKILL
the first time it passes the point ``after-notify``; ``after-notify:3`` the
third time; several points may be given, comma-separated. Without the
variable :func:`crash_point` returns at once (one global read), so the
points cost nothing in production. They sit where a crash is most
dangerous:

=================  ==========================================================
``before-journal``  a report is taken in, not yet appended to the journal
``after-journal``   its journal append is durable, nothing applied yet
``after-notify``    its notifications' first attempts are over, its effects
                    not yet committed
``before-commit``   the committer is about to write a batch of changes
``after-commit``    a batch of changes is written, its waiters not yet answered
``after-delivery``  a notification was delivered, its outcome not yet recorded
``before-vim-push`` a fault's committed changes reached the OpenStack driver,
                    not yet pushed to Nova and Neutron
``before-fence``    a failed host's fence request is durable, its agent not
                    yet called
``after-fence``     the agent confirmed the host off, not yet recorded
``mid-recovery``    the first of a fenced host's evacuations ended, nothing of
                    the recovery's end recorded, the others under way
=================  ==========================================================

This module is outside the layers on purpose: engines and adapters call it,
and it imports nothing of Vigil.
"""

import os
import signal

POINTS = frozenset(
    {
        "before-journal",
        "after-journal",
        "after-notify",
        "before-commit",
        "after-commit",
        "after-delivery",
        "before-vim-push",
        "before-fence",
        "after-fence",
        "mid-recovery",
    }
)


def _parse(spec: str | None) -> dict[str, int] | None:
    if not spec:
        return None
    armed: dict[str, int] = {}
    for part in spec.split(","):
        name, _, nth = part.strip().partition(":")
        if name not in POINTS:
            known = ", ".join(sorted(POINTS))
            raise ValueError(f"VIGIL_CRASH_AT names an unknown crash point {name!r}; known: {known}")
        armed[name] = int(nth) if nth else 1
    return armed


_ARMED = _parse(os.environ.get("VIGIL_CRASH_AT"))


def crash_point(name: str) -> None:
    """Die here (SIGKILL, no clean-up) if ``VIGIL_CRASH_AT`` armed this point and its count is reached."""
    if _ARMED is None or name not in _ARMED:
        return
    _ARMED[name] -= 1
    if _ARMED[name] <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
