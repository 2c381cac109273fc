"""`/incident` end to end: signed slash commands in, what Slack and the person received out.

Each test drives the real app over HTTP against the Slack emulator, then asserts on the Web
API calls the bot made, on what each response_url received (what the person saw), and on the
timeline recorded in the database.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot import usecases
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, Status
from bot.db.models import Incident, TimelineEntry
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.conversation import refused_in_ack, reply_to
from tests.slack_schema import assert_all_calls_valid

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


# -- fixtures and helpers -----------------------------------------------------------------


@dataclass
class People:
    alice: str
    bob: str
    carol: str


@pytest.fixture
def people(emulator: SlackEmulator) -> People:
    return People(
        alice=emulator.add_user("alice", real_name="Alice Smith"),
        bob=emulator.add_user("bob", real_name="Bob Jones"),
        carol=emulator.add_user("carol", real_name="Carol White"),
    )


@pytest.fixture
def incidents_channel(emulator: SlackEmulator) -> str:
    """The announcement channel, with the bot in it."""
    return emulator.add_channel("incidents", members=[emulator.bot_user_id])


@pytest.fixture
async def announcing_bot(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock, incidents_channel: str
) -> AsyncIterator[BotHarness]:
    """The bot on SQLite with INCIDENTS_CHANNEL set to the emulator's #incidents."""
    settings = make_settings(
        database_url=sqlite_url, api_url=emulator.url, INCIDENTS_CHANNEL=incidents_channel
    )
    harness, runner = await start_bot(settings=settings, emulator=emulator, clock=clock)
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)


async def run(bot: BotHarness, text: str, *, user: str, channel: str = "CGENERAL") -> str:
    """`/incident text`, acked with an empty 200, then the first reply the person got."""
    return await reply_to(bot, text, user=user, channel=channel, answers=None)


async def incident(bot: BotHarness, number: int) -> Incident:
    async with bot.services.sessions() as session:
        found = await IncidentRepo(session).by_number(number)
    assert found is not None
    return found


async def timeline(bot: BotHarness, number: int) -> list[TimelineEntry]:
    async with bot.services.sessions() as session:
        repo = IncidentRepo(session)
        found = await repo.by_number(number)
        assert found is not None and found.id is not None
        return await repo.timeline(found.id)


async def snapshot(bot: BotHarness) -> tuple[Any, ...]:
    """Incidents, timeline entries, roles and owed Slack calls: a refusal changes none."""
    tables = ("incident", "timeline_entry", "role_assignment", "side_effect")
    rows = []
    async with bot.services.sessions() as session:
        for name in tables:
            rows.append((await session.execute(sa.text(f"SELECT * FROM {name} ORDER BY id"))).all())
    return tuple(tuple(table) for table in rows)


def one_sentence(text: str) -> None:
    assert "\n" not in text, text
    assert text.endswith("."), text
    assert "Traceback" not in text and "Error" not in text, text


def local(hour: int, minute: int, day: int = 25) -> datetime:
    """A wall-clock time on 2026-11-`day` in Los Angeles (PST, UTC-8), in UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) + timedelta(hours=8)


async def declare(bot: BotHarness, user: str, text: str = "sev1 Checkout latency spike") -> str:
    """Declare through the command; return the new incident's channel id."""
    await run(bot, f"declare {text}", user=user)
    declared = await incident(bot, await latest_number(bot))
    assert declared.channel_id is not None
    return declared.channel_id


async def latest_number(bot: BotHarness) -> int:
    async with bot.services.sessions() as session:
        return await IncidentRepo(session).next_number() - 1


def posted_to(emulator: SlackEmulator, channel: str) -> list[str]:
    return [
        str(call.args.get("text"))
        for call in emulator.calls_to("chat.postMessage")
        if call.args.get("channel") == channel and call.ok
    ]


# -- 1. declaring -------------------------------------------------------------------------


async def test_declare_opens_channel_card_topic_and_announces(
    announcing_bot: BotHarness, emulator: SlackEmulator, people: People, incidents_channel: str
) -> None:
    bot = announcing_bot
    reply = await bot.command("declare sev1 Checkout latency spike", user=people.alice)
    assert (reply.status, reply.text) == (200, "")
    assert reply.elapsed < 3.0
    await bot.settle()

    inc = await incident(bot, 1)
    assert inc.ref == "INC-1"
    assert inc.title == "Checkout latency spike"
    assert inc.status is Status.INVESTIGATING
    assert inc.declared_by == people.alice

    [create] = emulator.calls_to("conversations.create")
    assert create.ok
    assert create.args["name"] == "inc-20261125-1-checkout-latency-spike"
    assert create.args.get("is_private") in (None, False, "false", "0", 0)
    channel = emulator.channel("inc-20261125-1-checkout-latency-spike")
    assert not channel.is_private
    assert inc.channel_id == channel.id
    assert people.alice in channel.members
    assert channel.topic == f"SEV1 · Investigating · IC <@{people.alice}>"

    # The summary card: posted once, pinned, its ts kept.
    cards = [c for c in emulator.calls_to("chat.postMessage") if c.args["channel"] == channel.id]
    card = cards[0]
    card_ts = card.response["ts"]
    assert "INC-1" in card.args["text"] and card.args.get("blocks")
    assert inc.card_ts == card_ts
    assert [p.ts for p in channel.pins] == [card_ts]
    [pin] = emulator.calls_to("pins.add")
    assert (pin.args["channel"], pin.args["timestamp"]) == (channel.id, card_ts)

    # Announced in INCIDENTS_CHANNEL, with a link to the channel.
    [announcement] = posted_to(emulator, incidents_channel)
    assert "INC-1" in announcement and "SEV1" in announcement
    assert "Checkout latency spike" in announcement and f"<#{channel.id}>" in announcement

    # The declarer saw, privately, the declaration and then the channel link.
    said = [r.args["text"] for r in emulator.responses]
    assert all(r.args["response_type"] == "ephemeral" for r in emulator.responses)
    assert said[0] == "Declared *INC-1* (SEV1): Checkout latency spike. Opening its channel now…"
    assert f"<#{channel.id}>" in said[1]

    [declared] = await timeline(bot, 1)
    assert (declared.kind, declared.author) == (EntryKind.DECLARED, people.alice)

    # A later change updates the same card in place, and the topic.
    await run(bot, "sev sev2", user=people.alice, channel=channel.id)
    updates = emulator.calls_to("chat.update")
    assert updates and all(u.args["ts"] == card_ts and u.ok for u in updates)
    assert "SEV2" in str(updates[-1].args["blocks"])
    assert channel.topic == f"SEV2 · Investigating · IC <@{people.alice}>"
    assert [c for c in emulator.calls_to("chat.postMessage") if "blocks" in c.args] == [card]
    assert_all_calls_valid(emulator.calls)


async def test_slack_calls_and_replies_go_over_kept_connections(
    announcing_bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    """Against Slack every new connection costs a TLS handshake: the calls of declarations and
    their replies to the response_url share a few kept connections, not one each."""
    bot = announcing_bot
    for i in range(3):
        await bot.command(f"declare sev2 Outage number {i}", user=people.alice)
        await bot.settle()
    calls = [*emulator.calls, *emulator.responses]
    assert len(calls) >= 25 and all(c.ok for c in calls)
    connections = {c.connection for c in calls}
    assert 0 not in connections
    assert len(connections) <= 4, f"{len(connections)} connections for {len(calls)} calls"


async def test_declare_works_on_postgres_too(
    bot_any_db: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    channel = await declare(bot_any_db, people.alice)
    await run(bot_any_db, "note cache hit rate dropped", user=people.alice, channel=channel)
    kinds = [e.kind for e in await timeline(bot_any_db, 1)]
    assert kinds == [EntryKind.DECLARED, EntryKind.NOTE]
    assert emulator.channel(channel).topic.startswith("SEV1 · Investigating")
    assert_all_calls_valid(emulator.calls)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Zahlungsausfall in München 🔥", "inc-20261125-1-zahlungsausfall-in-munchen"),
        ("Сбой оплаты", "inc-20261125-1-sboi-oplaty"),
        ("支付失败", "inc-20261125-1"),
        ("🔥🔥🔥", "inc-20261125-1"),
        ("Checkout — 500s & timeouts!!", "inc-20261125-1-checkout-500s-timeouts"),
    ],
)
async def test_any_title_gives_a_valid_channel_name(
    bot: BotHarness, emulator: SlackEmulator, people: People, title: str, expected: str
) -> None:
    channel = await declare(bot, people.alice, f"sev2 {title}")
    record = emulator.channel(channel)
    assert record.name == expected
    assert CHANNEL_NAME.match(record.name)
    assert (await incident(bot, 1)).title == title
    assert_all_calls_valid(emulator.calls)


async def test_long_title_is_cut_to_eighty_characters(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    channel = await declare(bot, people.alice, "sev3 " + "database replica lag " * 9)
    name = emulator.channel(channel).name
    assert len(name) <= 80 and CHANNEL_NAME.match(name)
    assert name.startswith("inc-20261125-1-database-replica-lag-") and not name.endswith("-")
    assert_all_calls_valid(emulator.calls)


async def test_name_taken_gives_a_new_suffix(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    taken = emulator.add_channel("inc-20261125-1-checkout-latency-spike")
    channel = await declare(bot, people.alice)
    assert channel != taken
    assert emulator.channel(channel).name == "inc-20261125-1-checkout-latency-spike-2"
    errors = [c.error for c in emulator.calls_to("conversations.create")]
    assert errors == ["name_taken", None]
    assert (await incident(bot, 1)).channel_name == "inc-20261125-1-checkout-latency-spike-2"
    assert_all_calls_valid(emulator.calls)


async def test_declare_without_a_title_opens_the_modal(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    before = await snapshot(bot)
    reply = await bot.command("declare sev2", user=people.alice)
    assert (reply.status, reply.text) == (200, "")
    await bot.settle()
    [opened] = emulator.calls_to("views.open")
    assert opened.ok, opened.response
    assert opened.args["trigger_id"] == "1111.2222.abcdef"
    view = opened.response["view"]
    assert view["callback_id"] == "declare-incident-modal"
    assert "SEV2" in str(view["blocks"])
    assert await snapshot(bot) == before
    assert emulator.responses == []
    assert_all_calls_valid(emulator.calls)


def _submission(user: str, title: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "example"},
        "user": {"id": user, "username": "alice", "team_id": "T0001"},
        "api_app_id": "A0001",
        "trigger_id": "111.222.valid",
        "view": {
            "id": "V0001",
            "type": "modal",
            "callback_id": "declare-incident-modal",
            "private_metadata": "",
            "state": {
                "values": {
                    "title": {"title": {"type": "plain_text_input", "value": title}},
                    "severity": {
                        "severity": {
                            "type": "static_select",
                            "selected_option": {
                                "text": {"type": "plain_text", "text": "SEV2"},
                                "value": "sev2",
                            },
                        }
                    },
                    "service": {"service": {"type": "plain_text_input", "value": None}},
                    "impact": {"impact": {"type": "plain_text_input", "value": None}},
                    "private": {"private": {"type": "checkboxes", "selected_options": []}},
                }
            },
            "hash": "1596530361.3wRYuk3R",
        },
        "response_urls": [],
    }


async def test_modal_refuses_a_whitespace_only_title(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    before = await snapshot(bot)
    reply = await bot.interact(_submission(people.alice, "   \t  "))
    assert reply.status == 200
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"title": "Give the incident a title."},
    }
    await bot.settle()
    assert await snapshot(bot) == before
    assert emulator.calls_to("conversations.create") == []


async def test_modal_declares_with_a_real_title(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    reply = await bot.interact(_submission(people.alice, "  Search is down  "))
    assert (reply.status, reply.text) == (200, "")
    await bot.settle()
    inc = await incident(bot, 1)
    assert (inc.title, inc.severity.value) == ("Search is down", "sev2")
    assert emulator.channel("inc-20261125-1-search-is-down").topic.startswith("SEV2")
    assert_all_calls_valid(emulator.calls)


# -- 2. every subcommand ------------------------------------------------------------------


async def test_every_subcommand_is_recorded_with_its_author(
    announcing_bot: BotHarness,
    emulator: SlackEmulator,
    clock: FakeClock,
    people: People,
    incidents_channel: str,
) -> None:
    bot = announcing_bot
    channel = await declare(bot, people.alice)
    a, b = people.alice, people.bob
    clock.advance(timedelta(minutes=5))  # 10:35 AM PST

    said = await run(bot, "started at 10:25", user=a, channel=channel)
    assert said == "Impact on INC-1 started at 2026-11-25 10:25 AM PST."
    said = await run(bot, "note at 10:27 AM p99 latency above 2 s", user=b, channel=channel)
    assert said == "Noted on INC-1's timeline at 10:27 AM PST."
    said = await run(bot, "note at 2026-11-25 09:50 deploy 4411 went out", user=b, channel=channel)
    assert said == "Noted on INC-1's timeline at 9:50 AM PST."
    said = await run(bot, "status identified at 10:33 bad deploy", user=b, channel=channel)
    assert said == "INC-1 is now *Identified*."
    said = await run(bot, f"role scribe <@{b}|bob>", user=a, channel=channel)
    assert said == f"<@{b}> is now scribe of INC-1."
    said = await run(bot, "sev sev2", user=a, channel=channel)
    assert said == "INC-1 is now *SEV2*."
    said = await run(bot, "impact 30% of checkouts slow", user=b, channel=channel)
    assert said == "Impact of INC-1 recorded."
    said = await run(bot, "cause deploy 4411 disabled the cache", user=b, channel=channel)
    assert said == "Root cause of INC-1 recorded."
    said = await run(bot, "resolution rolled back 4411", user=b, channel=channel)
    assert said == "Resolution of INC-1 recorded."
    said = await run(bot, "update rollback in progress", user=b, channel=channel)
    assert said == f"Update posted to INC-1's channel and <#{incidents_channel}>."
    said = await run(bot, "note from elsewhere", user=b)  # not the incident's channel
    assert said.startswith("This is not an incident channel")
    said = await run(bot, "INC-1 note checked from #general", user=b)
    assert said == "Noted on INC-1's timeline at 10:35 AM PST."
    said = await run(bot, "resolve at 10:34 rollback done", user=a, channel=channel)
    assert said == "INC-1 is resolved."

    entries = await timeline(bot, 1)
    got = [(e.kind, e.author, e.occurred_at, e.text) for e in entries]
    assert got == [
        (EntryKind.NOTE, b, local(9, 50), "deploy 4411 went out"),
        (EntryKind.STARTED, a, local(10, 25), "Impact started"),
        (EntryKind.NOTE, b, local(10, 27), "p99 latency above 2 s"),
        (EntryKind.DECLARED, a, local(10, 30), "Incident declared (SEV1): Checkout latency spike"),
        (
            EntryKind.STATUS,
            b,
            local(10, 33),
            "Status changed from Investigating to Identified: bad deploy",
        ),
        (EntryKind.RESOLVED, a, local(10, 34), "Resolved: rollback done"),
        (EntryKind.ROLE, a, local(10, 35), f"<@{b}> is now scribe"),
        (EntryKind.SEVERITY, a, local(10, 35), "Severity changed from SEV1 to SEV2"),
        (EntryKind.SUMMARY, b, local(10, 35), "Impact: 30% of checkouts slow"),
        (EntryKind.SUMMARY, b, local(10, 35), "Root cause: deploy 4411 disabled the cache"),
        (EntryKind.SUMMARY, b, local(10, 35), "Resolution: rolled back 4411"),
        (EntryKind.UPDATE, b, local(10, 35), "rollback in progress"),
        (EntryKind.NOTE, b, local(10, 35), "checked from #general"),
    ]

    # Each entry was also posted in the channel, stamped in PST and signed.
    in_channel = posted_to(emulator, channel)
    assert f"`10:27 AM PST` p99 latency above 2 s — <@{b}>" in in_channel
    assert f"`9:50 AM PST` deploy 4411 went out — <@{b}>" in in_channel
    assert f"`10:35 AM PST` checked from #general — <@{b}>" in in_channel
    # The update also went to INCIDENTS_CHANNEL.
    assert any(
        "rollback in progress" in text and f"<@{b}>" in text
        for text in posted_to(emulator, incidents_channel)
    )
    # Bob was invited when he became scribe.
    assert b in emulator.channel(channel).members

    # list and timeline answer with blocks, through response_url.
    seen = len(emulator.responses)
    said = await run(bot, "timeline", user=b, channel=channel)
    assert said == "Timeline of INC-1: 13 entries."
    shown = str(emulator.responses[seen].args["blocks"])
    assert shown.index("9:50 AM PST") < shown.index("10:25 AM PST") < shown.index("10:35 AM PST")
    assert f"<@{b}>" in shown
    assert_all_calls_valid(emulator.calls)


async def test_list_shows_open_incidents(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    assert await run(bot, "list", user=people.bob) == "No open incidents."
    await declare(bot, people.alice)
    await declare(bot, people.alice, "sev3 Search is slow")
    seen = len(emulator.responses)
    assert await run(bot, "list", user=people.bob) == "2 open incident(s)."
    shown = str(emulator.responses[seen].args["blocks"])
    assert "INC-1" in shown and "INC-2" in shown and "Search is slow" in shown
    assert_all_calls_valid(emulator.calls)


# -- 3. resolving and reopening -----------------------------------------------------------


async def test_resolve_asks_for_missing_impact_and_cause(
    announcing_bot: BotHarness,
    emulator: SlackEmulator,
    clock: FakeClock,
    people: People,
    incidents_channel: str,
) -> None:
    bot = announcing_bot
    channel = await declare(bot, people.alice)
    clock.advance(timedelta(minutes=45))
    said = await run(bot, "resolve", user=people.alice, channel=channel)
    assert said == (
        "INC-1 is resolved. For the postmortem, still record "
        "`/incident impact …` and `/incident cause …`."
    )
    inc = await incident(bot, 1)
    assert inc.status is Status.RESOLVED
    assert inc.resolved_at == local(11, 15)

    summary = [t for t in posted_to(emulator, channel) if "resolved* after" in t]
    assert summary == [
        ":white_check_mark: *INC-1 resolved* after 45 minutes (10:30 AM PST to 11:15 AM PST), "
        "SEV1.\n*Impact:* _not recorded yet_\n*Root cause:* _not recorded yet_\n"
        "*Resolution:* _not recorded yet_"
    ]
    record = emulator.channel(channel)
    assert record.topic == f"SEV1 · Resolved · IC <@{people.alice}>"
    assert "Resolved" in str(emulator.calls_to("chat.update")[-1].args["blocks"])
    announced = posted_to(emulator, incidents_channel)
    assert len(announced) == 2 and "resolved after 45 minutes" in announced[1]

    # Reopen: the commander moves it back to investigating.
    said = await run(bot, "status investigating still failing", user=people.alice, channel=channel)
    assert said == "INC-1 is now *Investigating*."
    inc = await incident(bot, 1)
    assert (inc.status, inc.resolved_at) == (Status.INVESTIGATING, None)
    assert record.topic == f"SEV1 · Investigating · IC <@{people.alice}>"
    assert "reopened" in posted_to(emulator, incidents_channel)[-1]
    last = (await timeline(bot, 1))[-1]
    assert (last.kind, last.author) == (EntryKind.REOPENED, people.alice)
    assert last.text == "Reopened (Investigating): still failing"
    assert_all_calls_valid(emulator.calls)


async def test_resolve_at_a_time_with_impact_and_cause_recorded(
    bot: BotHarness, emulator: SlackEmulator, clock: FakeClock, people: People
) -> None:
    channel = await declare(bot, people.alice)
    await run(bot, "impact checkout slow for EU", user=people.bob, channel=channel)
    await run(bot, "cause cache disabled", user=people.bob, channel=channel)
    clock.advance(timedelta(hours=1))
    said = await run(bot, "resolve at 11:10 AM", user=people.alice, channel=channel)
    assert said == "INC-1 is resolved."
    inc = await incident(bot, 1)
    assert inc.resolved_at == local(11, 10)
    # The summary fields hold what was typed, not the timeline's labelled text.
    assert (inc.impact, inc.root_cause) == ("checkout slow for EU", "cache disabled")
    [summary] = [t for t in posted_to(emulator, channel) if "resolved* after" in t]
    assert "after 40 minutes (10:30 AM PST to 11:10 AM PST)" in summary
    assert "*Impact:* checkout slow for EU" in summary
    assert "*Root cause:* cache disabled" in summary
    assert_all_calls_valid(emulator.calls)


async def test_a_later_change_to_a_resolved_incident_does_not_announce_it_again(
    announcing_bot: BotHarness,
    emulator: SlackEmulator,
    clock: FakeClock,
    people: People,
    incidents_channel: str,
) -> None:
    bot = announcing_bot
    channel = await declare(bot, people.alice)
    clock.advance(timedelta(minutes=20))
    await run(bot, "resolve", user=people.alice, channel=channel)
    announced = len(posted_to(emulator, incidents_channel))
    summaries = [t for t in posted_to(emulator, channel) if "resolved* after" in t]
    said = await run(bot, "started 10:10", user=people.alice, channel=channel)
    assert said == "Impact on INC-1 started at 2026-11-25 10:10 AM PST."
    await run(bot, f"role scribe <@{people.bob}>", user=people.alice, channel=channel)
    assert len(posted_to(emulator, incidents_channel)) == announced
    assert [t for t in posted_to(emulator, channel) if "resolved* after" in t] == summaries
    assert_all_calls_valid(emulator.calls)


# -- 4. who may do what -------------------------------------------------------------------


async def test_only_the_commander_changes_severity_resolves_and_reopens(
    bot: BotHarness, emulator: SlackEmulator, clock: FakeClock, people: People
) -> None:
    channel = await declare(bot, people.alice)
    clock.advance(timedelta(minutes=10))
    refusal = f"Only the commander (<@{people.alice}>) or an incident admin can"
    before = await snapshot(bot)
    for text, verb in (
        ("sev sev2", "change the severity of"),
        ("resolve", "resolve"),
        ("status resolved", "resolve"),
    ):
        said = await run(bot, text, user=people.bob, channel=channel)
        assert said == f"{refusal} {verb} INC-1."
    assert await snapshot(bot) == before

    assert await run(bot, "sev sev2", user=people.alice, channel=channel) == "INC-1 is now *SEV2*."
    assert await run(bot, "resolve", user=people.alice, channel=channel) == (
        "INC-1 is resolved. For the postmortem, still record "
        "`/incident impact …` and `/incident cause …`."
    )
    said = await run(bot, "status investigating", user=people.bob, channel=channel)
    assert said == f"{refusal} reopen INC-1."
    assert (await incident(bot, 1)).status is Status.RESOLVED

    # The commander hands over; now Bob decides and Alice does not.
    said = await run(bot, f"role commander <@{people.bob}|bob>", user=people.alice, channel=channel)
    assert said == f"<@{people.bob}> is now commander of INC-1."
    said = await run(bot, "status investigating", user=people.bob, channel=channel)
    assert said == "INC-1 is now *Investigating*."
    said = await run(bot, "sev sev1", user=people.alice, channel=channel)
    bobs = f"Only the commander (<@{people.bob}>) or an incident admin can"
    assert said == f"{bobs} change the severity of INC-1."
    assert emulator.channel(channel).topic == f"SEV2 · Investigating · IC <@{people.bob}>"
    assert_all_calls_valid(emulator.calls)


async def test_role_by_handle_is_looked_up(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    channel = await declare(bot, people.alice)
    said = await run(bot, "role comms @carol", user=people.alice, channel=channel)
    assert said == f"<@{people.carol}> is now comms of INC-1."
    assert people.carol in emulator.channel(channel).members
    assert_all_calls_valid(emulator.calls)


# -- 5. privacy ---------------------------------------------------------------------------


async def test_private_incident_stays_private(
    announcing_bot: BotHarness, emulator: SlackEmulator, people: People, incidents_channel: str
) -> None:
    bot = announcing_bot
    reply = await usecases.declare(
        bot.services,
        actor=people.alice,
        declaration=usecases.Declaration(title="Payroll data exposed", private=True),
    )
    assert "INC-1" in reply.text
    await bot.settle()
    inc = await incident(bot, 1)
    assert inc.private and inc.channel_id is not None
    record = emulator.channel(inc.channel_id)
    assert record.is_private and people.alice in record.members
    assert people.bob not in record.members

    await run(bot, "update still investigating", user=people.alice, channel=inc.channel_id)
    assert posted_to(emulator, incidents_channel) == []

    assert await run(bot, "list", user=people.bob) == "No open incidents."
    assert await run(bot, "list", user=people.alice) == "1 open incident(s)."

    outsider = await run(bot, "INC-1 timeline", user=people.bob)
    unknown = await run(bot, "INC-99 timeline", user=people.bob)
    assert outsider == "There is no incident INC-1."
    assert unknown == "There is no incident INC-99."
    before = await snapshot(bot)
    assert await run(bot, "INC-1 note peek", user=people.bob) == "There is no incident INC-1."
    assert await snapshot(bot) == before

    # Its own member still reaches it by name from elsewhere.
    said = await run(bot, "INC-1 timeline", user=people.alice)
    assert said.startswith("Timeline of INC-1:")
    assert posted_to(emulator, incidents_channel) == []
    assert_all_calls_valid(emulator.calls)


# -- 6. bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "frobnicate now",
            "`frobnicate` is not an `/incident` subcommand: see `/incident help` for the list.",
        ),
        (
            "note at 23:59 it will break",
            "`23:59` is in the future: give a time that has already happened "
            "(for yesterday, put the date first: `2026-11-24 23:59`).",
        ),
        (
            "note at 25:61 nonsense",
            "`25:61` is not a time: write `HH:MM` (24 h) or `H:MM AM/PM`, "
            "optionally after a date `YYYY-MM-DD`.",
        ),
        ("sev sev9", "`sev9` is not a severity: write `/incident sev sev1-sev4`."),
        (
            "note " + "x" * 3001,
            "`note` text can be at most 3,000 characters and this one has 3,001: "
            "shorten it, or split it over several commands.",
        ),
        (
            "declare sev1 " + "t" * 201,
            "A title can be at most 200 characters and this one has 201: "
            "shorten it, and put the details in a note.",
        ),
    ],
    ids=["unknown-subcommand", "future-time", "malformed-time", "sev9", "long-note", "long-title"],
)
async def test_parse_errors_are_answered_in_the_ack(
    bot: BotHarness, emulator: SlackEmulator, people: People, text: str, expected: str
) -> None:
    channel = await declare(bot, people.alice)
    before = await snapshot(bot)
    calls = len(emulator.calls)
    said = await refused_in_ack(bot, text, user=people.alice, channel=channel)
    assert said == expected
    one_sentence(said)
    assert await snapshot(bot) == before
    assert emulator.calls[calls:] == []
    assert_all_calls_valid(emulator.calls)


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        (
            "note the cache is cold",
            "elsewhere",
            "This is not an incident channel: name the incident first, "
            "e.g. `/incident INC-7 note …`, or see `/incident list`.",
        ),
        ("INC-99 note the cache is cold", "elsewhere", "There is no incident INC-99."),
        (
            "role wizard @alice",
            "channel",
            "`wizard` is not a role here: use one of commander, comms, deputy, lead, liaison, "
            "ops, scribe (`/incident role ROLE @user`).",
        ),
        (
            "role scribe @nobody",
            "channel",
            "There is no Slack user @nobody: mention them so Slack completes the name.",
        ),
        (
            "role scribe <@U99999999>",
            "channel",
            "<@U99999999> is not an active user in this workspace.",
        ),
        ("sev sev1", "channel", "INC-1 is already SEV1."),
        (
            "started 10:45",
            "channel",
            "Impact cannot start at 2026-11-25 10:45 AM PST, after INC-1 was declared "
            "(2026-11-25 10:30 AM PST): give a time at or before the declaration.",
        ),
    ],
    ids=[
        "no-incident-channel",
        "unknown-incident",
        "unknown-role",
        "unknown-user",
        "unknown-mention",
        "same-sev",
        "started-after-declared",
    ],
)
async def test_refusals_after_the_ack_record_nothing(
    bot: BotHarness,
    emulator: SlackEmulator,
    clock: FakeClock,
    people: People,
    text: str,
    where: str,
    expected: str,
) -> None:
    channel = await declare(bot, people.alice)
    clock.advance(timedelta(minutes=20))
    before = await snapshot(bot)
    seen = len(emulator.responses)
    said = await run(
        bot, text, user=people.alice, channel=channel if where == "channel" else "CGENERAL"
    )
    assert said == expected
    one_sentence(said)
    assert len(emulator.responses) == seen + 1  # one answer, nothing else said
    assert await snapshot(bot) == before
    assert_all_calls_valid(emulator.calls)


async def test_a_note_backdated_to_yesterday_shows_its_date(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    channel = await declare(bot, people.alice)
    said = await run(
        bot, "note at 2026-11-24 23:59 first alert fired", user=people.bob, channel=channel
    )
    assert said == "Noted on INC-1's timeline at 2026-11-24 11:59 PM PST."
    assert f"`2026-11-24 11:59 PM PST` first alert fired — <@{people.bob}>" in posted_to(
        emulator, channel
    )
    first = (await timeline(bot, 1))[0]
    assert (first.kind, first.occurred_at) == (EntryKind.NOTE, local(23, 59, day=24))
    assert_all_calls_valid(emulator.calls)
