"""HTTP delivery: the notifier's ``Sender`` port over aiohttp.

One :class:`HttpSender` holds one ``ClientSession`` for the life of the
process, so every receiver keeps its connections alive between
notifications: a notification to a known receiver costs one request on an
open socket, not a TCP handshake, and a fan-out to N receivers is N
concurrent requests on the same event loop (the notifier starts one task
per delivery). :meth:`HttpSender.warm` opens a connection when a
subscription is created, so the first notification does not pay the
connect either.

The outcome follows ``vigil.domain.retry.classify``: 2xx returns a
:class:`~vigil.notifier.ports.SendResult` (with the receiver's own
``received_at``, Doctor's T09, when its JSON answer has one); 5xx, 408,
429, a timeout or a connection failure raises ``TemporaryError``; any other
status raises ``PermanentError``. Redirects are not followed: a
notification goes to the URL that was registered, or fails.

A keep-alive connection the receiver closed while it sat idle fails the
next request on it (aiohttp only retries idempotent methods itself), so a
POST that fails that way is sent once more, at once, on a fresh
connection. The receiver may then see it twice; the
``X-Vigil-Notification-Id`` header tells it so.
"""

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from vigil.domain.retry import PermanentError, TemporaryError, classify
from vigil.notifier.ports import SendResult

log = logging.getLogger(__name__)

__all__ = ["HttpSender"]


async def _on_chunk_sent(session: aiohttp.ClientSession, context: Any, params: Any) -> None:
    """aiohttp's trace hook: a request's body went out; tell whoever asked (``send``'s ``on_sent``)."""
    asked = getattr(context, "trace_request_ctx", None)
    if isinstance(asked, dict) and (on_sent := asked.get("on_sent")) is not None:
        on_sent()


_JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": "vigil-notifier"}
_MAX_ANSWER_BYTES = 64 * 1024  # answers larger than this are not parsed for received_at
_MAX_CACHED_URLS = 10_000


class HttpSender:
    """Posts notifications over kept-alive HTTP/1.1 connections, one pool for all receivers.

    ``limit`` caps the open connections in all and ``limit_per_host`` per
    receiver (a request beyond waits for a free connection); an idle
    connection is closed after ``keepalive_timeout_s``.
    """

    def __init__(
        self,
        *,
        limit: int = 1000,
        limit_per_host: int = 100,
        keepalive_timeout_s: float = 60.0,
        warm_timeout_s: float = 2.0,
    ) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive_timeout_s = keepalive_timeout_s
        self._warm_timeout_s = warm_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, URL] = {}  # parsed once: callback URLs repeat

    # -- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        """Create the session and its connection pool (sending does so on first use too)."""
        if self._closed:
            raise RuntimeError("this HttpSender was closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=self._keepalive_timeout_s,
            )
            sent = aiohttp.TraceConfig()
            sent.on_request_chunk_sent.append(_on_chunk_sent)
            self._session = aiohttp.ClientSession(
                connector=connector,
                trace_configs=[sent],
                cookie_jar=aiohttp.DummyCookieJar(),  # receivers' cookies are neither kept nor shared
                skip_auto_headers=("Accept", "Accept-Encoding"),
                raise_for_status=False,
            )

    async def close(self) -> None:
        """Close every connection; further sends fail with TemporaryError."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> "HttpSender":
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _ready(self) -> aiohttp.ClientSession:
        if self._closed:
            raise TemporaryError("the sender is closed")
        if self._session is None:
            await self.start()
        assert self._session is not None
        return self._session

    # -- the port ------------------------------------------------------------

    async def send(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        on_sent: Callable[[], None] | None = None,
    ) -> SendResult:
        """POST ``body`` as JSON to ``url``; see the module docstring for the outcomes.

        ``on_sent`` is called once the request's body has been written to the
        connection (it may be called again if a stale connection makes the
        request go out twice)."""
        _check_scheme(url)
        session = await self._ready()
        request_headers = {**_JSON_HEADERS, **headers} if headers else _JSON_HEADERS
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        timeout = self._timeout(timeout_s)
        stale_retry = True
        while True:
            try:
                async with session.post(
                    self._url(url),
                    data=body,
                    headers=request_headers,
                    timeout=timeout,
                    allow_redirects=False,
                    trace_request_ctx={"on_sent": on_sent} if on_sent is not None else None,
                ) as response:
                    status = response.status
                    answer = await response.read()
                    json_answer = "json" in response.content_type
                break
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if isinstance(exc, aiohttp.ClientConnectorError):
                    raise TemporaryError(f"cannot connect to {url}: {exc}") from exc
                remaining = deadline - loop.time()
                if not stale_retry or remaining <= 0:
                    raise TemporaryError(f"connection to {url} lost: {exc!r}") from exc
                stale_retry = False  # a kept-alive connection closed by the receiver: once more, at once
                timeout = aiohttp.ClientTimeout(total=remaining)
                log.debug("connection to %s was closed under the request; sending again", url)
            except TimeoutError as exc:
                raise TemporaryError(f"no answer from {url} within {timeout_s} s") from exc
            except aiohttp.InvalidURL as exc:
                raise PermanentError(f"not a usable URL: {url!r} ({exc})") from exc
            except aiohttp.ClientError as exc:
                raise TemporaryError(f"delivery to {url} failed: {exc!r}") from exc
        classify(status)
        return SendResult(status, _received_at(answer) if json_answer else None)

    async def warm(self, url: str) -> int:
        """Open a kept-alive connection to ``url``'s server with a GET; return its status.

        SOL 003 receivers answer a GET on their callback URI with 204 (the
        notifier's callback test); any answer leaves the connection open for
        the first notification. Raises TemporaryError if the server cannot be reached.
        """
        _check_scheme(url)
        session = await self._ready()
        try:
            async with session.get(
                self._url(url),
                headers=_JSON_HEADERS,
                timeout=self._timeout(self._warm_timeout_s),
                allow_redirects=False,
            ) as response:
                await response.read()
                return response.status
        except TimeoutError as exc:
            raise TemporaryError(f"no answer from {url} within {self._warm_timeout_s} s") from exc
        except aiohttp.InvalidURL as exc:
            raise PermanentError(f"not a usable URL: {url!r} ({exc})") from exc
        except aiohttp.ClientError as exc:
            raise TemporaryError(f"cannot reach {url}: {exc!r}") from exc

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _MAX_CACHED_URLS:
                self._urls.clear()
            try:
                parsed = self._urls[url] = URL(url)
            except ValueError as exc:
                raise PermanentError(f"not a usable URL: {url!r} ({exc})") from exc
        return parsed

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts.setdefault(seconds, aiohttp.ClientTimeout(total=seconds))
        return timeout


def _check_scheme(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"not an HTTP URL: {url!r}")


def _received_at(answer: bytes) -> float | None:
    """The receiver's ``{"received_at": <Unix seconds>}``, if its answer has one."""
    if not answer or len(answer) > _MAX_ANSWER_BYTES:
        return None
    try:
        document: Any = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    value = document.get("received_at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
