"""kill -9 in the middle of an escalation: real processes, real time, the in-test Slack emulator.

`python -m bot serve` runs as an operator runs it, on a SQLite file, with a playbook whose only
tier pages `ops` (a Slack handle) 2 s after the declaration. The process is killed with SIGKILL
before that, so it cannot release the scheduler lease or do anything else on the way out; a
new process started after the tier fell due must page once, promptly, and not twice.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.processes import BotProcess as Serve
from tests.processes import until
from tests.slack_requests import command_body, signed_headers
from tests.test_cli import base_env, free_port, run_bot

PLAYBOOK = """\
name: fast
match: {default: true}
roles:
  commander: {required: true}
  ops: {slack: ["@bob"]}
escalation:
  - {after: 2s, page: [ops]}
"""
TIER_AFTER = 2.0


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(bot_token=BOT_TOKEN)
    await emu.start(host="127.0.0.1", port=0)
    yield emu
    await emu.stop()


def page_dms(emulator: SlackEmulator, user: str) -> list[dict[str, Any]]:
    """DMs to `user` carrying a page's Acknowledge button."""
    found = []
    for call in emulator.calls_to("chat.postMessage"):
        actions = [
            element.get("action_id")
            for block in call.args.get("blocks") or []
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]
        if call.args.get("channel") == user and ActionId.ACKNOWLEDGE_PAGE.value in actions:
            found.append(call.args)
    return found


def stored_timers(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {row[0] for row in db.execute("SELECT id FROM apscheduler_jobs")}


def lease_holder(database: Path) -> str | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT holder FROM lease WHERE name = 'scheduler'").fetchone()
    return str(row[0]) if row else None


async def test_kill_9_before_an_escalation_then_restart_pages_once(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    started = time.monotonic()
    alice = slack.add_user("alice", real_name="Alice Smith")
    bob = slack.add_user("bob", real_name="Bob Jones")
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "fast.yaml").write_text(PLAYBOOK)
    database = tmp_path / "bot.db"
    url = f"sqlite+aiosqlite:///{database}"
    code, output = await run_bot("db", "upgrade", env=base_env(DATABASE_URL=url), cwd=tmp_path)
    assert code == 0, output

    port = free_port()
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.url,
        DATABASE_URL=url,
        PLAYBOOKS_DIR=str(playbooks),
        HOST="127.0.0.1",
        PORT=str(port),
    )
    first = Serve(env, tmp_path, tmp_path / "first.log")
    second = Serve(env, tmp_path, tmp_path / "second.log")
    try:
        await first.start()
        await first.healthy(port)

        body = command_body(
            "declare sev2 Orders are failing",
            user_id=alice,
            channel_id="CGENERAL",
            response_url=slack.response_url(),
        )
        headers = signed_headers(
            SIGNING_SECRET, body, content_type="application/x-www-form-urlencoded"
        )
        async with aiohttp.ClientSession() as http:
            declared = time.monotonic()
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
            ) as reply:
                assert reply.status == 200
        # The channel exists and the escalation timer is in the job store: then SIGKILL.
        await until(
            lambda: (
                any(c.ok for c in slack.calls_to("conversations.create"))
                and "escalate:1:1" in stored_timers(database)
            ),
            TIER_AFTER,
            "the channel and the stored escalation timer",
            first,
        )
        assert first.proc is not None
        # It runs the timers: the lease (30 s, renewed every second) names its pid.
        holder = lease_holder(database)
        assert holder is not None and f":{first.proc.pid}@" in holder, holder
        first.proc.send_signal(signal.SIGKILL)
        await first.proc.wait()
        killed = time.monotonic()
        assert killed - declared < TIER_AFTER, "killed too late to test anything"
        assert page_dms(slack, bob) == []

        # Down until the tier is due; then a new process on the same database.
        await asyncio.sleep(max(0.0, declared + TIER_AFTER + 0.5 - time.monotonic()))
        assert page_dms(slack, bob) == []
        restarted = time.monotonic()
        await second.start()
        await until(lambda: page_dms(slack, bob), 8, "the tier-1 page after the restart", second)
        paged = time.monotonic()
        assert paged - restarted < 6  # about 1.5 s: start-up, the first poll, the DM
        # The dead process's lease was taken over at once, not after it ran out.
        holder_now = lease_holder(database)
        assert second.proc is not None and holder_now is not None
        assert f":{second.proc.pid}@" in holder_now, holder_now
        [page] = page_dms(slack, bob)
        assert "INC-1" in page["text"]
        # The fired timer leaves the store once its run is recorded, just after the page.
        await until(
            lambda: "escalate:1:1" not in stored_timers(database), 5, "the timer removed", second
        )

        # Some more polls of the scheduler: still one page.
        await asyncio.sleep(2.5)
        assert len(page_dms(slack, bob)) == 1, second.output()

        assert second.proc is not None
        second.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.proc.wait(), 20)
        assert second.proc.returncode == 0, second.output()
        assert lease_holder(database) is None  # given up on the way out
    finally:
        await first.end()
        await second.end()
    assert time.monotonic() - started < 45
