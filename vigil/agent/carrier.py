"""Carrier of the data-plane NICs, from netlink link notifications (no polling).

A ``NETLINK_ROUTE`` socket bound to the ``RTMGRP_LINK`` multicast group
hears every link change the moment the kernel makes it; the event loop wakes
on the socket (``add_reader``) and the arrival time of the message is the
event's time. pyroute2 decodes the messages (``ifinfmsg``). A NIC is *up*
when it is administratively up (``IFF_UP``), has carrier
(``IFF_LOWER_UP``) and its operational state is UP or UNKNOWN (drivers
without operstate); down otherwise, and when it disappears (``RTM_DELLINK``)
or does not exist.

At start the watcher dumps the links (``RTM_GETLINK``) on the same socket,
so the initial state and later changes come through one path in order; a
receive-buffer overflow (``ENOBUFS``: notifications were lost) dumps again.
``on_change(nic, up, at, cause)`` is called once with each watched NIC's
initial state and then at each change of it.
"""

import asyncio
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable

from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK, RTMGRP_LINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from vigil.agent.netns import socket_in

log = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
RTM_GETLINK = 18
NLM_F_REQUEST_DUMP = 0x1 | 0x100 | 0x200  # NLM_F_REQUEST | NLM_F_ROOT | NLM_F_MATCH
DOWN_STATES = {"DOWN", "LOWERLAYERDOWN", "NOTPRESENT", "DORMANT", "TESTING"}

Change = Callable[[str, bool, float, str], object]


def link_is_up(flags: int, operstate: str | None) -> bool:
    return bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP) and (operstate or "UNKNOWN") not in DOWN_STATES


def _dump_request(seq: int) -> bytes:
    header = struct.pack("=LHHLL", 32, RTM_GETLINK, NLM_F_REQUEST_DUMP, seq, 0)
    return header + struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)


class CarrierWatcher:
    def __init__(
        self,
        nics: Iterable[str],
        on_change: Change,
        *,
        netns: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.nics = list(dict.fromkeys(nics))
        self._on_change = on_change
        self._netns = netns
        self._clock = clock
        self._marshal = MarshalRtnl()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = 0
        self._dumping = False
        self._seen_in_dump: set[str] = set()
        self.state: dict[str, bool] = {}
        self.messages = 0

    def start(self) -> None:
        if not self.nics:
            return
        sock = socket_in(self._netns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, RTMGRP_LINK))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)
        self._dump()
        log.info("watching the carrier of %s", ", ".join(self.nics))

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _dump(self) -> None:
        assert self._sock is not None
        self._seq += 1
        self._dumping = True
        self._seen_in_dump = set()
        self._sock.send(_dump_request(self._seq))

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    log.warning("netlink notifications were lost (receive buffer full): reading the links again")
                    self._dump()
                    continue
                log.error("netlink socket failed: %s", exc)
                return
            at = self._clock()
            try:
                self._parse(data, at)
            except Exception:  # one undecodable message must not stop the watching
                log.exception("cannot decode a netlink message")

    def _parse(self, data: bytes, at: float) -> None:
        for msg in self._marshal.parse(data):
            kind = msg["header"]["type"]
            if kind in (RTM_NEWLINK, RTM_DELLINK):
                self.messages += 1
                name = msg.get("ifname")
                if name not in self.state and name not in self.nics:
                    continue
                operstate = msg.get("IFLA_OPERSTATE")
                if kind == RTM_DELLINK:
                    self._set(name, False, at, "interface removed")
                else:
                    if self._dumping:
                        self._seen_in_dump.add(name)
                    up = link_is_up(msg["flags"], operstate)
                    self._set(name, up, at, f"operstate {operstate}, flags {msg['flags']:#x}")
            elif kind == 3 and self._dumping:  # NLMSG_DONE: the dump is complete
                self._dumping = False
                for name in self.nics:
                    if name not in self._seen_in_dump:
                        self._set(name, False, at, "no such interface")

    def _set(self, nic: str, up: bool, at: float, cause: str) -> None:
        if self.state.get(nic) is up:
            return
        self.state[nic] = up
        log.info("%s carrier %s (%s)", nic, "up" if up else "down", cause)
        self._on_change(nic, up, at, cause)
