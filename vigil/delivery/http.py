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

The callback policy (``vigil.domain.callbacks``) is enforced where the
connection is made: the session resolves names through
:class:`PolicyResolver`, which drops every address the policy refuses, and
aiohttp connects only to the addresses it returns, so the address checked is
the address called (a name that later resolves elsewhere is checked again).
A host aiohttp takes for an address literal (``127.0.0.1``, but also
``2130706433``) never reaches a resolver: :meth:`HttpSender._url` reads it
the way the system would and checks it once. A refused callback fails with
PermanentError, for good. :meth:`HttpSender.check` applies the same rules
when a subscription is made.

With high availability, nothing is sent once ``acting`` says this process no
longer holds the leader's lease (a leader woken from a freeze longer than its
lease): the delivery stays pending in the outbox, for the new leader.
"""

import asyncio
import base64
import json
import logging
import socket
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from aiohttp.resolver import DefaultResolver
from yarl import URL

from vigil.domain.callbacks import CallbackPolicy, CallbackRefused, check_url
from vigil.domain.retry import PermanentError, TemporaryError, classify
from vigil.notifier.ports import SendResult

log = logging.getLogger(__name__)

__all__ = ["HttpSender"]


async def _on_chunk_sent(session: aiohttp.ClientSession, context: Any, params: Any) -> None:
    """aiohttp's trace hook: a request's body went out; tell whoever asked (``send``'s ``on_sent``)."""
    asked = getattr(context, "trace_request_ctx", None)
    if isinstance(asked, dict) and (on_sent := asked.get("on_sent")) is not None:
        on_sent()


class ForbiddenCallback(OSError):
    """Every address of a callback's host is one the callback policy refuses."""


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver, with every address the callback policy refuses taken out."""

    def __init__(self, policy: CallbackPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._policy.refusal(r["host"]) is None]
        if not allowed:
            reasons = sorted({self._policy.refusal(r["host"]) or "" for r in found})
            raise ForbiddenCallback(f"{host} resolves to no address a callback may use: {'; '.join(reasons)}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


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
        policy: CallbackPolicy | None = None,
        acting: Callable[[], bool] | None = None,
    ) -> None:
        self.policy = policy or CallbackPolicy()
        self._acting = acting  # with high availability: whether this process still leads (vigil.store.leader)
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
                resolver=PolicyResolver(self.policy),
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
        if self._acting is not None and not self._acting():
            raise TemporaryError("not the leader: the new leader sends it")
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
                _forbidden(url, exc)
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
            _forbidden(url, exc)
            raise TemporaryError(f"cannot reach {url}: {exc!r}") from exc

    async def fetch_token(self, endpoint: str, client_id: str, secret: str) -> tuple[str, float]:
        """RFC 6749 client credentials: POST ``grant_type=client_credentials`` with HTTP Basic
        to ``endpoint`` (under the callback policy); the access token and its lifetime."""
        session = await self._ready()
        try:
            async with session.post(
                self._url(endpoint),
                data={"grant_type": "client_credentials"},
                headers={"Authorization": _basic(client_id, secret)},
                timeout=self._timeout(self._warm_timeout_s),
                allow_redirects=False,
            ) as response:
                status = response.status
                answer = await response.read()
        except TimeoutError as exc:
            raise TemporaryError(f"no answer from the token endpoint within {self._warm_timeout_s} s") from exc
        except aiohttp.ClientError as exc:
            _forbidden(endpoint, exc)
            raise TemporaryError(f"cannot reach the token endpoint: {exc!r}") from exc
        classify(status)
        try:
            document = json.loads(answer)
            return str(document["access_token"]), float(document.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError("the token endpoint's answer has no access_token") from exc

    async def check(self, url: str) -> None:
        """Whether ``url`` is a callback the policy allows, now (its host resolved):
        PermanentError naming the rule if not. Nothing is sent."""
        host = self._url(url).raw_host or ""
        if is_ip_address(host):
            return  # an address literal, checked by _url
        try:
            await PolicyResolver(self.policy).resolve(host, 0, socket.AF_UNSPEC)
        except ForbiddenCallback as exc:
            raise PermanentError(f"callback refused: {exc}") from exc
        except OSError as exc:
            raise PermanentError(f"callback refused: its host {host} does not resolve") from exc

    def _url(self, url: str) -> URL:
        """The parsed URL, once it passed the policy's URL rules and, for an address literal,
        the address rules (an address does not change; a name is checked on each connection)."""
        parsed = self._urls.get(url)
        if parsed is None:
            try:
                check_url(url)
                parsed = URL(url)
            except CallbackRefused as exc:
                raise PermanentError(f"callback refused: {exc}") from exc
            except ValueError as exc:
                raise PermanentError(f"not a usable URL: {url!r} ({exc})") from exc
            host = parsed.raw_host or ""
            if is_ip_address(host):
                refusal = self.policy.refusal(_literal(host))
                if refusal is not None:
                    raise PermanentError(f"callback refused: {refusal}")
            if len(self._urls) >= _MAX_CACHED_URLS:
                self._urls.clear()
            self._urls[url] = parsed
        return parsed

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts.setdefault(seconds, aiohttp.ClientTimeout(total=seconds))
        return timeout


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def _literal(host: str) -> str:
    """The address a host that looks like a literal means, as the system reads it
    (``2130706433`` and ``127.1`` are 127.0.0.1); PermanentError if it means none."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, flags=socket.AI_NUMERICHOST)
    except socket.gaierror as exc:
        raise PermanentError(f"callback refused: {host} is not an address") from exc
    return str(infos[0][4][0]).split("%")[0]


def _forbidden(url: str, exc: BaseException) -> None:
    """Raise PermanentError if a connection failed because the policy refused every address."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ForbiddenCallback):
            raise PermanentError(f"callback refused: {cause}") from exc
        cause = cause.__cause__ or getattr(cause, "os_error", None)


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
