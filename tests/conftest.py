"""The proving ground: the real server on a real port, the Slack emulator, signed requests."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import Settings
from bot.core.clock import FakeClock
from bot.core.playbooks import Playbook
from bot.emulator import SlackEmulator
from bot.pagers.retry import RetryPolicy
from bot.services import Services, build_services
from bot.wiring import build_web
from tests.slack_requests import command_body, event_body, interactivity_body, signed_headers

pytest_plugins = ["tests.db_fixtures"]

BOT_TOKEN = "xoxb-1234-5678-test-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Reply:
    status: int
    text: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


@dataclass
class BotHarness:
    """The bot under test: its URL, its services, the emulator it talks to."""

    url: str
    services: Services
    emulator: SlackEmulator
    http: aiohttp.ClientSession
    secret: str = SIGNING_SECRET
    people: dict[str, str] = field(default_factory=dict)

    async def post(
        self,
        body: str,
        *,
        content_type: str,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> Reply:
        sent = signed_headers(self.secret, body, content_type=content_type, timestamp=timestamp)
        if not signed:
            sent = {"Content-Type": content_type}
        sent.update(headers or {})
        started = time.perf_counter()
        async with self.http.post(
            self.url + "/slack/events", data=io.BytesIO(body.encode()), headers=sent
        ) as response:
            text = await response.text()
            return Reply(response.status, text, time.perf_counter() - started)

    async def command(self, text: str, *, user: str, channel: str = "CGENERAL") -> Reply:
        """`/incident {text}` typed by `user` in `channel`."""
        body = command_body(
            text,
            user_id=user,
            channel_id=channel,
            response_url=self.emulator.response_url(),
        )
        return await self.post(body, content_type="application/x-www-form-urlencoded")

    async def interact(self, payload: dict[str, Any]) -> Reply:
        return await self.post(
            interactivity_body(payload), content_type="application/x-www-form-urlencoded"
        )

    async def event(
        self, event: dict[str, Any], *, event_id: str, retry_num: int | None = None
    ) -> Reply:
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(
            event_body(event, event_id=event_id),
            content_type="application/json",
            headers=headers,
        )

    async def settle(self, seconds: float = 20.0) -> None:
        """Wait until the work after every ack, and the Slack calls it owes, are done."""
        await self.services.settle(seconds)


def make_settings(*, database_url: str, api_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "DATABASE_URL": database_url,
        "INCIDENT_TIMEZONE": "America/Los_Angeles",
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(bot_token=BOT_TOKEN, team_id="T0001")
    await emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 18, 30, tzinfo=UTC))


async def no_sleep(seconds: float) -> None:
    """Pagers' backoff in tests: recorded by the retry policy, never really waited."""


async def start_bot(
    *,
    settings: Settings,
    emulator: SlackEmulator,
    clock: FakeClock | None = None,
    playbooks: Sequence[Playbook] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[BotHarness, web.AppRunner]:
    """The real server on a free port; playbooks and the secrets they name are injected."""
    services = build_services(settings, clock=clock, playbooks=playbooks)
    services.environ = dict(environ or {})
    services.pager_retry = RetryPolicy(sleep=no_sleep)
    app, _identity = build_web(services)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    services.effects.start()
    http = aiohttp.ClientSession()
    harness = BotHarness(
        url=f"http://127.0.0.1:{port}", services=services, emulator=emulator, http=http
    )
    return harness, runner


async def stop_bot(harness: BotHarness, runner: web.AppRunner) -> None:
    try:
        await harness.settle()
    finally:
        await harness.http.close()
        await runner.cleanup()
        await harness.services.aclose()


@pytest.fixture
async def bot(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    """The bot on SQLite, talking to the emulator."""
    settings = make_settings(database_url=sqlite_url, api_url=emulator.url)
    harness, runner = await start_bot(settings=settings, emulator=emulator, clock=clock)
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)


@pytest.fixture
async def bot_any_db(
    db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    """The bot on SQLite and on PostgreSQL (parametrised by `db_url`)."""
    settings = make_settings(database_url=db_url, api_url=emulator.url)
    harness, runner = await start_bot(settings=settings, emulator=emulator, clock=clock)
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)
