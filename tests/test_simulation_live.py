"""The simulator against the live bot: one playbook played both ways, the same events at the
same times; and a tier due at once is paged by the declaration itself, not by a timer.

Live means the real bot on the Slack emulator, FakePagerDuty and FakeOpsgenie, with the
controllable clock: the test jumps it to the next pending timer or the next thing a person
does, lets everything due run, and notes what happened at that moment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from bot import paging
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, Severity
from bot.core.playbooks import load_playbook
from bot.core.simulation import Ack, EventKind, simulate
from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId
from bot.usecases import Declaration
from tests.paging_fixtures import PD_DB_KEY, PagingWorld, page_ids_in, paging_world

COMPARED = """
name: ledger
match: {services: [ledger], min_severity: sev2}
roles:
  commander: {slack: ["@alice"], required: true, ack_timeout: 5m}
  ops:       {pagerduty: {routing_key_env: PD_DB_KEY}, ack_timeout: 2m}
  dba:       {slack: ["GROUP"]}
  comms:     {slack: ["carol@example.com"]}
escalation:
  - {after: 0s, page: [ops]}
  - {after: 10m, page: [commander]}
  - {after: 20m, page: [dba], opsgenie: {responders: [{type: team, name: dba}]}}
reminders: {status_update_every: {sev2: 10m}}
checklist: ["Check the ledger's replication"]
postmortem: {due_in: 2d}
"""

AT_ONCE = """
name: at-once
match: {services: [ledger]}
roles:
  commander: {slack: ["@alice"], required: true}
  ops:       {pagerduty: {routing_key_env: PD_DB_KEY}}
  comms:     {slack: ["carol@example.com"]}
escalation:
  - {after: 0s, page: [ops, comms]}
  - {after: 10m, page: [commander]}
"""


@pytest.fixture
async def world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[PagingWorld]:
    async with paging_world(sqlite_url, emulator, clock) as opened:
        yield opened


async def next_timer(world: PagingWorld) -> datetime | None:
    """When the next timer of the open incident is due (the postmortem's is not one)."""
    pending = await world.harness.services.timers.pending()
    due = [when for key, when in pending.items() if not key.startswith("postmortem:")]
    return min(due, default=None)


async def test_one_playbook_simulated_and_live_gives_the_same_events_at_the_same_times(
    world: PagingWorld,
) -> None:
    text = COMPARED.replace("GROUP", world.group)
    playbook = load_playbook(text, filename="ledger.yaml")
    duration, update_every = timedelta(minutes=40), timedelta(minutes=12)
    acks = [Ack("dba", timedelta(minutes=9))]
    simulated = simulate(
        playbook, severity=Severity.SEV2, duration=duration, acks=acks, update_every=update_every
    )

    # -- live ---------------------------------------------------------------------------------
    await world.start(playbooks=[playbook])
    start = world.clock.now()
    incident = await world.declare(service="ledger", severity=Severity.SEV2)
    assert incident.playbook == "ledger"
    channel = await world.channel()
    seen_calls = 0
    posts: list[tuple[timedelta, str]] = []

    def note_posts() -> None:
        nonlocal seen_calls
        for call in world.emu.calls[seen_calls:]:
            if call.method == "chat.postMessage" and call.args.get("channel") == channel:
                posts.append((world.clock.now() - start, str(call.args.get("text", ""))))
        seen_calls = len(world.emu.calls)

    note_posts()
    # What people do, as the simulator's --ack and --update-every say.
    people: list[tuple[timedelta, str]] = [(ack.after, "ack") for ack in acks]
    people += [(update_every * n, "update") for n in range(1, 4)]
    people.sort()
    end = start + duration
    while True:
        timer = await next_timer(world)
        person = people[0] if people else None
        if timer is not None and timer <= end and (person is None or timer <= start + person[0]):
            world.clock.set(timer)  # timers first, as in the simulation
            await world.settle()
        elif person is not None:
            people.pop(0)
            world.clock.set(start + person[0])
            await world.settle()
            note_posts()
            if person[1] == "ack":
                dan_pages = [p for p in await world.pages() if p.target == world.people["dan"]]
                assert page_ids_in(world.dms_to("dan")[-1]) == [dan_pages[0].id]
                await world.press(ActionId.ACKNOWLEDGE_PAGE, dan_pages[0].id or 0, user="dan")
            else:
                await world.command("update ledger writes are back", user="alice")
        else:
            break
        note_posts()
    world.clock.set(end)
    await world.settle()
    note_posts()
    await world.command("resolve replication caught up", user="alice")
    note_posts()

    # -- compared -----------------------------------------------------------------------------
    live_pages = {
        (page.created_at - start, page.role, page.provider, page.tier)
        for page in await world.pages()
    }
    sim_pages = {
        (e.at, e.role, e.via.value if e.via else None, e.tier)
        for e in simulated.events
        if e.kind is EventKind.PAGE
    }
    assert live_pages == sim_pages
    assert sim_pages == {
        (timedelta(0), "comms", "slack", 0),
        (timedelta(0), "ops", "pagerduty", 1),
        (timedelta(minutes=2), "commander", "slack", 2),  # ops' ack_timeout brought it forward
        (timedelta(minutes=7), "dba", "slack", 3),  # and the commander's brought tier 3
        (timedelta(minutes=7), None, "opsgenie", 3),
    }
    assert [p["routing_key"] for p in world.pd_events("trigger")] == [PD_DB_KEY]

    def sim_times(kind: EventKind) -> list[timedelta]:
        return [e.at for e in simulated.events if e.kind is kind]

    def live_times(prefix: str) -> list[timedelta]:
        return [at for at, text in posts if text.startswith(prefix)]

    assert live_times(":alarm_clock: Time for a status update") == sim_times(
        EventKind.STATUS_REMINDER
    )
    assert sim_times(EventKind.STATUS_REMINDER) == [timedelta(minutes=m) for m in (10, 22, 34)]
    assert live_times(":clipboard: Checklist for INC-1") == sim_times(EventKind.CHECKLIST_NUDGE)
    assert live_times(":clipboard: Checklist (ledger)") == sim_times(EventKind.CHECKLIST)
    acked = [entry.occurred_at - start for entry in await world.timeline(EntryKind.ACK)]
    assert acked == sim_times(EventKind.ACK) == [timedelta(minutes=9)]
    escalations = [
        (entry.occurred_at - start, entry.text)
        for entry in await world.timeline(EntryKind.ESCALATION)
    ]
    assert [at for at, _ in escalations] == sorted(
        {e.at for e in simulated.events if e.kind is EventKind.PAGE and e.tier}
    )
    assert escalations[0] == (timedelta(0), "Paged ops (tier 1)")  # not "nobody acknowledged"
    resolved = await world.incident()
    assert resolved.resolved_at is not None
    assert resolved.resolved_at - start == duration == sim_times(EventKind.RESOLVED)[0]
    pending = await world.harness.services.timers.pending()
    assert simulated.postmortem_due is not None
    assert pending == {f"postmortem:{incident.id}": start + simulated.postmortem_due}


async def test_a_tier_due_at_once_is_paged_by_the_declaration_without_a_timer(
    world: PagingWorld,
) -> None:
    playbook = load_playbook(AT_ONCE, filename="at-once.yaml")
    await world.start(playbooks=[playbook])
    services = world.harness.services
    await paging.declare_incident(
        services,
        actor=world.people["dana"],
        declaration=Declaration(title="Ledger is behind", severity=Severity.SEV2, service="ledger"),
    )
    # Only the outbox runs: no timer is ever run here.
    while True:
        await services.inflight.wait()
        if not await services.effects.run_due():
            break
    pending = await services.timers.pending()
    assert sorted(key for key in pending if key.startswith("escalate:")) == ["escalate:1:2"]

    (trigger,) = world.pd_events("trigger")
    assert trigger["dedup_key"] == "incident-bot/INC-1/ops"
    (dm,) = world.dms_to("carol")
    pages = await world.pages()
    assert {(p.role, p.provider, p.tier) for p in pages} == {
        ("ops", "pagerduty", 1),
        ("comms", "slack", 1),
    }
    assert all(p.created_at == world.started_at for p in pages)
    assert await world.texts(EntryKind.ESCALATION) == ["Paged ops, comms (tier 1)"]
    assert "Escalated" not in " ".join(world.channel_texts(await world.channel()))

    # The next tier still comes at its time, and says why.
    await world.advance_to(minutes=10)
    assert (await world.texts(EntryKind.ESCALATION))[1] == (
        "Escalated to tier 2 (commander): nobody acknowledged within 10 minutes"
    )
