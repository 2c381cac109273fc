"""Socket Mode: Slack's envelopes over WebSockets, with no gap when Slack refreshes a connection.

Slack sends `disconnect` (`refresh_requested` every few hours, `warning`, `link_disabled`) some
seconds before it closes a socket, and may still send envelopes on it until then; it never sends
a slash command twice. So the next connection is opened first, and the old one is read until
Slack closes it: every envelope, on whichever socket, is handled once and acknowledged on the
socket it arrived on. A socket that closes without warning is replaced at once, then with
backoff while Slack cannot be reached.

Every envelope goes through `handle_envelope`, the one door into the Bolt app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot import inbox
from bot.config import WHERE
from bot.errors import ConfigError
from bot.metrics import Metrics
from bot.tasks import Inflight

log = logging.getLogger(__name__)

Ack = dict[str, Any]

# apps.connections.open errors that the same app token will always meet again.
REFUSALS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "not_allowed_token_type",
        "missing_args",
    }
)
REMEMBERED_ENVELOPES = 2048  # envelope ids whose answer is kept, to answer a repeat the same way

_FAILURES = (SlackApiError, aiohttp.ClientError, OSError, TimeoutError)


async def handle_envelope(
    bolt: AsyncApp, envelope: Mapping[str, Any], *, intake: Intake | None = None
) -> Ack | None:
    """Dispatch one envelope into the Bolt app; the ack to send back, or None for no ack.

    Exactly what slack_bolt's AsyncSocketModeHandler does: the payload becomes a Socket Mode
    Bolt request (retry headers included), and Bolt's answer becomes the ack's payload. No ack
    when Bolt did not answer 200 (no listener, or one failed before acking), as over HTTP.
    With an `intake`, the payload is committed to the inbox before anything else, as over
    HTTP: a process that dies after the ack leaves it for another to run.
    """
    request = SocketModeRequest.from_dict(dict(envelope))
    if request is None:
        log.warning("a Socket Mode envelope without a payload was acknowledged and ignored")
        return {"envelope_id": str(envelope["envelope_id"])}
    bolt_request = AsyncBoltRequest(
        mode="socket_mode", body=request.payload, headers=build_headers(request)
    )
    if intake is None:
        return ack_for(request.envelope_id, await bolt.async_dispatch(bolt_request))
    # Run again after a crash, the payload reads as the JSON body of an HTTP request.
    ticket = await intake.inbox.record(
        source="socket", content_type="application/json", body=json.dumps(request.payload)
    )
    token = inbox.CURRENT.set(ticket)
    try:
        response = await bolt.async_dispatch(bolt_request)
    finally:
        inbox.CURRENT.reset(token)
    intake.inbox.finish_soon(ticket)
    return ack_for(request.envelope_id, response)


@dataclass(frozen=True)
class Intake:
    """Where envelopes are recorded before they are acknowledged."""

    inbox: inbox.Inbox


def ack_for(envelope_id: str, response: BoltResponse) -> Ack | None:
    """The Socket Mode ack carrying Bolt's answer (empty, JSON, or text)."""
    if response.status != 200:
        log.info("envelope %s not acknowledged: Bolt answered %s", envelope_id, response.status)
        return None
    ack: Ack = {"envelope_id": envelope_id}
    if response.body:
        content_type = response.headers.get("content-type", [""])[0]
        if content_type.startswith("application/json"):
            ack["payload"] = json.loads(response.body)
        else:
            ack["payload"] = {"text": response.body}
    return ack


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts to connect: none before the first, then doubling to a ceiling."""

    base: float = 1.0
    ceiling: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` failed attempts in a row."""
        return 0.0 if failures <= 0 else min(self.base * 2.0 ** (failures - 1), self.ceiling)


@dataclass(eq=False)
class _Connection:
    number: int
    ws: aiohttp.ClientWebSocketResponse
    reader: asyncio.Task[None] | None = None


class SocketMode:
    """The bot's Socket Mode connections: one current, plus an old one while Slack retires it."""

    def __init__(
        self,
        *,
        bolt: AsyncApp,
        app_token: str,
        slack: AsyncWebClient,
        metrics: Metrics | None = None,
        backoff: Backoff | None = None,
        heartbeat: float = 10.0,
        connect_timeout: float = 30.0,
        retire_after: float = 60.0,
        drain_seconds: float = 5.0,
        intake: Intake | None = None,
    ) -> None:
        """`slack` is the bot's Web API client: apps.connections.open goes to its base URL.

        `heartbeat`: seconds between pings; a connection without a pong is replaced.
        `connect_timeout`: the longest a WebSocket handshake may take. `retire_after`: how long
        an old connection is read after its replacement opened, if Slack does not close it
        first. `drain_seconds`: how long `close` lets envelopes already received finish and be
        acknowledged.
        """
        self._bolt = bolt
        self._intake = intake
        self._app_token = app_token
        self._slack = slack
        self._metrics = metrics or Metrics()
        self._backoff = backoff or Backoff()
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._retire_after = retire_after
        self._drain_seconds = drain_seconds
        self._session: aiohttp.ClientSession | None = None
        self._current: _Connection | None = None
        self._connections: set[_Connection] = set()
        self._opened = 0
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._housekeeping: set[asyncio.Task[None]] = set()
        self._envelopes = Inflight()
        self._answers: OrderedDict[str, asyncio.Future[Ack | None]] = OrderedDict()

    @property
    def connected(self) -> bool:
        """Whether a connection is open to receive envelopes."""
        return self._current is not None and not self._current.ws.closed

    async def start(self) -> None:
        """Open the first connection; ConfigError when Slack refuses the app token.

        When Slack cannot be reached, connecting goes on in the background with backoff.
        """
        self._session = aiohttp.ClientSession()
        try:
            await self._connect("start")
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if error not in REFUSALS:
                self._retry_later("start", exc)
                return
            await self.close()
            raise ConfigError(
                "SLACK_APP_TOKEN",
                f"was refused by Slack ({error})",
                f"get it from {WHERE['SLACK_APP_TOKEN']}",
            ) from None
        except _FAILURES as exc:
            self._retry_later("start", exc)

    async def close(self) -> None:
        """Let envelopes already received be acknowledged, then close every connection."""
        if self._closing:
            return
        self._closing = True
        tasks = [t for t in (self._reconnecting, *self._housekeeping) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await self._envelopes.wait(self._drain_seconds)
        readers = [c.reader for c in self._connections if c.reader is not None]
        for connection in list(self._connections):
            await connection.ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        log.info("Socket Mode closed")

    # -- connections -----------------------------------------------------------------------

    async def _connect(self, reason: str) -> None:
        """apps.connections.open, then the WebSocket; the new connection becomes current."""
        assert self._session is not None, "start() first"
        response = await self._slack.apps_connections_open(app_token=self._app_token)
        async with asyncio.timeout(self._connect_timeout):
            ws = await self._session.ws_connect(
                str(response["url"]),
                heartbeat=self._heartbeat,
                proxy=self._slack.proxy,
                ssl=self._slack.ssl if self._slack.ssl is not None else True,
            )
        if self._closing:
            await ws.close()
            return
        self._opened += 1
        connection = _Connection(self._opened, ws)
        previous, self._current = self._current, connection
        self._connections.add(connection)
        connection.reader = asyncio.create_task(
            self._read(connection), name=f"socket-mode-{connection.number}"
        )
        self._metrics.inc("socket_mode_connections_total", reason=reason)
        log.info("Socket Mode connection %d open (%s)", connection.number, reason)
        if previous is not None and not previous.ws.closed:
            self._spawn(self._retire(previous), name=f"retire-{previous.number}")

    def _retry_later(self, reason: str, exc: BaseException) -> None:
        log.warning("Socket Mode could not connect (%s); trying again", _describe(exc))
        self._reconnect_soon(reason, failures=1)

    def _reconnect_soon(self, reason: str, *, failures: int = 0) -> None:
        """Open a new connection in the background, unless one is already being opened."""
        if self._closing or (self._reconnecting is not None and not self._reconnecting.done()):
            return
        self._reconnecting = asyncio.create_task(
            self._reconnect(reason, failures), name="socket-mode-reconnect"
        )

    async def _reconnect(self, reason: str, failures: int) -> None:
        while not self._closing:
            delay = self._backoff.delay(failures)
            if delay > 0:
                await self._backoff.sleep(delay)
            try:
                await self._connect(reason)
                return
            except _FAILURES as exc:
                failures += 1
                log.warning(
                    "Socket Mode could not connect (%s); trying again in %.0f s",
                    _describe(exc),
                    self._backoff.delay(failures),
                )
            except Exception:  # a bug must not leave the bot without a connection for good
                failures += 1
                log.exception("Socket Mode could not connect; trying again")

    async def _retire(self, connection: _Connection) -> None:
        """Keep reading a replaced connection until Slack closes it, or close it after a while."""
        assert connection.reader is not None
        try:
            await asyncio.wait_for(asyncio.shield(connection.reader), self._retire_after)
        except TimeoutError:
            log.info(
                "Socket Mode connection %d outlived its replacement; closing it", connection.number
            )
            await connection.ws.close()

    async def _read(self, connection: _Connection) -> None:
        ws = connection.ws
        try:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._received(connection, message.data)
                elif message.type in _ENDS:
                    break
        finally:
            self._connections.discard(connection)
            if connection is self._current and not self._closing:
                log.warning(
                    "Socket Mode connection %d closed without warning (code %s); reconnecting",
                    connection.number,
                    ws.close_code,
                )
                self._reconnect_soon("closed")  # before the close handshake, which may hang
            else:
                log.info("Socket Mode connection %d closed", connection.number)
            if not ws.closed:
                await ws.close()

    def _received(self, connection: _Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            log.warning(
                "Socket Mode connection %d sent a frame that is not a JSON object; ignored",
                connection.number,
            )
            return
        kind = message.get("type")
        if kind == "hello":
            log.debug("Socket Mode connection %d: hello %s", connection.number, message)
        elif kind == "disconnect":
            self._disconnect_requested(connection, str(message.get("reason", "")))
        elif isinstance(message.get("envelope_id"), str):
            self._envelopes.spawn(
                self._serve(connection, message), name=f"envelope-{message['envelope_id']}"
            )
        else:
            log.info("Socket Mode message of type %r ignored", kind)

    def _disconnect_requested(self, connection: _Connection, reason: str) -> None:
        """Slack will close this connection soon: open the next one, keep reading this one."""
        if connection is not self._current:
            return  # already replaced (a `warning` followed by `refresh_requested`)
        level = logging.WARNING if reason == "link_disabled" else logging.INFO
        log.log(
            level,
            "Slack will close Socket Mode connection %d (%s); opening the next one first",
            connection.number,
            reason or "no reason given",
        )
        self._reconnect_soon(reason or "disconnect")

    # -- envelopes -------------------------------------------------------------------------

    async def _serve(self, connection: _Connection, envelope: dict[str, Any]) -> None:
        """Handle an envelope (once, even when it arrives twice) and ack it where it arrived."""
        envelope_id: str = envelope["envelope_id"]
        answer = self._answers.get(envelope_id)
        if answer is None:
            answer = asyncio.ensure_future(
                handle_envelope(self._bolt, envelope, intake=self._intake)
            )
            self._answers[envelope_id] = answer
            while len(self._answers) > REMEMBERED_ENVELOPES:
                self._answers.popitem(last=False)
        else:
            log.info("envelope %s arrived again; answered once", envelope_id)
        try:
            ack = await asyncio.shield(answer)
        except Exception:  # a failure in Bolt itself: logged, and Slack may send it again
            if self._answers.get(envelope_id) is answer:
                del self._answers[envelope_id]
            log.exception("Socket Mode envelope %s could not be handled", envelope_id)
            return
        if ack is not None:
            await self._send(connection, ack)

    async def _send(self, connection: _Connection, ack: Ack) -> None:
        """Ack on the envelope's own connection; on the current one if that one has closed."""
        text = json.dumps(ack)
        for target in (connection, self._current):
            if target is None or target.ws.closed:
                continue
            try:
                await target.ws.send_str(text)
            except (ConnectionError, aiohttp.ClientError):
                continue
            if target is not connection:
                log.info(
                    "envelope %s acknowledged on connection %d: %d had closed",
                    ack["envelope_id"],
                    target.number,
                    connection.number,
                )
            return
        log.warning(
            "envelope %s could not be acknowledged: no connection is open", ack["envelope_id"]
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._housekeeping.add(task)
        task.add_done_callback(self._housekeeping.discard)


_ENDS = frozenset(
    {
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSING,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
    }
)


def _describe(exc: BaseException) -> str:
    """A failure in words, without the WebSocket URL (its ticket is a credential)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown_error"))
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
