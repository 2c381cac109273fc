"""`/incident stats` on a seeded database, SQLite and PostgreSQL, as a person types it."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.enums import EntryKind, EntrySource, FollowUpKind, PageState, Severity, Status
from bot.db.models import FollowUp, Incident, Page, TimelineEntry
from tests.conftest import BotHarness
from tests.conversation import reply_to


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


async def seed(
    bot: BotHarness,
    number: int,
    *,
    declared: datetime,
    severity: Severity = Severity.SEV2,
    first_entry: datetime | None = None,
    started: datetime | None = None,
    resolved: datetime | None = None,
    pages: tuple[tuple[datetime, datetime | None], ...] = (),
    private: bool = False,
    channel_id: str | None = None,
    tasks: tuple[tuple[str | None, bool], ...] = (),
) -> None:
    """An incident as the bot would have recorded it; tasks are (owner, still open)."""
    async with bot.services.sessions() as session, session.begin():
        incident = Incident(
            number=number,
            title=f"Incident {number}",
            severity=severity,
            status=Status.RESOLVED if resolved else Status.INVESTIGATING,
            private=private,
            channel_id=channel_id,
            declared_by="UALICE",
            declared_at=declared,
            started_at=started,
            resolved_at=resolved,
        )
        session.add(incident)
        await session.flush()
        assert incident.id is not None
        entries = [(declared, EntryKind.DECLARED)]
        if first_entry is not None:
            entries.append((first_entry, EntryKind.NOTE))
        # People joining before anything happened would not move the start (noise).
        entries.append((declared - minutes(600), EntryKind.JOINED))
        for at, kind in entries:
            session.add(
                TimelineEntry(
                    incident_id=incident.id,
                    occurred_at=at,
                    recorded_at=declared,
                    kind=kind,
                    text=kind.value,
                    source=EntrySource.SYSTEM,
                )
            )
        for created, acked in pages:
            session.add(
                Page(
                    incident_id=incident.id,
                    provider="slack",
                    target="UBOB",
                    dedup_key=f"k{number}-{created.isoformat()}",
                    state=PageState.ACKNOWLEDGED if acked else PageState.TRIGGERED,
                    created_at=created,
                    acknowledged_at=acked,
                )
            )
        for owner, still_open in tasks:
            session.add(
                FollowUp(
                    incident_id=incident.id,
                    kind=FollowUpKind.TASK,
                    text="a task",
                    owner=owner,
                    created_at=declared,
                    done_at=None if still_open else declared,
                )
            )
        session.add(
            FollowUp(
                incident_id=incident.id, kind=FollowUpKind.MEASURE, text="m", created_at=declared
            )
        )


async def test_stats_over_30_and_90_days(bot_any_db: BotHarness) -> None:
    bot = bot_any_db
    emu = bot.emulator
    alice, bob, carol = emu.add_user("alice"), emu.add_user("bob"), emu.add_user("carol")
    now = bot.services.clock.now()
    day = timedelta(days=1)
    secret = emu.add_channel("inc-secret", is_private=True, members=[emu.bot_user_id, carol])
    # 60 days ago: only in the 90-day window; slow to acknowledge and to resolve.
    await seed(
        bot, 1, declared=now - 60 * day, severity=Severity.SEV1,
        pages=((now - 60 * day, now - 60 * day + minutes(30)),),
        resolved=now - 60 * day + minutes(300), tasks=((bob, True),),
    )  # fmt: skip
    # An alert declared it: its first entry (the alert) is 10 minutes before the declaration.
    # Tier 1 was never acknowledged; tier 2, paged 5 minutes later, was after 2 more.
    await seed(
        bot, 2, declared=now - 3 * day, first_entry=now - 3 * day - minutes(10),
        pages=((now - 3 * day, None), (now - 3 * day + minutes(5), now - 3 * day + minutes(7))),
        resolved=now - 3 * day + minutes(50), tasks=((bob, True), (alice, False), (None, True)),
    )  # fmt: skip
    # Impact began 30 minutes before the declaration (`/incident started`): 2 hours in all.
    await seed(
        bot, 3, declared=now - 2 * day, severity=Severity.SEV3, started=now - 2 * day - minutes(30),
        pages=((now - 2 * day, now - 2 * day + minutes(3)),), resolved=now - 2 * day + minutes(90),
    )  # fmt: skip
    # Private, the longest of the month; carol is in its channel.
    await seed(
        bot, 4, declared=now - day, severity=Severity.SEV1, private=True, channel_id=secret,
        pages=((now - day, now - day + minutes(1)),), resolved=now - day + minutes(240),
        tasks=((carol, True),),
    )  # fmt: skip
    await seed(bot, 5, declared=now - minutes(20), severity=Severity.SEV4)  # open

    said = await reply_to(bot, "stats", user=alice)
    assert said.splitlines() == [
        "*Incidents in the last 30 days* (declared since 2026-10-26): 4 — "
        "SEV1 1 · SEV2 1 · SEV3 1 · SEV4 1",
        "*Time to acknowledge* (first page to first acknowledgement, 3 acknowledged): "
        "median 3 minutes, p90 7 minutes.",
        "*Time to resolve* (impact start to resolution, 3 resolved): median 2 hours, p90 4 hours.",
        "*Longest to resolve:* a private incident (4 hours).",
        f"*Open follow-up tasks* (all incidents): 4 — <@{bob}> 2 · <@{carol}> 1 · no owner 1",
    ]
    assert "INC-4" not in said

    # carol may see it named, from anywhere.
    said = await reply_to(bot, "stats 30d", user=carol)
    assert "*Longest to resolve:* INC-4 (4 hours)." in said

    said = await reply_to(bot, "stats 90d", user=alice, channel=secret)
    assert said.splitlines()[:3] == [
        "*Incidents in the last 90 days* (declared since 2026-08-27): 5 — "
        "SEV1 2 · SEV2 1 · SEV3 1 · SEV4 1",
        "*Time to acknowledge* (first page to first acknowledgement, 4 acknowledged): "
        "median 5 minutes, p90 30 minutes.",
        "*Time to resolve* (impact start to resolution, 4 resolved): median 3 hours, p90 5 hours.",
    ]
    assert "*Longest to resolve:* INC-1 (5 hours)." in said


async def test_stats_refuses_a_window_it_cannot_read(bot: BotHarness) -> None:
    alice = bot.emulator.add_user("alice")
    reply = await bot.command("stats last-month", user=alice)
    assert reply.status == 200
    assert reply.json()["text"].startswith(
        "`last-month` is not a window such as 30d or 90d: write `/incident stats [30d|90d]`."
    )
