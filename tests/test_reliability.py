"""Reliability: acks inside 3 s whatever Slack does, nothing lost, events once, concurrency.

Everything goes through real signed HTTP requests to the bot and real Web API calls to the
emulator; the side-effect runner's backoff is driven by the FakeClock.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from slack_sdk.http_retry.builtin_async_handlers import AsyncServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from sqlmodel import col, select

from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, EntrySource, Severity, Status
from bot.db.engine import make_engine
from bot.db.models import Incident, SideEffect, TimelineEntry
from bot.outbox import EffectKind
from bot.usecases import ts_to_datetime
from tests.conftest import BotHarness
from tests.slack_schema import assert_all_calls_valid

ACK_LIMIT = 1.0  # seconds; Slack allows 3, we want a wide margin


# -- helpers ------------------------------------------------------------------------------


async def incident(bot: BotHarness, number: int = 1) -> Incident:
    async with bot.services.sessions() as session:
        row = (
            (await session.execute(select(Incident).where(Incident.number == number)))
            .scalars()
            .first()
        )
    assert row is not None, f"INC-{number} was not recorded"
    return row


async def incidents(bot: BotHarness) -> list[Incident]:
    async with bot.services.sessions() as session:
        query = select(Incident).order_by(col(Incident.number))
        return list((await session.execute(query)).scalars().all())


async def entries(
    bot: BotHarness, incident_id: int | None = None, *, include_retracted: bool = True
) -> list[TimelineEntry]:
    async with bot.services.sessions() as session:
        query = select(TimelineEntry).order_by(col(TimelineEntry.id))
        if incident_id is not None:
            query = query.where(TimelineEntry.incident_id == incident_id)
        rows = list((await session.execute(query)).scalars().all())
    return [r for r in rows if include_retracted or r.retracted_at is None]


async def effects(bot: BotHarness, kind: EffectKind | None = None) -> list[SideEffect]:
    async with bot.services.sessions() as session:
        query = select(SideEffect).order_by(col(SideEffect.id))
        if kind is not None:
            query = query.where(SideEffect.kind == kind)
        return list((await session.execute(query)).scalars().all())


def ok_calls(bot: BotHarness, method: str) -> list[Any]:
    return [call for call in bot.emulator.calls_to(method) if call.ok]


def fast_server_error_retries(bot: BotHarness) -> None:
    """Keep slack_sdk's three 5xx retries but not its 0.5/1/2 s (+jitter) waits between them.

    The number of attempts is what these tests are about; the waits would only make them slow.
    """
    handlers = bot.services.slack.retry_handlers
    server = [h for h in handlers if isinstance(h, AsyncServerErrorRetryHandler)]
    assert server, "the Slack client should retry 5xx answers"
    for handler in server:
        handler.interval_calculator = FixedValueRetryIntervalCalculator(0.01)


async def declare_and_settle(
    bot: BotHarness, user: str, text: str = "declare sev2 Checkout is down"
) -> Incident:
    reply = await bot.command(text, user=user)
    assert reply.status == 200
    await bot.settle()
    row = await incident(bot, max(i.number for i in await incidents(bot)))
    assert row.channel_id is not None
    return row


async def recorded_before_slack(bot: BotHarness) -> None:
    """Wait for the work after each ack (database only), not for the Slack calls it owes."""
    await bot.services.inflight.wait(5)


_EVENT_TIMES = itertools.count(1)


def pin_event(
    *, user: str, channel: str, ts: str, item_user: str, reaction: str = "pushpin"
) -> dict[str, Any]:
    # Slack stamps each event with its own time; the bot orders a message's 📌 events by it.
    return {
        "type": "reaction_added",
        "user": user,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "reaction": reaction,
        "item_user": item_user,
        "event_ts": f"1700000000.{next(_EVENT_TIMES):06d}",
    }


def unpin_event(*, user: str, channel: str, ts: str, item_user: str) -> dict[str, Any]:
    event = pin_event(user=user, channel=channel, ts=ts, item_user=item_user)
    event["type"] = "reaction_removed"
    return event


def membership_event(kind: str, *, user: str, channel: str) -> dict[str, Any]:
    event = {
        "type": kind,
        "user": user,
        "channel": channel,
        "channel_type": "C",
        "team": "T0001",
        "event_ts": "1700000000.000200",
    }
    if kind == "member_joined_channel":
        event["inviter"] = user
    return event


def card_action(
    bot: BotHarness, *, action_id: str, value: str, ref: str, channel: str, user: str
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "alice", "name": "alice", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": "1700000000.000300",
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "111.222.valid",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": channel, "name": "inc"},
        "response_url": bot.emulator.response_url(channel=channel, user=user),
        "actions": [
            {
                "action_id": action_id,
                "block_id": f"incident-actions:{ref}",
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": value, "emoji": True},
                    "value": value,
                },
                "action_ts": "1700000000.000400",
            }
        ],
    }


async def timeline_text(bot: BotHarness, *, user: str, channel: str) -> str:
    """What `/incident timeline` shows in the channel (blocks flattened to text)."""
    before = len(bot.emulator.responses)
    reply = await bot.command("timeline", user=user, channel=channel)
    assert reply.status == 200
    await bot.settle()
    answers = bot.emulator.responses[before:]
    assert answers, "`/incident timeline` did not answer"
    return repr(answers[-1].args)


async def send_one_of_each(
    bot: BotHarness, inc: Incident, *, user: str, pinned_ts: str
) -> dict[str, Any]:
    """A declaration, a note, a status change, a card menu choice and a 📌, one after another."""
    channel = inc.channel_id or ""
    return {
        "declare": await bot.command("declare sev3 Search is slow", user=user),
        "note": await bot.command("note rolled back deploy 4812", user=user, channel=channel),
        "status": await bot.command("status identified", user=user, channel=channel),
        "card menu": await bot.interact(
            card_action(
                bot,
                action_id="incident-severity-select",
                value="sev1",
                ref=inc.ref,
                channel=channel,
                user=user,
            )
        ),
        "reaction": await bot.event(
            pin_event(user=user, channel=channel, ts=pinned_ts, item_user=user),
            event_id="Ev0SLOW1",
        ),
    }


# -- 1. the ack comes first, whatever Slack does ------------------------------------------


async def test_every_request_is_acked_at_once_while_slack_takes_five_seconds(
    bot: BotHarness,
) -> None:
    emu = bot.emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id
    assert channel is not None
    message_ts = emu.post_as_user(channel, bob, "replica lag is 40 s")

    emu.set_latency(5)
    try:
        replies = await send_one_of_each(bot, inc, user=alice, pinned_ts=message_ts)
        for what, reply in replies.items():
            assert reply.status == 200, what
            assert reply.elapsed < ACK_LIMIT, f"{what} took {reply.elapsed:.2f} s to ack"

        # Record first: everything is in the database while Slack is still answering.
        await recorded_before_slack(bot)
        first = await incident(bot, 1)
        assert (first.status, first.severity) == (Status.IDENTIFIED, Severity.SEV1)
        second = await incident(bot, 2)
        assert second.title == "Search is slow" and second.channel_id is None
        kinds = [e.kind for e in await entries(bot, first.id)]
        for kind in (EntryKind.NOTE, EntryKind.STATUS, EntryKind.SEVERITY):
            assert kind in kinds
        assert any(e.slack_ts == message_ts for e in await entries(bot, first.id))
    finally:
        emu.set_latency(0)  # also when an assertion fails, so that teardown stays quick

    await bot.settle()
    second = await incident(bot, 2)
    assert second.channel_id is not None and second.card_ts is not None
    pinned = [e for e in await entries(bot, first.id) if e.slack_ts == message_ts]
    assert [e.text for e in pinned] == ["replica lag is 40 s"]
    posted = [c.args["text"] for c in ok_calls(bot, "chat.postMessage")]
    assert any("rolled back deploy 4812" in text for text in posted)
    assert_all_calls_valid(emu.calls)


async def test_rate_limits_and_server_errors_delay_slack_calls_not_the_ack(
    bot: BotHarness,
) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    await bot.command("help", user=alice)  # the bot's identity (auth.test) is known already
    emu.fail_next("conversations.create", status=429, retry_after=1)
    emu.fail_next("chat.postMessage", status=500)

    reply = await bot.command("declare sev1 Payments failing", user=alice)
    assert reply.status == 200
    assert reply.elapsed < ACK_LIMIT

    await recorded_before_slack(bot)
    inc = await incident(bot, 1)
    assert inc.title == "Payments failing"
    assert [e.kind for e in await entries(bot, inc.id)] == [EntryKind.DECLARED]

    await bot.settle()  # slack_sdk honours Retry-After (1 s) and backs off after the 500
    inc = await incident(bot, 1)
    assert inc.channel_id is not None and inc.card_ts is not None
    creates = emu.calls_to("conversations.create")
    assert [c.status for c in creates] == [429, 200]
    assert [c.status for c in emu.calls_to("chat.postMessage")] == [500, 200]
    assert len(ok_calls(bot, "pins.add")) == 1
    assert len(ok_calls(bot, "conversations.setTopic")) == 1
    assert all(e.done_at is not None and not e.failed for e in await effects(bot))
    assert_all_calls_valid(emu.calls)


# -- 2. nothing is lost while Slack fails for a while -------------------------------------


async def test_a_long_slack_outage_loses_nothing_and_repeats_nothing(
    bot: BotHarness, clock: FakeClock
) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    fast_server_error_retries(bot)
    emu.fail_next("conversations.create", status=500, times=10)

    reply = await bot.command("declare sev1 Checkout is down", user=alice)
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()  # slack_sdk gives up after its own 3 retries: 4 calls, all 500

    inc = await incident(bot, 1)
    assert inc.channel_id is None and inc.card_ts is None
    assert [e.kind for e in await entries(bot, inc.id)] == [EntryKind.DECLARED]
    create = (await effects(bot, EffectKind.CREATE_CHANNEL))[0]
    assert create.done_at is None and not create.failed
    assert create.attempts == 1
    assert create.last_error is not None and "500" in create.last_error
    assert create.due_at > clock.now()
    waiting = await effects(bot)
    assert all(e.done_at is None for e in waiting)
    assert {e.kind for e in waiting} >= {EffectKind.SET_UP_CHANNEL, EffectKind.SET_TOPIC}
    assert len(emu.calls_to("conversations.create")) == 4
    assert emu.calls_to("chat.postMessage") == []

    # Nothing happens until the backoff has passed.
    await bot.settle()
    assert len(emu.calls_to("conversations.create")) == 4

    for _ in range(5):
        clock.advance(timedelta(minutes=1))
        await bot.settle()
        if (await incident(bot, 1)).card_ts is not None:
            break
    inc = await incident(bot, 1)
    assert inc.channel_id is not None and inc.card_ts is not None
    assert len(emu.calls_to("conversations.create")) == 11  # 10 failures, then one channel
    assert len(ok_calls(bot, "conversations.create")) == 1
    assert len(ok_calls(bot, "conversations.invite")) == 1
    assert len(ok_calls(bot, "chat.postMessage")) == 1
    assert len(ok_calls(bot, "pins.add")) == 1
    assert len(ok_calls(bot, "conversations.setTopic")) == 1
    assert [c.name for c in emu.state.channels.values() if c.name.startswith("inc-")] == [
        inc.channel_name
    ]
    assert emu.channel(inc.channel_id).topic.startswith("SEV1 · Investigating")
    assert [p.ts for p in emu.channel(inc.channel_id).pins] == [inc.card_ts]
    done = await effects(bot)
    assert all(e.done_at is not None and not e.failed for e in done)
    assert (await effects(bot, EffectKind.CREATE_CHANNEL))[0].attempts == 3
    assert_all_calls_valid(emu.calls)


async def test_a_channel_slack_made_without_the_answer_arriving_is_kept_not_made_twice(
    bot: BotHarness,
) -> None:
    """Slack made the channel but its answer was lost (a 503 after the work): the retry is
    told `name_taken`, finds the channel this bot made for the incident, and keeps it; a
    channel someone else made under the next name is not taken for it."""
    emu = bot.emulator
    alice = emu.add_user("alice")
    fast_server_error_retries(bot)
    emu.add_channel("inc-20261125-1-checkout-is-down-2", members=[alice])  # not the bot's
    emu.fail_next("conversations.create", status=503, answer_lost=True)
    inc = await declare_and_settle(bot, alice, "declare sev2 Checkout is down")

    mine = [c for c in emu.state.channels.values() if c.creator == emu.bot_user_id]
    assert [c.name for c in mine] == ["inc-20261125-1-checkout-is-down"]
    assert inc.channel_id == mine[0].id
    assert [c.error for c in emu.calls_to("conversations.create")] == ["fatal_error", "name_taken"]
    assert alice in mine[0].members and len(mine[0].pins) == 1
    assert all(e.done_at is not None and not e.failed for e in await effects(bot))
    assert_all_calls_valid(emu.calls)


async def test_a_final_slack_error_is_set_aside_and_later_effects_still_run(
    bot: BotHarness,
) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    emu.fail_next("pins.add", status=200, error="not_pinnable")

    inc = await declare_and_settle(bot, alice)
    assert inc.card_ts is not None  # the card was posted; only pinning it was refused
    set_up = (await effects(bot, EffectKind.SET_UP_CHANNEL))[0]
    assert set_up.failed and set_up.done_at is not None
    assert set_up.last_error is not None and "not_pinnable" in set_up.last_error
    assert len(emu.calls_to("pins.add")) == 1  # a refusal is not retried
    assert len(ok_calls(bot, "conversations.invite")) == 1  # the declarer is in all the same
    topic = (await effects(bot, EffectKind.SET_TOPIC))[0]
    assert topic.done_at is not None and not topic.failed
    assert len(ok_calls(bot, "conversations.setTopic")) == 1

    await bot.command("note still works", user=alice, channel=inc.channel_id or "")
    await bot.settle()
    assert any("still works" in c.args["text"] for c in ok_calls(bot, "chat.postMessage"))
    assert_all_calls_valid(emu.calls)


async def test_one_runner_pass_runs_what_follows_an_effect_set_aside(bot: BotHarness) -> None:
    """A refused call must not hold back the next effect of the same incident, even when it
    is the first thing the runner tries in a pass."""
    emu = bot.emulator
    alice = emu.add_user("alice")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    await bot.services.effects.stop()  # only this test drives the runner from here on
    emu.fail_next("chat.postMessage", status=200, error="msg_blocks_too_long")

    await bot.command("note first", user=alice, channel=channel)
    await bot.command("note second", user=alice, channel=channel)
    await recorded_before_slack(bot)
    posts = await effects(bot, EffectKind.POST)
    assert len(posts) == 2 and all(p.done_at is None for p in posts)

    await bot.services.effects.run_due()
    first, second = await effects(bot, EffectKind.POST)
    assert first.failed and first.done_at is not None
    assert second.done_at is not None and not second.failed
    assert [c.args["text"] for c in ok_calls(bot, "chat.postMessage")][-1].endswith(
        f"second — <@{alice}>"
    )


# -- 3. events: 📌 and people joining, each once ------------------------------------------


async def test_a_pinned_message_joins_the_timeline_at_its_own_time_once(bot: BotHarness) -> None:
    emu = bot.emulator
    alice, bob, carol = emu.add_user("alice"), emu.add_user("bob"), emu.add_user("carol")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    ts = emu.post_as_user(channel, bob, "Primary DB failed over to replica-2")
    event = pin_event(user=carol, channel=channel, ts=ts, item_user=bob)

    reply = await bot.event(event, event_id="Ev0PIN001")
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()
    pinned = [e for e in await entries(bot, inc.id) if e.kind == EntryKind.PINNED]
    assert len(pinned) == 1
    entry = pinned[0]
    assert entry.occurred_at == ts_to_datetime(ts)
    assert entry.text == "Primary DB failed over to replica-2"
    assert entry.author == bob
    assert entry.source == EntrySource.PINNED_MESSAGE
    assert entry.permalink is not None
    assert entry.permalink.startswith(f"https://emulated.slack.com/archives/{channel}/p")

    # Slack retries the same delivery: same event id, X-Slack-Retry-Num set.
    retry = await bot.event(event, event_id="Ev0PIN001", retry_num=1)
    assert retry.status == 200
    # Someone else pins the same message: a new event, still one entry.
    await bot.event(
        pin_event(user=alice, channel=channel, ts=ts, item_user=bob), event_id="Ev0PIN002"
    )
    await bot.settle()
    pinned = [e for e in await entries(bot, inc.id) if e.kind == EntryKind.PINNED]
    assert len(pinned) == 1
    assert len(ok_calls(bot, "conversations.history")) == 1  # captured once

    # An edit made after the capture does not change what was pinned.
    message = emu.channel(channel).find_message(ts)
    assert message is not None
    message.text = "Primary DB is fine, ignore"
    await bot.event(
        unpin_event(user=carol, channel=channel, ts=ts, item_user=bob), event_id="Ev0PIN003"
    )
    await bot.settle()  # events are handled concurrently; a person takes a moment anyway
    await bot.event(
        pin_event(user=carol, channel=channel, ts=ts, item_user=bob), event_id="Ev0PIN004"
    )
    await bot.settle()
    pinned = [e for e in await entries(bot, inc.id) if e.kind == EntryKind.PINNED]
    assert [(e.text, e.retracted_at) for e in pinned] == [
        ("Primary DB failed over to replica-2", None)
    ]
    shown = await timeline_text(bot, user=alice, channel=channel)
    assert "failed over to replica-2" in shown and "ignore" not in shown
    assert_all_calls_valid(emu.calls)


async def test_removing_the_pin_retracts_the_entry_and_pinning_again_restores_it(
    bot: BotHarness, clock: FakeClock
) -> None:
    emu = bot.emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    ts = emu.post_as_user(channel, bob, "Cache hit rate dropped to 12%")
    await bot.event(pin_event(user=alice, channel=channel, ts=ts, item_user=bob), event_id="Ev1")
    await bot.settle()
    assert "Cache hit rate dropped" in await timeline_text(bot, user=alice, channel=channel)

    clock.advance(timedelta(minutes=3))
    removed = unpin_event(user=alice, channel=channel, ts=ts, item_user=bob)
    reply = await bot.event(removed, event_id="Ev2")
    assert reply.status == 200
    await bot.settle()
    (entry,) = [e for e in await entries(bot, inc.id) if e.slack_ts == ts]
    assert entry.retracted_at == clock.now()
    assert entry.retracted_by == alice
    assert "Cache hit rate dropped" not in await timeline_text(bot, user=alice, channel=channel)

    # A retried removal, later, changes nothing.
    clock.advance(timedelta(minutes=1))
    await bot.event(removed, event_id="Ev2", retry_num=1)
    await bot.settle()
    (entry,) = [e for e in await entries(bot, inc.id) if e.slack_ts == ts]
    assert entry.retracted_at == clock.now() - timedelta(minutes=1)

    await bot.event(pin_event(user=bob, channel=channel, ts=ts, item_user=bob), event_id="Ev3")
    await bot.settle()
    (entry,) = [e for e in await entries(bot, inc.id) if e.slack_ts == ts]
    assert entry.retracted_at is None and entry.retracted_by is None
    assert entry.text == "Cache hit rate dropped to 12%"
    assert "Cache hit rate dropped" in await timeline_text(bot, user=alice, channel=channel)
    assert_all_calls_valid(emu.calls)


async def test_the_entry_stays_while_anyone_still_has_a_pin_on_the_message(
    bot: BotHarness, clock: FakeClock
) -> None:
    emu = bot.emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    ts = emu.post_as_user(channel, bob, "Rolled back to v41")
    for event_id, user in (("Ev1", alice), ("Ev2", bob)):
        await bot.event(
            pin_event(user=user, channel=channel, ts=ts, item_user=bob), event_id=event_id
        )
    await bot.settle()

    # Alice takes her pin away; Bob's is still there, so the entry stays.
    await bot.event(unpin_event(user=alice, channel=channel, ts=ts, item_user=bob), event_id="Ev3")
    await bot.settle()
    (entry,) = [e for e in await entries(bot, inc.id) if e.slack_ts == ts]
    assert entry.retracted_at is None and entry.pinners() == [bob]
    assert "Rolled back to v41" in await timeline_text(bot, user=alice, channel=channel)

    # The last pin goes: so does the entry.
    clock.advance(timedelta(minutes=1))
    await bot.event(unpin_event(user=bob, channel=channel, ts=ts, item_user=bob), event_id="Ev4")
    await bot.settle()
    (entry,) = [e for e in await entries(bot, inc.id) if e.slack_ts == ts]
    assert entry.retracted_at == clock.now() and entry.retracted_by == bob
    assert "Rolled back to v41" not in await timeline_text(bot, user=alice, channel=channel)
    assert_all_calls_valid(emu.calls)


async def test_a_pin_taken_away_at_once_is_applied_in_the_order_slack_sent_it(
    bot: BotHarness,
) -> None:
    """Each event is handled in its own task; per message they apply in Slack's event order."""
    emu = bot.emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    gone = [emu.post_as_user(channel, bob, f"gone {n}") for n in range(8)]
    kept = [emu.post_as_user(channel, bob, f"kept {n}") for n in range(8)]
    number = 0
    for ts in gone + kept:  # no settling in between: the work overlaps
        steps = [pin_event, unpin_event] + ([pin_event] if ts in kept else [])
        for make in steps:
            number += 1
            event = make(user=alice, channel=channel, ts=ts, item_user=bob)
            assert (await bot.event(event, event_id=f"Ev{number}")).status == 200
    await bot.settle()
    by_ts = {e.slack_ts: e for e in await entries(bot, inc.id) if e.slack_ts}
    # Taken away last: not on the timeline (never written, or written and retracted).
    assert all(ts not in by_ts or by_ts[ts].retracted_at is not None for ts in gone)
    assert all(by_ts[ts].retracted_at is None for ts in kept)


async def test_other_reactions_and_pins_elsewhere_are_ignored(bot: BotHarness) -> None:
    emu = bot.emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    general = emu.add_channel("general", members=[alice, bob])
    in_incident = emu.post_as_user(channel, bob, "looking at the dashboards")
    elsewhere = emu.post_as_user(general, bob, "lunch?")
    before = len(emu.calls)

    for event_id, event in {
        "EvEYES": pin_event(
            user=alice, channel=channel, ts=in_incident, item_user=bob, reaction="eyes"
        ),
        "EvELSEWHERE": pin_event(user=alice, channel=general, ts=elsewhere, item_user=bob),
        "EvUNPINELSEWHERE": unpin_event(user=alice, channel=general, ts=elsewhere, item_user=bob),
    }.items():
        reply = await bot.event(event, event_id=event_id)
        assert reply.status == 200
    await bot.settle()
    assert [e.kind for e in await entries(bot)] == [EntryKind.DECLARED]
    assert emu.calls[before:] == []


async def test_people_joining_and_leaving_are_system_entries_once_per_event(
    bot: BotHarness,
) -> None:
    emu = bot.emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    joined = membership_event("member_joined_channel", user=bob, channel=channel)
    left = membership_event("member_left_channel", user=bob, channel=channel)

    for event, event_id, retry in (
        (joined, "EvJOIN", None),
        (joined, "EvJOIN", 1),
        (joined, "EvJOIN", 2),
        (left, "EvLEFT", None),
        (left, "EvLEFT", 1),
    ):
        reply = await bot.event(event, event_id=event_id, retry_num=retry)
        assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()
    system = [e for e in await entries(bot, inc.id) if e.source == EntrySource.SYSTEM]
    assert [(e.kind, e.author) for e in system] == [
        (EntryKind.JOINED, bob),
        (EntryKind.LEFT, bob),
    ]
    assert f"<@{bob}> joined the channel" == system[0].text

    # Joining a channel that is not an incident's is no entry at all.
    general = emu.add_channel("general", members=[alice])
    await bot.event(
        membership_event("member_joined_channel", user=bob, channel=general), event_id="EvGEN"
    )
    await bot.settle()
    assert len([e for e in await entries(bot) if e.source == EntrySource.SYSTEM]) == 2


# -- 4. concurrency, on SQLite and PostgreSQL ---------------------------------------------


async def test_status_and_severity_changed_at_the_same_moment_both_hold(
    bot_any_db: BotHarness,
) -> None:
    bot = bot_any_db
    alice = bot.emulator.add_user("alice")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""

    status, severity = await asyncio.gather(
        bot.command("status identified bad config push", user=alice, channel=channel),
        bot.command("sev sev1", user=alice, channel=channel),
    )
    assert status.status == severity.status == 200
    await bot.settle()
    after = await incident(bot, 1)
    assert (after.status, after.severity) == (Status.IDENTIFIED, Severity.SEV1)
    assert after.version == inc.version + 2
    kinds = [e.kind for e in await entries(bot, inc.id)]
    assert kinds.count(EntryKind.STATUS) == 1
    assert kinds.count(EntryKind.SEVERITY) == 1
    # The card and topic end up showing both changes.
    assert bot.emulator.channel(channel).topic.startswith("SEV1 · Identified")
    assert_all_calls_valid(bot.emulator.calls)


async def test_twenty_notes_at_once_are_twenty_entries(bot_any_db: BotHarness) -> None:
    bot = bot_any_db
    alice = bot.emulator.add_user("alice")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""

    replies = await asyncio.gather(
        *(bot.command(f"note step {i}", user=alice, channel=channel) for i in range(20))
    )
    assert all(r.status == 200 for r in replies)
    await bot.settle()
    notes = [e.text for e in await entries(bot, inc.id) if e.kind == EntryKind.NOTE]
    assert sorted(notes) == sorted(f"step {i}" for i in range(20))
    posted = [c.args["text"] for c in ok_calls(bot, "chat.postMessage")]
    assert len([t for t in posted if "step " in t]) == 20
    assert_all_calls_valid(bot.emulator.calls)


async def test_ten_declarations_at_once_get_numbers_one_to_ten(bot_any_db: BotHarness) -> None:
    bot = bot_any_db
    users = [bot.emulator.add_user(f"oncall{i}") for i in range(10)]
    await bot.command("help", user=users[0])

    replies = await asyncio.gather(
        *(bot.command(f"declare Outage number {i}", user=u) for i, u in enumerate(users))
    )
    assert all(r.status == 200 for r in replies)
    await bot.settle()
    rows = await incidents(bot)
    assert [r.number for r in rows] == list(range(1, 11))
    assert sorted(r.title for r in rows) == sorted(f"Outage number {i}" for i in range(10))
    channels = {r.channel_id for r in rows}
    assert None not in channels and len(channels) == 10
    assert len(ok_calls(bot, "conversations.create")) == 10
    for row in rows:
        declared = [e for e in await entries(bot, row.id) if e.kind == EntryKind.DECLARED]
        assert len(declared) == 1
    assert_all_calls_valid(bot.emulator.calls)


@pytest.mark.parametrize("retry_num", [1, 2, 3])
async def test_every_slack_retry_of_a_pin_is_acked_and_ignored(
    bot: BotHarness, retry_num: int
) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    inc = await declare_and_settle(bot, alice)
    channel = inc.channel_id or ""
    ts = emu.post_as_user(channel, alice, "error rate back to baseline")
    event = pin_event(user=alice, channel=channel, ts=ts, item_user=alice)
    await bot.event(event, event_id="EvRETRY")
    await bot.settle()
    reply = await bot.event(event, event_id="EvRETRY", retry_num=retry_num)
    assert reply.status == 200
    await bot.settle()
    assert len([e for e in await entries(bot, inc.id) if e.slack_ts == ts]) == 1


async def test_the_first_request_is_acked_at_once_even_when_slack_is_slow_from_the_start(
    bot: BotHarness,
) -> None:
    """The bot's identity (auth.test) is not yet known: the ack still does not wait for Slack."""
    alice = bot.emulator.add_user("alice")
    bot.emulator.set_latency(2)
    reply = await bot.command("declare sev2 Slow from the start", user=alice)
    assert reply.status == 200
    assert reply.elapsed < ACK_LIMIT
    await bot.services.inflight.wait(10)  # the work after the ack: recording the declaration
    assert (await incident(bot)).title == "Slow from the start"
    bot.emulator.set_latency(0)
    await bot.settle()
    assert len(bot.emulator.calls_to("conversations.create")) == 1
    assert_all_calls_valid(bot.emulator.calls)


async def test_a_slow_incident_does_not_hold_up_the_others(bot: BotHarness) -> None:
    """Ordering is per incident: while Slack has not answered one incident's post, another
    incident's note still reaches its channel."""
    emu = bot.emulator
    alice = emu.add_user("alice")
    slow = await declare_and_settle(bot, alice, "declare sev2 Checkout is down")
    fast = await declare_and_settle(bot, alice, "declare sev2 Search is slow")
    posted = bot.services.effects.executors[EffectKind.POST]
    stuck, release = asyncio.Event(), asyncio.Event()

    async def slow_for_one(effect: SideEffect, payload: dict[str, Any]) -> None:
        if effect.incident_id == slow.id:
            stuck.set()
            await release.wait()  # Slack has not answered yet
        await posted(effect, payload)

    bot.services.effects.register({EffectKind.POST: slow_for_one})
    try:
        await bot.command("note waiting for Slack", user=alice, channel=slow.channel_id or "")
        await asyncio.wait_for(stuck.wait(), 10)
        await bot.command("note meanwhile", user=alice, channel=fast.channel_id or "")
        for _ in range(500):
            if any("meanwhile" in c.args["text"] for c in ok_calls(bot, "chat.postMessage")):
                break
            await asyncio.sleep(0.01)
        texts = [c.args["text"] for c in ok_calls(bot, "chat.postMessage")]
        assert any("meanwhile" in t for t in texts)  # not held up by the other incident
        assert not any("waiting for Slack" in t for t in texts)
    finally:
        release.set()
    await bot.settle()
    assert any("waiting for Slack" in c.args["text"] for c in ok_calls(bot, "chat.postMessage"))


async def test_notes_sent_one_after_another_are_recorded_in_that_order(bot: BotHarness) -> None:
    """Each note is sent once the previous one was acked, while its work is still running (the
    first is named from outside the private incident's channel: its membership check is slow):
    the timeline and the channel's posts keep the order they were sent in."""
    alice = bot.emulator.add_user("alice")
    general = bot.emulator.add_channel("general", members=[alice])
    inc = await declare_and_settle(bot, alice, "declare sev2 Card data exposed")
    async with bot.services.sessions() as session, session.begin():
        row = await session.get(Incident, inc.id)
        assert row is not None
        row.private = True  # as a private playbook makes it: membership is checked outside
    bot.emulator.set_latency(0.3, "conversations.members")
    sent = [f"step {i:02d} done" for i in range(5)]
    reply = await bot.command(f"INC-{inc.number} note {sent[0]}", user=alice, channel=general)
    assert reply.status == 200
    for text in sent[1:]:
        reply = await bot.command(f"note {text}", user=alice, channel=inc.channel_id)
        assert reply.status == 200
    await bot.settle()
    notes = [e.text for e in await entries(bot, inc.id) if e.kind == EntryKind.NOTE]
    assert notes == sent
    posted = [c.args["text"] for c in ok_calls(bot, "chat.postMessage")]
    assert [t for t in (next((s for s in sent if s in p), None) for p in posted) if t] == sent


async def wait_for(check: Any, what: str, seconds: float = 10.0) -> None:
    for _ in range(int(seconds * 100)):
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still waiting for {what}")


async def declared_while_slack_makes_the_channel(bot: BotHarness, user: str) -> None:
    """Declare; return once the declaration is committed, while conversations.create (0.3 s
    here) is under way."""
    bot.emulator.set_latency(0.3, method="conversations.create")
    assert (await bot.command("declare sev2 Checkout is down", user=user)).status == 200

    async def declared() -> bool:
        return bool(await incidents(bot))

    await wait_for(declared, "the declaration to be committed")


async def test_the_channel_is_set_up_while_its_id_is_still_being_written(
    bot_any_db: BotHarness,
) -> None:
    """The declarer's invitation and the pinned card go out as soon as Slack made the channel,
    not after its id is written back: here another replica holds the incident's row (SQLite:
    the write lock) meanwhile. The incident's other lanes, which read the channel from the
    database, wait for that write; then everything is done once."""
    bot = bot_any_db
    emu = bot.emulator
    alice = emu.add_user("alice")
    await declared_while_slack_makes_the_channel(bot, alice)
    other = make_engine(bot.services.settings.DATABASE_URL)
    try:
        async with other.connect() as replica:
            await replica.begin()
            await replica.execute(  # the row written, not committed: the write-back waits
                sa.update(Incident).values(version=col(Incident.version))
            )
            await wait_for(lambda: ok_calls(bot, "pins.add"), "the card to be pinned")
            assert [c.args["users"] for c in ok_calls(bot, "conversations.invite")] == [alice]
            assert (await incident(bot)).channel_id is None  # still being written
            assert emu.calls_to("conversations.setTopic") == []  # the other lanes wait
            await replica.rollback()
    finally:
        await other.dispose()
    await bot.settle()
    row = await incident(bot)
    (create,) = ok_calls(bot, "conversations.create")
    assert row.channel_id == create.response["channel"]["id"]
    assert row.card_ts is not None
    assert len(ok_calls(bot, "pins.add")) == 1
    assert len(ok_calls(bot, "conversations.setTopic")) == 1
    cards = [
        c for c in ok_calls(bot, "chat.postMessage") if c.args.get("channel") == row.channel_id
    ]
    assert len(cards) == 1
    assert all(e.done_at is not None and not e.failed for e in await effects(bot))
    assert_all_calls_valid(emu.calls)


async def test_a_runner_stopping_while_the_channel_is_made_still_sets_it_up_once(
    bot: BotHarness,
) -> None:
    """The set-up begun with the channel is finished before the runner stops; started again,
    the runner does the rest and posts no second card."""
    emu = bot.emulator
    alice = emu.add_user("alice")
    await declared_while_slack_makes_the_channel(bot, alice)
    await bot.services.effects.stop()  # while conversations.create is under way
    assert len(ok_calls(bot, "pins.add")) == 1
    assert [e.done_at is not None for e in await effects(bot, EffectKind.SET_UP_CHANNEL)] == [True]
    bot.services.effects.start()
    await bot.settle()
    row = await incident(bot)
    cards = [
        c for c in ok_calls(bot, "chat.postMessage") if c.args.get("channel") == row.channel_id
    ]
    assert len(cards) == 1 and len(ok_calls(bot, "pins.add")) == 1
    assert all(e.done_at is not None and not e.failed for e in await effects(bot))
