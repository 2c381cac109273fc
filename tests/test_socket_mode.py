"""Socket Mode: every envelope handled once and acked, across Slack's refreshes and drops.

The bot's real Bolt app and services (on SQLite; the burst also on PostgreSQL) answer envelopes
from a fake Slack Socket Mode server on loopback (tests/fake_socket_mode.py); the Web API calls
go on to the emulator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.core import grammar
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, Status
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from bot.errors import ConfigError
from bot.slack.ids import ActionId
from bot.slack.socket_mode import Backoff, SocketMode
from bot.web.server import BOLT
from tests.conftest import BOT_TOKEN, BotHarness, make_settings, start_bot, stop_bot
from tests.conversation import reply_to
from tests.fake_socket_mode import (
    APP_TOKEN,
    FakeConnection,
    FakeSocketModeSlack,
    command_payload,
)
from tests.slack_requests import event_body
from tests.test_cli import base_env, free_port, run_bot
from tests.test_interactions import card_menu
from tests.test_reliability import pin_event


@dataclass
class Sleeps:
    """The backoff's waits, recorded and not really waited."""

    seen: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)


@dataclass
class Setup:
    bot: BotHarness
    bolt: AsyncApp
    slack: FakeSocketModeSlack
    emulator: SlackEmulator
    sleeps: Sleeps
    alice: str

    def socket_mode(self, **options: Any) -> SocketMode:
        """The bot's Socket Mode client, as the wiring builds it."""
        return SocketMode(
            bolt=self.bolt,
            app_token=options.pop("app_token", APP_TOKEN),
            slack=self.bot.services.slack,
            metrics=self.bot.services.metrics,
            backoff=Backoff(sleep=self.sleeps),
            **options,
        )

    async def command(
        self, connection: FakeConnection, text: str, channel: str, envelope_id: str | None = None
    ) -> str:
        """`/incident text` typed by alice in `channel`, sent on `connection`; the envelope id."""
        return await connection.command(
            text,
            user=self.alice,
            channel=channel,
            response_url=self.emulator.response_url(),
            envelope_id=envelope_id,
        )


@pytest.fixture
async def slack(emulator: SlackEmulator) -> AsyncIterator[FakeSocketModeSlack]:
    fake = FakeSocketModeSlack(emulator)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@asynccontextmanager
async def bot_on(
    database_url: str, emulator: SlackEmulator, slack: FakeSocketModeSlack, clock: FakeClock
) -> AsyncIterator[Setup]:
    """The bot on `database_url`, its Web API base URL the fake Socket Mode Slack."""
    settings = make_settings(
        database_url=database_url, api_url=slack.url, SLACK_APP_TOKEN=APP_TOKEN
    )
    harness, runner = await start_bot(settings=settings, emulator=emulator, clock=clock)
    app: web.Application = runner.app  # type: ignore[assignment]
    try:
        yield Setup(
            bot=harness,
            bolt=app[BOLT],
            slack=slack,
            emulator=emulator,
            sleeps=Sleeps(),
            alice=emulator.add_user("alice"),
        )
    finally:
        await stop_bot(harness, runner)


@pytest.fixture
async def setup(
    sqlite_url: str, emulator: SlackEmulator, slack: FakeSocketModeSlack, clock: FakeClock
) -> AsyncIterator[Setup]:
    """The bot on SQLite."""
    async with bot_on(sqlite_url, emulator, slack, clock) as ready:
        yield ready


@pytest.fixture
async def setup_any_db(
    db_url: str, emulator: SlackEmulator, slack: FakeSocketModeSlack, clock: FakeClock
) -> AsyncIterator[Setup]:
    """The bot on SQLite and on PostgreSQL."""
    async with bot_on(db_url, emulator, slack, clock) as ready:
        yield ready


async def declared_channel(setup: Setup) -> str:
    """An incident declared over HTTP; its channel id."""
    await reply_to(setup.bot, "declare sev2 Checkout is slow", user=setup.alice, answers=None)
    async with setup.bot.services.sessions() as session:
        incident = await IncidentRepo(session).by_number(1)
    assert incident is not None and incident.channel_id is not None
    return incident.channel_id


async def notes(setup: Setup) -> list[str]:
    async with setup.bot.services.sessions() as session:
        repo = IncidentRepo(session)
        incident = await repo.by_number(1)
        assert incident is not None and incident.id is not None
        entries = await repo.timeline(incident.id)
    return [entry.text for entry in entries if entry.kind == EntryKind.NOTE]


def assert_acked_once_where_sent(slack: FakeSocketModeSlack) -> None:
    """Nothing sent into a closed socket; every envelope acked once, on its own connection."""
    lost = {c.number: c.lost for c in slack.connections if c.lost}
    assert not lost, f"envelopes sent on sockets the app had closed: {lost}"
    for connection in slack.connections:
        for envelope_id in connection.sent:
            acks = [ack.connection for ack in slack.acks_for(envelope_id)]
            assert acks == [connection.number], (envelope_id, connection.number, acks)


# -- the stock handler, for comparison ----------------------------------------------------


class Stock:
    """slack_bolt's AsyncSocketModeHandler, as wiring.socket_mode used it before."""

    def __init__(self, setup: Setup) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self.handler = AsyncSocketModeHandler(setup.bolt, APP_TOKEN)

    async def start(self) -> None:
        await self.handler.connect_async()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.handler.close_async()  # type: ignore[no-untyped-call]


# -- a refresh in the middle of a burst ---------------------------------------------------


async def refresh_mid_burst(setup: Setup, socket: SocketMode | Stock) -> None:
    """40 notes and a help: `disconnect` after 11 envelopes, 20 more on the old socket (half
    of them after the new one opened), then Slack closes it and the rest go on the new one."""
    channel = await declared_channel(setup)
    await socket.start()
    try:
        old = await setup.slack.next_connection(1)
        typed = [f"burst {i:02d}" for i in range(40)]
        for text in typed[:10]:
            await setup.command(old, f"note {text}", channel)
        help_id = await setup.command(old, "help", channel)
        await old.disconnect("refresh_requested")
        # Slack goes on delivering on the old socket, before and after the new one opens.
        for text in typed[10:20]:
            await setup.command(old, f"note {text}", channel)
        new = await setup.slack.next_connection(2)
        for text in typed[20:30]:
            await setup.command(old, f"note {text}", channel)
        await setup.slack.settled([old])
        await old.close()
        for text in typed[30:]:
            await setup.command(new, f"note {text}", channel)
        await setup.slack.settled()

        assert_acked_once_where_sent(setup.slack)
        assert not old.closed_by_app and not new.closed
        [help_ack] = setup.slack.acks_for(help_id)
        assert help_ack.payload == {"response_type": "ephemeral", "text": grammar.HELP_TEXT}
        await setup.bot.settle()
        assert sorted(await notes(setup)) == typed  # every note recorded, none twice
        answers = [str(r.args.get("text")) for r in setup.emulator.responses]
        assert sum(a.startswith("Noted on INC-1") for a in answers) == len(typed)
    finally:
        await socket.close()


async def test_a_refresh_in_the_middle_of_a_burst_loses_no_command(setup_any_db: Setup) -> None:
    await refresh_mid_burst(setup_any_db, setup_any_db.socket_mode())


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="slack_bolt's handler closes the old socket before the new one is open",
)
async def test_the_stock_handler_loses_commands_in_the_same_burst(setup: Setup) -> None:
    """The same scenario with slack_bolt's AsyncSocketModeHandler, which the bot used before."""
    await refresh_mid_burst(setup, Stock(setup))


async def test_events_and_interactions_come_through_too(setup: Setup) -> None:
    """A 📌 (events_api) on the old socket and a card menu choice (interactive) on the new."""
    channel = await declared_channel(setup)
    said = setup.emulator.post_as_user(channel, setup.alice, "the cache hit rate fell to 20%")
    socket = setup.socket_mode()
    await socket.start()
    try:
        old = await setup.slack.next_connection(1)
        await old.disconnect("refresh_requested")
        new = await setup.slack.next_connection(2)
        pin = pin_event(user=setup.alice, channel=channel, ts=said, item_user=setup.alice)
        pinned = await old.envelope("events_api", json.loads(event_body(pin, event_id="Ev01")))
        await setup.slack.settled([old])
        await old.close()
        menu = card_menu(
            setup.bot,
            action_id=ActionId.STATUS_SELECT,
            value="identified",
            channel=channel,
            user=setup.alice,
        )
        chosen = await new.envelope("interactive", menu)
        await setup.slack.settled()
        assert_acked_once_where_sent(setup.slack)
        assert setup.slack.acks_for(pinned)[0].payload is None  # events are acked empty
        assert setup.slack.acks_for(chosen)[0].payload is None
        await setup.bot.settle()
        async with setup.bot.services.sessions() as session:
            repo = IncidentRepo(session)
            incident = await repo.by_number(1)
            assert incident is not None and incident.id is not None
            entries = await repo.timeline(incident.id)
        assert incident.status == Status.IDENTIFIED
        assert [e.text for e in entries if e.kind == EntryKind.PINNED] == [
            "the cache hit rate fell to 20%"
        ]
    finally:
        await socket.close()


async def test_a_warning_then_refresh_opens_one_new_connection(setup: Setup) -> None:
    channel = await declared_channel(setup)
    socket = setup.socket_mode()
    await socket.start()
    try:
        old = await setup.slack.next_connection(1)
        await old.disconnect("warning")
        new = await setup.slack.next_connection(2)
        await old.disconnect("refresh_requested")
        sent = await setup.command(old, "note still on the old socket", channel)
        await setup.slack.settled([old])
        await old.close()
        await setup.command(new, "note on the new one", channel)
        await setup.slack.settled()
        assert_acked_once_where_sent(setup.slack)
        assert [a.connection for a in setup.slack.acks_for(sent)] == [1]
        assert len(setup.slack.connections) == 2 and setup.slack.opens == 2
        async with setup.bot.http.get(setup.bot.url + "/metrics") as response:
            exposition = await response.text()
        for reason in ("start", "warning"):
            assert re.search(
                rf'^socket_mode_connections_total\{{reason="{reason}"\}} 1(\.0)?$',
                exposition,
                re.MULTILINE,
            ), exposition
        await setup.bot.settle()
        assert await notes(setup) == ["still on the old socket", "on the new one"]
    finally:
        await socket.close()


async def test_an_envelope_delivered_on_both_sockets_is_handled_once(setup: Setup) -> None:
    channel = await declared_channel(setup)
    socket = setup.socket_mode()
    await socket.start()
    try:
        old = await setup.slack.next_connection(1)
        await old.disconnect("refresh_requested")
        new = await setup.slack.next_connection(2)
        envelope_id = await setup.command(old, "note said once", channel)
        await setup.slack.settled([old])
        await setup.command(new, "note said once", channel, envelope_id=envelope_id)
        await setup.slack.settled()
        assert [a.connection for a in setup.slack.acks_for(envelope_id)] == [1, 2]
        await setup.bot.settle()
        assert await notes(setup) == ["said once"]
    finally:
        await socket.close()


async def test_an_old_socket_slack_never_closes_is_closed_by_the_app(setup: Setup) -> None:
    socket = setup.socket_mode(retire_after=0)
    await socket.start()
    try:
        old = await setup.slack.next_connection(1)
        await old.disconnect("refresh_requested")
        await setup.slack.next_connection(2)
        await old.ended.wait()
        assert old.closed_by_app
        assert socket.connected
    finally:
        await socket.close()


# -- closes without warning ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["close frame", "dropped TCP"])
async def test_an_unexpected_close_reconnects_and_goes_on(
    setup: Setup, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    channel = await declared_channel(setup)
    socket = setup.socket_mode()
    await socket.start()
    try:
        first = await setup.slack.next_connection(1)
        await setup.command(first, "note before the drop", channel)
        await setup.slack.settled()
        if how == "close frame":
            await first.close(code=1011)
        else:
            await first.drop()
        second = await setup.slack.next_connection(2)
        await setup.command(second, "note after the drop", channel)
        await setup.slack.settled()
        assert_acked_once_where_sent(setup.slack)
        assert setup.sleeps.seen == []  # the first attempt is immediate
        await setup.bot.settle()
        assert await notes(setup) == ["before the drop", "after the drop"]
        assert "closed without warning" in caplog.text
    finally:
        await socket.close()


async def test_a_connection_that_answers_no_ping_is_replaced(setup: Setup) -> None:
    channel = await declared_channel(setup)
    setup.slack.half_open = True
    socket = setup.socket_mode(heartbeat=0.2)
    await socket.start()
    try:
        silent = await setup.slack.next_connection(1)
        setup.slack.half_open = False
        second = await setup.slack.next_connection(2)
        await silent.ended.wait()
        await setup.command(second, "note after the silence", channel)
        await setup.slack.settled()
        assert_acked_once_where_sent(setup.slack)
        await setup.bot.settle()
        assert await notes(setup) == ["after the silence"]
    finally:
        await socket.close()


async def test_reconnecting_backs_off_while_slack_refuses_to_open(setup: Setup) -> None:
    channel = await declared_channel(setup)
    socket = setup.socket_mode()
    await socket.start()
    try:
        first = await setup.slack.next_connection(1)
        setup.slack.fail_next_open("internal_error", times=3)
        await first.close(code=1011)
        second = await setup.slack.next_connection(2)
        assert setup.sleeps.seen == [1.0, 2.0, 4.0]
        await setup.command(second, "note back again", channel)
        await setup.slack.settled()
        assert_acked_once_where_sent(setup.slack)
        await setup.bot.settle()
        assert await notes(setup) == ["back again"]
    finally:
        await socket.close()


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(base=1.0, ceiling=30.0)
    assert [backoff.delay(n) for n in range(8)] == [0, 1, 2, 4, 8, 16, 30, 30]


# -- start and shutdown -------------------------------------------------------------------


async def test_a_refused_app_token_stops_start_with_a_config_error(setup: Setup) -> None:
    socket = setup.socket_mode(app_token="xapp-1-A0001-9999-revoked")
    with pytest.raises(ConfigError) as refused:
        await socket.start()
    assert refused.value.variable == "SLACK_APP_TOKEN"
    assert "invalid_auth" in str(refused.value) and "connections:write" in str(refused.value)
    assert setup.slack.connections == []


async def test_slack_unreachable_at_start_connects_in_the_background(setup: Setup) -> None:
    setup.slack.fail_next_open("internal_error", times=1)
    socket = setup.socket_mode()
    await socket.start()  # returns: connecting goes on
    try:
        await setup.slack.next_connection(1)
        assert setup.sleeps.seen == [1.0]
    finally:
        await socket.close()


async def test_close_closes_the_socket_and_does_not_reconnect(setup: Setup) -> None:
    socket = setup.socket_mode()
    await socket.start()
    connection = await setup.slack.next_connection(1)
    await socket.close()
    await connection.ended.wait()
    assert connection.closed_by_app and connection.ws.close_code == 1000
    assert not socket.connected
    assert len(setup.slack.connections) == 1 and setup.slack.opens == 1


async def test_frames_that_are_not_envelopes_are_ignored_with_a_warning(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    channel = await declared_channel(setup)
    socket = setup.socket_mode()
    await socket.start()
    try:
        connection = await setup.slack.next_connection(1)
        await connection.ws.send_str("not json")
        await connection.send({"type": "something_new"})
        await setup.command(connection, "note after the noise", channel)
        await setup.slack.settled()
        assert_acked_once_where_sent(setup.slack)
        await setup.bot.settle()
        assert await notes(setup) == ["after the noise"]
    finally:
        await socket.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert "not a JSON object" in caplog.text


# -- `python -m bot socket`, as an operator runs it ---------------------------------------


async def test_python_m_bot_socket_survives_a_refresh_and_stops_on_sigterm(
    tmp_path: Path, emulator: SlackEmulator, slack: FakeSocketModeSlack
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    code, output = await run_bot("db", "upgrade", env=base_env(DATABASE_URL=db), cwd=tmp_path)
    assert code == 0, output
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=slack.url,
        DATABASE_URL=db,
        PORT=str(free_port()),
        HOST="127.0.0.1",
        LOG_LEVEL="DEBUG",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "socket",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    alice = emulator.add_user("alice")

    async def help_on(connection: FakeConnection) -> str:
        return await connection.command(
            "help", user=alice, channel="CGENERAL", response_url=emulator.response_url()
        )

    try:
        async with asyncio.timeout(60):  # a bound on a broken run, not a timing
            old = await slack.next_connection(1)
            asked = [await help_on(old)]
            await old.disconnect("refresh_requested")
            new = await slack.next_connection(2)
            asked.append(await help_on(old))
            await slack.settled([old])
            await old.close()
            asked.append(await help_on(new))
            await slack.settled()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    logs = (out + err).decode()
    assert proc.returncode == 0, logs
    assert_acked_once_where_sent(slack)
    for envelope_id in asked:
        [ack] = slack.acks_for(envelope_id)
        assert ack.payload == {"response_type": "ephemeral", "text": grammar.HELP_TEXT}
    assert new.closed_by_app and new.ws.close_code == 1000
    assert "stopped" in logs and "Traceback" not in logs
    assert APP_TOKEN not in logs and BOT_TOKEN not in logs


# -- acks owed when a socket closes -------------------------------------------------------


@dataclass
class SlowCommand:
    """A `/slow` listener on the bot's Bolt app that acks only when the test says so."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, ack: Any) -> None:
        self.entered.set()
        await self.gate.wait()
        await ack(text="done at last")

    async def send(self, setup: Setup, connection: FakeConnection) -> str:
        payload = command_payload(
            "", user=setup.alice, channel="CGENERAL", response_url=setup.emulator.response_url()
        )
        payload["command"] = "/slow"
        return await connection.envelope("slash_commands", payload)


@pytest.fixture
def slow(setup: Setup) -> SlowCommand:
    listener = SlowCommand()
    setup.bolt.command("/slow")(listener)
    return listener


async def test_an_ack_owed_on_a_socket_slack_closed_goes_on_the_new_one(
    setup: Setup, slow: SlowCommand
) -> None:
    socket = setup.socket_mode()
    await socket.start()
    try:
        old = await setup.slack.next_connection(1)
        envelope_id = await slow.send(setup, old)
        await slow.entered.wait()
        await old.disconnect("refresh_requested")
        await setup.slack.next_connection(2)
        await old.close()
        slow.gate.set()
        ack = await setup.slack.acked(envelope_id)
        assert len(setup.slack.acks_for(envelope_id)) == 1
        assert ack.connection == 2 and ack.payload == {"text": "done at last"}
    finally:
        await socket.close()


async def test_close_acks_what_was_received_before_closing(setup: Setup, slow: SlowCommand) -> None:
    socket = setup.socket_mode()
    await socket.start()
    connection = await setup.slack.next_connection(1)
    envelope_id = await slow.send(setup, connection)
    await slow.entered.wait()
    closing = asyncio.create_task(socket.close())
    slow.gate.set()
    await closing
    await connection.ended.wait()
    assert [ack.connection for ack in setup.slack.acks_for(envelope_id)] == [1]
    assert connection.closed_by_app
