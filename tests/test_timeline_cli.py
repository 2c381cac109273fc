"""`python -m bot timeline INC-n [--format text|json]`: the whole record, as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import channel_events, postmortems
from bot.core.clock import FakeClock
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from tests.conftest import BOT_TOKEN, BotHarness
from tests.test_postmortem_delivery import People, a_full_incident, cli, cli_env


@pytest.fixture
def people(emulator: SlackEmulator) -> People:
    return People(
        alice=emulator.add_user("alice", real_name="Alice Smith"),
        bob=emulator.add_user("bob", real_name="Bob Jones"),
    )


def timeline_section(markdown: str) -> list[str]:
    section = markdown.split("### Timeline:\n\n", 1)[1].split("\n\n", 1)[0]
    return section.splitlines()


async def test_every_entry_in_the_postmortem_lines_and_as_json(
    bot: BotHarness, clock: FakeClock, people: People, tmp_path: Path
) -> None:
    channel = await a_full_incident(bot, clock, people)
    carol = bot.emulator.add_user("carol")
    await channel_events.record_membership(
        bot.services, event_id="Ev1", channel_id=channel, user=carol, joined=True
    )
    database = bot.services.settings.DATABASE_URL
    draft = await postmortems.draft(bot.services, incident_id=1)
    in_postmortem = timeline_section(draft.markdown)

    code, out, err = await cli("timeline", "INC-1", env=cli_env(tmp_path, database), cwd=tmp_path)
    assert code == 0, err
    assert err == ""
    lines = out.decode().splitlines()
    async with bot.services.sessions() as session:
        recorded = await IncidentRepo(session).timeline(1)
    assert len(lines) == len(recorded) > len(in_postmortem)
    # The postmortem's lines, in its order, with what it leaves out in between.
    remaining = iter(lines)
    assert all(line in remaining for line in in_postmortem)
    assert "* 10:27 AM PST: p99 latency above 2 s (bob)" in lines
    # Left out of the postmortem; carol's name was never looked up (no Slack set up).
    assert f"* 10:45 AM PST: @{carol} joined the channel" in lines
    assert "* 10:35 AM PST: Impact: 30% of checkouts slow for 40 minutes (bob)" in lines

    code, out, err = await cli(
        "timeline", "inc-1", "--format", "json", env=cli_env(tmp_path, database), cwd=tmp_path
    )
    assert code == 0, err
    document = json.loads(out)
    assert (document["incident"], document["title"]) == ("INC-1", "Checkout latency spike")
    assert document["timezone"] == "America/Los_Angeles"
    entries = document["entries"]
    assert [e["text"] for e in entries] == [e.text for e in recorded]
    assert [e["occurred_at"] for e in entries] == [e.occurred_at.isoformat() for e in recorded]
    assert {"declared", "note", "summary", "joined", "resolved"} <= {e["kind"] for e in entries}
    note = next(e for e in entries if e["text"] == "p99 latency above 2 s")
    assert note["author"] == people.bob and note["author_name"] == "bob"
    assert note["occurred_at"] == "2026-11-25T18:27:00+00:00"


async def test_names_come_from_slack_when_it_is_set_up(
    bot: BotHarness, clock: FakeClock, people: People, tmp_path: Path
) -> None:
    channel = await a_full_incident(bot, clock, people)
    carol = bot.emulator.add_user("carol")  # never named to the bot before
    await channel_events.record_membership(
        bot.services, event_id="Ev1", channel_id=channel, user=carol, joined=True
    )
    env = cli_env(
        tmp_path,
        bot.services.settings.DATABASE_URL,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=bot.emulator.url,
    )
    asked = len(bot.emulator.calls_to("users.info"))
    code, out, err = await cli("timeline", "INC-1", env=env, cwd=tmp_path)
    assert code == 0, err
    assert len(bot.emulator.calls_to("users.info")) > asked
    assert "* 10:45 AM PST: @carol joined the channel" in out.decode().splitlines()


async def test_an_unknown_incident_or_format_is_one_line(bot: BotHarness, tmp_path: Path) -> None:
    env = cli_env(tmp_path, bot.services.settings.DATABASE_URL)
    code, out, err = await cli("timeline", "INC-9", env=env, cwd=tmp_path)
    assert (code, out, err) == (1, b"", "error: There is no incident INC-9.\n")
    code, out, err = await cli("timeline", "INC-x", env=env, cwd=tmp_path)
    assert code == 1 and "`INC-x` is not an incident" in err and "Traceback" not in err
    code, out, err = await cli("timeline", "INC-1", "--format", "csv", env=env, cwd=tmp_path)
    assert code == 2 and "invalid choice: 'csv'" in err
