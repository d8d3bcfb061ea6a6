"""Which things changed after a given moment, for a reader that compares them with another source of truth.

The OpenStack reconciliation reads Nova's inventory, which takes a while,
and then copies what differs into Vigil's map. Whatever changed in the map
while it was reading (the inspector's recovery, applied and not yet
durable) or was pushed to Nova meanwhile is newer than what it read, and
must be left alone. A :class:`ChangeLog` counts changes with a version and
remembers the version of each thing's last change: the reader takes
:attr:`ChangeLog.version` before reading and asks :meth:`changed_since`
after. Memory is bounded: the least recently changed are forgotten first,
and a question about a version older than what was forgotten is answered
"changed" (safe: the reader leaves it for its next round).
"""

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

KEPT = 100_000  # the most recently changed things whose last change is remembered


class ChangeLog:
    """The version of each thing's last change (things named by a string)."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._version = 0
        self._last: OrderedDict[str, int] = OrderedDict()
        self._forgotten = 0  # the newest version no longer remembered
        self._bulk = False

    @property
    def version(self) -> int:
        """How many changes there were so far: take it before reading, to ask :meth:`changed_since` after."""
        return self._version

    def mark(self, ident: str) -> None:
        """``ident`` changed now."""
        if self._bulk:
            return
        self._version += 1
        self._last[ident] = self._version
        self._last.move_to_end(ident)
        if len(self._last) > self._kept:
            _, self._forgotten = self._last.popitem(last=False)

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Everything changes inside (a bootstrap, a restore): logged as one change of everything at the end,
        not a mark per thing, which kept 200,000 entries and added 30% to a restore."""
        self._bulk = True
        try:
            yield
        finally:
            self._bulk = False
            self._version += 1
            self._forgotten = self._version
            self._last.clear()

    def changed_since(self, ident: str, version: int) -> bool:
        """Whether ``ident`` changed after ``version`` (also when that is older than what is remembered)."""
        return self._forgotten > version or self._last.get(ident, 0) > version


__all__ = ["ChangeLog"]
