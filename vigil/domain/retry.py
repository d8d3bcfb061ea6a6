"""Retries: decided by exception type, spaced by a backoff policy.

As in kopf, whoever tries something says what a failure means by the
exception it raises. For a notification: :class:`TemporaryError` (the receiver answered
5xx, 408 or 429, timed out, or could not be reached: try again later,
after ``delay`` if the error names one) or :class:`PermanentError` (any
other non-2xx answer: trying again would get the same answer). As in
Prometheus Alertmanager, the receiver's HTTP status decides which:
:func:`classify` is that rule, and the HTTP adapter
(``vigil.delivery.http``) applies it.

:class:`RetryPolicy` says how long to wait before each retry and when to
give up. It is pure: the random source is passed in, so tests can fix it.
The notifier's delivery loop (``vigil.notifier.service``) uses both.

The store says what a failed write means the same way (``vigil.store.sql``):
TemporaryError when the database could not be reached or was busy (try the
same write again), PermanentError when it refused a value of the batch (no
retry will store it). The committer (``vigil.controller.changes``) retries
the first and isolates the batch that caused the second.
"""

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["AttemptFailed", "PermanentError", "RetryPolicy", "TemporaryError", "classify"]


class AttemptFailed(Exception):
    """An attempt failed (a delivery, a store write); ``status`` is a receiver's answer, if it gave one."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class TemporaryError(AttemptFailed):
    """Try again: after ``delay`` seconds if given, else after the policy's backoff."""

    def __init__(self, reason: str, delay: float | None = None, *, status: int | None = None) -> None:
        super().__init__(reason, status=status)
        self.delay = delay


class PermanentError(AttemptFailed):
    """Do not try again: the receiver (or the store) refused it for good."""


def classify(status: int) -> None:
    """Return if ``status`` means delivered (2xx); raise what a failure means otherwise.

    5xx, 408 (request timeout) and 429 (too many requests) are temporary;
    every other status, 3xx included (a notification is not redirected), is
    permanent.
    """
    if 200 <= status < 300:
        return
    if status >= 500 or status in (408, 429):
        raise TemporaryError(f"the receiver answered {status}", status=status)
    raise PermanentError(f"the receiver answered {status}", status=status)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with proportional jitter, and a cap on attempts.

    After the ``n``-th failed attempt (``n`` from 1), the base delay is
    ``b(n) = min(max_delay_s, initial_s * factor ** (n - 1))`` and the delay
    is ``b(n) * (1 - jitter * u)`` with ``u`` uniform in [0, 1). The jitter
    only ever shortens a delay, so no delay exceeds ``max_delay_s`` and the
    expected delay, ``b(n) * (1 - jitter / 2)``, never decreases with ``n``.
    It spreads the retries of many deliveries that failed together (a
    receiver restarting) so they do not return in one burst. ``jitter=0``
    gives plain exponential backoff; ``jitter=1`` gives "full jitter"
    (uniform in (0, b(n)]).

    A delivery is attempted at most ``max_attempts`` times in all, so it
    waits out at most ``max_attempts - 1`` delays. A cap below ``initial_s``
    caps every delay.
    """

    initial_s: float = 0.1
    factor: float = 2.0
    max_delay_s: float = 30.0
    max_attempts: int = 10
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.initial_s > 0:
            raise ValueError(f"initial_s must be positive, not {self.initial_s}")
        if not self.factor >= 1:
            raise ValueError(f"factor must be at least 1, not {self.factor}")
        if not self.max_delay_s > 0:
            raise ValueError(f"max_delay_s must be positive, not {self.max_delay_s}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], not {self.jitter}")

    def base_delay(self, attempt: int) -> float:
        """The delay after failed attempt number ``attempt`` (from 1), before jitter."""
        if attempt < 1:
            raise ValueError(f"attempts are numbered from 1, not {attempt}")
        if self.factor == 1 or self.max_delay_s <= self.initial_s:
            return min(self.max_delay_s, self.initial_s)
        # Past this exponent the cap applies; stopping there also keeps factor ** n from overflowing.
        cap = math.log(self.max_delay_s / self.initial_s, self.factor)
        exponent = attempt - 1
        if exponent >= cap:
            return self.max_delay_s
        return min(self.max_delay_s, self.initial_s * self.factor**exponent)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """How long to wait after failed attempt number ``attempt`` (from 1) before the next."""
        base = self.base_delay(attempt)
        if self.jitter == 0:
            return base
        return base * (1 - self.jitter * rng.random())

    def should_retry(self, attempts: int) -> bool:
        """Whether a delivery that has failed ``attempts`` times may be tried again."""
        return attempts < self.max_attempts

    def delays(self, rng: random.Random) -> Iterator[float]:
        """The waits of a delivery that fails every attempt: ``max_attempts - 1`` of them."""
        attempt = 1
        while self.should_retry(attempt):
            yield self.delay(attempt, rng)
            attempt += 1
