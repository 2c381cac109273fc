"""Slack's Socket Mode side on loopback: apps.connections.open and the WebSockets it hands out.

`FakeSocketModeSlack` answers `POST /api/apps.connections.open` as Slack does (the app-level
token in `Authorization: Bearer xapp-…`, `{"ok": true, "url": "ws://…/link/?ticket=…"}`, each
ticket good for one connection) and passes every other Web API call through to the Slack
emulator, so the bot's one `SLACK_API_URL` serves both. Each WebSocket starts with Slack's
`hello`; the test then drives it (envelopes, `disconnect`, a close or a dropped TCP connection)
and reads the acks, recorded with the connection they came back on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.emulator import SlackEmulator

APP_TOKEN = "xapp-1-A0001-1234-socketmodetoken"
HOP_HEADERS = ("Content-Type", "Authorization", "User-Agent")


@dataclass
class Ack:
    """An ack as the app sent it, and on which connection."""

    envelope_id: str
    connection: int
    payload: dict[str, Any] | None


@dataclass(eq=False)
class FakeConnection:
    """One Socket Mode WebSocket, from Slack's side."""

    number: int
    ws: web.WebSocketResponse
    request: web.Request
    sent: list[str] = field(default_factory=list)  # envelope ids delivered on it
    lost: list[str] = field(default_factory=list)  # envelope ids sent after it had closed
    closed_by_slack: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def closed_by_app(self) -> bool:
        """The app closed this socket (Slack had not)."""
        return self.ended.is_set() and not self.closed_by_slack

    @property
    def closed(self) -> bool:
        return self.ws.closed or self.ended.is_set()

    async def send(self, message: dict[str, Any]) -> bool:
        """Send one frame; False when the socket had already closed (the frame is lost)."""
        if self.closed:
            return False
        try:
            await self.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def envelope(
        self, kind: str, payload: dict[str, Any], *, envelope_id: str | None = None
    ) -> str:
        """An envelope of `kind` (slash_commands, interactive, events_api); its id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        delivered = await self.send(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "accepts_response_payload": kind != "events_api",
                "payload": payload,
            }
        )
        (self.sent if delivered else self.lost).append(envelope_id)
        return envelope_id

    async def command(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        response_url: str,
        envelope_id: str | None = None,
    ) -> str:
        """`/incident text` typed by `user` in `channel`, as a slash_commands envelope."""
        return await self.envelope(
            "slash_commands",
            command_payload(text, user=user, channel=channel, response_url=response_url),
            envelope_id=envelope_id,
        )

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's notice that it will close this connection soon."""
        await self.send(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )

    async def close(self, code: int = aiohttp.WSCloseCode.OK) -> None:
        """Slack closes the socket (a close frame, then the TCP connection)."""
        self.closed_by_slack = True
        await self.ws.close(code=code)
        await self.ended.wait()

    async def drop(self) -> None:
        """The TCP connection dies: no close frame at all."""
        self.closed_by_slack = True
        transport = self.request.transport
        assert transport is not None
        transport.abort()
        await self.ended.wait()


def command_payload(text: str, *, user: str, channel: str, response_url: str) -> dict[str, Any]:
    """A slash command's fields, as Socket Mode carries them (the HTTP form's fields as JSON)."""
    return {
        "token": "verification_token",
        "team_id": "T0001",
        "team_domain": "example",
        "channel_id": channel,
        "channel_name": "incident",
        "user_id": user,
        "user_name": "someone",
        "command": "/incident",
        "text": text,
        "api_app_id": "A0001",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "1111.2222.abcdef",
    }


class FakeSocketModeSlack:
    """apps.connections.open and its WebSockets; other Web API calls go to the emulator."""

    def __init__(self, emulator: SlackEmulator, *, app_token: str = APP_TOKEN) -> None:
        self.emulator = emulator
        self.app_token = app_token
        self.connections: list[FakeConnection] = []
        self.acks: list[Ack] = []
        self.opens = 0  # apps.connections.open calls answered ok
        self.half_open = False  # new connections answer no ping while this is set
        self._tickets: set[str] = set()
        self._open_failures: list[str] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._base = ""

    @property
    def url(self) -> str:
        """The Web API base URL to give the bot (SLACK_API_URL)."""
        return f"{self._base}/api/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._open)
        app.router.add_route("*", "/api/{method}", self._pass_through)
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._base = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        for connection in self.connections:
            if not connection.ws.closed:
                connection.closed_by_slack = True
                await connection.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    # -- test controls ---------------------------------------------------------------------

    def fail_next_open(self, error: str = "internal_error", *, times: int = 1) -> None:
        """The next `times` apps.connections.open calls answer `ok: false` with `error`."""
        self._open_failures.extend([error] * times)

    async def next_connection(self, number: int | None = None) -> FakeConnection:
        """Wait for connection `number` (1-based; default: the one after the last seen)."""
        wanted = number or len(self.connections) + 1
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.connections) >= wanted)
        return self.connections[wanted - 1]

    def acks_for(self, envelope_id: str) -> list[Ack]:
        return [ack for ack in self.acks if ack.envelope_id == envelope_id]

    async def acked(self, envelope_id: str) -> Ack:
        """Wait for the first ack of an envelope, wherever it comes back."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self.acks_for(envelope_id)))
        return self.acks_for(envelope_id)[0]

    async def settled(self, connections: Iterable[FakeConnection] | None = None) -> None:
        """Until every envelope sent on them has been acked, or can no longer be."""
        chosen = list(self.connections if connections is None else connections)

        def done() -> bool:
            deliveries = Counter(e for c in self.connections for e in c.sent)
            acked = Counter(ack.envelope_id for ack in self.acks)
            return all(
                connection.closed or all(acked[e] >= deliveries[e] for e in connection.sent)
                for connection in chosen
            )

        async with self._changed:
            await self._changed.wait_for(done)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- Slack's side ----------------------------------------------------------------------

    async def _open(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            form = await request.post()
            token = str(form.get("token", ""))
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if not token.startswith("xapp-"):
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        if token != self.app_token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self._open_failures:
            return web.json_response({"ok": False, "error": self._open_failures.pop(0)})
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        self.opens += 1
        ws_url = self._base.replace("http://", "ws://") + f"/link/?ticket={ticket}&app_id=A0001"
        return web.json_response({"ok": True, "url": ws_url})

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # a URL serves one connection
        # A half-open link (a NAT that forgot it) answers no ping and delivers nothing.
        ws = web.WebSocketResponse(autoping=not self.half_open)
        await ws.prepare(request)
        connection = FakeConnection(len(self.connections) + 1, ws, request)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": sum(not c.closed for c in self.connections) + 1,
                    "connection_info": {"app_id": "A0001"},
                    "debug_info": {
                        "host": "applink-fake",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                }
            )
        )
        self.connections.append(connection)
        await self._notify()
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    body = json.loads(message.data)
                    self.acks.append(
                        Ack(str(body["envelope_id"]), connection.number, body.get("payload"))
                    )
                    await self._notify()
        finally:
            connection.ended.set()
            await self._notify()
        return ws

    async def _pass_through(self, request: web.Request) -> web.Response:
        """Every other Web API method: forwarded to the emulator as it came."""
        assert self._http is not None
        target = self.emulator.url + request.match_info["method"]
        headers = {k: v for k, v in request.headers.items() if k in HOP_HEADERS}
        async with self._http.request(
            request.method,
            target,
            params=request.query,
            data=await request.read(),
            headers=headers,
        ) as answer:
            body = await answer.read()
            passed = {k: v for k, v in answer.headers.items() if k in ("Retry-After",)}
            return web.Response(
                status=answer.status,
                body=body,
                content_type=answer.content_type,
                headers=passed,
            )
