"""Paging: people found and paged at declaration, escalation tiers with a controllable clock,
acknowledgement from Slack and from PagerDuty, pager failures, paging on demand, resolution.

The bot runs for real (HTTP server, side-effect runner, APScheduler job store) against the Slack
emulator, FakePagerDuty and FakeOpsgenie; the clock only moves when a test moves it, and
`settle()` runs whatever fell due.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot import paging
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, PageState, Severity
from bot.core.playbooks import load_playbook
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from bot.slack import directory
from bot.slack.ids import ActionId
from bot.usecases import Declaration
from tests.conftest import make_settings, start_bot, stop_bot
from tests.paging_fixtures import (
    DB_TITLE,
    GENIE_KEY,
    PD_DB_KEY,
    PD_PAY_KEY,
    PD_WEBHOOK_SECRET,
    PRIVATE_PLAYBOOK,
    PagingWorld,
    declare_form,
    decoded,
    page_button,
    page_ids_in,
    paging_world,
    pd_acknowledged,
    pd_signature,
)
from tests.scrape import scrape
from tests.slack_schema import assert_all_calls_valid

PD_TITLE = f"INC-1 (SEV2): {DB_TITLE} — page for ops"  # the summary we sent, as PD titles it


@pytest.fixture
async def world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[PagingWorld]:
    async with paging_world(sqlite_url, emulator, clock) as opened:
        yield opened


@pytest.fixture
async def world_any_db(
    db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[PagingWorld]:
    """The same world on SQLite and on PostgreSQL, for what concurrency could break."""
    async with paging_world(db_url, emulator, clock) as opened:
        yield opened


async def escalation_timers(world: PagingWorld) -> dict[str, int]:
    """Pending escalation timers as minutes after the declaration."""
    assert world.started_at is not None
    pending = await world.harness.services.timers.pending()
    return {
        key: int((when - world.started_at).total_seconds() // 60)
        for key, when in pending.items()
        if key.startswith("escalate:")
    }


async def page_of(world: PagingWorld, *, provider: str, role: str | None) -> int:
    pages = [p for p in await world.pages() if p.provider == provider and p.role == role]
    assert len(pages) == 1, pages
    assert pages[0].id is not None
    return pages[0].id


# -- 1. declaration: people found, roles, invitations, DM pages -------------------------------


async def test_declaring_from_the_modal_finds_assigns_invites_and_pages_the_people(
    world: PagingWorld,
) -> None:
    bot = await world.start()
    emu, people = world.emu, world.people

    opened = await bot.command("declare", user=people["dana"])
    assert opened.status == 200
    await world.settle()
    view = [c for c in emu.calls_to("views.open") if c.ok][-1].response["view"]
    submitted = await bot.interact(
        {
            "type": "view_submission",
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": people["dana"], "username": "dana", "name": "dana", "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "verification_token",
            "trigger_id": "222.333.valid",
            "view": {
                **view,
                "state": {
                    "values": declare_form(title=DB_TITLE, severity="sev2", service="postgres")
                },
            },
            "response_urls": [],
            "is_enterprise_install": False,
        }
    )
    assert submitted.status == 200 and submitted.text in ("", "null")
    await world.settle()

    incident = await world.incident()
    assert incident.playbook == "database" and incident.service == "postgres"
    declared_at = incident.declared_at

    # Handles, user groups and emails were resolved through the Web API.
    assert emu.calls_to("users.list")
    assert [c.args["usergroup"] for c in emu.calls_to("usergroups.users.list")] == [world.group]
    emails = {c.args["email"] for c in emu.calls_to("users.lookupByEmail")}
    assert emails == {"carol@example.com", "ghost@example.com"}

    # Roles: the commander is the first person found; the comms lead by email.
    roles = await world.roles()
    assert roles["commander"] == [people["alice"]]
    assert roles["comms"] == [people["carol"]]
    assert "scribe" not in roles and "ops" not in roles

    # Everyone behind a role (the whole user group too) and the declarer are in the channel.
    members = set(emu.channel(incident.channel_id or "").members)
    assert {people[n] for n in ("alice", "dan", "erin", "carol", "dana")} <= members

    # comms is named by no escalation tier: paged at once by DM, with both buttons.
    (dm,) = world.dms_to("carol")
    (comms_page,) = [p for p in await world.pages() if p.role == "comms"]
    assert comms_page.provider == "slack" and comms_page.target == people["carol"]
    assert comms_page.state is PageState.TRIGGERED and comms_page.external_ref
    buttons = [
        element
        for block in decoded(dm.args["blocks"])
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        (ActionId.ACKNOWLEDGE_PAGE.value, str(comms_page.id)),
        (ActionId.ESCALATE_PAGE.value, str(comms_page.id)),
    ]
    assert "INC-1" in dm.args["text"] and DB_TITLE in dm.args["text"]
    # The commander and the group are paged by tier 2, not now; the declarer never is.
    for name in ("alice", "dan", "erin", "dana"):
        assert world.dms_to(name) == []
    assert world.pd.received == [] and world.og.received == []

    # The timeline says who got which role and who was paged, at the declaration's time.
    role_entries = await world.timeline(EntryKind.ROLE)
    assert {e.text for e in role_entries} >= {
        f"<@{people['alice']}> is now commander",
        f"<@{people['carol']}> is now comms",
    }
    (paged,) = await world.timeline(EntryKind.PAGE)
    assert paged.text == f"Paged comms (<@{people['carol']}>)"
    assert all(e.occurred_at == declared_at for e in [*role_entries, paged])

    # A role with nobody behind it is said in the channel and on the timeline.
    nobody = "Nobody could be found for the scribe role (`@ghost`, `ghost@example.com`)"
    assert nobody in [e.text for e in role_entries]
    assert f":warning: {nobody}." in world.channel_texts(incident.channel_id or "")
    assert_all_calls_valid(emu.calls)


async def test_a_role_whose_user_group_is_unknown_is_reported_not_skipped(
    world: PagingWorld,
) -> None:
    playbook = load_playbook(
        """
name: lonely
match: {default: true}
roles:
  commander: {slack: ["S0NOSUCHGROUP"], required: true}
""",
        filename="lonely.yaml",
    )
    await world.start(playbooks=[playbook])
    incident = await world.declare(service=None)

    text = "Nobody could be found for the commander role (`S0NOSUCHGROUP`)"
    assert text in await world.texts(EntryKind.ROLE)
    assert f":warning: {text}." in world.channel_texts(incident.channel_id or "")
    # The declarer stays commander rather than nobody.
    assert (await world.roles())["commander"] == [world.people["dana"]]
    assert_all_calls_valid(world.emu.calls)


# -- 2. declaration order ---------------------------------------------------------------------


def first_index(world: PagingWorld, method: str) -> int:
    return next(i for i, c in enumerate(world.emu.calls) if c.method == method)


async def test_the_dm_page_leaves_before_the_topic_and_the_bookmarks(world: PagingWorld) -> None:
    await world.start()
    await world.declare()

    dm = world.dms_to("carol")[0]
    dm_index = next(i for i, c in enumerate(world.emu.calls) if c is dm)
    assert dm_index < first_index(world, "conversations.setTopic")
    assert dm_index < first_index(world, "bookmarks.add")
    channel = await world.channel()
    # The channel is made ready alongside the pages (card and checklist may come first),
    # and the playbook's bookmarks are in the channel and among the card's links.
    (bookmark,) = world.emu.calls_to("bookmarks.add")
    assert bookmark.args["link"] == "https://grafana.example.com/d/db"
    card = next(
        c
        for c in world.emu.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and c.args.get("blocks")
    )
    assert "https://grafana.example.com/d/db" in str(card.args["blocks"])


async def test_an_untiered_pagerduty_role_is_paged_at_once_before_anything_cosmetic(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare(service="payments", severity=Severity.SEV1, title="Card payments fail")

    (trigger,) = world.pd_events("trigger")
    assert trigger["routing_key"] == PD_PAY_KEY
    assert trigger["dedup_key"] == "incident-bot/INC-1/ops"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == "INC-1 (SEV1): Card payments fail — page for ops"
    # When PagerDuty got the page, Slack had seen neither the topic nor the bookmark.
    before = world.emu.calls[: world.pd.slack_calls_before[0]]
    # The channel first (the page carries its link); the card may go out alongside the page.
    methods = [c.method for c in before]
    assert methods[0] == "conversations.create"
    assert not {"conversations.setTopic", "bookmarks.add"} & set(methods)
    assert first_index(world, "conversations.setTopic") >= world.pd.slack_calls_before[0]
    assert "Paged ops (PagerDuty)" in await world.texts(EntryKind.PAGE)
    (page,) = [p for p in await world.pages() if p.provider == "pagerduty"]
    assert page.tier == 0 and page.external_ref == "incident-bot/INC-1/ops"


async def test_a_declaration_makes_no_call_that_changes_nothing(world: PagingWorld) -> None:
    """The playbook's commander is the declarer: once the people are found, the card and the
    topic already say so, and neither is sent again; a real change is."""
    quiet = "name: quiet\nmatch: {services: [quiet]}\nroles:\n  commander: {slack: ['@dana']}\n"
    await world.start(playbooks=[load_playbook(quiet, filename="quiet.yaml")])
    await world.declare(service="quiet", title="Nothing to update")
    assert await world.roles() == {"commander": [world.people["dana"]]}
    assert world.emu.calls_to("chat.update") == []
    assert len(world.emu.calls_to("conversations.setTopic")) == 1
    assert len(world.emu.calls_to("pins.add")) == 1

    await world.command("sev sev1", user="dana")
    [update] = world.emu.calls_to("chat.update")
    assert "SEV1" in str(update.args["blocks"])
    assert len(world.emu.calls_to("conversations.setTopic")) == 2
    assert_all_calls_valid(world.emu.calls)


# -- 3. the escalation chain ------------------------------------------------------------------


@pytest.mark.parametrize(("ack_timeout", "tier2_at"), [("5m", 10), ("2m", 7)])
async def test_unacknowledged_pages_escalate_tier_by_tier(
    world: PagingWorld, ack_timeout: str, tier2_at: int
) -> None:
    await world.start(playbooks=[world.database_playbook(ack_timeout=ack_timeout)])
    await world.declare()
    people = world.people
    assert await escalation_timers(world) == {"escalate:1:1": 5, "escalate:1:2": 10}

    await world.advance_to(minutes=4)
    assert world.pd.received == []
    assert await world.timeline(EntryKind.ESCALATION) == []

    # +5m: tier 1 pages ops through PagerDuty, one alert per incident and role.
    await world.advance_to(minutes=5)
    (trigger,) = world.pd_events("trigger")
    assert trigger["routing_key"] == PD_DB_KEY
    assert trigger["dedup_key"] == "incident-bot/INC-1/ops"
    assert trigger["payload"]["severity"] == "error"  # SEV2
    assert trigger["payload"]["summary"] == PD_TITLE
    assert trigger["payload"]["source"] == "incident-bot"
    (escalation,) = await world.timeline(EntryKind.ESCALATION)
    assert escalation.text == "Escalated to tier 1 (ops): nobody acknowledged within 5 minutes"
    assert escalation.occurred_at == world.at(minutes=5)
    pd_entry = [e for e in await world.timeline(EntryKind.PAGE) if "PagerDuty" in e.text]
    assert [(e.text, e.occurred_at) for e in pd_entry] == [
        ("Paged ops (PagerDuty)", world.at(minutes=5))
    ]
    # ops' ack_timeout brings tier 2 forward (never later than its own `after`).
    assert await escalation_timers(world) == {"escalate:1:2": tier2_at}

    await world.advance_to(minutes=tier2_at - 1)
    assert world.dms_to("alice") == [] and world.og.received == []

    # Tier 2: the commander by DM, and the tier's Opsgenie responders.
    await world.advance_to(minutes=tier2_at)
    (dm,) = world.dms_to("alice")
    (commander_page,) = [p for p in await world.pages() if p.target == people["alice"]]
    assert page_ids_in(dm) == [commander_page.id] and commander_page.tier == 2
    (alert,) = world.og_alerts()
    assert alert["responders"] == [{"type": "team", "name": "dba"}]
    assert alert["priority"] == "P2"
    assert alert["alias"] == "incident-bot/INC-1/tier-2"
    assert world.og.received[0].headers["Authorization"] == f"GenieKey {GENIE_KEY}"
    texts = await world.texts(EntryKind.ESCALATION)
    assert texts[1] == (
        "Escalated to tier 2 (commander, Opsgenie responders): nobody acknowledged "
        f"within {tier2_at} minutes"
    )
    assert {(e.text, e.occurred_at) for e in await world.timeline(EntryKind.PAGE)} >= {
        (f"Paged commander (<@{people['alice']}>)", world.at(minutes=tier2_at)),
        ("Paged the Opsgenie responders of escalation tier 2", world.at(minutes=tier2_at)),
    }
    channel = await world.channel()
    assert ":rotating_light: Escalated to tier 2: commander, Opsgenie responders." in (
        world.channel_texts(channel)
    )

    # There is no tier 3: an hour later nothing more was paged.
    pages = len(await world.pages())
    await world.advance_to(minutes=tier2_at + 60)
    assert len(await world.pages()) == pages and len(world.pd.received) == 1
    assert await escalation_timers(world) == {}
    assert_all_calls_valid(world.emu.calls)


async def test_a_tier_due_before_its_people_were_found_pages_them_once_they_are(
    world: PagingWorld,
) -> None:
    """The directory fails until after tier 2 falls due (or the process that was finding the
    people died): the tier's people are paged the moment they are found, never skipped."""
    await world.start(playbooks=[world.database_playbook(ack_timeout="5m")])
    # At the declaration, +5m and +10m (a 200 with an error: no retry inside the client).
    world.emu.fail_next("users.list", status=200, error="internal_error", times=3)
    await paging.declare_incident(
        world.harness.services,
        actor=world.people["dana"],
        declaration=Declaration(title=DB_TITLE, severity=Severity.SEV2, service="postgres"),
    )
    await world.settle()
    await world.advance_to(minutes=5)
    await world.advance_to(minutes=10)
    assert world.dms_to("alice") == []  # the commander is not known yet
    assert ":rotating_light: Escalated to tier 2: commander, Opsgenie responders." in (
        world.channel_texts(await world.channel())
    )

    await world.advance_to(minutes=11)  # the directory answers: found, then paged
    (dm,) = world.dms_to("alice")
    (page,) = [p for p in await world.pages() if p.target == world.people["alice"]]
    assert page.tier == 2 and page_ids_in(dm) == [page.id]
    assert f"Paged commander (<@{world.people['alice']}>)" in await world.texts(EntryKind.PAGE)
    assert len(world.pd_events("trigger")) == 1 and len(world.og_alerts()) == 1
    await world.advance_to(minutes=30)
    assert len(world.dms_to("alice")) == 1
    assert_all_calls_valid(world.emu.calls)


# -- 4. acknowledging from Slack --------------------------------------------------------------


async def test_the_acknowledge_button_stops_escalation_and_tells_pagerduty(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare()
    await world.advance_to(minutes=5)  # ops paged through PagerDuty
    comms_page = await page_of(world, provider="slack", role="comms")

    await world.advance_to(minutes=7)
    await world.press(ActionId.ACKNOWLEDGE_PAGE, comms_page, user="carol")

    carol = world.people["carol"]
    (ack,) = await world.timeline(EntryKind.ACK)
    assert ack.text == f"<@{carol}> acknowledged the page for comms (after 7 minutes)"
    assert ack.occurred_at == world.at(minutes=7) and ack.author == carol
    (page,) = [p for p in await world.pages() if p.id == comms_page]
    assert page.state is PageState.ACKNOWLEDGED and page.acknowledged_by == carol
    assert world.responses_text()[-1] == "Thanks — you acknowledged INC-1; escalation stopped."
    said = (
        f":white_check_mark: <@{carol}> acknowledged the page for comms after 7 minutes; "
        "escalation stopped."
    )
    assert said in world.channel_texts(await world.channel())

    # PagerDuty hears about it, for the incident's alert.
    (acknowledge,) = world.pd_events("acknowledge")
    assert acknowledge == {
        "routing_key": PD_DB_KEY,
        "event_action": "acknowledge",
        "dedup_key": "incident-bot/INC-1/ops",
    }
    assert world.pd.alerts == {"incident-bot/INC-1/ops": "acknowledge"}
    # The DM loses its buttons: the page reads as acknowledged.
    dm_updates = [c for c in world.emu.calls_to("chat.update") if str(c.args["channel"])[0] == "D"]
    assert dm_updates, "the page DM was not updated"
    assert "page-acknowledge" not in str(dm_updates[-1].args.get("blocks"))

    # No escalation is left: past every tier, nothing more is paged.
    assert await escalation_timers(world) == {}
    pages = len(await world.pages())
    await world.advance_to(minutes=90)
    assert len(await world.pages()) == pages
    assert world.dms_to("alice") == [] and world.og.received == []
    assert len(await world.timeline(EntryKind.ESCALATION)) == 1

    # A second press says so clearly and changes nothing.
    await world.press(ActionId.ACKNOWLEDGE_PAGE, comms_page, user="carol")
    assert world.responses_text()[-1] == f"Already acknowledged by <@{carol}>."
    assert len(await world.timeline(EntryKind.ACK)) == 1
    assert len(world.pd_events("acknowledge")) == 1
    metrics = await scrape(world.harness)
    assert metrics.value("pages_acknowledged_total", provider="slack") == 1
    assert metrics.value("time_to_acknowledge_seconds_count") == 1
    assert metrics.value("pages_total", outcome="sent", provider="pagerduty") == 1
    assert metrics.value("incidents_declared_total", source="command") == 1
    assert_all_calls_valid(world.emu.calls)


async def test_acknowledging_before_the_first_tier_means_no_tier_is_ever_paged(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare()
    comms_page = await page_of(world, provider="slack", role="comms")
    await world.advance_to(minutes=1)
    await world.press(ActionId.ACKNOWLEDGE_PAGE, comms_page, user="carol")
    assert (await world.texts(EntryKind.ACK))[0].endswith("(after 1 minute)")

    await world.advance_to(minutes=30)
    assert world.pd.received == [] and world.og.received == []
    assert await world.timeline(EntryKind.ESCALATION) == []


async def test_a_button_naming_a_page_that_does_not_exist_gets_a_clear_answer(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare()
    await world.press(ActionId.ACKNOWLEDGE_PAGE, 999, user="carol")
    assert world.responses_text()[-1] == "That page no longer exists."
    await world.press(ActionId.ESCALATE_PAGE, 999, user="carol")
    assert world.responses_text()[-1] == "That page no longer exists."
    assert await world.timeline(EntryKind.ACK) == []


# -- 5. acknowledging in PagerDuty ------------------------------------------------------------


async def test_a_signed_pagerduty_acknowledgement_stops_escalation(world: PagingWorld) -> None:
    await world.start()
    await world.declare()
    await world.advance_to(minutes=5)
    ops_page = await page_of(world, provider="pagerduty", role="ops")

    await world.advance_to(minutes=6)
    status, answer = await world.pagerduty_webhook(pd_acknowledged(PD_TITLE))
    assert (status, answer) == (200, {"acknowledged": "INC-1"})
    await world.settle()

    (ack,) = await world.timeline(EntryKind.ACK)
    assert ack.text == "Olive Ops (PagerDuty) acknowledged the page for ops (after 6 minutes)"
    assert ack.occurred_at == world.at(minutes=6)
    (page,) = [p for p in await world.pages() if p.id == ops_page]
    assert page.state is PageState.ACKNOWLEDGED
    assert await escalation_timers(world) == {}
    await world.advance_to(minutes=60)
    assert world.dms_to("alice") == [] and world.og.received == []
    metrics = await scrape(world.harness)
    assert metrics.value("pages_acknowledged_total", provider="pagerduty") == 1
    # From the first page (at the declaration) to the acknowledgement at +6 minutes.
    assert metrics.value("time_to_acknowledge_seconds_sum") == 360
    assert metrics.value("time_to_acknowledge_seconds_bucket", le="600.0") == 1
    assert metrics.value("time_to_acknowledge_seconds_bucket", le="300.0") == 0


async def test_a_pagerduty_incident_from_another_source_is_not_ours_whatever_its_title(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare()
    await world.advance_to(minutes=5)
    foreign = pd_acknowledged(PD_TITLE)
    foreign["event"]["data"]["incident_key"] = "datadog/monitor/4242"
    status, answer = await world.pagerduty_webhook(foreign)
    assert (status, answer) == (200, {"ignored": "an incident that did not come from this bot"})
    await world.settle()
    assert await world.timeline(EntryKind.ACK) == []

    # Without an incident_key, the INC-n our summary starts the title with names it.
    keyless = pd_acknowledged(PD_TITLE)
    del keyless["event"]["data"]["incident_key"]
    assert await world.pagerduty_webhook(keyless) == (200, {"acknowledged": "INC-1"})


async def test_pagerduty_webhooks_with_a_bad_signature_or_body_change_nothing(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare()
    await world.advance_to(minutes=5)
    payload = pd_acknowledged(PD_TITLE)
    body = json.dumps(payload).encode()

    forged = await world.pagerduty_webhook(payload, secret="not-the-secret")
    assert forged[0] == 401
    assert "X-PagerDuty-Signature" in forged[1]["error"]
    missing = await world.pagerduty_webhook(payload, secret=None)
    assert missing[0] == 401
    # A signature of other bytes (the body was tampered with on the way) is no signature.
    tampered = await world.pagerduty_webhook(
        payload, signature=pd_signature(PD_WEBHOOK_SECRET, body + b" ")
    )
    assert tampered[0] == 401
    assert (await world.pagerduty_webhook(payload, signature="v1="))[0] == 401

    malformed = await world.pagerduty_webhook(None, raw=b"{not json")
    assert malformed[0] == 400
    assert (await world.pagerduty_webhook([1, 2]))[0] == 400
    not_object = {"event": {"event_type": "incident.acknowledged", "data": "INC-1"}}
    assert (await world.pagerduty_webhook(not_object))[0] == 400
    assert (await world.pagerduty_webhook({"no": "event"}))[0] == 400
    assert (await world.pagerduty_webhook({"event": {"data": {}}}))[0] == 400

    other = await world.pagerduty_webhook(pd_acknowledged(PD_TITLE, event_type="incident.resolved"))
    assert other == (200, {"ignored": "incident.resolved"})
    unknown = await world.pagerduty_webhook(pd_acknowledged("INC-99 (SEV1): elsewhere"))
    assert unknown[0] == 200 and "ignored" in unknown[1]
    foreign = await world.pagerduty_webhook(pd_acknowledged("Disk full on db-7"))
    assert foreign[0] == 200 and "ignored" in foreign[1]
    await world.settle()

    assert await world.timeline(EntryKind.ACK) == []
    assert all(p.state is not PageState.ACKNOWLEDGED for p in await world.pages())
    # Escalation carries on: tier 2 still comes at +10m.
    await world.advance_to(minutes=10)
    assert len(world.dms_to("alice")) == 1 and len(world.og_alerts()) == 1
    metrics = await scrape(world.harness)
    counted = {
        outcome: metrics.value("webhook_requests_total", endpoint="pagerduty", outcome=outcome)
        for outcome in ("unauthorized", "bad_request", "ok")
    }
    assert counted == {"unauthorized": 4, "bad_request": 5, "ok": 3}


async def test_a_rotated_secret_is_accepted_among_several_signatures(world: PagingWorld) -> None:
    await world.start()
    await world.declare()
    body = json.dumps(pd_acknowledged(PD_TITLE)).encode()
    header = f"v1={'0' * 64}, {pd_signature(PD_WEBHOOK_SECRET, body)}"
    status, _ = await world.pagerduty_webhook(None, raw=body, signature=header)
    assert status == 200
    await world.settle()
    assert len(await world.timeline(EntryKind.ACK)) == 1


async def test_without_a_configured_secret_every_pagerduty_webhook_is_refused(
    world: PagingWorld,
) -> None:
    await world.start(webhook_secret=None)
    await world.declare()
    status, _ = await world.pagerduty_webhook(pd_acknowledged(PD_TITLE), secret="anything")
    assert status == 401
    assert await world.timeline(EntryKind.ACK) == []


async def test_a_blank_secret_is_no_secret(world: PagingWorld) -> None:
    await world.start(webhook_secret="  ")
    await world.declare()
    # Anyone can compute an HMAC with an empty key: that must not acknowledge anything.
    for key in ("", "  "):
        status, _ = await world.pagerduty_webhook(pd_acknowledged(PD_TITLE), secret=key)
        assert status == 401
    assert await world.timeline(EntryKind.ACK) == []


async def test_a_retried_pagerduty_delivery_acknowledges_once(world: PagingWorld) -> None:
    await world.start()
    await world.declare()
    await world.advance_to(minutes=5)
    payload = pd_acknowledged(PD_TITLE)

    answers = [await world.pagerduty_webhook(payload) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert answers[0][1] == {"acknowledged": "INC-1"}
    assert all("ignored" in answer for _, answer in answers[1:])
    await world.settle()
    assert len(await world.timeline(EntryKind.ACK)) == 1
    assert len(world.pd_events("acknowledge")) == 1


async def test_concurrent_pagerduty_deliveries_acknowledge_once(
    world_any_db: PagingWorld,
) -> None:
    world = world_any_db
    await world.start()
    await world.declare()
    await world.advance_to(minutes=5)
    payload = pd_acknowledged(PD_TITLE)

    answers = await asyncio.gather(*(world.pagerduty_webhook(payload) for _ in range(3)))
    assert [status for status, _ in answers] == [200, 200, 200]
    await world.settle()
    assert len(await world.timeline(EntryKind.ACK)) == 1
    assert len([p for p in await world.pages() if p.state is PageState.ACKNOWLEDGED]) == 1


async def test_acknowledge_pressed_twice_at_once_acknowledges_once(
    world_any_db: PagingWorld,
) -> None:
    world = world_any_db
    await world.start()
    await world.declare()
    await world.advance_to(minutes=5)
    comms_page = await page_of(world, provider="slack", role="comms")
    payload = page_button(world, ActionId.ACKNOWLEDGE_PAGE, comms_page, user="carol")

    replies = await asyncio.gather(*(world.harness.interact(payload) for _ in range(4)))
    assert all(reply.status == 200 for reply in replies)
    await world.settle()
    assert len(await world.timeline(EntryKind.ACK)) == 1
    assert len(world.pd_events("acknowledge")) == 1
    texts = world.responses_text()
    assert texts.count("Thanks — you acknowledged INC-1; escalation stopped.") == 1
    assert texts.count(f"Already acknowledged by <@{world.people['carol']}>.") == 3


# -- 6. the Escalate button -------------------------------------------------------------------


async def test_the_escalate_button_pages_the_next_tier_at_once(world: PagingWorld) -> None:
    await world.start()
    await world.declare()
    comms_page = await page_of(world, provider="slack", role="comms")
    carol = world.people["carol"]

    await world.advance_to(minutes=1)
    await world.press(ActionId.ESCALATE_PAGE, comms_page, user="carol")

    (trigger,) = world.pd_events("trigger")
    assert trigger["dedup_key"] == "incident-bot/INC-1/ops"
    (escalation,) = await world.timeline(EntryKind.ESCALATION)
    assert escalation.text == f"Escalated to tier 1 (ops): by <@{carol}>"
    assert escalation.author == carol and escalation.occurred_at == world.at(minutes=1)
    assert world.responses_text()[-1] == "Escalated to tier 1."

    # Tier 1's own timer finds it paged already; ops' ack_timeout brings tier 2 to +6m.
    await world.advance_to(minutes=5)
    assert len(world.pd.received) == 1
    assert await escalation_timers(world) == {"escalate:1:2": 6}
    await world.advance_to(minutes=6)
    assert len(world.dms_to("alice")) == 1
    assert len(await world.timeline(EntryKind.ESCALATION)) == 2

    # Past the last tier the button says there is nowhere further to go.
    await world.press(ActionId.ESCALATE_PAGE, comms_page, user="carol")
    assert world.responses_text()[-1] == (
        "There is no further tier to escalate to, or the page was acknowledged."
    )
    assert_all_calls_valid(world.emu.calls)


async def test_escalations_at_the_same_moment_never_page_a_tier_twice(
    world_any_db: PagingWorld,
) -> None:
    world = world_any_db
    await world.start()
    await world.declare()
    comms_page = await page_of(world, provider="slack", role="comms")
    payload = page_button(world, ActionId.ESCALATE_PAGE, comms_page, user="carol")

    # Three presses and the tier-1 timer, all at once (each later press may go one tier on).
    world.clock.advance(timedelta(minutes=5))
    presses = asyncio.gather(*(world.harness.interact(payload) for _ in range(3)))
    replies, _ = await asyncio.gather(presses, world.harness.settle())
    assert all(reply.status == 200 for reply in replies)
    await world.settle()
    paged = [(p.provider, p.target, p.tier) for p in await world.pages()]
    assert len(paged) == len(set(paged)), paged  # nobody paged twice for the same tier
    texts = await world.texts(EntryKind.ESCALATION)
    assert len(texts) == len({t.split(" (")[0] for t in texts}) <= 2, texts
    assert len(world.pd_events("trigger")) == 1


# -- 7. a pager that fails --------------------------------------------------------------------


async def test_pagerduty_failing_after_every_retry_falls_back_to_slack_and_says_so(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare()
    world.pd.fail_next(500, times=4)  # every attempt of the retry policy

    await world.advance_to(minutes=5)
    assert len(world.pd.received) == 4
    (failed,) = [p for p in await world.pages() if p.provider == "pagerduty"]
    assert failed.state is PageState.FAILED
    assert failed.error is not None and "gave up after 4 attempts" in failed.error

    # ops has nobody in Slack: the commander is paged by DM instead, for the ops role.
    alice = world.people["alice"]
    (dm,) = world.dms_to("alice")
    (fallback,) = [p for p in await world.pages() if p.provider == "slack" and p.tier == 1]
    assert fallback.target == alice and fallback.role == "ops"
    assert page_ids_in(dm) == [fallback.id]
    said = [t for t in world.channel_texts(await world.channel()) if "failed" in t]
    assert len(said) == 1
    assert said[0].startswith(":warning: Paging ops through PagerDuty failed (")
    assert said[0].endswith(f"; paged <@{alice}> by Slack DM instead.")
    assert "gave up after 4 attempts" in said[0]
    assert said[0].removeprefix(":warning: ") in await world.texts(EntryKind.PAGE)

    # The fallback DM can be acknowledged like any page, and PagerDuty is not told again.
    await world.press(ActionId.ACKNOWLEDGE_PAGE, fallback.id or 0, user="alice")
    assert len(await world.timeline(EntryKind.ACK)) == 1
    assert world.pd_events() == []
    assert_all_calls_valid(world.emu.calls)


async def test_a_refused_routing_key_is_not_retried_and_falls_back(world: PagingWorld) -> None:
    await world.start(environ={"PD_DB_KEY": "too-short"})
    await world.declare()
    await world.advance_to(minutes=5)

    assert len(world.pd.received) == 1 and world.pd.received[0].status == 400
    (failed,) = [p for p in await world.pages() if p.provider == "pagerduty"]
    assert failed.state is PageState.FAILED and "HTTP 400" in (failed.error or "")
    assert len(world.dms_to("alice")) == 1
    said = [t for t in world.channel_texts(await world.channel()) if "failed" in t]
    assert len(said) == 1 and "routing_key" in said[0]


async def test_a_missing_routing_key_variable_is_named_in_the_fallback(world: PagingWorld) -> None:
    await world.start(environ={})
    await world.declare()
    await world.advance_to(minutes=5)

    assert world.pd.received == []
    alice = world.people["alice"]
    text = (
        "Paging ops through PagerDuty failed (PD_DB_KEY is not set in the environment); "
        f"paged <@{alice}> by Slack DM instead."
    )
    assert f":warning: {text}" in world.channel_texts(await world.channel())
    assert text in await world.texts(EntryKind.PAGE)
    assert len(world.dms_to("alice")) == 1


async def test_an_untiered_pager_failing_at_declaration_falls_back_to_the_commander(
    world: PagingWorld,
) -> None:
    await world.start()
    world.pd.fail_next(503, times=4)
    await world.declare(service="payments", title="Card payments fail")

    failed = [p for p in await world.pages() if p.provider == "pagerduty"]
    assert [p.state for p in failed] == [PageState.FAILED]
    said = [t for t in world.channel_texts(await world.channel()) if "failed" in t]
    assert len(said) == 1 and "by Slack DM instead" in said[0]
    # The roles are not staffed yet (the declarer is still commander): the playbook's
    # commander gets the fallback DM, not the person who is declaring.
    (fallback,) = [p for p in await world.pages() if p.provider == "slack" and p.role == "ops"]
    assert fallback.target == world.people["alice"]
    assert said[0].endswith(f"; paged <@{world.people['alice']}> by Slack DM instead.")
    assert world.dms_to("dana") == []
    assert_all_calls_valid(world.emu.calls)


# -- 8. paging on demand ----------------------------------------------------------------------


async def test_page_a_role_a_person_or_a_user_group_on_demand(world: PagingWorld) -> None:
    await world.start()
    await world.declare()
    people = world.people
    channel = await world.channel()

    await world.command("page ops", user="alice")
    (trigger,) = world.pd_events("trigger")
    assert trigger["dedup_key"] == "incident-bot/INC-1/ops"
    assert world.responses_text()[-1] == "Paging ops for INC-1 now."

    await world.command("page @bob the replica is lagging too", user="alice")
    (dm,) = world.dms_to("bob")
    assert "the replica is lagging too" in json.dumps(decoded(dm.args["blocks"]))
    assert people["bob"] in world.emu.channel(channel).members
    assert f"Paged <@{people['bob']}>: the replica is lagging too" in await world.texts(
        EntryKind.PAGE
    )

    await world.command(f"page <@{people['bob']}> urgent", user="alice")
    assert len(world.dms_to("bob")) == 2

    await world.command(f"page <!subteam^{world.group}|@dba-oncall> all hands", user="alice")
    assert len(world.dms_to("dan")) == 1 and len(world.dms_to("erin")) == 1
    paged = {(p.target, p.message) for p in await world.pages() if p.provider == "slack"}
    assert {(people["dan"], "all hands"), (people["erin"], "all hands")} <= paged

    # A role with people (comms) is paged by DM.
    await world.command("page comms", user="alice")
    assert len(world.dms_to("carol")) == 2

    # Paging on demand moves no escalation: tier 1 still comes at +5m, once.
    await world.advance_to(minutes=5)
    assert len(world.pd_events("trigger")) == 2
    assert_all_calls_valid(world.emu.calls)


async def test_someone_who_joined_after_the_directory_was_read_can_be_paged_by_handle(
    world: PagingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.start()
    await world.declare()
    listed = len(world.emu.calls_to("users.list"))

    # A miss right after the directory was read does not read it again.
    await world.command("page @frank", user="alice")
    assert "There is no Slack user @frank" in world.responses_text()[-1]
    assert len(world.emu.calls_to("users.list")) == listed

    world.people["frank"] = world.emu.add_user("frank")
    monkeypatch.setattr(directory, "MISS_REFRESH_SECONDS", 0.0)  # as if 30 s had passed
    await world.command("page @frank the replica is yours", user="alice")
    assert len(world.dms_to("frank")) == 1
    assert len(world.emu.calls_to("users.list")) == listed + 1
    # Handles already known are answered from the cache.
    await world.command("page @bob", user="alice")
    assert len(world.emu.calls_to("users.list")) == listed + 1


async def test_paging_what_does_not_exist_gets_a_clear_ephemeral_error(world: PagingWorld) -> None:
    await world.start()
    await world.declare()
    channel = await world.channel()
    pages = len(await world.pages())

    await world.command("page dba", user="alice")
    answer = world.emu.responses[-1].args
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("`dba` is not a role of INC-1: page one of ")
    assert "ops" in answer["text"] and "comms" in answer["text"]

    await world.command("page scribe", user="alice")  # a role with nobody behind it
    assert "Nobody is behind `scribe`" in world.responses_text()[-1]

    await world.command("page @ghost", user="alice")
    assert "There is no Slack user @ghost" in world.responses_text()[-1]

    refused = await world.harness.command("page", user=world.people["alice"], channel=channel)
    assert "`page` needs a role or a person" in refused.text

    assert len(await world.pages()) == pages
    assert all(r.args.get("response_type") == "ephemeral" for r in world.emu.responses)


# -- 9. resolution ----------------------------------------------------------------------------


async def test_resolving_closes_every_alert_and_clears_the_incidents_timers(
    world: PagingWorld,
) -> None:
    await world.start()
    await world.declare()
    await world.advance_to(minutes=10)  # PagerDuty at +5m, Opsgenie and the commander at +10m
    assert world.pd.alerts == {"incident-bot/INC-1/ops": "trigger"}
    assert world.og.alerts["incident-bot/INC-1/tier-2"]["status"] == "open"
    incident = await world.incident()
    pending = await world.harness.services.timers.pending()
    assert f"status:{incident.id}" in pending

    await world.command("resolve the failover finished", user="alice")

    assert world.pd.alerts == {"incident-bot/INC-1/ops": "resolve"}
    (resolve,) = world.pd_events("resolve")
    assert resolve["routing_key"] == PD_DB_KEY
    assert world.og.actions == [("close", "incident-bot/INC-1/tier-2")]
    assert world.og.alerts["incident-bot/INC-1/tier-2"]["status"] == "closed"

    resolved = await world.incident()
    assert resolved.resolved_at == world.at(minutes=10)
    pending = await world.harness.services.timers.pending()
    assert pending == {f"postmortem:{incident.id}": world.at(minutes=10) + timedelta(days=5)}

    # Nothing fires for the incident any more, however long we wait (but the postmortem nudge).
    pages = len(await world.pages())
    await world.advance_to(minutes=600)
    assert len(await world.pages()) == pages
    assert_all_calls_valid(world.emu.calls)


async def test_resolving_before_any_tier_cancels_the_escalation(world: PagingWorld) -> None:
    await world.start()
    await world.declare()
    await world.advance_to(minutes=2)
    await world.command("resolve false alarm", user="alice")
    assert await escalation_timers(world) == {}
    await world.advance_to(minutes=30)
    assert world.pd.received == [] and world.og.received == []
    assert await world.timeline(EntryKind.ESCALATION) == []


# -- 10. private incidents --------------------------------------------------------------------


async def test_a_private_playbook_makes_a_private_channel_that_is_never_announced(
    world: PagingWorld,
) -> None:
    private = load_playbook(PRIVATE_PLAYBOOK, filename="security.yaml")
    await world.start(playbooks=[world.database_playbook(), private], announce=True)
    incident = await world.declare(
        service="auth", severity=Severity.SEV1, title="Leaked session tokens"
    )
    assert incident.private and incident.playbook == "security"
    (create,) = world.emu.calls_to("conversations.create")
    assert create.args["is_private"] in (True, "1", "true")
    assert world.emu.channel(incident.channel_id or "").is_private

    await world.command("update rotating every session key", user="alice")
    await world.command("resolve keys rotated", user="alice")
    assert world.announcements is not None
    assert world.channel_texts(world.announcements) == []
    assert all(
        c.args.get("channel") != world.announcements
        for c in world.emu.calls
        if c.method.startswith("chat.")
    )
    assert_all_calls_valid(world.emu.calls)


async def test_a_public_sev1_incident_is_announced_for_comparison(world: PagingWorld) -> None:
    await world.start(announce=True)
    await world.declare(severity=Severity.SEV1)
    assert world.announcements is not None
    assert len(world.channel_texts(world.announcements)) == 1


async def test_a_role_the_playbook_defines_can_be_given_by_command(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> None:
    playbook = load_playbook(
        "match: {default: true}\nroles:\n  dba: {slack: ['@erin']}\n", filename="default.yaml"
    )
    alice, frank = emulator.add_user("alice"), emulator.add_user("frank")
    emulator.add_user("erin")
    settings = make_settings(database_url=sqlite_url, api_url=emulator.url)
    bot, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=[playbook]
    )
    try:
        await bot.command("declare sev2 Replication lag", user=alice)
        await bot.settle()
        async with bot.services.sessions() as session:
            incident = await IncidentRepo(session).by_number(1)
        assert incident is not None and incident.channel_id is not None
        await bot.command(f"role dba <@{frank}|frank>", user=alice, channel=incident.channel_id)
        await bot.settle()
        assert emulator.responses[-1].args["text"] == f"<@{frank}> is now dba of INC-1."
        await bot.command(f"role wizard <@{frank}|frank>", user=alice, channel=incident.channel_id)
        await bot.settle()
        refused = str(emulator.responses[-1].args["text"])
        assert refused == (
            "`wizard` is not a role here: use one of commander, comms, dba, deputy, lead, "
            "liaison, ops, scribe (`/incident role ROLE @user`)."
        )
    finally:
        await stop_bot(bot, runner)
