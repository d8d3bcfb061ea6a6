"""The testbed's per-host maintenance action: the host's data plane goes away while it is maintained.

The testbed's Vigil has it configured as the ``link-down`` action, a
``script`` (:mod:`vigil.maintenance.actions`; :func:`configuration`), and a
maintenance session names it with its times (:func:`action`)::

    {"action": "link-down", "down_s": 1, "settle_s": 0.3}

Vigil runs it (in the controller's namespace) once the host is empty and
flagged in maintenance, with the host's name in ``VIGIL_HOST`` and the times
in ``VIGIL_PARAM_DOWN_S`` and ``VIGIL_PARAM_SETTLE_S``. It sets the
host's data-plane NIC (``vgt-dc0`` in the host's namespace; ``ip -n`` would
reach it from any namespace too, a named namespace is a file) down, waits
``--down-s`` seconds, sets it up again and waits ``--settle-s`` more, so the
agent's recovery reports come in while the host is still in maintenance.
Anything left running on the host would lose its traffic meanwhile, and the
agent reports the link down: the inspector must suppress those reports
(the host is in maintenance), so no fault is raised.

The NIC is set up again whatever happens (an error, SIGTERM when the
script runs past its ``timeout_s``: Vigil kills it with SIGKILL then, and
``vigil testbed down`` removes the namespace anyway).
"""

import argparse
import os
import signal
import sys
import time
from types import FrameType

from vigil.testbed import plan
from vigil.testbed.netns import LinkSwitch, TestbedError

DEFAULT_DOWN_S = 1.0
DEFAULT_SETTLE_S = 0.3


ACTION = "link-down"


def configuration(python: str) -> dict[str, object]:
    """The ``maintenance.actions`` entry of the testbed's Vigil that runs this module on each host."""
    return {
        "plugin": "script",
        "command": [python, "-m", "vigil.testbed.maintain"],
        "timeout_s": 120.0,
        "parameters": {"down_s": "number", "settle_s": "number"},
    }


def action(down_s: float = DEFAULT_DOWN_S, settle_s: float = DEFAULT_SETTLE_S) -> dict[str, object]:
    """A session's reference to the action, with its times."""
    return {"action": ACTION, "down_s": down_s, "settle_s": settle_s}


def maintain(host: plan.HostPlan, down_s: float, settle_s: float) -> None:
    """The host's data-plane NIC down for ``down_s`` s, then up and ``settle_s`` s to settle."""
    switch = LinkSwitch(host.netns, plan.NS_DC_IF)
    try:
        switch.set(False)
        try:
            time.sleep(down_s)
        finally:
            switch.set(True)
        time.sleep(settle_s)
    finally:
        switch.close()


def _param(name: str, default: float) -> float:
    """A time the session gave as a parameter (``VIGIL_PARAM_<NAME>``), or the default."""
    try:
        return float(os.environ.get(f"VIGIL_PARAM_{name}", default))
    except ValueError:
        return default


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through maintain()'s finally: the NIC goes up again


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Testbed maintenance action: a host's data plane down for a while.")
    parser.add_argument("--host", default=os.environ.get("VIGIL_HOST"), help="compute-N (default: $VIGIL_HOST)")
    parser.add_argument(
        "--down-s", type=float, default=_param("DOWN_S", DEFAULT_DOWN_S), help="seconds the data plane is down"
    )
    parser.add_argument(
        "--settle-s", type=float, default=_param("SETTLE_S", DEFAULT_SETTLE_S), help="seconds to wait once it is up"
    )
    args = parser.parse_args(argv)
    if not args.host:
        parser.error("no host: give --host or set VIGIL_HOST")
    if args.down_s < 0 or args.settle_s < 0:
        parser.error("times are seconds >= 0")
    try:
        host = plan.host_by_name(plan.MAX_HOSTS, args.host)
        signal.signal(signal.SIGTERM, _stop)
        maintain(host, args.down_s, args.settle_s)
    except (ValueError, TestbedError, OSError) as exc:
        print(f"vigil.testbed.maintain: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
