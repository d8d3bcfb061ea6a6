"""Signed southbound reports: an HMAC-SHA256 of the request body, as the heartbeats carry.

A monitor that holds the shared key (``monitor.key`` on the server, ``--key``
on ``vigil agent``) sends ``X-Vigil-Signature: sha256=<hex>`` with each
report; Vigil checks it (and, with ``monitor.require_signed_reports``,
refuses a report without one), so a stolen monitor token alone cannot report
a host down. Pure: the caller hands in the exact bytes of the body.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Vigil-Signature"
_PREFIX = "sha256="


def sign(key: bytes, body: bytes) -> str:
    """The header value for ``body``."""
    return _PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(key: bytes, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is ``body``'s under ``key`` (compared in constant time)."""
    return signature.startswith(_PREFIX) and hmac.compare_digest(signature, sign(key, body))
