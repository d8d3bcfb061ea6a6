"""Where Vigil may send a notification: the callback policy, pure.

A subscription's callback is a URL a tenant chose, and Vigil connects to it.
Left open, that lets a tenant aim Vigil at the machine it runs on (a
database on 127.0.0.1:5432), at the cloud's metadata service
(169.254.169.254), or at the operator's private networks, and use the
callback test's answers as a port scanner. The policy:

* :func:`check_url`: an ``http`` or ``https`` URL of at most
  ``MAX_URL_LENGTH`` characters, with a host and without credentials (those
  go in SOL 003's ``authentication``, kept secret);
* :meth:`CallbackPolicy.refusal`: an address is refused unless it is
  globally routable: loopback, link-local, private (RFC 1918), shared
  (RFC 6598), unique-local, multicast, unspecified and reserved addresses are
  out, and so are IPv6 forms that carry one of those (IPv4-mapped, 6to4,
  NAT64), whatever the spelling (``2130706433`` and ``0x7f.0.0.1`` resolve
  to 127.0.0.1 and are refused as that). The operator lets ranges in with
  ``notifier.allowed_callback_networks`` (the demos and tests allow
  loopback).

The HTTP adapter applies the policy to every address it resolves, on every
connection (``vigil.delivery.http``), so a name that resolved to a public
address when the subscription was made and to a private one later is still
refused.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

# What the demos, the tests and the example configuration allow: callbacks on this machine.
LOOPBACK = ("127.0.0.0/8", "::1/128")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class CallbackRefused(ValueError):
    """A callback the policy refuses; the message names the rule."""


def check_url(url: str) -> str:
    """The URL's host, if it is an acceptable callback URL; CallbackRefused otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"a callback URL is at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused(f"a callback URL is http or https, not {parts.scheme or 'schemeless'}")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("a callback URL may not carry credentials: use the subscription's authentication")
    if not parts.hostname:
        raise CallbackRefused("a callback URL needs a host")
    if ":" not in parts.hostname:  # a name (or an IPv4 literal), as the resolver will encode it
        try:
            encoded = parts.hostname.encode("idna")
        except UnicodeError:
            encoded = b""
        if not encoded or len(encoded) > 253:
            raise CallbackRefused(
                f"{parts.hostname[:80]!r} is not a valid host name (labels of 1 to 63 characters, at most 253 in all)"
            )
    return parts.hostname


def _kind(address: Address) -> str | None:
    """Why an address is not one to send notifications to, or None if it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = _kind(embedded)
            return None if inner is None else f"{inner} (inside {address})"
    for name, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
    ):
        if test:
            return name
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "unique-local"
    if address.is_private:
        return "private"
    if not address.is_global or address.is_reserved:
        return "not globally routable"
    return None


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """Refuse addresses that are not globally routable, unless an allowed network holds them."""

    allowed: tuple[Network, ...] = field(default_factory=tuple)

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> "CallbackPolicy":
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def refusal(self, address: str | Address) -> str | None:
        """Why ``address`` may not be called back, or None if it may."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return None
        kind = _kind(ip)
        if kind is None:
            return None
        return f"{ip} is a {kind} address (allow it with notifier.allowed_callback_networks)"
