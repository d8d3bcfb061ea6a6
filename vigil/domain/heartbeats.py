"""The heartbeat datagram: what ``vigil agent`` sends and the heartbeat monitor reads.

One UDP datagram per heartbeat, compact JSON::

    {"v":1,"host":"compute-1","seq":42,"interval_ms":20,"mult":3,"sent":1767225600.123456}

* ``v``: format version, 1.
* ``host``: the compute host the agent represents (a host name of the cloud).
* ``seq``: a counter the agent increases by one per heartbeat; the monitor
  ignores a sequence number not above the last one it took (duplicates and
  datagrams overtaken by later ones) and counts the gaps as lost.
* ``interval_ms`` and ``mult``: the agent's sending interval and detect
  multiplier; the monitor declares the host lost ``mult x interval_ms``
  after the last heartbeat (BFD's detection time). Either may be left out:
  the monitor's configured defaults apply.
* ``sent``: the agent's Unix time when it sent the datagram (informative).
* ``epoch`` (optional): an integer that changes when the agent restarts (its
  start time in ms), so a restarted agent's sequence numbers starting again
  at 1 are not taken for old datagrams.

With a shared key the datagram is authenticated: the JSON text, a newline,
and the hex HMAC-SHA256 of the JSON text under the key (the first 16 bytes,
32 hex digits). A datagram whose MAC is missing or wrong is refused.

Pure: encoding and decoding only, no sockets.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TypeGuard

VERSION = 1
MAX_DATAGRAM = 1024
MAC_HEX = 32
MAX_HOST = 255


class BadDatagram(ValueError):
    """A datagram that is not a valid heartbeat (or fails authentication)."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    host: str
    seq: int
    interval_ms: float | None
    mult: int | None
    sent: float
    epoch: int | None = None


def _mac(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()[:MAC_HEX].encode()


def encode(beat: Heartbeat, key: bytes | None = None) -> bytes:
    body: dict[str, object] = {
        "v": VERSION,
        "host": beat.host,
        "seq": beat.seq,
    }
    if beat.interval_ms is not None:
        body["interval_ms"] = beat.interval_ms
    if beat.mult is not None:
        body["mult"] = beat.mult
    body["sent"] = round(beat.sent, 6)
    if beat.epoch is not None:
        body["epoch"] = beat.epoch
    payload = json.dumps(body, separators=(",", ":")).encode()
    if key:
        return payload + b"\n" + _mac(payload, key)
    return payload


def decode(data: bytes, key: bytes | None = None) -> Heartbeat:
    """The heartbeat in ``data``; :class:`BadDatagram` says why it is not one."""
    if len(data) > MAX_DATAGRAM:
        raise BadDatagram(f"datagram of {len(data)} bytes, more than {MAX_DATAGRAM}")
    if key:
        payload, sep, mac = data.rpartition(b"\n")
        if not sep:
            raise BadDatagram("no MAC, and a key is configured")
        if not hmac.compare_digest(mac, _mac(payload, key)):
            raise BadDatagram("wrong MAC")
        data = payload
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDatagram(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadDatagram("not a JSON object")
    if body.get("v") != VERSION:
        raise BadDatagram(f"version {body.get('v')!r}, expected {VERSION}")
    host, seq, interval, mult, sent = (body.get(k) for k in ("host", "seq", "interval_ms", "mult", "sent"))
    epoch = body.get("epoch")
    if not isinstance(host, str) or not 0 < len(host) <= MAX_HOST:
        raise BadDatagram("host must be a non-empty string")
    if not _is_int(seq) or seq < 0:
        raise BadDatagram("seq must be a non-negative integer")
    if interval is not None and (not _is_number(interval) or not 1 <= interval <= 60_000):
        raise BadDatagram("interval_ms must be a number from 1 to 60000")
    if mult is not None and (not _is_int(mult) or not 1 <= mult <= 255):
        raise BadDatagram("mult must be an integer from 1 to 255")
    if not _is_number(sent):
        raise BadDatagram("sent must be a number")
    if epoch is not None and not _is_int(epoch):
        raise BadDatagram("epoch must be an integer")
    return Heartbeat(host, seq, None if interval is None else float(interval), mult, float(sent), epoch)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
