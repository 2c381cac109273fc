"""Follow-ups end to end: `/incident measure|task|tasks` and the task buttons.

Every command goes through the real app over signed HTTP against the Slack emulator; the
buttons are pressed with the block_actions payloads Slack sends. Assertions are on what the
person saw (response_url), on the FollowUp rows, and on the postmortem draft's last two
sections, where an owner shows as a name and a due date as `YYYY-MM-DD`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot import postmortems, usecases
from bot.core.clock import FakeClock
from bot.core.enums import FollowUpKind
from bot.db.models import FollowUp, Incident
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId
from tests.conftest import BotHarness
from tests.conversation import refused_in_ack
from tests.conversation import reply_to as run
from tests.slack_schema import assert_all_calls_valid
from tests.test_blocks import assert_valid_blocks

MEASURES = "### Corrective and Preventative Measures:"
TASKS = "### Specific tasks:"


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


# -- helpers ------------------------------------------------------------------------------


def clear(text: str) -> None:
    """One sentence a person can act on, no internals."""
    assert "\n" not in text, text
    assert text.endswith("."), text
    assert "Traceback" not in text and "Error" not in text and "None" not in text, text


async def declare(bot: BotHarness, user: str) -> str:
    # The declaration is answered twice: at once, and with the channel's link.
    await run(bot, "declare sev2 Checkout latency spike", user=user, answers=2)
    found = await incident(bot, 1)
    assert found.channel_id is not None
    return found.channel_id


async def incident(bot: BotHarness, number: int) -> Incident:
    async with bot.services.sessions() as session:
        found = await IncidentRepo(session).by_number(number)
    assert found is not None
    return found


async def follow_ups(bot: BotHarness) -> list[FollowUp]:
    async with bot.services.sessions() as session:
        query = select(FollowUp).order_by(col(FollowUp.id))
        return list((await session.execute(query)).scalars().all())


async def follow_up_rows(bot: BotHarness) -> list[tuple[Any, ...]]:
    async with bot.services.sessions() as session:
        return list((await session.execute(sa.text("SELECT * FROM follow_up ORDER BY id"))).all())


async def draft(bot: BotHarness, number: int = 1) -> str:
    """The draft as `/incident postmortem` uploads it (names looked up in Slack)."""
    found = await incident(bot, number)
    document = await postmortems.draft(bot.services, incident_id=found.id or 0, refresh_names=True)
    return document.markdown


def section(markdown: str, heading: str) -> str:
    """The text between `heading` and the next heading (or the end)."""
    after = markdown.split(heading + "\n", 1)[1]
    return after.split("\n#", 1)[0].strip()


def listed(bot: BotHarness, seen: int) -> list[dict[str, Any]]:
    """The blocks of the `/incident tasks` answer received after `seen` responses."""
    [answer] = bot.emulator.responses[seen:]
    found: list[dict[str, Any]] = answer.args["blocks"]
    return found


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["type"] == "button"
    ]


def pressed(
    bot: BotHarness, button: dict[str, Any], *, user: str, channel: str, block_id: str
) -> dict[str, Any]:
    """The block_actions payload Slack sends when `user` presses `button` in `channel`."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": channel,
            "is_ephemeral": True,
        },
        "trigger_id": "111.222.valid",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": channel, "name": "inc"},
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


def button(action: ActionId, task_id: int | str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action.value,
        "text": {"type": "plain_text", "text": "Complete"},
        "value": str(task_id),
    }


async def press(
    bot: BotHarness, element: dict[str, Any], *, user: str, channel: str, block_id: str = "task:0"
) -> str:
    """Press a task button: acked at once, then one ephemeral answer."""
    seen = len(bot.emulator.responses)
    reply = await bot.interact(pressed(bot, element, user=user, channel=channel, block_id=block_id))
    assert (reply.status, reply.text) == (200, ""), reply.text
    assert reply.elapsed < 3.0
    await bot.settle()
    [answer] = bot.emulator.responses[seen:]
    assert answer.ok, answer.response
    assert answer.args["response_type"] == "ephemeral"
    assert answer.args.get("replace_original") in (False, None)
    return str(answer.args["text"])


# -- recording and drafting ---------------------------------------------------------------


async def test_measures_and_tasks_are_recorded_and_fill_the_last_two_sections(
    bot_any_db: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    bot = bot_any_db
    channel = await declare(bot, people.alice)
    before = await draft(bot)
    assert section(before, MEASURES) == "_No measures recorded yet — /incident measure …_"
    assert section(before, TASKS) == "_No tasks recorded yet — /incident task …_"

    said = await run(
        bot, "measure Alert on cache hit rate below 80%", user=people.bob, channel=channel
    )
    assert said == "Measure added to INC-1's postmortem."
    said = await run(
        bot, "measure Canary every deploy for 10 minutes", user=people.alice, channel=channel
    )
    assert said == "Measure added to INC-1's postmortem."
    said = await run(
        bot,
        f"task Add a cache alarm <@{people.bob}|bob> due 2026-12-01",
        user=people.alice,
        channel=channel,
    )
    assert said == f"Task added to INC-1, owner <@{people.bob}>, due 2026-12-01."
    # Owner by @handle and due date in the other order; due today is fine.
    said = await run(
        bot,
        "task Write the rollback runbook due 2026-11-25 @carol",
        user=people.bob,
        channel=channel,
    )
    assert said == f"Task added to INC-1, owner <@{people.carol}>, due 2026-11-25."
    said = await run(bot, "task Review the deploy checklist", user=people.bob, channel=channel)
    assert said == "Task added to INC-1."
    # From elsewhere, naming the incident.
    said = await run(bot, "INC-1 task Load test checkout", user=people.bob)
    assert said == "Task added to INC-1."

    rows = await follow_ups(bot)
    got = [(r.kind, r.text, r.owner, r.due, r.created_by, r.done_at) for r in rows]
    assert got == [
        (FollowUpKind.MEASURE, "Alert on cache hit rate below 80%", None, None, people.bob, None),
        (
            FollowUpKind.MEASURE,
            "Canary every deploy for 10 minutes",
            None,
            None,
            people.alice,
            None,
        ),
        (
            FollowUpKind.TASK,
            "Add a cache alarm",
            people.bob,
            date(2026, 12, 1),
            people.alice,
            None,
        ),
        (
            FollowUpKind.TASK,
            "Write the rollback runbook",
            people.carol,
            date(2026, 11, 25),
            people.bob,
            None,
        ),
        (FollowUpKind.TASK, "Review the deploy checklist", None, None, people.bob, None),
        (FollowUpKind.TASK, "Load test checkout", None, None, people.bob, None),
    ]
    declared = await incident(bot, 1)
    assert {r.incident_id for r in rows} == {declared.id}

    markdown = await draft(bot)
    assert section(markdown, MEASURES) == (
        "To prevent similar issues in the future, we will implement the following improvements:"
        "\n\n* Alert on cache hit rate below 80%\n* Canary every deploy for 10 minutes"
    )
    assert section(markdown, TASKS) == (
        "* Add a cache alarm — owner bob, due 2026-12-01\n"
        "* Write the rollback runbook — owner carol, due 2026-11-25\n"
        "* Review the deploy checklist\n"
        "* Load test checkout"
    )
    # Names (Slack's display names), never ids, in the whole document.
    for user in (people.bob, people.carol):
        assert user not in markdown
    # The sections keep the reference's order, tasks last.
    assert markdown.index("### Root Cause and Resolution:") < markdown.index(MEASURES)
    assert markdown.index(MEASURES) < markdown.index(TASKS)
    assert markdown.rstrip().endswith("* Load test checkout")

    # The uploaded draft says the same.
    await run(bot, "postmortem", user=people.alice, channel=channel)
    [upload] = [f for f in emulator.state.files.values() if f.completed]
    assert upload.content is not None
    uploaded = upload.content.decode()
    assert section(uploaded, TASKS) == section(markdown, TASKS)
    assert section(uploaded, MEASURES) == section(markdown, MEASURES)
    assert_all_calls_valid(emulator.calls)


async def test_follow_ups_are_text_not_markdown_or_pings(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    channel = await declare(bot, people.alice)
    await run(bot, "measure # not a heading <!channel> *bold*", user=people.bob, channel=channel)
    await run(bot, f"task ping <@{people.carol}> about [link](x)", user=people.bob, channel=channel)
    markdown = await draft(bot)
    assert section(markdown, MEASURES).endswith("* \\# not a heading @channel \\*bold\\*")
    assert section(markdown, TASKS) == "* ping @carol about \\[link\\](x)"
    assert_all_calls_valid(emulator.calls)


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("@nobody", "There is no Slack user @nobody: mention them so Slack completes the name."),
        ("<@U99999999>", "<@U99999999> is not an active user in this workspace."),
    ],
    ids=["unknown-handle", "unknown-mention"],
)
async def test_a_task_owner_who_is_not_a_user_is_refused(
    bot: BotHarness, emulator: SlackEmulator, people: People, owner: str, expected: str
) -> None:
    channel = await declare(bot, people.alice)
    said = await run(bot, f"task Add a cache alarm {owner}", user=people.alice, channel=channel)
    assert said == expected
    clear(said)
    assert await follow_up_rows(bot) == []
    assert "Add a cache alarm" not in await draft(bot)
    assert_all_calls_valid(emulator.calls)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "task Add a cache alarm due 2020-01-01",
            "The due date 2020-01-01 has already passed: write "
            "`/incident task text [@owner] [due YYYY-MM-DD]`.",
        ),
        (
            "task Add a cache alarm @bob due 2026-11-24",
            "The due date 2026-11-24 has already passed: write "
            "`/incident task text [@owner] [due YYYY-MM-DD]`.",
        ),
        (
            "task Add a cache alarm due 2026-02-30",
            "`2026-02-30` is not a date on the calendar: write "
            "`/incident task text [@owner] [due YYYY-MM-DD]`.",
        ),
        (
            "task <!subteam^S0DBONCALL|@dba>",
            "A task has one owner; mention a person, not a group: write "
            "`/incident task text [@owner] [due YYYY-MM-DD]`.",
        ),
        (
            "task @bob due 2026-12-01",
            "`task` needs a description: write `/incident task text [@owner] [due YYYY-MM-DD]`.",
        ),
    ],
    ids=["due-long-ago", "due-yesterday", "not-a-date", "group-owner", "no-description"],
)
async def test_bad_task_input_is_refused_in_the_ack(
    bot: BotHarness, emulator: SlackEmulator, people: People, text: str, expected: str
) -> None:
    channel = await declare(bot, people.alice)
    calls = len(emulator.calls)
    said = await refused_in_ack(bot, text, user=people.alice, channel=channel)
    assert said == expected
    clear(said)
    assert emulator.calls[calls:] == []
    assert await follow_up_rows(bot) == []


async def test_a_due_date_is_read_in_the_incident_time_zone(
    bot: BotHarness, emulator: SlackEmulator, clock: FakeClock, people: People
) -> None:
    channel = await declare(bot, people.alice)
    # 2026-11-26 02:00 UTC is still the 25th in Los Angeles: the 25th is today, not past.
    clock.set(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    said = await run(bot, "task Page the DBA due 2026-11-25", user=people.alice, channel=channel)
    assert said == "Task added to INC-1, due 2026-11-25."
    said = await refused_in_ack(bot, "task x due 2026-11-24", user=people.alice, channel=channel)
    assert said.startswith("The due date 2026-11-24 has already passed")
    assert [r.due for r in await follow_ups(bot)] == [date(2026, 11, 25)]


async def test_follow_ups_need_an_incident(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    await declare(bot, people.alice)
    said = await run(bot, "measure add alerts", user=people.alice)
    assert said.startswith("This is not an incident channel")
    said = await run(bot, "INC-99 task add alerts", user=people.alice)
    assert said == "There is no incident INC-99."
    said = await run(bot, "INC-99 tasks", user=people.alice)
    assert said == "There is no incident INC-99."
    assert await follow_up_rows(bot) == []


# -- listing and the buttons --------------------------------------------------------------


async def test_tasks_lists_them_with_complete_and_remove_buttons(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    channel = await declare(bot, people.alice)
    seen = len(emulator.responses)
    assert await run(bot, "tasks", user=people.bob, channel=channel) == "INC-1 has no tasks."
    empty = listed(bot, seen)
    assert_valid_blocks(empty)
    assert buttons(empty) == []

    await run(bot, "measure not a task", user=people.alice, channel=channel)
    await run(
        bot,
        f"task Add a cache alarm <@{people.bob}> due 2026-12-01",
        user=people.alice,
        channel=channel,
    )
    await run(bot, "task Review the deploy checklist", user=people.alice, channel=channel)
    first, second = [r.id for r in await follow_ups(bot) if r.kind is FollowUpKind.TASK]

    seen = len(emulator.responses)
    assert await run(bot, "tasks", user=people.bob, channel=channel) == "INC-1 has 2 task(s)."
    shown = listed(bot, seen)
    assert_valid_blocks(shown)
    text = str(shown)
    assert "Add a cache alarm" in text and "Review the deploy checklist" in text
    assert f"<@{people.bob}>" in text and "due 2026-12-01" in text
    assert "not a task" not in text
    got = [(b["action_id"], b["value"]) for b in buttons(shown)]
    assert got == [
        (ActionId.COMPLETE_TASK.value, str(first)),
        (ActionId.REMOVE_TASK.value, str(first)),
        (ActionId.COMPLETE_TASK.value, str(second)),
        (ActionId.REMOVE_TASK.value, str(second)),
    ]
    # Also from elsewhere, by name.
    assert await run(bot, "INC-1 tasks", user=people.bob) == "INC-1 has 2 task(s)."
    assert_all_calls_valid(emulator.calls)


async def test_complete_and_remove_buttons_change_the_draft(
    bot_any_db: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    bot = bot_any_db
    channel = await declare(bot, people.alice)
    await run(
        bot,
        f"task Add a cache alarm <@{people.bob}> due 2026-12-01",
        user=people.alice,
        channel=channel,
    )
    await run(bot, "task Review the deploy checklist", user=people.alice, channel=channel)
    seen = len(emulator.responses)
    await run(bot, "tasks", user=people.bob, channel=channel)
    shown = listed(bot, seen)
    complete_first, remove_first, complete_second, remove_second = buttons(shown)
    first_id = int(complete_first["value"])
    block_id = f"task:{first_id}"

    said = await press(bot, complete_first, user=people.bob, channel=channel, block_id=block_id)
    assert said == "Task done: Add a cache alarm"
    rows = {r.id: r for r in await follow_ups(bot)}
    assert rows[first_id].done_at is not None
    assert rows[int(complete_second["value"])].done_at is None
    assert section(await draft(bot), TASKS) == (
        "* ~~Add a cache alarm~~ (done) — owner bob, due 2026-12-01\n* Review the deploy checklist"
    )

    # A second press (an old list) says so and changes nothing.
    said = await press(bot, complete_first, user=people.bob, channel=channel, block_id=block_id)
    assert said == "That task is already done."
    clear(said)

    # The list now shows it done, with Remove only.
    seen = len(emulator.responses)
    await run(bot, "tasks", user=people.bob, channel=channel)
    relisted = listed(bot, seen)
    assert_valid_blocks(relisted)
    assert [(b["action_id"], b["value"]) for b in buttons(relisted)] == [
        (ActionId.REMOVE_TASK.value, str(first_id)),
        (ActionId.COMPLETE_TASK.value, complete_second["value"]),
        (ActionId.REMOVE_TASK.value, remove_second["value"]),
    ]
    assert "(done)" in str(relisted)

    said = await press(
        bot, remove_second, user=people.alice, channel=channel, block_id=remove_second["value"]
    )
    assert said == "Task removed: Review the deploy checklist"
    rows = {r.id: r for r in await follow_ups(bot)}
    assert rows[int(remove_second["value"])].removed_at is not None  # kept, marked removed
    markdown = await draft(bot)
    assert "Review the deploy checklist" not in markdown
    assert section(markdown, TASKS) == (
        "* ~~Add a cache alarm~~ (done) — owner bob, due 2026-12-01"
    )
    assert await run(bot, "tasks", user=people.bob, channel=channel) == "INC-1 has 1 task(s)."

    # Completing a removed task, or removing it again, is refused the same way.
    for element in (complete_second, remove_second):
        said = await press(bot, element, user=people.bob, channel=channel)
        assert said == "That task no longer exists."

    # A done task can still be removed; then the section is empty again.
    said = await press(bot, remove_first, user=people.bob, channel=channel, block_id=block_id)
    assert said == "Task removed: Add a cache alarm"
    assert section(await draft(bot), TASKS) == "_No tasks recorded yet — /incident task …_"
    assert_all_calls_valid(emulator.calls)


@pytest.mark.parametrize(
    ("action", "value", "expected"),
    [
        (ActionId.COMPLETE_TASK, "999", "That task no longer exists."),
        (ActionId.REMOVE_TASK, "999", "That task no longer exists."),
        (ActionId.COMPLETE_TASK, "not-a-number", "That button does not name a task."),
        (ActionId.COMPLETE_TASK, "", "That button does not name a task."),
    ],
    ids=["complete-unknown", "remove-unknown", "not-a-number", "empty"],
)
async def test_a_button_for_no_task_gets_a_clear_answer(
    bot: BotHarness,
    emulator: SlackEmulator,
    people: People,
    action: ActionId,
    value: str,
    expected: str,
) -> None:
    channel = await declare(bot, people.alice)
    await run(bot, "task Review the deploy checklist", user=people.alice, channel=channel)
    before = await follow_up_rows(bot)
    said = await press(bot, button(action, value), user=people.bob, channel=channel)
    assert said == expected
    clear(said)
    assert await follow_up_rows(bot) == before


async def test_a_measure_is_not_a_task_for_the_buttons(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    channel = await declare(bot, people.alice)
    await run(bot, "measure Alert on cache hit rate", user=people.alice, channel=channel)
    [measure] = await follow_ups(bot)
    before = await follow_up_rows(bot)
    for action in (ActionId.COMPLETE_TASK, ActionId.REMOVE_TASK):
        said = await press(bot, button(action, measure.id or 0), user=people.bob, channel=channel)
        assert said == "That task no longer exists."
    assert await follow_up_rows(bot) == before


async def test_an_outsider_cannot_touch_a_private_incident_s_tasks(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    reply = await usecases.declare(
        bot.services,
        actor=people.alice,
        declaration=usecases.Declaration(title="Payroll data exposed", private=True),
    )
    assert "INC-1" in reply.text
    await bot.settle()
    private = await incident(bot, 1)
    assert private.private and private.channel_id is not None
    channel = private.channel_id
    assert people.bob not in emulator.channel(channel).members

    await run(bot, "task Rotate the payroll keys", user=people.alice, channel=channel)
    [task] = await follow_ups(bot)
    before = await follow_up_rows(bot)

    # Bob, from a channel of his, with a button naming the task: same answer as no task at
    # all, so he learns neither that it exists nor which incident it belongs to.
    unknown = await press(
        bot, button(ActionId.COMPLETE_TASK, 999), user=people.bob, channel="CGENERAL"
    )
    for action in (ActionId.COMPLETE_TASK, ActionId.REMOVE_TASK):
        said = await press(bot, button(action, task.id or 0), user=people.bob, channel="CGENERAL")
        assert said == unknown == "That task no longer exists."
        assert "INC-1" not in said and "Rotate" not in said
    assert await follow_up_rows(bot) == before

    # Nor list, nor add.
    assert await run(bot, "INC-1 tasks", user=people.bob) == "There is no incident INC-1."
    assert await run(bot, "INC-1 task peek", user=people.bob) == "There is no incident INC-1."
    assert await run(bot, "INC-1 measure peek", user=people.bob) == "There is no incident INC-1."
    assert await follow_up_rows(bot) == before

    # Alice, a member, completes it from anywhere.
    said = await press(
        bot, button(ActionId.COMPLETE_TASK, task.id or 0), user=people.alice, channel="CGENERAL"
    )
    assert said == "Task done: Rotate the payroll keys"
    assert_all_calls_valid(emulator.calls)


async def test_an_owner_s_name_is_known_offline_before_any_upload(
    bot: BotHarness, people: People
) -> None:
    """The CLI and the HTTP endpoint render without Slack: the owner's name is remembered."""
    channel = await declare(bot, people.alice)
    await run(
        bot, "task Rotate the cache nodes @bob due 2026-12-01", user=people.alice, channel=channel
    )
    found = await incident(bot, 1)
    offline = await postmortems.draft(bot.services, incident_id=found.id or 0)  # no lookups
    assert "* Rotate the cache nodes — owner bob, due 2026-12-01" in offline.markdown
    assert f"owner {people.bob}" not in offline.markdown
