"""Keep a heartbeat sender on time: real-time scheduling and memory locked in RAM.

A heartbeat every 20 ms with a detection time of 60 ms leaves a sender 40 ms
of slack. On a busy host an ordinary process can wait longer than that for
a CPU, or for a page the kernel reclaimed (a Python process's code is
file-backed and can be dropped and read back), and its host would be
declared lost while it is fine. BFD daemons and keepalived avoid this the
same way: a real-time scheduling class (``SCHED_FIFO``; the agent sleeps
almost all the time, and the kernel's real-time throttling still keeps 5 %
of each CPU for others) and ``mlockall``, so none of its pages is ever
paged out. Both need root (or CAP_SYS_NICE and CAP_IPC_LOCK).
"""

import ctypes
import os

MCL_CURRENT = 1
MCL_FUTURE = 2


def make_realtime(priority: int = 10) -> list[str]:
    """Switch this process to SCHED_FIFO at ``priority`` and lock its memory; what could not be done."""
    problems: list[str] = []
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        problems.append(f"real-time scheduling not available: {exc}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        problems.append(f"memory not locked: {os.strerror(ctypes.get_errno())}")
    return problems
