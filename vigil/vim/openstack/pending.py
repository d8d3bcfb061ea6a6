"""What Vigil has changed in its map and is still making Nova and Neutron say: the pushes not yet landed.

Vigil's map changes first and the VIM is made to agree after
(:mod:`vigil.vim.openstack.push`); until a push lands, Nova holds the old
state. That is not drift, and the sync (:mod:`vigil.vim.openstack.sync`)
must not copy it back: a recovered host's forced-up, which Nova refuses for
as long as evacuation records remain on the host, would otherwise be undone
by the next reconciliation, forcing Vigil's host down again though its
monitor said it is up. The pusher marks each resource from the moment a
batch asks for its push until the call lands or is given up; the sync
leaves what Nova says of a resource alone while its push is on its way, and
a reconciliation also when the push landed after its read began (the read
saw Nova before it).
"""

from collections import Counter

from vigil.domain.changelog import ChangeLog


class PendingPushes:
    """Resources (host names, server and port ids) with a push on its way, and when each last landed."""

    def __init__(self) -> None:
        self._count: Counter[str] = Counter()  # two pushes of one resource can be on their way
        self._landed = ChangeLog()

    @property
    def version(self) -> int:
        """Taken before a read of Nova, to ask :meth:`since` after it."""
        return self._landed.version

    def begin(self, ident: str) -> None:
        self._count[ident] += 1

    def end(self, ident: str) -> None:
        """The push landed or was given up: Nova says what it says from now on."""
        self._landed.mark(ident)
        self._count[ident] -= 1
        if self._count[ident] <= 0:
            del self._count[ident]

    def __len__(self) -> int:
        return len(self._count)

    def __contains__(self, ident: object) -> bool:
        return ident in self._count

    def since(self, ident: str, version: int) -> bool:
        """Whether a push of ``ident`` is on its way now or ended after ``version``."""
        return ident in self._count or self._landed.changed_since(ident, version)


__all__ = ["PendingPushes"]
