"""At declaration, the people on call fill their roles: after the pages, never instead of them.

The bot runs for real against the Slack emulator, PagerDuty (Events and REST) and Opsgenie fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, Severity
from bot.emulator import SlackEmulator
from tests.oncall.conftest import GENIE_KEY, PD_TOKEN
from tests.oncall.world import OnCallWorld, oncall_world
from tests.slack_schema import assert_all_calls_valid

OPS_SCHEDULE = """
name: ops
match: {default: true}
roles:
  commander: {required: true}
  ops:
    pagerduty: {routing_key_env: PD_DB_KEY}
    oncall: {pagerduty_schedule: PABC123}
  dba: {slack: ["@alice"], oncall: {opsgenie_schedule: dba-schedule}}
escalation:
  - {after: 15m, page: [commander]}
"""


@pytest.fixture
async def world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[OnCallWorld]:
    async with oncall_world(sqlite_url, emulator, clock) as opened:
        yield opened


def on_card(world: OnCallWorld, user: str) -> bool:
    cards = [c for c in world.emu.calls_to("chat.update") if c.ok]
    return bool(cards) and f"<@{world.people[user]}>" in str(cards[-1].args.get("blocks"))


async def test_the_people_on_call_fill_the_role_after_the_page_has_left(
    world: OnCallWorld,
) -> None:
    # Two layers (bob; carol) and an override putting erin in for carol.
    world.rest.add_schedule("PABC123", layers=[["bob"], ["carol"]], overrides={"carol": "erin"})
    world.og_oncall.add_schedule("dba-schedule", layers=[["dan@example.com"]])
    await world.start_with(world.playbook(OPS_SCHEDULE))

    incident = await world.declare(service=None, severity=Severity.SEV1)

    people = world.people
    roles = await world.roles()
    assert roles["ops"] == [people["bob"], people["erin"]]
    assert roles["dba"] == [people["dan"], people["alice"]]  # the schedule's, then the named
    assert roles["commander"] == [people["dana"]]
    # The PagerDuty page left before anyone asked who is on call.
    assert world.order[0] == "pd-events /v2/enqueue"
    assert "pd-rest /oncalls" in world.order
    members = set(world.emu.channel(incident.channel_id or "").members)
    assert {people[n] for n in ("bob", "erin", "dan", "alice")} <= members
    # Paged by DM too, since their roles were paged at once; never carol (overridden).
    for name in ("bob", "erin", "dan", "alice"):
        assert len(world.dms_to(name)) == 1, name
    assert world.dms_to("carol") == []
    texts = await world.texts(EntryKind.ROLE)
    assert f"<@{people['bob']}> is now ops (on call in PagerDuty schedule PABC123)" in texts
    assert f"<@{people['dan']}> is now dba (on call in Opsgenie schedule dba-schedule)" in texts
    assert on_card(world, "bob") and on_card(world, "erin")
    channel_texts = world.channel_texts(incident.channel_id or "")
    assert not [t for t in channel_texts if ":warning:" in t]
    assert world.metric("oncall_lookups_total", provider="pagerduty", outcome="found") == 1
    assert world.metric("oncall_lookups_total", provider="opsgenie", outcome="found") == 1
    assert_all_calls_valid(world.emu.calls)


async def test_a_tiered_role_is_filled_at_once_and_paged_by_its_tier(world: OnCallWorld) -> None:
    world.rest.add_schedule("PABC123", layers=[["bob"]])
    playbook = world.playbook(
        """
name: tiered
match: {default: true}
roles:
  ops: {pagerduty: {routing_key_env: PD_DB_KEY}, oncall: {pagerduty_schedule: PABC123}}
escalation:
  - {after: 5m, page: [ops]}
"""
    )
    await world.start_with(playbook)
    await world.declare(service=None)

    assert (await world.roles())["ops"] == [world.people["bob"]]
    assert world.dms_to("bob") == [] and world.pd_events("trigger") == []

    await world.advance_to(minutes=5)

    assert len(world.pd_events("trigger")) == 1
    assert len(world.dms_to("bob")) == 1


async def test_the_commander_comes_from_an_escalation_policy(world: OnCallWorld) -> None:
    world.rest.add_schedule("PFIRST1", layers=[["carol"]], policies=("PXYZ789",))
    world.rest.policies["PXYZ789"].append(["alice"])  # the second level is not on call now
    playbook = world.playbook(
        """
name: led
match: {default: true}
roles:
  commander: {oncall: {pagerduty_escalation_policy: PXYZ789}}
"""
    )
    await world.start_with(playbook)
    await world.declare(service=None)

    assert (await world.roles())["commander"] == [world.people["carol"]]
    assert on_card(world, "carol")


@pytest.mark.parametrize(
    ("setup", "line"),
    [
        ("unknown", "PagerDuty schedule `PABC123` does not exist"),
        ("nobody", "Nobody is on call for the ops role in PagerDuty schedule `PABC123`"),
        ("down", "PagerDuty schedule `PABC123` could not be read (PagerDuty did not answer"),
        ("refused", "could not be read (PagerDuty refused the API key (HTTP 401))"),
        ("not-in-slack", "not found in Slack by email: Olive (olive@example.com)"),
    ],
)
async def test_when_nobody_can_be_found_the_channel_is_told_and_the_page_still_goes(
    world: OnCallWorld, setup: str, line: str
) -> None:
    if setup == "nobody":
        world.rest.add_schedule("PABC123", layers=[[]])
    elif setup == "down":
        world.rest.add_schedule("PABC123", layers=[["bob"]])
        world.rest.fail_next(503, times=10)
    elif setup == "refused":
        world.rest.token = "another-token"
    elif setup == "not-in-slack":
        world.rest.add_schedule("PABC123", layers=[["olive"]])
    await world.start_with(world.playbook(OPS_SCHEDULE.replace("dba:", "other:")))

    incident = await world.declare(service=None)

    assert len(world.pd_events("trigger")) == 1  # the page itself went
    assert "ops" not in await world.roles()
    warnings = [t for t in world.channel_texts(incident.channel_id or "") if ":warning:" in t]
    ops = [t for t in warnings if "ops" in t]
    assert len(ops) == 1 and line in ops[0], warnings
    assert any(line in text for text in await world.texts(EntryKind.ROLE))


async def test_answers_are_cached_for_a_minute(world: OnCallWorld) -> None:
    world.rest.add_schedule("PABC123", layers=[["bob"]])
    playbook = world.playbook(
        """
name: cached
match: {default: true}
roles:
  ops: {oncall: {pagerduty_schedule: PABC123}}
"""
    )
    await world.start_with(playbook)
    await world.declare(service=None, title="First")
    await world.declare(service=None, title="Second")
    assert len(world.rest.oncall_requests()) == 1

    await world.advance_to(minutes=1.5)
    await world.declare(service=None, title="Third")

    assert len(world.rest.oncall_requests()) == 2
    assert world.metric("oncall_lookups_total", provider="pagerduty", outcome="found") == 2


async def test_staffing_twice_assigns_invites_and_pages_nobody_twice(world: OnCallWorld) -> None:
    world.rest.add_schedule("PABC123", layers=[["bob"]])
    await world.start_with(world.playbook(OPS_SCHEDULE.replace("dba:", "other:")))
    incident = await world.declare(service=None)
    services = world.harness.services
    from bot.oncall.staffing import OnCallStaffing

    again = OnCallStaffing(services).executors()
    (executor,) = again.values()
    await executor(None, {"incident_id": incident.id})  # type: ignore[arg-type]
    await world.settle()

    assert (await world.roles())["ops"] == [world.people["bob"]]
    assert len(world.dms_to("bob")) == 1
    texts = await world.texts(EntryKind.ROLE)
    assert sum("is now ops" in t for t in texts) == 1


async def test_a_tier_paged_before_the_people_were_found_still_reaches_them(
    world: OnCallWorld,
) -> None:
    world.rest.add_schedule("PABC123", layers=[["bob"]])
    playbook = world.playbook(
        """
name: at-once
match: {default: true}
roles:
  ops: {oncall: {pagerduty_schedule: PABC123}}
escalation:
  - {after: 0s, page: [ops]}
"""
    )
    await world.start_with(playbook)
    world.rest.token = "rotated"  # the first lookup is refused: the tier pages an empty role
    incident = await world.declare(service=None)
    assert "ops" not in await world.roles()
    assert EntryKind.ESCALATION in {e.kind for e in await world.timeline()}

    # The people are found after the tier was paged (here: staffing runs again).
    world.rest.token = PD_TOKEN
    from bot.oncall.staffing import OnCallStaffing

    (executor,) = OnCallStaffing(world.harness.services).executors().values()
    await executor(None, {"incident_id": incident.id})  # type: ignore[arg-type]
    await world.settle()

    assert (await world.roles())["ops"] == [world.people["bob"]]
    assert len(world.dms_to("bob")) == 1


@pytest.fixture
async def world_any_db(
    db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[OnCallWorld]:
    async with oncall_world(db_url, emulator, clock) as opened:
        yield opened


async def test_on_sqlite_and_postgresql_with_the_roles_own_opsgenie_key(
    world_any_db: OnCallWorld,
) -> None:
    world = world_any_db
    world.og_oncall.add_schedule("dba-schedule", layers=[["dan@example.com", "erin@example.com"]])
    playbook = world.playbook(
        """
name: dba
match: {default: true}
roles:
  dba:
    opsgenie: {api_key_env: OG_DBA_KEY, responders: [{type: team, name: dba}]}
    oncall: {opsgenie_schedule: dba-schedule}
"""
    )
    await world.start_with(playbook, OG_DBA_KEY=GENIE_KEY, OPSGENIE_API_KEY="not-this-one")

    await world.declare(service=None)

    assert (await world.roles())["dba"] == [world.people["dan"], world.people["erin"]]
    assert len(world.og_alerts()) == 1  # the Opsgenie page, with the same key
    assert len(world.dms_to("dan")) == 1 and len(world.dms_to("erin")) == 1


async def test_the_channel_is_told_once_even_when_staffing_runs_again(world: OnCallWorld) -> None:
    await world.start_with(world.playbook(OPS_SCHEDULE.replace("dba:", "other:")))
    incident = await world.declare(service=None)  # PABC123 does not exist
    from bot.oncall.staffing import OnCallStaffing

    (executor,) = OnCallStaffing(world.harness.services).executors().values()
    await executor(None, {"incident_id": incident.id})  # type: ignore[arg-type]
    await world.settle()

    warnings = [t for t in world.channel_texts(incident.channel_id or "") if "PABC123" in t]
    assert len(warnings) == 1
