"""Several processes on one PostgreSQL database, as an operator scales out: three `serve`
replicas and one `worker`, requests spread over them, `kill -9` at the worst moment.

Everything is real: the processes are `python -m bot serve|worker` started by the test, Slack
is the in-test emulator over HTTP, requests are signed as Slack signs them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import make_engine
from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.db_fixtures import postgres_scratch_url
from tests.processes import BotProcess
from tests.slack_requests import command_body, event_body, signed_headers
from tests.test_cli import base_env, free_port

pytestmark = pytest.mark.postgres

FORM = "application/x-www-form-urlencoded"
_EVENT_TIMES = itertools.count(1)


class Cluster:
    """Three `serve` replicas and a `worker` sharing one PostgreSQL database."""

    def __init__(self, tmp_path: Path, url: str, slack: SlackEmulator) -> None:
        self.url, self.slack, self.tmp = url, slack, tmp_path
        self.ports = [free_port() for _ in range(3)]
        self.serves = [self._process("serve", port, n) for n, port in enumerate(self.ports)]
        self.worker = self._process("worker", free_port(), 9)
        self.http: aiohttp.ClientSession | None = None
        self.db: AsyncEngine = make_engine(url)
        self.user = slack.add_user("alice", real_name="Alice Smith")

    def _process(self, command: str, port: int, n: int) -> BotProcess:
        env = base_env(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.slack.url,
            DATABASE_URL=self.url,
            HOST="127.0.0.1",
            PORT=str(port),
        )
        return BotProcess(env, self.tmp, self.tmp / f"{command}-{n}.log", command=command)

    @property
    def processes(self) -> list[BotProcess]:
        return [*self.serves, self.worker]

    async def start(self) -> None:
        self.http = aiohttp.ClientSession()
        await asyncio.gather(*(p.start() for p in self.processes))
        await asyncio.gather(
            *(s.healthy(port) for s, port in zip(self.serves, self.ports, strict=True))
        )

    async def stop(self) -> None:
        await asyncio.gather(*(p.end() for p in self.processes))
        if self.http is not None:
            await self.http.close()
        await self.db.dispose()

    async def post(self, replica: int, body: str, *, content_type: str = FORM) -> int:
        assert self.http is not None
        headers = signed_headers(SIGNING_SECRET, body, content_type=content_type)
        url = f"http://127.0.0.1:{self.ports[replica]}/slack/events"
        async with self.http.post(url, data=body.encode(), headers=headers) as response:
            await response.read()
            return response.status

    async def command(self, replica: int, text: str, *, channel: str = "CGENERAL") -> int:
        body = command_body(
            text,
            user_id=self.user,
            channel_id=channel,
            response_url=self.slack.response_url(channel=channel, user=self.user),
        )
        return await self.post(replica, body)

    async def reaction(
        self, replica: int, kind: str, *, user: str, channel: str, ts: str, event_id: str
    ) -> int:
        event = {
            "type": kind,
            "user": user,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "reaction": "pushpin",
            "item_user": user,
            "event_ts": f"1700000000.{next(_EVENT_TIMES):06d}",
        }
        body = event_body(event, event_id=event_id)
        return await self.post(replica, body, content_type="application/json")

    async def rows(self, query: str, **params: Any) -> Sequence[Any]:
        async with self.db.connect() as conn:
            return (await conn.execute(sa.text(query), params)).all()

    async def quiet(self, seconds: float = 30) -> None:
        """Every acknowledged request done and every owed call made."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            [(requests, effects)] = await self.rows(
                "SELECT (SELECT count(*) FROM inbox WHERE done_at IS NULL),"
                " (SELECT count(*) FROM side_effect WHERE done_at IS NULL AND due_at <= now())"
            )
            if requests == 0 and effects == 0:
                return
            if asyncio.get_running_loop().time() > deadline:
                logs = "\n".join(p.output()[-3000:] for p in self.processes)
                raise AssertionError(f"{requests} requests, {effects} effects left\n{logs}")
            await asyncio.sleep(0.1)

    def answers(self, starting: str) -> list[str]:
        return [
            str(r.args.get("text", ""))
            for r in self.slack.responses
            if str(r.args.get("text", "")).startswith(starting)
        ]

    async def declare(self, title: str) -> tuple[int, str]:
        """Declare on replica 0 and wait for the channel; (incident id, channel id)."""
        assert await self.command(0, f"declare sev2 {title}") == 200
        await self.quiet()
        [(incident_id, channel)] = await self.rows(
            "SELECT id, channel_id FROM incident WHERE title = :title", title=title
        )
        assert channel, "the channel was not created"
        return int(incident_id), str(channel)


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(bot_token=BOT_TOKEN)
    await emu.start(host="127.0.0.1", port=0)
    yield emu
    await emu.stop()


@pytest.fixture
async def cluster(tmp_path: Path, slack: SlackEmulator) -> AsyncIterator[Cluster]:
    async with postgres_scratch_url() as url:
        await upgrade(url)
        running = Cluster(tmp_path, url, slack)
        try:
            await running.start()
            yield running
        finally:
            await running.stop()


async def test_simultaneous_declarations_on_three_replicas_each_get_their_incident(
    cluster: Cluster,
) -> None:
    count = 24
    statuses = await asyncio.gather(
        *(cluster.command(n % 3, f"declare sev3 Outage number {n}") for n in range(count))
    )
    assert statuses == [200] * count
    await cluster.quiet(60)
    numbers = [row[0] for row in await cluster.rows("SELECT number FROM incident ORDER BY 1")]
    assert numbers == list(range(1, count + 1))  # unique and contiguous
    channels = await cluster.rows("SELECT DISTINCT channel_id FROM incident")
    assert len(channels) == count and all(row[0] for row in channels)
    assert len(cluster.answers("Declared")) == count
    assert not any("went wrong" in str(r.args) for r in cluster.slack.responses)


async def test_notes_acknowledged_by_a_replica_killed_right_after_are_kept_once(
    cluster: Cluster,
) -> None:
    incident_id, channel = await cluster.declare("Checkout is down")
    texts = [f"step {n} of the rollback" for n in range(8)]
    # Hold the incident's row: the work after each ack queues on it, as under load.
    async with cluster.db.connect() as holder:
        await holder.execute(
            sa.text("SELECT id FROM incident WHERE id = :id FOR UPDATE"), {"id": incident_id}
        )
        statuses = await asyncio.gather(
            *(cluster.command(1, f"note {text}", channel=channel) for text in texts)
        )
        assert statuses == [200] * len(texts)  # acknowledged …
        cluster.serves[1].kill()  # … then the process dies with all of it still to do
        assert cluster.serves[1].proc is not None
        await cluster.serves[1].proc.wait()
        await holder.rollback()
    await cluster.quiet(30)
    rows = await cluster.rows(
        "SELECT text FROM timeline_entry WHERE incident_id = :id AND kind = 'note'",
        id=incident_id,
    )
    assert sorted(row[0] for row in rows) == sorted(texts)  # every one, once
    assert len(cluster.answers("Noted on")) == len(texts)  # and everyone heard back
    posted = [m.text for m in cluster.slack.channel(channel).messages if "rollback" in m.text]
    assert len(posted) == len(texts)


async def test_pins_added_and_removed_on_different_replicas_end_as_slack_says(
    cluster: Cluster,
) -> None:
    incident_id, channel = await cluster.declare("Search is slow")
    slack, alice = cluster.slack, cluster.user
    bob = slack.add_user("bob")
    gone = [slack.post_as_user(channel, bob, f"gone {n}") for n in range(6)]
    kept = [slack.post_as_user(channel, bob, f"kept {n}") for n in range(6)]
    shared = slack.post_as_user(channel, bob, "both of us pinned this")
    ids = itertools.count()

    def pin(replica: int, kind: str, ts: str, user: str = alice) -> Any:
        return cluster.reaction(
            replica, kind, user=user, channel=channel, ts=ts, event_id=f"Ev{next(ids)}"
        )

    sent = []
    for ts in gone:  # added on one replica, removed on another, back to back
        sent.append(pin(0, "reaction_added", ts))
        sent.append(pin(1, "reaction_removed", ts))
    for ts in kept:  # added, removed, added again, each on its own replica
        sent.append(pin(0, "reaction_added", ts))
        sent.append(pin(1, "reaction_removed", ts))
        sent.append(pin(2, "reaction_added", ts))
    sent.append(pin(0, "reaction_added", shared, alice))  # two people at once
    sent.append(pin(1, "reaction_added", shared, bob))
    assert await asyncio.gather(*sent) == [200] * len(sent)
    await cluster.quiet()
    assert await pin(2, "reaction_removed", shared, alice) == 200  # bob still has his
    await cluster.quiet()

    rows = await cluster.rows(
        "SELECT slack_ts, retracted_at IS NULL, pinned_by FROM timeline_entry"
        " WHERE incident_id = :id AND source = 'pinned_message'",
        id=incident_id,
    )
    on_timeline = {ts: (shown, by) for ts, shown, by in rows}
    assert len(rows) == len(on_timeline)  # one entry per message, however many pinned it
    assert not any(on_timeline.get(ts, (False, None))[0] for ts in gone)
    assert all(on_timeline[ts][0] for ts in kept)
    assert on_timeline[shared] == (True, bob)


async def test_posts_of_one_incident_leave_in_the_order_they_were_recorded(
    cluster: Cluster,
) -> None:
    incident_id, channel = await cluster.declare("Payments are failing")
    cluster.slack.set_latency(0.05, "chat.postMessage")  # runs overlap across processes
    for n in range(12):
        assert await cluster.command(n % 3, f"note update number {n:02d}", channel=channel) == 200
    await cluster.quiet(60)
    recorded = [
        row[0]
        for row in await cluster.rows(
            "SELECT text FROM timeline_entry WHERE incident_id = :id AND kind = 'note' ORDER BY id",
            id=incident_id,
        )
    ]
    posted = [
        text
        for message in cluster.slack.channel(channel).messages
        for text in recorded
        if text in message.text
    ]
    assert len(recorded) == 12
    assert posted == recorded


async def test_calls_claimed_by_a_process_that_died_are_made_within_seconds(
    cluster: Cluster,
) -> None:
    incident_id, channel = await cluster.declare("Login is broken")
    # Only the worker makes calls from here on: the replicas stop, the worker gets stuck.
    for serve in cluster.serves[1:]:
        serve.kill()
    cluster.slack.set_latency(30, "chat.postMessage")
    assert await cluster.command(0, "note first, stuck in flight", channel=channel) == 200
    assert await cluster.command(0, "note second, claimed with it", channel=channel) == 200

    async def claimed_by() -> str | None:
        rows = await cluster.rows(
            "SELECT claimed_by FROM side_effect WHERE incident_id = :id AND done_at IS NULL"
            " AND claimed_by IS NOT NULL",
            id=incident_id,
        )
        return str(rows[0][0]) if rows else None

    holder = None
    for _ in range(200):
        holder = await claimed_by()
        if holder is not None:
            break
        await asyncio.sleep(0.05)
    assert holder is not None, "nothing was claimed"
    dying = next(p for p in cluster.processes if p.proc and f":{p.proc.pid}@" in holder)
    dying.kill()  # the other of serves[0] and the worker is left to take over
    cluster.slack.set_latency(0, "chat.postMessage")
    started = asyncio.get_running_loop().time()
    await cluster.quiet(20)  # the claim lasts 120 s: taking it over is what makes this pass
    assert asyncio.get_running_loop().time() - started < 20
    texts = [m.text for m in cluster.slack.channel(channel).messages]
    assert sum("claimed with it" in t for t in texts) == 1  # not started: made exactly once
    assert sum("stuck in flight" in t for t in texts) >= 1
