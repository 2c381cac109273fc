"""`/incident oncall [ROLE]`: inside an incident its playbook, outside the default playbook."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.core.clock import FakeClock
from bot.emulator import SlackEmulator
from tests.conversation import reply_to
from tests.oncall.world import OnCallWorld, oncall_world

DEFAULT = """
name: default
match: {default: true}
roles:
  commander: {required: true}
  ops: {oncall: {pagerduty_schedule: PABC123}}
  dba: {oncall: {opsgenie_schedule: dba-schedule}}
  lead: {oncall: {pagerduty_escalation_policy: PXYZ789}}
  comms: {}
"""

DATABASE = """
name: database
match: {services: [postgres]}
roles:
  ops: {oncall: {pagerduty_schedule: PDB0001}}
"""


@pytest.fixture
async def world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[OnCallWorld]:
    async with oncall_world(sqlite_url, emulator, clock) as opened:
        opened.rest.add_schedule("PABC123", layers=[["bob"], ["olive"]])
        opened.rest.add_schedule("PDB0001", layers=[["erin"]])
        opened.og_oncall.add_schedule("dba-schedule", layers=[[]])
        await opened.start_with(
            opened.playbook(DEFAULT, "default"), opened.playbook(DATABASE, "database")
        )
        yield opened


async def ask(world: OnCallWorld, text: str, *, channel: str = "CGENERAL") -> str:
    return await reply_to(world.harness, text, user=world.people["dana"], channel=channel)


async def test_outside_an_incident_the_default_playbook_is_read(world: OnCallWorld) -> None:
    people = world.people

    answer = await ask(world, "oncall")

    lines = answer.splitlines()
    assert lines[0] == "*On call now* (playbook `default`):"
    assert lines[1] == (
        f"• *ops* — PagerDuty schedule `PABC123`: <@{people['bob']}>, "
        "Olive (olive@example.com), not found in Slack"
    )
    assert lines[2] == "• *dba* — Opsgenie schedule `dba-schedule`: nobody is on call"
    assert lines[3] == (
        "• *lead* — PagerDuty escalation policy `PXYZ789` (first level) does not exist"
    )
    assert lines[4] == "Not from a schedule: commander, comms."


async def test_inside_an_incident_its_playbook_is_read_and_answers_are_cached(
    world: OnCallWorld,
) -> None:
    await world.declare(service="postgres")
    channel = await world.channel()

    first = await ask(world, "oncall ops", channel=channel)
    again = await ask(world, "INC-1 oncall")

    assert first == again
    assert first.splitlines() == [
        "*On call now* (INC-1, playbook `database`):",
        f"• *ops* — PagerDuty schedule `PDB0001`: <@{world.people['erin']}>",
    ]
    # The declaration and both questions within a minute: PagerDuty was asked once.
    asked = [r for r in world.rest.oncall_requests() if r.query["schedule_ids[]"] == "PDB0001"]
    assert len(asked) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oncall scribe", "`scribe` is not a role of playbook `default`; its roles:"),
        ("oncall comms", "The comms role of playbook `default` is not filled from an on-call"),
        ("INC-9 oncall", "There is no incident INC-9."),
    ],
)
async def test_what_cannot_be_answered_is_said(
    world: OnCallWorld, text: str, expected: str
) -> None:
    assert expected in await ask(world, text)


async def test_a_provider_that_is_down_is_said_not_raised(world: OnCallWorld) -> None:
    world.rest.fail_next(500, times=10)

    answer = await ask(world, "oncall ops")

    assert answer.splitlines()[1] == (
        "• *ops* — PagerDuty schedule `PABC123` could not be read: "
        "PagerDuty did not answer (HTTP 500)"
    )
