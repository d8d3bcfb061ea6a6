"""Sockets inside a named network namespace (``ip netns``), without moving the process.

The agent normally runs inside its host's namespace (``ip netns exec``) and
needs none of this; the tests, and an agent that watches a namespace from
outside, open their netlink and ICMP sockets in a namespace with
:func:`socket_in`: a short-lived thread joins the namespace (``setns``
changes only the calling thread's namespace) and creates the socket there;
the socket stays in that namespace for its life.
"""

import ctypes
import os
import socket
import threading
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


def socket_in(netns: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket in ``netns`` (a name under /run/netns or a path), or in ours for None."""
    if netns is None:
        return socket.socket(family, kind, proto)
    return _in_namespace(netns, lambda: socket.socket(family, kind, proto))


def _in_namespace(netns: str, make: Callable[[], socket.socket]) -> socket.socket:
    path = netns if "/" in netns else os.path.join(NETNS_DIR, netns)
    result: list[socket.socket] = []
    error: list[BaseException] = []

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            error.append(OSError(exc.errno, f"network namespace {netns}: {exc.strerror}"))
            return
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                error.append(OSError(code, f"cannot enter network namespace {netns}: {os.strerror(code)}"))
                return
            result.append(make())
        except BaseException as exc:
            error.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, name=f"vigil.agent.netns.{netns}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
