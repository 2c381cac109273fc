"""An in-process Slack Web API over real HTTP, strict about what it accepts.

Every call is authenticated, checked against the method's documented schema, recorded,
and answered in Slack's shape. Tests can inject failures (`fail_next`) and latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web

from bot.emulator.handlers import Handler, MethodHandlers
from bot.emulator.state import Channel as ChannelRecord
from bot.emulator.state import JsonObject, User, Usergroup, Workspace
from bot.emulator.state import Message as MessageRecord
from bot.emulator.validation import (
    SlackRefusal,
    check_args,
    check_message_content,
    load_method_spec,
)

ANY_METHOD = "*"
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0
BOT_NAME = "incident-bot"


@dataclass
class RecordedCall:
    """One Web API call as the emulator received and answered it."""

    method: str
    args: JsonObject
    status: int
    response: JsonObject
    at: float
    connection: int = 0  # the caller's port: calls made over one kept connection share it

    @property
    def ok(self) -> bool:
        """Whether Slack would have said `ok: true`."""
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The `error` code of a refused call."""
        error = self.response.get("error")
        return error if isinstance(error, str) else None


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str | None
    remaining: int
    answer_lost: bool = False  # the call is carried out; only its answer is the failure


@dataclass
class _Latency:
    default: float = 0.0
    per_method: dict[str, float] = field(default_factory=dict)

    def for_method(self, method: str) -> float:
        return self.per_method.get(method, self.default)


@dataclass
class _ResponseUrl:
    channel: str | None
    user: str | None
    issued: float
    uses: int = 0


class SlackEmulator:
    """A fake Slack workspace and Web API server (aiohttp) for tests and demos."""

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",
        team_id: str = "T0001",
        latency: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.state = Workspace(team_id=team_id)
        if clock is not None:
            self.state.ids.clock = clock
        self.calls: list[RecordedCall] = []
        self._latency = _Latency(default=latency)
        self._failures: dict[str, list[_Failure]] = {}
        self.responses: list[RecordedCall] = []  # POSTs to response_url()s, in order
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._runner: web.AppRunner | None = None
        self._base = ""
        bot = User(
            id=self.state.ids.new_id("U"),
            name=BOT_NAME,
            team_id=team_id,
            real_name="Incident Bot",
            is_bot=True,
            bot_id=self.state.ids.new_id("B"),
        )
        self.state.users[bot.id] = bot
        self.bot_user_id = bot.id
        self.bot_id = bot.bot_id or ""
        self._handlers: dict[str, Handler] = MethodHandlers(
            self.state,
            bot_user_id=self.bot_user_id,
            bot_id=self.bot_id,
            upload_base=lambda: f"{self._base}/upload/v1/",
        ).table()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for `AsyncWebClient(base_url=...)`, ending with `/api/`."""
        if not self._base:
            raise RuntimeError("SlackEmulator is not started")
        return f"{self._base}/api/"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0 picks a free port) and return `url`."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = port
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                bound_port = int(address[1])
        self._base = f"http://{host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        """Stop serving; the recorded calls and state stay readable."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- test controls ---------------------------------------------------------------------

    def calls_to(self, method: str) -> list[RecordedCall]:
        """The recorded calls to one method, in order."""
        return [call for call in self.calls if call.method == method]

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str | None = None,
        times: int = 1,
        answer_lost: bool = False,
    ) -> None:
        """Make the next `times` calls to `method` (or `"*"` for any) fail.

        429 answers `ratelimited` with a Retry-After header; 5xx answers that status;
        200 with `error` answers `{"ok": false, "error": error}`. With `answer_lost`, the call
        is carried out all the same (as when Slack did the work and its answer did not arrive).
        """
        if status == 200 and not error:
            raise ValueError("fail_next with status 200 needs an error code")
        self._failures.setdefault(method, []).append(
            _Failure(
                status=status,
                retry_after=retry_after,
                error=error,
                remaining=times,
                answer_lost=answer_lost,
            )
        )

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every answer, or only `method`'s, by `seconds`."""
        if method is None:
            self._latency.default = seconds
        else:
            self._latency.per_method[method] = seconds

    def add_user(
        self,
        name: str,
        *,
        real_name: str = "",
        email: str | None = None,
        is_bot: bool = False,
        tz: str = "America/Los_Angeles",
    ) -> str:
        """Add a person (or another bot) to the workspace; return the `U…` id."""
        user = User(
            id=self.state.ids.new_id("U"),
            name=name,
            team_id=self.state.team_id,
            real_name=real_name,
            email=email,
            is_bot=is_bot,
            tz=tz,
            bot_id=self.state.ids.new_id("B") if is_bot else None,
        )
        self.state.users[user.id] = user
        return user.id

    def add_usergroup(self, handle: str, user_ids: list[str], name: str = "") -> str:
        """Add a user group (`@handle`); return the `S…` id."""
        unknown = [u for u in user_ids if u not in self.state.users]
        if unknown:
            raise ValueError(f"unknown users: {unknown}")
        group = Usergroup(
            id=self.state.ids.new_id("S"),
            handle=handle,
            name=name or handle,
            team_id=self.state.team_id,
            users=list(user_ids),
        )
        self.state.usergroups[group.id] = group
        return group.id

    def add_channel(
        self, name: str, *, is_private: bool = False, members: Sequence[str] = ()
    ) -> str:
        """Add a channel created by someone else; the bot is a member only if listed."""
        if self.state.channel_by_name(name) is not None:
            raise ValueError(f"channel #{name} already exists")
        unknown = [u for u in members if u not in self.state.users]
        if unknown:
            raise ValueError(f"unknown users: {unknown}")
        channel = ChannelRecord(
            id=self.state.ids.new_id("G" if is_private else "C"),
            name=name,
            creator=members[0] if members else "",
            is_private=is_private,
            members=list(members),
        )
        self.state.channels[channel.id] = channel
        return channel.id

    def post_as_user(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> str:
        """Record a message a person wrote; return its ts."""
        record = self.state.conversation(channel)
        if record is None:
            raise ValueError(f"unknown channel {channel}")
        if user not in self.state.users:
            raise ValueError(f"unknown user {user}")
        ts = self.state.ids.new_ts()
        record.messages.append(MessageRecord(ts=ts, user=user, text=text, thread_ts=thread_ts))
        return ts

    def response_url(self, channel: str | None = None, user: str | None = None) -> str:
        """A fresh `response_url` for an interaction; it works 5 times within 30 minutes."""
        key = self.state.ids.new_id("R")
        self._response_urls[key] = _ResponseUrl(channel, user, issued=time.monotonic())
        return f"{self._base}/response/{key}"

    def channel(self, channel_id_or_name: str) -> ChannelRecord:
        """A conversation by id or name (for assertions)."""
        found = self.state.conversation(channel_id_or_name) or self.state.channel_by_name(
            channel_id_or_name
        )
        if found is None:
            raise KeyError(channel_id_or_name)
        return found

    # -- HTTP ------------------------------------------------------------------------------

    def _take_failure(self, method: str) -> _Failure | None:
        for key in (method, ANY_METHOD):
            queue = self._failures.get(key)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.pop(0)
                return failure
        return None

    async def _read_args(self, request: web.Request) -> tuple[JsonObject, bool]:
        """Query string plus form, multipart or JSON body; and whether the body was JSON."""
        args: JsonObject = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return args, False
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise SlackRefusal("invalid_json") from exc
            if not isinstance(body, dict):
                raise SlackRefusal("invalid_json")
            args.update(body)
            return args, True
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                args[key] = value
            elif isinstance(value, bytes | bytearray):
                args[key] = bytes(value).decode()
            else:
                args[key] = value.file.read().decode()
        return args, False

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        started = time.monotonic()
        args: JsonObject = {}
        status = 200
        headers: dict[str, str] = {}
        try:
            args, is_json = await self._read_args(request)
            token = self._token(request, args)
            args.pop("token", None)
            # An injected failure answers instead of the handler (state stays untouched), or
            # after it when the answer is what is lost.
            failure = self._take_failure(method) if method in self._handlers else None
            if failure is not None:
                if failure.answer_lost:
                    self._dispatch(method, args, token, is_json)
                status, response, headers = self._failure_response(failure)
            else:
                response = self._dispatch(method, args, token, is_json)
        except SlackRefusal as refusal:
            response = self._refusal_body(refusal)
        delay = self._latency.for_method(method)
        if delay > 0:
            await asyncio.sleep(delay)
        self.calls.append(
            RecordedCall(
                method=method,
                args=args,
                status=status,
                response=response,
                at=started,
                connection=_caller_port(request),
            )
        )
        return web.json_response(response, status=status, headers=headers)

    @staticmethod
    def _token(request: web.Request, args: JsonObject) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header.removeprefix("Bearer ").strip() or None
        token = args.get("token")
        return token if isinstance(token, str) and token else None

    def _dispatch(
        self, method: str, args: JsonObject, token: str | None, is_json: bool
    ) -> JsonObject:
        handler = self._handlers.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        if method != "api.test":
            if token is None:
                raise SlackRefusal("not_authed")
            if token != self.bot_token:
                raise SlackRefusal("invalid_auth")
        spec = load_method_spec(method)
        if is_json and not spec.json_input_supported:
            raise SlackRefusal(
                "invalid_arguments",
                [f"[ERROR] {method} does not accept a JSON body; send form-encoded arguments"],
            )
        return handler(check_args(spec, args))

    @staticmethod
    def _failure_response(failure: _Failure) -> tuple[int, JsonObject, dict[str, str]]:
        if failure.status == 429:
            body: JsonObject = {"ok": False, "error": failure.error or "ratelimited"}
            return 429, body, {"Retry-After": str(failure.retry_after)}
        if failure.status >= 500:
            return failure.status, {"ok": False, "error": failure.error or "fatal_error"}, {}
        return failure.status, {"ok": False, "error": failure.error or "internal_error"}, {}

    @staticmethod
    def _refusal_body(refusal: SlackRefusal) -> JsonObject:
        body: JsonObject = {"ok": False, "error": refusal.error}
        if refusal.messages:
            body["response_metadata"] = {"messages": refusal.messages}
        return body

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        entry = self._response_urls.get(request.match_info["key"])
        status = 200
        body: JsonObject = {}
        try:
            if entry is None:
                raise SlackRefusal("expired_url")
            if started - entry.issued > RESPONSE_URL_LIFETIME:
                raise SlackRefusal("expired_url")
            if entry.uses >= RESPONSE_URL_USES:
                raise SlackRefusal("used_url")
            try:
                parsed = await request.json()
            except ValueError as exc:
                raise SlackRefusal("invalid_json") from exc
            if not isinstance(parsed, dict):
                raise SlackRefusal("invalid_json")
            body = parsed
            entry.uses += 1
            if not body.get("delete_original"):
                check_message_content("response_url", body)
            if body.get("response_type") == "in_channel" and entry.channel:
                record = self.state.conversation(entry.channel)
                if record is not None:
                    record.messages.append(
                        MessageRecord(
                            ts=self.state.ids.new_ts(),
                            user=self.bot_user_id,
                            text=str(body.get("text") or ""),
                            blocks=body.get("blocks"),
                            bot_id=self.bot_id,
                        )
                    )
            response: JsonObject = {"ok": True}
        except SlackRefusal as refusal:
            status = 404 if refusal.error in ("expired_url", "used_url") else 200
            response = self._refusal_body(refusal)
        self.responses.append(
            RecordedCall(
                method="response_url",
                args=body,
                status=status,
                response=response,
                at=started,
                connection=_caller_port(request),
            )
        )
        return web.json_response(response, status=status)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None or stored.completed:
            return web.Response(status=404, text="file_not_found")
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            content = await part.read() if isinstance(part, BodyPartReader) else b""
        else:
            content = await request.read()
        stored.content = bytes(content)
        return web.Response(status=200, text=f"OK - {len(stored.content)}")


def _caller_port(request: web.Request) -> int:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return int(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else 0
