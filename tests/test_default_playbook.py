"""The shipped default playbook, as a new team meets it: no false "nobody" warning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import postmortems
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from bot.playbook_check import load_valid_directory
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.conversation import answers_to

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


@pytest.fixture
async def shipped(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    settings = make_settings(database_url=sqlite_url, api_url=emulator.url)
    harness, runner = await start_bot(
        settings=settings,
        emulator=emulator,
        clock=clock,
        playbooks=load_valid_directory(PLAYBOOKS),
    )
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)


async def test_the_default_playbook_warns_nobody_and_its_postmortem_has_no_warning(
    shipped: BotHarness,
) -> None:
    declarer = shipped.emulator.add_user("dana", email="dana@example.com")

    await answers_to(shipped, "declare sev2 Checkout is slow", user=declarer)
    await shipped.settle()

    async with shipped.services.sessions() as session:
        incident = await IncidentRepo(session).by_number(1)
        assert incident is not None and incident.id is not None
        assert incident.playbook == "default"
        roles = await IncidentRepo(session).roles(incident.id)
        timeline = await IncidentRepo(session).timeline(incident.id)
    assert roles["commander"] == [declarer]  # the declarer is the commander, quietly
    posted = [
        str(call.args.get("text"))
        for call in shipped.emulator.calls_to("chat.postMessage")
        if call.args.get("channel") == incident.channel_id
    ]
    assert posted and not [text for text in posted if ":warning:" in text]
    assert not [e for e in timeline if e.kind == EntryKind.ROLE and "Nobody" in e.text]

    await answers_to(shipped, "resolve Fixed", user=declarer, channel=incident.channel_id or "")
    document = await postmortems.draft(shipped.services, incident_id=incident.id)
    assert "Nobody could be found" not in document.markdown
    assert "warning" not in document.markdown.lower()
