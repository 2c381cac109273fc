"""An alert storm: 10,000 alerts in one minute, 20 senders at once, 5 groups.

    python bench/alert_storm.py [--alerts 10000] [--seconds 60] [--concurrency 20] [--groups 5]

Deliveries are shaped as Alertmanager sends them: one POST per group with the group's new
alerts and, as on every group_interval, the previous batch again (repeats the bot must not
count twice). They are spread evenly over `--seconds` (compress the minute with a smaller
value) and sent by `--concurrency` workers to the real server on SQLite, with the built-in
Slack emulator recording every Web API call. Prints figures only: webhook latency, incidents
opened, alerts kept, Slack calls by method, and the process's RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from common import SECRET, TOKEN, start_bot  # bench/, first on sys.path

from bot.config import Settings
from bot.core.playbooks import load_playbook
from bot.db.migrate import upgrade
from bot.db.models import AlertRecord, Incident, SideEffect, TimelineEntry
from bot.emulator import SlackEmulator
from bot.services import Services, build_services

ALERT_TOKEN = "bench-alert-token"
BATCH = 50  # new alerts per delivery
PLAYBOOK = """
name: storm
match: {services: [api]}
roles:
  commander: {slack: ["@alice"]}
alerts:
  - match: {alertname: HighErrorRate}
    severity: sev2
    group_by: [alertname, service]
"""


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def alert(service: str, index: int, start: datetime) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": "HighErrorRate",
            "service": service,
            "instance": f"{service}-{index}",
            "severity": "critical",
        },
        "annotations": {"summary": f"Error rate above 5% on {service}-{index}"},
        "startsAt": (start + timedelta(milliseconds=index)).isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=x",
        "fingerprint": f"{service}-{index:08x}",
    }


def deliveries(total: int, groups: int) -> list[bytes]:
    """Bodies in sending order, round-robin over the groups."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    services = [f"svc-{g}" for g in range(groups)]
    per_group = total // groups
    batches: list[list[bytes]] = []
    for service in services:
        bodies = []
        previous: list[dict[str, Any]] = []
        for first in range(0, per_group, BATCH):
            new = [alert(service, i, start) for i in range(first, min(first + BATCH, per_group))]
            payload = {
                "version": "4",
                "groupKey": f'{{}}:{{alertname="HighErrorRate", service="{service}"}}',
                "status": "firing",
                "receiver": "incident-bot",
                "groupLabels": {"alertname": "HighErrorRate", "service": service},
                "commonLabels": {"alertname": "HighErrorRate", "service": service},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager.example.org:9093",
                "truncatedAlerts": 0,
                "alerts": previous + new,
            }
            bodies.append(json.dumps(payload).encode())
            previous = new
        batches.append(bodies)
    ordered = []
    for index in range(max(len(b) for b in batches)):
        ordered += [bodies[index] for bodies in batches if index < len(bodies)]
    return ordered


@asynccontextmanager
async def database(*, postgres: bool, wal: bool) -> AsyncIterator[str]:
    """A fresh, migrated database: SQLite in a temporary file, or a scratch PostgreSQL schema."""
    if postgres:
        from tests.db_fixtures import postgres_scratch_url

        async with postgres_scratch_url() as url:
            await upgrade(url)
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'storm.db'}"
        await upgrade(url)
        if wal:
            with sqlite3.connect(Path(tmp) / "storm.db") as raw:
                raw.execute("PRAGMA journal_mode=WAL")
        yield url


async def wait_until_processed(services: Services, limit: float) -> float:
    """Seconds until no alert delivery or digest is left to run."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        async with services.sessions() as session:
            left = await session.scalar(
                sa.select(sa.func.count())
                .select_from(SideEffect)
                .where(SideEffect.done_at.is_(None))  # type: ignore[union-attr]
            )
        if not left:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    return float("nan")


async def main(
    total: int,
    seconds: float,
    concurrency: int,
    groups: int,
    verbose: bool = False,
    wal: bool = False,
    postgres: bool = False,
) -> None:
    emulator = SlackEmulator(bot_token=TOKEN)
    await emulator.start()
    emulator.add_user("alice")
    bodies = deliveries(total, groups)
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    statuses: Counter[int] = Counter()
    async with database(postgres=postgres, wal=wal) as db:
        settings = Settings(
            _env_file=None,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=emulator.url,
            DATABASE_URL=db,
            ALERT_WEBHOOK_TOKEN=ALERT_TOKEN,
        )
        services = build_services(
            settings, playbooks=[load_playbook(PLAYBOOK, filename="storm.yaml")]
        )
        runner, base = await start_bot(services)  # as `serve` starts
        url = base + "/webhooks/alertmanager"
        rss_before = rss_mib()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        spacing = seconds / len(bodies)
        for index, body in enumerate(bodies):
            queue.put_nowait((index * spacing, body))
        headers = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}
        began = time.perf_counter()

        async def sender(http: aiohttp.ClientSession) -> None:
            while not queue.empty():
                due, body = queue.get_nowait()
                delay = began + due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                started = time.perf_counter()
                async with http.post(url, data=io.BytesIO(body), headers=headers) as reply:
                    await reply.read()
                    statuses[reply.status] += 1
                latencies.append(time.perf_counter() - started)
                timeline.append((round(started - began, 2), round(latencies[-1], 3)))

        try:
            async with aiohttp.ClientSession() as http:
                await asyncio.gather(*(sender(http) for _ in range(concurrency)))
            sent_in = time.perf_counter() - began
            drained = await wait_until_processed(services, limit=600)
            async with services.sessions() as session:
                incidents = await session.scalar(sa.select(sa.func.count()).select_from(Incident))
                kept = await session.scalar(sa.select(sa.func.count()).select_from(AlertRecord))
                entries = await session.scalar(
                    sa.select(sa.func.count())
                    .select_from(TimelineEntry)
                    .where(TimelineEntry.kind == "alert")
                )
            rss_after = rss_mib()
        finally:
            await runner.cleanup()
            await services.aclose()
    await emulator.stop()
    ordered = sorted(latencies)
    by_method = Counter(call.method for call in emulator.calls)
    posts = [c for c in emulator.calls if c.method == "chat.postMessage"]
    per_channel = Counter(str(c.args.get("channel")) for c in posts)
    repeats = sum(len(json.loads(b)["alerts"]) for b in bodies) - total
    print(f"database: {'PostgreSQL' if postgres else 'SQLite' + (' (WAL)' if wal else '')}")
    print(
        f"{total:,} alerts ({repeats:,} more re-sent as repeats) in {len(bodies)} deliveries "
        f"over {sent_in:.1f} s, {concurrency} senders, {groups} groups"
    )
    print(f"answers: {dict(statuses)}")
    print(
        f"webhook latency: p50 {statistics.median(ordered) * 1000:.0f} ms, "
        f"p99 {ordered[int(len(ordered) * 0.99) - 1] * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms"
    )
    print(f"processed {drained:.1f} s after the last delivery (digests wait up to 10 s)")
    print(
        f"incidents opened: {incidents}; alerts kept: {kept:,}; alert timeline entries: {entries:,}"
    )
    print(f"Slack Web API calls: {len(emulator.calls)} — {dict(sorted(by_method.items()))}")
    print(f"chat.postMessage per channel: max {max(per_channel.values(), default=0)}")
    if verbose:
        print("sent at, latency:", sorted(timeline))
    print(f"RSS: {rss_before:.0f} MiB before the storm, {rss_after:.0f} MiB after")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="print every delivery's latency")
    parser.add_argument("--wal", action="store_true", help="SQLite in write-ahead-log mode")
    parser.add_argument("--postgres", action="store_true", help="the local PostgreSQL (tests')")
    options = parser.parse_args()
    asyncio.run(
        main(
            options.alerts,
            options.seconds,
            options.concurrency,
            options.groups,
            options.verbose,
            options.wal,
            options.postgres,
        )
    )
