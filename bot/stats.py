"""`/incident stats`: the figures of the incident process, gathered from the record."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core.enums import FollowUpKind, Status
from bot.core.postmortem import LEFT_OUT_KINDS
from bot.core.stats import IncidentFacts, compute, render_stats
from bot.db.models import FollowUp, Incident, Page, TimelineEntry
from bot.services import Services
from bot.usecases import Asked, Reply


async def show_stats(services: Services, *, asked: Asked, days: int = 30) -> Reply:
    """Incidents by severity, time to acknowledge and to resolve, open tasks by owner."""
    now = services.clock.now()
    window = timedelta(days=days)
    async with services.sessions() as session:
        incidents = await _incidents(session, since=now - window)
        owners = await _open_task_owners(session)
    stats = compute((facts for facts, _ in incidents.values()), owners, now=now, window=window)
    longest = stats.longest
    if longest is not None and longest.private and longest.ref is not None:
        channel = incidents[longest.ref][1]
        if not await _may_see(services, channel, asked=asked):
            stats = replace(stats, longest=replace(longest, ref=None))
    return Reply(render_stats(stats, tz=services.settings.timezone))


async def _may_see(services: Services, channel_id: str | None, *, asked: Asked) -> bool:
    """A private incident is named only to people in its channel."""
    if channel_id is None:
        return False
    if channel_id == asked.channel_id:
        return True
    return await services.directory.is_member(channel_id, asked.actor)


async def _incidents(
    session: AsyncSession, *, since: datetime
) -> dict[str, tuple[IncidentFacts, str | None]]:
    """The incidents declared since `since`, by INC-n, with their channels."""
    in_window = sa.select(col(Incident.id)).where(col(Incident.declared_at) >= since)
    pages = await session.execute(
        sa.select(
            col(Page.incident_id),
            sa.func.min(col(Page.created_at)),
            sa.func.min(col(Page.acknowledged_at)),
        )
        .where(col(Page.incident_id).in_(in_window))
        .group_by(col(Page.incident_id))
    )
    paged = {row[0]: (row[1], row[2]) for row in pages.all()}
    first_entries = await session.execute(
        sa.select(col(TimelineEntry.incident_id), sa.func.min(col(TimelineEntry.occurred_at)))
        .where(
            col(TimelineEntry.incident_id).in_(in_window),
            col(TimelineEntry.retracted_at).is_(None),
            col(TimelineEntry.kind).not_in([kind.value for kind in LEFT_OUT_KINDS]),
        )
        .group_by(col(TimelineEntry.incident_id))
    )
    first_entry = {row[0]: row[1] for row in first_entries.all()}
    rows = await session.execute(
        sa.select(Incident).where(col(Incident.declared_at) >= since).order_by(col(Incident.number))
    )
    found: dict[str, tuple[IncidentFacts, str | None]] = {}
    for incident in rows.scalars():
        assert incident.id is not None
        first_page_at, first_ack_at = paged.get(incident.id, (None, None))
        earliest = first_entry.get(incident.id)
        began = incident.started_at or min(earliest or incident.declared_at, incident.declared_at)
        resolved = incident.resolved_at if incident.status is Status.RESOLVED else None
        facts = IncidentFacts(
            ref=incident.ref,
            severity=incident.severity,
            declared_at=incident.declared_at,
            began_at=began,
            resolved_at=resolved,
            first_page_at=first_page_at,
            first_ack_at=first_ack_at,
            private=incident.private,
        )
        found[incident.ref] = (facts, incident.channel_id)
    return found


async def _open_task_owners(session: AsyncSession) -> list[str | None]:
    """The owner of every follow-up task neither done nor removed (None: nobody)."""
    rows = await session.execute(
        sa.select(col(FollowUp.owner)).where(
            col(FollowUp.kind) == FollowUpKind.TASK,
            col(FollowUp.done_at).is_(None),
            col(FollowUp.removed_at).is_(None),
        )
    )
    return [row[0] for row in rows.all()]
