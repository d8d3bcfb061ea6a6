"""Network namespaces, links and sockets, through ``ip`` and a few syscalls.

Setup and teardown drive ``ip`` and ``nft`` in subprocesses (simple, and
their speed does not matter). What must be timed does not: a fault is
injected with one ``ioctl`` on a socket that was opened inside the host's
namespace beforehand (:func:`socket_in` enters the namespace in a
short-lived thread, since ``setns`` of a network namespace is per thread,
and a socket stays in the namespace it was created in), and T00 is read
immediately before that syscall.
"""

import contextlib
import ctypes
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

T = TypeVar("T")


class TestbedError(Exception):
    """A testbed operation failed; the message says which and why."""

    __test__ = False  # not a pytest test class


def require_root() -> None:
    if os.geteuid() != 0:
        raise TestbedError("the testbed needs root (network namespaces, veths, bridges, nftables)")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            raise TestbedError(f"the testbed needs '{tool}' (apt-get install -y iproute2 nftables)")


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TestbedError(f"{' '.join(argv)}: {exc}") from exc
    if check and done.returncode != 0:
        raise TestbedError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ip", *(["-n", ns] if ns else []), *args], check=check)


def in_netns(ns: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def namespaces(prefix: str) -> list[str]:
    """Named network namespaces whose name starts with ``prefix``."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def links(prefix: str) -> list[str]:
    """Links of the root namespace whose name starts with ``prefix``."""
    names = []
    for line in ip("-o", "link", "show").stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            name = parts[1].strip().split("@", 1)[0]
            if name.startswith(prefix):
                names.append(name)
    return sorted(names)


def netns_pids(ns: str) -> list[int]:
    done = ip("netns", "pids", ns, check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def in_namespace(ns: str, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread that has entered network namespace ``ns``."""
    results: list[T] = []
    errors: list[BaseException] = []

    def enter_and_work() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
            try:
                if _setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns into {ns}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            results.append(work())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=enter_and_work, name=f"vigil.testbed.setns.{ns}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def socket_in(ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM, proto: int = 0) -> socket.socket:
    """A socket that lives in namespace ``ns`` (whoever uses it, from whichever thread)."""
    return in_namespace(ns, lambda: socket.socket(family, kind, proto))


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, nstype: int) -> int:
    result: int = _libc.setns(fd, nstype)
    return result


@dataclass(frozen=True, slots=True)
class Flip:
    """When a link's state was changed: immediately before and after the syscall (Unix s)."""

    before: float
    after: float


class LinkSwitch:
    """Sets one interface of one namespace up or down with a single ioctl, timed."""

    def __init__(self, ns: str, ifname: str) -> None:
        if len(ifname.encode()) > 15:
            raise TestbedError(f"interface name too long: {ifname}")
        self.ns = ns
        self.ifname = ifname
        self._name = ifname.encode()
        self._sock = socket_in(ns)

    def _flags(self) -> int:
        request = struct.pack("16sH14x", self._name, 0)
        try:
            answer = fcntl.ioctl(self._sock, SIOCGIFFLAGS, request)
        except OSError as exc:
            raise TestbedError(f"{self.ns}/{self.ifname}: {exc}") from exc
        flags: int = struct.unpack_from("16sH", answer)[1]
        return flags

    def is_up(self) -> bool:
        return bool(self._flags() & IFF_UP)

    def set(self, up: bool) -> Flip:
        flags = self._flags()
        request = struct.pack("16sH14x", self._name, (flags | IFF_UP) if up else (flags & ~IFF_UP))
        before = time.time()
        try:
            fcntl.ioctl(self._sock, SIOCSIFFLAGS, request)
        except OSError as exc:
            raise TestbedError(f"{self.ns}/{self.ifname}: {exc}") from exc
        after = time.time()
        return Flip(before, after)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
