"""Moving an IPv4 address in a few hundred microseconds: rtnetlink and ARP, stdlib only.

Used by the workload's instance processes (:mod:`.workload`), which must
claim the service address the moment their VNF manager makes them active:
:func:`add_address` / :func:`delete_address` send one ``RTM_NEWADDR`` /
``RTM_DELADDR`` on a netlink socket of the process's own namespace and wait
for the kernel's acknowledgement; :class:`Announcer` broadcasts the
new owner's MAC, so the neighbours (the gateway) update their ARP caches
at once instead of after their entry for the old owner goes stale.
"""

import socket
import struct

RTM_NEWADDR = 20
RTM_DELADDR = 21
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
IFA_ADDRESS = 1
IFA_LOCAL = 2
ETH_P_ARP = 0x0806


class Rtnl:
    """One rtnetlink socket in the current namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def _request(self, kind: int, flags: int, body: bytes) -> int:
        """Send one message; the kernel's answer as 0 or a positive errno."""
        self._seq += 1
        header = struct.pack("=LHHLL", 16 + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
        self._sock.send(header + body)
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, _, seq, _ = struct.unpack_from("=LHHLL", data, offset)
                if msg_type == NLMSG_ERROR and seq == self._seq:
                    error: int = struct.unpack_from("=i", data, offset + 16)[0]
                    return -error
                offset += (length + 3) & ~3
                if length == 0:
                    break

    def _address(self, kind: int, flags: int, ifname: str, address: str, prefixlen: int) -> int:
        index = socket.if_nametoindex(ifname)
        packed = socket.inet_aton(address)
        body = struct.pack("=BBBBL", socket.AF_INET, prefixlen, 0, 0, index)
        for attr in (IFA_LOCAL, IFA_ADDRESS):
            body += struct.pack("=HH", 8, attr) + packed
        return self._request(kind, flags, body)

    def add_address(self, ifname: str, address: str, prefixlen: int = 32) -> None:
        error = self._address(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifname, address, prefixlen)
        if error:
            raise OSError(error, f"add {address}/{prefixlen} to {ifname}")

    def delete_address(self, ifname: str, address: str, prefixlen: int = 32) -> bool:
        """False if the address was not there."""
        error = self._address(RTM_DELADDR, 0, ifname, address, prefixlen)
        if error in (0,):
            return True
        if error in (99, 19):  # EADDRNOTAVAIL, ENODEV
            return False
        raise OSError(error, f"delete {address}/{prefixlen} from {ifname}")


class Announcer:
    """Gratuitous ARP for ``address`` on ``ifname``: a request and a reply, broadcast.

    The packet socket is opened and bound once, ahead of time: binding one
    waits for an RCU grace period (tens of milliseconds), sending does not.
    """

    def __init__(self, ifname: str, address: str) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        self._sock.bind((ifname, ETH_P_ARP))
        mac: bytes = self._sock.getsockname()[4]
        ip = socket.inet_aton(address)
        broadcast = b"\xff" * 6
        self._frames = []
        for op, target_mac in ((1, b"\x00" * 6), (2, broadcast)):
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + ip + target_mac + ip
            self._frames.append(broadcast + mac + struct.pack("!H", ETH_P_ARP) + arp)

    def announce(self) -> None:
        for frame in self._frames:
            self._sock.send(frame)

    def close(self) -> None:
        self._sock.close()
