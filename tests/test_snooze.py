"""Snooze on a status-update reminder always moves the next reminder.

A reminder and the timer of the next one are committed together, but the timer reaches the job
store only after the reminder's post has been made: Slack answering that post slowly leaves a
window where the job store has no status timer. A Snooze pressed then, or pressed as the next
reminder's timer fires, must still move the next reminder one interval later.

The window is held open deterministically: the POST executor is wrapped so the reminder reaches
Slack (the message and its button exist) and then waits on an event before the runner may go
on; and the timers' handler is wrapped so a press lands between a timer leaving the store and
its reminder being written. A third case uses the emulator's real latency, as Slack's is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.playbooks import load_playbook
from bot.db.models import SideEffect
from bot.emulator import SlackEmulator
from bot.outbox import EffectKind
from bot.reminders import snooze_blocks
from bot.timers import TimerKind
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.conversation import answers_to as run
from tests.test_timers import (
    PLAYBOOK,
    REMINDER,
    T0,
    People,
    advance_to,
    declare,
    incident,
    pending,
    press,
    pressed,
    reminders,
    snooze_button,
)


@pytest.fixture
def people(emulator: SlackEmulator) -> People:
    return People(
        alice=emulator.add_user("alice", real_name="Alice Smith"),
        bob=emulator.add_user("bob", real_name="Bob Jones"),
        carol=emulator.add_user("carol", real_name="Carol White"),
        dave=emulator.add_user("dave", real_name="Dave Brown"),
    )


@pytest.fixture
async def bot(db_url: str, emulator: SlackEmulator, clock: FakeClock) -> AsyncIterator[BotHarness]:
    """The bot on SQLite and PostgreSQL, with a SEV2 cadence of 30 minutes."""
    settings = make_settings(database_url=db_url, api_url=emulator.url)
    playbooks = [load_playbook(PLAYBOOK, filename="web.yaml")]
    harness, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)


class HeldReminders:
    """Reminders reach Slack, then the runner waits (as for a slow answer) until released.

    The next reminder's timer is held too: timers have their own lane in the outbox, and
    this is the moment it is committed but not yet stored.
    """

    def __init__(self, bot: BotHarness) -> None:
        self.posted = asyncio.Event()
        self.release = asyncio.Event()
        self._post = bot.services.effects.executors[EffectKind.POST]
        self._schedule = bot.services.effects.executors[EffectKind.SCHEDULE]
        bot.services.effects.register(
            {EffectKind.POST: self._held, EffectKind.SCHEDULE: self._held_timer}
        )

    async def _held(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        await self._post(effect, payload)
        if str(payload.get("text", "")).startswith(REMINDER):
            self.posted.set()
            await self.release.wait()

    async def _held_timer(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        if str(payload.get("key", "")).startswith("status:"):
            await self.release.wait()
        await self._schedule(effect, payload)


async def press_now(bot: BotHarness, payload: dict[str, Any]) -> str:
    """A button press answered while the side-effect runner is busy (so no settle())."""
    seen = len(bot.emulator.responses)
    reply = await bot.interact(payload)
    assert (reply.status, reply.text) == (200, ""), reply.text
    await bot.services.inflight.wait()
    [answer] = bot.emulator.responses[seen:]
    assert answer.ok and answer.args["response_type"] == "ephemeral", answer.args
    return str(answer.args["text"])


async def test_snooze_while_slack_has_not_answered_the_reminder_moves_the_next_one(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)  # SEV2: every 30 minutes, first at +30m
    held = HeldReminders(bot)
    try:
        await advance_to(bot, clock, T0 + timedelta(minutes=29))  # the checklist nudge
        clock.advance(timedelta(minutes=1))
        assert await bot.services.timers.run_due() == 1
        await held.posted.wait()
        # The reminder is in the channel; its next timer (+60m) is committed but not stored.
        [reminder] = reminders(bot, channel)
        assert await pending(bot, "status:") == {}

        answer = await press_now(
            bot, pressed(bot, snooze_button(reminder), user=people.alice, channel=channel)
        )
        assert answer == "Snoozed: the next reminder is at 12:00 PM PST."  # +90m, not +60m
        # A second press before anything is stored moves it once more.
        answer = await press_now(
            bot, pressed(bot, snooze_button(reminder), user=people.bob, channel=channel)
        )
        assert answer == "Snoozed: the next reminder is at 12:30 PM PST."  # +120m
    finally:
        held.release.set()
    await bot.settle()
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=120)}
    await advance_to(bot, clock, T0 + timedelta(minutes=119))
    assert len(reminders(bot, channel)) == 1
    await advance_to(bot, clock, T0 + timedelta(minutes=120))
    assert len(reminders(bot, channel)) == 2


async def test_snooze_as_the_next_reminder_comes_due_puts_that_reminder_off(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    await advance_to(bot, clock, T0 + timedelta(minutes=30))
    [first] = reminders(bot, channel)
    # At +60m the next reminder's timer leaves the store; Snooze is pressed before it posts.
    handler = bot.services.timers.handler
    assert handler is not None
    answers: list[str] = []

    async def snoozed_first(kind: TimerKind, payload: Mapping[str, Any]) -> None:
        if kind is TimerKind.STATUS_REMINDER and not answers:
            assert await pending(bot, "status:") == {}
            button = snooze_button(first)
            answers.append(
                await press_now(bot, pressed(bot, button, user=people.alice, channel=channel))
            )
        await handler(kind, payload)

    bot.services.timers.handler = snoozed_first
    await advance_to(bot, clock, T0 + timedelta(minutes=60))
    assert answers == ["Snoozed: the next reminder is at 12:00 PM PST."]  # +90m
    # The reminder due at +60m stays quiet: the Snooze moved it to +90m.
    assert len(reminders(bot, channel)) == 1
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=90)}
    await advance_to(bot, clock, T0 + timedelta(minutes=89))
    assert len(reminders(bot, channel)) == 1
    await advance_to(bot, clock, T0 + timedelta(minutes=90))
    assert len(reminders(bot, channel)) == 2
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=120)}


async def test_snooze_with_a_slow_slack_moves_the_next_reminder(
    bot: BotHarness, emulator: SlackEmulator, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    found = await incident(bot)
    assert found.id is not None
    # Slack takes a second to answer each post, as in the report: the reminder's next timer is
    # stored a second after the reminder appears. (The answer does not depend on where in that
    # second the press lands: owed or stored, the next reminder is at +60m before the press.)
    await advance_to(bot, clock, T0 + timedelta(minutes=29))  # the checklist nudge
    emulator.set_latency(1.0, "chat.postMessage")
    clock.advance(timedelta(minutes=1))
    assert await bot.services.timers.run_due() == 1
    button = snooze_button({"blocks": snooze_blocks("reminder", found.id)})
    answer = await press(bot, pressed(bot, button, user=people.alice, channel=channel))
    assert answer == "Snoozed: the next reminder is at 12:00 PM PST."
    emulator.set_latency(0.0, "chat.postMessage")
    assert len(reminders(bot, channel)) == 1
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=90)}
    await advance_to(bot, clock, T0 + timedelta(minutes=89))
    assert len(reminders(bot, channel)) == 1
    await advance_to(bot, clock, T0 + timedelta(minutes=90))
    assert len(reminders(bot, channel)) == 2


async def test_an_update_while_the_reminder_timer_fires_keeps_the_reminder_quiet(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    handler = bot.services.timers.handler
    assert handler is not None
    updated: list[str] = []

    async def updated_first(kind: TimerKind, payload: Mapping[str, Any]) -> None:
        if kind is TimerKind.STATUS_REMINDER and not updated:
            updated.append("yes")
            seen = len(bot.emulator.responses)
            reply = await bot.command("update Cache warmed", user=people.alice, channel=channel)
            assert reply.status == 200
            await bot.services.inflight.wait()
            assert bot.emulator.responses[seen:]
        await handler(kind, payload)

    bot.services.timers.handler = updated_first
    await advance_to(bot, clock, T0 + timedelta(minutes=30))
    # The update was given as the reminder came due: no reminder, the next 30 minutes on.
    assert reminders(bot, channel) == []
    assert await pending(bot, "status:") == {"status:1": T0 + timedelta(minutes=60)}


async def test_snooze_on_an_incident_that_is_gone_or_resolved_says_so(
    bot: BotHarness, people: People, clock: FakeClock
) -> None:
    channel = await declare(bot, people.carol)
    await advance_to(bot, clock, T0 + timedelta(minutes=30))
    [reminder] = reminders(bot, channel)
    button = dict(snooze_button(reminder), value="999")
    answer = await press(bot, pressed(bot, button, user=people.alice, channel=channel))
    assert answer == "That incident no longer exists."
    await run(bot, "resolve", user=people.alice, channel=channel)
    answer = await press(
        bot, pressed(bot, snooze_button(reminder), user=people.bob, channel=channel)
    )
    assert answer == "That incident is resolved; no more reminders."
    assert await pending(bot, "status:") == {}
