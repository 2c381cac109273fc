"""What `/incident stats` and a /metrics scrape cost on a large record.

    python bench/stats_and_scrape.py [--incidents 5000]

Seeds a temporary SQLite database (each incident with 10 timeline entries, 2 pages and 2
tasks), then prints the time of `/incident stats 90d`, of one scrape (gauges read from the
database plus the exposition), and of one `metrics.inc`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot import gauges, stats
from bot.config import Settings
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, FollowUpKind, PageState, Severity, Status
from bot.db.migrate import upgrade
from bot.db.models import FollowUp, Incident, Page, TimelineEntry
from bot.services import build_services
from bot.usecases import Asked

NOW = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
SEVERITIES = list(Severity)


async def seed(services_url: str, count: int) -> None:
    settings = Settings(_env_file=None, DATABASE_URL=services_url)  # type: ignore[call-arg]
    services = build_services(settings)
    try:
        async with services.sessions() as session, session.begin():
            for n in range(1, count + 1):
                declared = NOW - timedelta(minutes=25 * n)
                resolved = n % 10 != 0
                incident = Incident(
                    number=n,
                    title=f"incident {n}",
                    severity=SEVERITIES[n % 4],
                    status=Status.RESOLVED if resolved else Status.INVESTIGATING,
                    declared_by="UALICE",
                    declared_at=declared,
                    resolved_at=declared + timedelta(minutes=30 + n % 90) if resolved else None,
                )
                session.add(incident)
                await session.flush()
                assert incident.id is not None
                for i in range(10):
                    session.add(
                        TimelineEntry(
                            incident_id=incident.id,
                            occurred_at=declared + timedelta(minutes=i - 3),
                            recorded_at=declared,
                            kind=EntryKind.NOTE,
                            text=f"note {i}",
                        )
                    )
                for tier in range(2):
                    session.add(
                        Page(
                            incident_id=incident.id,
                            provider="slack",
                            target="UBOB",
                            dedup_key=f"{n}/{tier}",
                            state=PageState.ACKNOWLEDGED,
                            created_at=declared + timedelta(minutes=5 * tier),
                            acknowledged_at=declared + timedelta(minutes=5 * tier + 1 + n % 7),
                        )
                    )
                for owner in ("UBOB", None):
                    session.add(
                        FollowUp(
                            incident_id=incident.id,
                            kind=FollowUpKind.TASK,
                            text="task",
                            owner=owner,
                            created_at=declared,
                        )
                    )
    finally:
        await services.aclose()


async def run(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        await upgrade(url)
        started = time.perf_counter()
        await seed(url, count)
        print(f"seeded {count} incidents in {time.perf_counter() - started:.1f} s")
        settings = Settings(_env_file=None, DATABASE_URL=url)  # type: ignore[call-arg]
        services = build_services(settings, clock=FakeClock(NOW))
        try:
            asked = Asked(actor="UALICE")
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                await stats.show_stats(services, asked=asked, days=90)
                timings.append(time.perf_counter() - started)
            print(f"/incident stats 90d: median {statistics.median(timings) * 1000:.1f} ms")
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                await gauges.refresh(services)
                body, _ = services.metrics.render()
                timings.append(time.perf_counter() - started)
            print(
                f"scrape (gauges + exposition, {len(body)} bytes): "
                f"median {statistics.median(timings) * 1000:.1f} ms"
            )
            calls = 100_000
            started = time.perf_counter()
            for i in range(calls):
                services.metrics.inc("pages_total", provider="slack", outcome=str(i % 2))
            per_call = (time.perf_counter() - started) / calls * 1e6
            print(f"metrics.inc with two labels: {per_call:.2f} µs a call")
        finally:
            await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.incidents, args.rounds))


if __name__ == "__main__":
    main()
