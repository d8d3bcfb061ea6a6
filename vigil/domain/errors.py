"""Domain errors.

The API turns each class into one HTTP status (see ``vigil.api.errors``), so
the class, not the message, decides what a caller sees: a missing resource is
404, a request that conflicts with the current state is 409, bad arguments
are 422, a request a VIM refused as malformed 400, a VIM that failed 502.
"""


class DomainError(Exception):
    """Base of every error the domain and the engines raise on purpose."""


class NotFound(DomainError):
    """The named resource does not exist (or is not visible to the caller)."""

    def __init__(self, kind: str, ident: str, *, message: str | None = None) -> None:
        super().__init__(message or f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class AlreadyExists(DomainError):
    """A resource with that identifier exists already."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} already exists")
        self.kind = kind
        self.ident = ident


class Conflict(DomainError):
    """The request cannot be carried out in the resource's current state."""


class IllegalTransition(Conflict):
    """A state change that the transition table does not allow."""

    def __init__(self, kind: str, ident: str, old: str, new: str) -> None:
        super().__init__(f"{kind} {ident!r} cannot go from {old} to {new}")
        self.kind = kind
        self.ident = ident
        self.old = old
        self.new = new


class InvalidRequest(DomainError):
    """The request cannot be carried out as it is, whatever the state: a VIM refused it as malformed (400)."""


class VimFailed(DomainError):
    """The VIM could not be reached, failed, or refused Vigil's own credentials: nothing the caller's request
    could change (502)."""


class NoValidHost(Conflict):
    """The scheduler found no host that satisfies capacity and placement policy."""


class InvalidTopology(DomainError):
    """A topology refers to something it does not define, or cannot be placed."""


class StoreRefused(DomainError):
    """The store refused a value of this unit of work for good; nothing of it was stored."""


class NotLeader(DomainError):
    """With high availability: this process no longer holds the leader's lease, so it must not act (no write, no
    notification, no fence, no VIM call); the new leader does it."""
