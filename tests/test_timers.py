"""Timers: reminders, nudges, due dates, escalation across a restart, and the scheduler lease.

Every timer is an APScheduler date job in the bot's own database (`apscheduler_jobs`, read back
through `services.timers.pending()`). The clock only moves when a test moves it; `settle()`
runs the work after acks, the owed Slack calls and the timers due at the clock's time.
Commands and buttons go through the real app over signed HTTP against the Slack emulator, and
what people saw is read from the emulator's recorded calls.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.base import STATE_PAUSED
from sqlmodel import col, select

from bot import followups
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind
from bot.core.playbooks import load_playbook
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import FollowUp, Incident, Lease, TimelineEntry
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId
from bot.timers import LEASE_FOR, MACHINE, TimerKind, Timers, holder_id, holder_is_gone
from bot.usecases import Asked
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.conversation import answers_to as run
from tests.slack_schema import assert_all_calls_valid
from tests.test_blocks import assert_valid_blocks

PLAYBOOK = """
name: web
match: {default: true}
roles:
  commander: {slack: ["@alice"], required: true}
reminders: {status_update_every: {sev1: 15m, sev2: 30m}}
checklist: ["Post a status update", "Check the error rate dashboard"]
postmortem: {due_in: 5d}
"""

# Two tiers paged by Slack DM only: nothing outside the emulator is needed.
ESCALATING = """
name: escalating
match: {default: true}
roles:
  commander: {slack: ["@alice"], required: true}
  ops: {slack: ["@bob"]}
  lead: {slack: ["@carol"]}
escalation:
  - {after: 5m, page: [ops]}
  - {after: 15m, page: [lead]}
"""

T0 = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)  # the `clock` fixture: 10:30 AM PST
REMINDER = ":alarm_clock: Time for a status update on INC-1"


@dataclass
class People:
    alice: str
    bob: str
    carol: str
    dave: str


@pytest.fixture
def people(emulator: SlackEmulator) -> People:
    return People(
        alice=emulator.add_user("alice", real_name="Alice Smith"),
        bob=emulator.add_user("bob", real_name="Bob Jones"),
        carol=emulator.add_user("carol", real_name="Carol White"),
        dave=emulator.add_user("dave", real_name="Dave Brown"),
    )


@pytest.fixture
async def bot(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    settings = make_settings(database_url=sqlite_url, api_url=emulator.url)
    playbooks = [load_playbook(PLAYBOOK, filename="web.yaml")]
    harness, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)


# -- helpers ------------------------------------------------------------------------------


async def declare(bot: BotHarness, user: str, text: str = "sev2 Checkout latency") -> str:
    """Declared at the clock's time; the incident channel's id."""
    await run(bot, f"declare {text}", user=user)
    found = await incident(bot)
    assert found.channel_id is not None
    return found.channel_id


async def incident(bot: BotHarness, number: int = 1) -> Incident:
    async with bot.services.sessions() as session:
        found = await IncidentRepo(session).by_number(number)
    assert found is not None
    return found


def posts(bot: BotHarness, channel: str, starting: str = "") -> list[dict[str, Any]]:
    """chat.postMessage calls to a channel (or a user's DM) whose text starts with `starting`."""
    return [
        call.args
        for call in bot.emulator.calls_to("chat.postMessage")
        if call.args["channel"] == channel and str(call.args["text"]).startswith(starting)
    ]


def reminders(bot: BotHarness, channel: str) -> list[dict[str, Any]]:
    return posts(bot, channel, REMINDER)


async def pending(bot: BotHarness, prefix: str = "") -> dict[str, datetime]:
    """The stored timers (the job store's rows) whose keys start with `prefix`."""
    return {k: v for k, v in (await bot.services.timers.pending()).items() if k.startswith(prefix)}


async def stored_job_ids(bot: BotHarness) -> set[str]:
    """Straight from APScheduler's table, not through the scheduler."""
    async with bot.services.sessions() as session:
        rows = await session.execute(sa.text("SELECT id FROM apscheduler_jobs"))
        return {str(row[0]) for row in rows}


async def advance_to(bot: BotHarness, clock: FakeClock, when: datetime) -> None:
    assert when >= clock.now()
    clock.advance(when - clock.now())
    await bot.settle()


def pressed(
    bot: BotHarness,
    button: Mapping[str, Any],
    *,
    user: str,
    channel: str,
    block_id: str = "Xq1",  # what Slack makes up for a block that has no block_id
) -> dict[str, Any]:
    """The block_actions payload Slack sends when `user` presses `button` on a message."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "111.222.valid",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": channel, "name": "inc"},
        "message": {"type": "message", "ts": "1700000000.000100", "text": "reminder"},
        "response_url": bot.emulator.response_url(channel=channel, user=user),
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": block_id,
                "text": button["text"],
                "value": button["value"],
                "type": "button",
                "action_ts": "1700000000.000200",
            }
        ],
    }


async def press(bot: BotHarness, payload: Any) -> str:
    """A button press: acked at once and empty, then one ephemeral answer."""
    seen = len(bot.emulator.responses)
    reply = await bot.interact(payload)
    assert (reply.status, reply.text) == (200, ""), reply.text
    await bot.settle()
    [answer] = bot.emulator.responses[seen:]
    assert answer.ok, answer.response
    assert answer.args["response_type"] == "ephemeral"
    return str(answer.args["text"])


def snooze_button(reminder: Mapping[str, Any]) -> dict[str, Any]:
    """The reminder's one button, after checking the blocks are ones Slack accepts."""
    assert_valid_blocks(reminder["blocks"])
    [actions] = [b for b in reminder["blocks"] if b["type"] == "actions"]
    [button] = actions["elements"]
    assert button["type"] == "button"
    assert button["action_id"] == ActionId.SNOOZE_REMINDER.value
    return dict(button)


# -- 1. status-update reminders ------------------------------------------------------------


async def test_status_reminders_follow_the_severity_cadence_updates_snooze_and_resolution(
    bot: BotHarness, emulator: SlackEmulator, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    found = await incident(bot)
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=30)}
    assert "status:1" in await stored_job_ids(bot)  # in the job store, so a restart keeps it

    # Nothing before its time; at +30m one reminder, in the channel, with a Snooze button.
    await advance_to(bot, clock, T0 + timedelta(minutes=29, seconds=59))
    assert reminders(bot, channel) == []
    await advance_to(bot, clock, T0 + timedelta(minutes=30))
    [first] = reminders(bot, channel)
    assert first["text"] == (f"{REMINDER} (SEV2: every 30 minutes): `/incident update …`")
    button = snooze_button(first)
    assert button["value"] == str(found.id)
    # ... then every 30 minutes while nobody updates.
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=60)}
    await advance_to(bot, clock, T0 + timedelta(minutes=60))
    assert len(reminders(bot, channel)) == 2
    await bot.settle()  # settling again at the same time sends nothing more
    assert len(reminders(bot, channel)) == 2

    # An update at +70m: the next reminder is 30 minutes after it, not at +90m.
    await advance_to(bot, clock, T0 + timedelta(minutes=70))
    await run(
        bot, "update Rolled back the deploy; latency recovering", user=people.alice, channel=channel
    )
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=100)}
    await advance_to(bot, clock, T0 + timedelta(minutes=99))
    assert len(reminders(bot, channel)) == 2
    await advance_to(bot, clock, T0 + timedelta(minutes=100))
    assert len(reminders(bot, channel)) == 3

    # SEV1: every 15 minutes from the change.
    await advance_to(bot, clock, T0 + timedelta(minutes=105))
    await run(bot, "sev sev1", user=people.alice, channel=channel)
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=120)}
    await advance_to(bot, clock, T0 + timedelta(minutes=120))
    fourth = reminders(bot, channel)[-1]
    assert len(reminders(bot, channel)) == 4
    assert "(SEV1: every 15 minutes)" in fourth["text"]
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=135)}

    # Snooze, pressed five minutes after the reminder: the next one moves back one interval.
    await advance_to(bot, clock, T0 + timedelta(minutes=125))
    answer = await press(bot, pressed(bot, snooze_button(fourth), user=people.bob, channel=channel))
    assert answer == "Snoozed: the next reminder is at 1:00 PM PST."  # +150m
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=150)}
    await advance_to(bot, clock, T0 + timedelta(minutes=149))
    assert len(reminders(bot, channel)) == 4
    await advance_to(bot, clock, T0 + timedelta(minutes=150))
    assert len(reminders(bot, channel)) == 5

    # Resolved: no more reminders, the timer is gone from the store.
    await advance_to(bot, clock, T0 + timedelta(minutes=155))
    await run(bot, "resolve", user=people.alice, channel=channel)
    assert await pending(bot, "status:") == {}
    assert "status:1" not in await stored_job_ids(bot)
    await advance_to(bot, clock, T0 + timedelta(hours=6))
    assert len(reminders(bot, channel)) == 5
    # Snooze on an old reminder after the resolution says so, and sets nothing.
    answer = await press(bot, pressed(bot, snooze_button(fourth), user=people.bob, channel=channel))
    assert answer == "That incident is resolved; no more reminders."
    assert await pending(bot, "status:") == {}

    # Reopened: reminders start again, one interval (SEV1) after the reopening.
    reopened_at = clock.now()
    await run(bot, "status investigating it is back", user=people.alice, channel=channel)
    assert await pending(bot, "status:") == {"status:1": reopened_at + timedelta(minutes=15)}
    await advance_to(bot, clock, reopened_at + timedelta(minutes=15))
    assert len(reminders(bot, channel)) == 6
    assert_all_calls_valid(emulator.calls)


async def test_snooze_right_after_a_reminder_pushes_the_next_one_a_whole_interval(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    await advance_to(bot, clock, T0 + timedelta(minutes=30))
    [reminder] = reminders(bot, channel)
    answer = await press(
        bot, pressed(bot, snooze_button(reminder), user=people.alice, channel=channel)
    )
    # The next one was due at +60m; Snooze makes it +90m (12:00 PM PST), not "30m from now".
    assert answer == "Snoozed: the next reminder is at 12:00 PM PST."
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=90)}
    await advance_to(bot, clock, T0 + timedelta(minutes=89))
    assert len(reminders(bot, channel)) == 1
    await advance_to(bot, clock, T0 + timedelta(minutes=90))
    assert len(reminders(bot, channel)) == 2


async def test_a_severity_without_a_cadence_gets_no_reminders(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol, "sev3 Slow admin pages")
    assert await pending(bot, "status:") == {}
    await advance_to(bot, clock, T0 + timedelta(hours=3))
    assert reminders(bot, channel) == []
    # Raised to SEV2: every 30 minutes from then; lowered again to SEV3: they stop.
    await run(bot, "sev sev2", user=people.alice, channel=channel)
    await advance_to(bot, clock, T0 + timedelta(hours=3, minutes=30))
    assert len(reminders(bot, channel)) == 1
    await run(bot, "sev sev3", user=people.alice, channel=channel)
    await advance_to(bot, clock, T0 + timedelta(hours=8))
    assert len(reminders(bot, channel)) == 1


# -- 2. checklist ---------------------------------------------------------------------------


async def test_checklist_is_posted_at_declaration_and_nudged_after_15_minutes(
    bot: BotHarness, emulator: SlackEmulator, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    [posted] = posts(bot, channel, ":clipboard:")
    assert posted["text"] == (
        ":clipboard: Checklist (web):\n• Post a status update\n• Check the error rate dashboard"
    )
    assert await pending(bot, "checklist:") == {"checklist:1": T0 + timedelta(minutes=15)}
    await advance_to(bot, clock, T0 + timedelta(minutes=14, seconds=59))
    assert len(posts(bot, channel, ":clipboard:")) == 1
    await advance_to(bot, clock, T0 + timedelta(minutes=15))
    nudges = posts(bot, channel, ":clipboard: Checklist for INC-1:")
    assert [n["text"] for n in nudges] == [
        ":clipboard: Checklist for INC-1:\n• Post a status update\n• Check the error rate dashboard"
    ]
    assert await pending(bot, "checklist:") == {}  # once, not every 15 minutes
    await advance_to(bot, clock, T0 + timedelta(hours=2))
    assert len(posts(bot, channel, ":clipboard:")) == 2
    assert_all_calls_valid(emulator.calls)


async def test_no_checklist_nudge_after_the_resolution(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    await advance_to(bot, clock, T0 + timedelta(minutes=10))
    await run(bot, "resolve false alarm", user=people.alice, channel=channel)
    assert await pending(bot, "checklist:") == {}
    await advance_to(bot, clock, T0 + timedelta(hours=1))
    assert len(posts(bot, channel, ":clipboard:")) == 1  # the one at declaration


# -- 3. postmortem due ------------------------------------------------------------------------


async def test_postmortem_due_dm_goes_to_the_commander_five_days_after_the_resolution(
    bot: BotHarness, emulator: SlackEmulator, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)  # carol declares; alice is the commander
    resolved_at = T0 + timedelta(minutes=45)
    await advance_to(bot, clock, resolved_at)
    await run(bot, "resolve rollback done", user=people.alice, channel=channel)
    due = resolved_at + timedelta(days=5)
    assert await pending(bot) == {"postmortem:1": due}

    await advance_to(bot, clock, due - timedelta(minutes=1))
    assert posts(bot, people.alice, ":memo:") == []
    await advance_to(bot, clock, due)
    [dm] = posts(bot, people.alice, ":memo:")
    assert dm["text"] == (
        ":memo: The postmortem of INC-1 is due today. "
        "`/incident INC-1 postmortem` uploads the latest draft."
    )
    assert posts(bot, people.carol, ":memo:") == []
    await advance_to(bot, clock, due + timedelta(days=3))
    assert len(posts(bot, people.alice, ":memo:")) == 1
    assert await pending(bot) == {}
    assert_all_calls_valid(emulator.calls)


async def test_postmortem_due_does_not_remind_an_incident_reopened_since(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    await run(bot, "resolve", user=people.alice, channel=channel)
    await advance_to(bot, clock, T0 + timedelta(days=1))
    await run(bot, "status investigating not fixed after all", user=people.alice, channel=channel)
    await advance_to(bot, clock, T0 + timedelta(days=6))
    assert posts(bot, people.alice, ":memo:") == []


# -- 4. overdue tasks ---------------------------------------------------------------------------


async def add_task(bot: BotHarness, channel: str, *, owner: str, text: str) -> FollowUp:
    answers = await run(
        bot, f"task {text} <@{owner}|owner> due 2026-11-27", user=owner, channel=channel
    )
    assert answers == [f"Task added to INC-1, owner <@{owner}>, due 2026-11-27."]
    async with bot.services.sessions() as session:
        query = select(FollowUp).order_by(col(FollowUp.id).desc())
        task = (await session.execute(query)).scalars().first()
    assert task is not None and task.text == text
    return task


OVERDUE_AT = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)  # 9:00 AM PST the day after the due date


async def test_an_overdue_task_reminds_its_owner_by_dm_at_9am_the_day_after(
    bot: BotHarness, emulator: SlackEmulator, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    task = await add_task(bot, channel, owner=people.bob, text="Add a cache alarm")
    assert await pending(bot, "task:") == {f"task:{task.id}": OVERDUE_AT}

    await advance_to(bot, clock, OVERDUE_AT - timedelta(seconds=1))
    assert posts(bot, people.bob, ":hourglass:") == []
    await advance_to(bot, clock, OVERDUE_AT)
    [dm] = posts(bot, people.bob, ":hourglass:")
    assert dm["text"] == (
        ":hourglass: Your task from INC-1 was due 2026-11-27: Add a cache alarm — "
        "`/incident INC-1 tasks` to complete it."
    )
    await advance_to(bot, clock, OVERDUE_AT + timedelta(days=2))
    assert len(posts(bot, people.bob, ":hourglass:")) == 1
    assert_all_calls_valid(emulator.calls)


async def test_a_task_completed_or_removed_in_time_does_not_remind(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    by_button = await add_task(bot, channel, owner=people.bob, text="Alarm on cache hit rate")
    by_call = await add_task(bot, channel, owner=people.alice, text="Canary every deploy")
    removed = await add_task(bot, channel, owner=people.dave, text="Rewrite everything")
    late = await add_task(bot, channel, owner=people.carol, text="Document the rollback")

    # Completed with the task list's button, as Slack sends its press.
    button = {
        "type": "button",
        "action_id": ActionId.COMPLETE_TASK.value,
        "text": {"type": "plain_text", "text": "Complete"},
        "value": str(by_button.id),
    }
    payload = pressed(
        bot, button, user=people.bob, channel=channel, block_id=f"task:{by_button.id}"
    )
    assert await press(bot, payload) == "Task done: Alarm on cache hit rate"
    # Completed and removed through the use case.
    asked = Asked(actor=people.alice, channel_id=channel)
    assert by_call.id is not None and removed.id is not None
    await followups.finish_task(bot.services, task_id=by_call.id, asked=asked, remove=False)
    await followups.finish_task(bot.services, task_id=removed.id, asked=asked, remove=True)
    await bot.settle()

    await advance_to(bot, clock, OVERDUE_AT + timedelta(hours=1))
    for person in (people.bob, people.alice, people.dave):
        assert posts(bot, person, ":hourglass:") == [], person
    # The one left undone still reminds its owner.
    assert [dm["text"] for dm in posts(bot, people.carol, ":hourglass:")] == [
        ":hourglass: Your task from INC-1 was due 2026-11-27: Document the rollback — "
        "`/incident INC-1 tasks` to complete it."
    ]
    assert late.id is not None


# -- 5. a restart in the middle of an escalation ---------------------------------------------


async def escalations(bot: BotHarness, incident_id: int | None) -> list[str]:
    async with bot.services.sessions() as session:
        query = select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id,
            TimelineEntry.kind == EntryKind.ESCALATION,
        )
        return [e.text for e in (await session.execute(query)).scalars().all()]


def page_dms(emulator: SlackEmulator, user: str) -> list[dict[str, Any]]:
    """DMs to `user` that are pages: they carry the Acknowledge button."""
    found = []
    for call in emulator.calls_to("chat.postMessage"):
        if call.args["channel"] != user:
            continue
        actions = [
            element["action_id"]
            for block in call.args.get("blocks") or []
            if block["type"] == "actions"
            for element in block["elements"]
        ]
        if ActionId.ACKNOWLEDGE_PAGE.value in actions:
            found.append(call.args)
    return found


async def test_escalation_survives_a_restart_and_fires_once(
    db_url: str, emulator: SlackEmulator, people: People, clock: FakeClock
) -> None:
    settings = make_settings(database_url=db_url, api_url=emulator.url)
    playbooks = [load_playbook(ESCALATING, filename="escalating.yaml")]

    first, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    await declare(first, people.dave, "sev2 Orders are failing")
    found = await incident(first)
    assert await pending(first, "escalate:") == {
        "escalate:1:1": T0 + timedelta(minutes=5),
        "escalate:1:2": T0 + timedelta(minutes=15),
    }
    assert page_dms(emulator, people.bob) == [] and page_dms(emulator, people.carol) == []
    # The process goes away before tier 1 is due (stop_bot settles at T0: nothing fires).
    await stop_bot(first, runner)

    clock.advance(timedelta(minutes=7))  # tier 1 fell due while nothing was running
    second, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    try:
        assert await pending(second, "escalate:") == {
            "escalate:1:1": T0 + timedelta(minutes=5),
            "escalate:1:2": T0 + timedelta(minutes=15),
        }
        await second.settle()
        assert len(page_dms(emulator, people.bob)) == 1  # tier 1, once, after start-up
        await second.settle()
        assert len(page_dms(emulator, people.bob)) == 1  # and not twice
        assert await escalations(second, found.id) == [
            "Escalated to tier 1 (ops): nobody acknowledged within 7 minutes"
        ]
        assert await pending(second, "escalate:") == {"escalate:1:2": T0 + timedelta(minutes=15)}
        assert page_dms(emulator, people.carol) == []

        await advance_to(second, clock, T0 + timedelta(minutes=14, seconds=59))
        assert page_dms(emulator, people.carol) == []
        await advance_to(second, clock, T0 + timedelta(minutes=15))
        assert len(page_dms(emulator, people.carol)) == 1  # tier 2 at its own time
        assert len(page_dms(emulator, people.bob)) == 1
        assert len(await escalations(second, found.id)) == 2
        assert await pending(second, "escalate:") == {}
        assert_all_calls_valid(emulator.calls)
    finally:
        await stop_bot(second, runner)


async def test_reminders_missed_during_a_long_downtime_come_once_after_start_up(
    sqlite_url: str, emulator: SlackEmulator, people: People, clock: FakeClock
) -> None:
    settings = make_settings(database_url=sqlite_url, api_url=emulator.url)
    playbooks = [load_playbook(PLAYBOOK, filename="web.yaml")]
    first, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    channel = await declare(first, people.carol)
    await stop_bot(first, runner)

    clock.advance(timedelta(hours=2))  # four reminders' worth, and the checklist nudge
    second, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    try:
        await second.settle()
        await second.settle()
        assert len(reminders(second, channel)) == 1
        assert len(posts(second, channel, ":clipboard: Checklist for INC-1")) == 1
        # The cadence goes on from the one that came late.
        restarted = clock.now()
        assert await pending(second, "status:") == {"status:1": restarted + timedelta(minutes=30)}
        await advance_to(second, clock, restarted + timedelta(minutes=30))
        assert len(reminders(second, channel)) == 2
    finally:
        await stop_bot(second, runner)


# -- 6. one scheduler among several processes ---------------------------------------------------


@dataclass
class Ran:
    calls: list[tuple[TimerKind, dict[str, Any]]]

    async def __call__(self, kind: TimerKind, payload: Mapping[str, Any]) -> None:
        self.calls.append((kind, dict(payload)))


async def lease_holder(timers: Timers) -> str | None:
    async with timers.sessions() as session:
        lease = await session.get(Lease, "scheduler")
    return lease.holder if lease else None


@pytest.fixture
async def two_processes(db_url: str, clock: FakeClock) -> AsyncIterator[tuple[Timers, Timers, Ran]]:
    """Two schedulers on one database, as two `serve` processes would have."""
    engines = [make_engine(db_url), make_engine(db_url)]
    ran = Ran([])
    pair = [
        Timers(database_url=db_url, sessions=make_sessionmaker(engine), clock=clock)
        for engine in engines
    ]
    for timers in pair:
        # Each its own handler (one process each), both recording into the same list.
        timers.start(Ran(ran.calls))
    try:
        yield pair[0], pair[1], ran
    finally:
        for timers in pair:
            await timers.stop()
        for engine in engines:
            await engine.dispose()


async def test_only_one_process_runs_the_timers_and_another_takes_over_when_it_stops(
    two_processes: tuple[Timers, Timers, Ran], clock: FakeClock
) -> None:
    a, b, ran = two_processes
    await a.poll()
    await b.poll()
    assert (a.leader, b.leader) == (True, False)
    assert await lease_holder(a) == a.holder

    # A job added by the process that does not run timers is stored, and not run there.
    await b.schedule(
        TimerKind.CHECKLIST_NUDGE, key="checklist:9", at=clock.now(), payload={"incident_id": 9}
    )
    assert b.scheduler.state == STATE_PAUSED  # APScheduler's own loop never runs jobs
    await b.poll()
    assert ran.calls == []
    assert "checklist:9" in await a.pending()
    # The leader runs it, once.
    await a.poll()
    assert ran.calls == [(TimerKind.CHECKLIST_NUDGE, {"incident_id": 9})]
    await a.poll()
    await b.poll()
    assert len(ran.calls) == 1
    assert await a.pending() == {}

    # The leader stops (SIGTERM): it gives the lease up, and the other takes it at its next poll.
    await a.stop()
    assert await lease_holder(b) is None
    await b.poll()
    assert b.leader
    await b.schedule(
        TimerKind.CHECKLIST_NUDGE, key="checklist:10", at=clock.now(), payload={"incident_id": 10}
    )
    await b.poll()
    assert ran.calls[-1] == (TimerKind.CHECKLIST_NUDGE, {"incident_id": 10})


async def test_a_lease_that_is_not_renewed_expires_and_passes_to_the_other_process(
    two_processes: tuple[Timers, Timers, Ran], clock: FakeClock
) -> None:
    a, b, ran = two_processes
    await a.poll()
    assert a.leader
    # Renewed in time: the other process still cannot take it.
    clock.advance(LEASE_FOR - timedelta(seconds=1))
    await a.poll()
    clock.advance(LEASE_FOR - timedelta(seconds=1))
    await b.poll()
    assert (a.leader, b.leader) == (True, False)

    # Not renewed for 31 s (the process hangs, or died without releasing): the other takes over.
    clock.advance(timedelta(seconds=2))
    await b.poll()
    assert b.leader and await lease_holder(b) == b.holder
    await b.schedule(
        TimerKind.CHECKLIST_NUDGE, key="checklist:3", at=clock.now(), payload={"incident_id": 3}
    )
    # The old holder wakes up: it learns it lost the lease, and does not run the job.
    await a.poll()
    assert not a.leader
    assert ran.calls == []
    await b.poll()
    assert ran.calls == [(TimerKind.CHECKLIST_NUDGE, {"incident_id": 3})]


async def held_by(timers: Timers, holder: str, clock: FakeClock) -> None:
    """The lease as a process that went away without a word left it: unexpired."""
    async with timers.sessions() as session, session.begin():
        session.add(Lease(name="scheduler", holder=holder, expires_at=clock.now() + LEASE_FOR))


@pytest.mark.skipif(MACHINE is None, reason="needs /proc to tell a process is gone")
async def test_a_restart_on_the_same_machine_takes_over_a_killed_holders_lease_at_once(
    two_processes: tuple[Timers, Timers, Ran], clock: FakeClock
) -> None:
    a, b, ran = two_processes
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()  # exited and reaped: its pid names no process now
    await held_by(a, holder_id(gone.pid), clock)
    assert holder_is_gone(holder_id(gone.pid))

    await a.schedule(
        TimerKind.CHECKLIST_NUDGE, key="checklist:4", at=clock.now(), payload={"incident_id": 4}
    )
    await a.poll()  # no waiting for the dead holder's 30 s to run out
    assert a.leader and await lease_holder(a) == a.holder
    assert ran.calls == [(TimerKind.CHECKLIST_NUDGE, {"incident_id": 4})]
    await b.poll()  # a live holder, though, is never taken over
    assert not b.leader


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param(lambda: holder_id(os.getppid()), id="a live process on this machine"),
        pytest.param(lambda: f"0123456789ab:{os.getpid() + 1}@another-machine/1", id="elsewhere"),
        pytest.param(lambda: "0123456789ab", id="no pid"),
    ],
)
async def test_a_lease_whose_holder_may_be_alive_is_only_taken_when_it_expires(
    two_processes: tuple[Timers, Timers, Ran], clock: FakeClock, holder: Any
) -> None:
    a, _, _ = two_processes
    await held_by(a, holder(), clock)
    await a.poll()
    assert not a.leader
    clock.advance(LEASE_FOR + timedelta(seconds=1))
    await a.poll()
    assert a.leader


# -- the job store outlives the process and its settings ---------------------------------------


async def test_timers_stored_under_another_spelling_of_the_database_url_still_run(
    sqlite_url: str, clock: FakeClock
) -> None:
    """A new DATABASE_URL for the same database (a moved host, a rotated user) keeps the timers."""
    ran = Ran([])
    engine = make_engine(sqlite_url)
    before = Timers(database_url=sqlite_url, sessions=make_sessionmaker(engine), clock=clock)
    before.start(ran)
    await before.schedule(
        TimerKind.ESCALATE, key="escalate:1:1", at=clock.now(), payload={"incident_id": 1}
    )
    await before.stop()
    await engine.dispose()

    directory, _, name = sqlite_url.rpartition("/")
    same_file = f"{directory}/./{name}"
    engine = make_engine(same_file)
    after = Timers(database_url=same_file, sessions=make_sessionmaker(engine), clock=clock)
    after.start(ran)
    try:
        assert await after.run_due() == 1
        assert ran.calls == [(TimerKind.ESCALATE, {"incident_id": 1})]
    finally:
        await after.stop()
        await engine.dispose()


async def test_stopping_while_a_timer_runs_lets_it_finish(
    sqlite_url: str, clock: FakeClock
) -> None:
    """SIGTERM during a pass: the timer already left the store, so it must not be cut short."""
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[TimerKind] = []

    async def slow(kind: TimerKind, payload: Mapping[str, Any]) -> None:
        started.set()
        await release.wait()
        finished.append(kind)

    engine = make_engine(sqlite_url)
    timers = Timers(database_url=sqlite_url, sessions=make_sessionmaker(engine), clock=clock)
    timers.start(slow)
    try:
        await timers.schedule(
            TimerKind.STATUS_REMINDER, key="status:1", at=clock.now(), payload={"incident_id": 1}
        )
        async with asyncio.timeout(10):
            timers.start_polling()
            await started.wait()
            stopping = asyncio.create_task(timers.stop())
            await asyncio.sleep(0)  # stop() has begun (no time passes)
            release.set()
            await stopping
        assert finished == [TimerKind.STATUS_REMINDER]
        assert await lease_holder(timers) is None  # and the lease was given up
    finally:
        await timers.stop()
        await engine.dispose()
