"""The notifier's ports: what it needs from the outside world, as small Protocols.

:class:`Sender` posts one rendered notification to one callback URL. Its
HTTP implementation is the adapter ``vigil.delivery.http.HttpSender``;
tests may pass anything with the same two methods. A sender tells the
outcome by exception type (``vigil.domain.retry``): it returns a
:class:`SendResult` for a 2xx answer, and raises ``TemporaryError`` or
``PermanentError`` otherwise.
"""

from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol


class SendResult(NamedTuple):
    """A delivered notification: the receiver's 2xx status, and when it says it received it.

    ``received_at`` (Unix seconds) is the receiver's own clock, read from a
    JSON answer ``{"received_at": ...}``; Doctor's T09 checkpoint. None when
    the receiver did not say.
    """

    status: int
    received_at: float | None


class Sender(Protocol):
    async def send(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        on_sent: Callable[[], None] | None = None,
    ) -> SendResult:
        """POST ``body`` (JSON) to ``url``; raise TemporaryError or PermanentError unless it is accepted.

        ``on_sent`` is called as soon as the request has gone out, before the answer."""
        ...

    async def warm(self, url: str) -> int:
        """Open a connection to ``url``'s server ahead of the first notification
        (a GET); return the status it answered."""
        ...

    async def check(self, url: str) -> None:
        """Raise PermanentError, naming the rule, if the callback policy refuses ``url`` (nothing is sent)."""
        ...

    async def fetch_token(self, endpoint: str, client_id: str, secret: str) -> tuple[str, float]:
        """An OAuth 2.0 client-credentials token from ``endpoint``, and how many seconds it lasts;
        TemporaryError or PermanentError as a send's."""
        ...
