"""The tables keep what the models promise, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.core.enums import EntrySource
from bot.db.engine import make_sessionmaker
from bot.db.models import Incident, ProcessedEvent, TimelineEntry

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
WHEN = datetime(2026, 3, 8, 1, 59, 30, 123456, tzinfo=LOS_ANGELES)  # just before the DST jump


def incident(number: int = 1, **fields: Any) -> Incident:
    values: dict[str, Any] = {"title": "Checkout is down", "declared_by": "U1", "declared_at": WHEN}
    values.update(fields)
    return Incident(number=number, **values)


def entry(incident_id: int, slack_ts: str | None, **fields: Any) -> TimelineEntry:
    values: dict[str, Any] = {
        "incident_id": incident_id,
        "occurred_at": WHEN,
        "recorded_at": WHEN,
        "kind": "pinned",
        "text": "rolled back deploy 4711",
        "source": EntrySource.PINNED_MESSAGE,
        "slack_ts": slack_ts,
    }
    values.update(fields)
    return TimelineEntry(**values)


async def saved_incident(session: AsyncSession, number: int = 1) -> int:
    row = incident(number)
    session.add(row)
    await session.commit()
    assert row.id is not None
    return row.id


async def test_aware_datetimes_come_back_equal_and_in_utc(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    incident_id = await saved_incident(session)

    async with make_sessionmaker(engine)() as fresh:
        loaded = await fresh.get_one(Incident, incident_id)

    assert loaded.declared_at == WHEN
    assert loaded.declared_at.tzinfo == UTC
    assert loaded.declared_at == datetime(2026, 3, 8, 9, 59, 30, 123456, tzinfo=UTC)
    assert loaded.started_at is None


async def test_comparisons_in_queries_use_utc(session: AsyncSession) -> None:
    await saved_incident(session)  # declared 09:59:30.123456 UTC

    async def declared_before(hour: int, minute: int) -> list[int]:
        bound = datetime(2026, 3, 8, hour, minute, tzinfo=UTC)
        found = await session.scalars(
            sa.select(Incident.number).where(Incident.declared_at < bound)
        )
        return list(found)

    assert await declared_before(9, 59) == []
    assert await declared_before(10, 0) == [1]


async def test_naive_datetimes_are_refused(session: AsyncSession) -> None:
    session.add(incident(declared_at=datetime(2026, 3, 8, 1, 59)))

    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


async def test_incident_numbers_are_unique(session: AsyncSession) -> None:
    await saved_incident(session, number=7)
    session.add(incident(number=7))

    with pytest.raises(IntegrityError):
        await session.commit()


async def test_a_message_is_one_timeline_entry(session: AsyncSession) -> None:
    incident_id = await saved_incident(session)
    session.add(entry(incident_id, "1700000000.000100"))
    await session.commit()

    session.add(entry(incident_id, "1700000000.000100", text="pinned again"))
    with pytest.raises(IntegrityError):
        await session.commit()


async def test_the_same_message_may_be_recorded_from_another_source(session: AsyncSession) -> None:
    incident_id = await saved_incident(session)
    session.add(entry(incident_id, "1700000000.000100"))
    session.add(entry(incident_id, "1700000000.000100", source=EntrySource.PERSON))

    await session.commit()


async def test_entries_without_a_message_never_collide(session: AsyncSession) -> None:
    incident_id = await saved_incident(session)
    for _ in range(3):
        session.add(entry(incident_id, None, source=EntrySource.SYSTEM))
    await session.commit()

    count = await session.scalar(sa.select(sa.func.count()).select_from(TimelineEntry))
    assert count == 3


async def test_foreign_keys_are_enforced(session: AsyncSession) -> None:
    session.add(entry(999, "1700000000.000100"))

    with pytest.raises(IntegrityError):
        await session.commit()


async def test_an_event_id_is_processed_once(session: AsyncSession) -> None:
    insert = sa.insert(ProcessedEvent).values(event_id="Ev123", received_at=WHEN)
    await session.execute(insert)
    await session.commit()

    with pytest.raises(IntegrityError):
        await session.execute(insert)
