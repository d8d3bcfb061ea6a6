"""Failure aggregation: several non-critical failures of one resource make it unavailable.

Doctor: "the VIM determines unavailability of physical resource from more
than two non-critical failures related to the same resource". Each failure
is a key (the event family and what it names, e.g. ``network.link/eth1``),
remembered with the time it went down until its recovery; ``count`` is how
many keys went down within the window. "Now" is passed in, so the window is
testable without sleeping.
"""


class Aggregator:
    def __init__(self) -> None:
        self._down: dict[str, dict[str, float]] = {}

    def add(self, resource: str, key: str, at: float) -> None:
        self._down.setdefault(resource, {}).setdefault(key, at)

    def remove(self, resource: str, key: str) -> None:
        keys = self._down.get(resource)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._down[resource]

    def reset(self, resource: str) -> None:
        self._down.pop(resource, None)

    def count(self, resource: str, now: float, window_s: float) -> int:
        """Distinct failures of ``resource`` that began within ``window_s`` before ``now``."""
        return sum(1 for at in self._down.get(resource, {}).values() if now - at <= window_s)

    def keys(self, resource: str) -> list[str]:
        return sorted(self._down.get(resource, {}))

    def times(self, resource: str) -> dict[str, float]:
        """Each failure of ``resource`` still down, with when it began (a copy)."""
        return dict(self._down.get(resource, {}))
