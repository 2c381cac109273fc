"""How a use case records: one transaction, its timeline entries posted to the channel, the
incident's row taken in turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import format_time
from bot.core.lifecycle import IncidentState, TimelineEvent
from bot.db.models import Incident
from bot.db.repo import IncidentRepo
from bot.logs import about_incident
from bot.outbox import (
    ADOPTED_EFFECTS,
    OWED,
    TO_INCIDENT,
    WRITES_ADOPTED,
    EffectKind,
    enqueue,
    enqueue_post,
    write_adopted,
)
from bot.services import Services
from bot.slack import blocks


@asynccontextmanager
async def transaction(services: Services) -> AsyncIterator[AsyncSession]:
    """One transaction; the side-effect runner is woken once it has committed.

    The first transaction of the work after a request's ack also marks that request done in
    the inbox, in the same commit: recorded work is never redone by a recovering process.
    """
    async with services.sessions() as session, session.begin():
        session.info[WRITES_ADOPTED] = True
        ticket = await services.inbox.consume(session)
        yield session
        await write_adopted(session)
        await services.effects.before_commit(session)
    if ticket is not None:
        ticket.consumed = True
    adopted = session.info.get(ADOPTED_EFFECTS)
    if adopted:
        services.effects.run_adopted(session)
    if not adopted or session.info.get(OWED):
        services.effects.kick()
    else:
        await asyncio.sleep(0)  # the adopted calls leave before the rest of the work goes on


def ts_to_datetime(ts: str) -> datetime:
    """A Slack message ts ("1700000000.000100") as an aware UTC datetime."""
    return datetime.fromtimestamp(float(Decimal(ts)), UTC)


def state_of(incident: Incident, commander: str | None) -> IncidentState:
    return IncidentState(
        status=incident.status,
        severity=incident.severity,
        declared_at=incident.declared_at,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        commander=commander,
    )


def time_shown(services: Services, at: datetime) -> str:
    """`10:25 AM PST`, with the date when it was not today (a note backdated to yesterday)."""
    tz = services.settings.timezone
    today = services.clock.now().astimezone(tz).date()
    return format_time(at, tz, with_date=at.astimezone(tz).date() != today)


def stamp(services: Services, event: TimelineEvent) -> str:
    when = time_shown(services, event.occurred_at)
    by = f" — <@{event.author}>" if event.author else ""
    return f"`{when}` {blocks.escape_mrkdwn(event.text)}{by}"


async def post(
    session: AsyncSession,
    services: Services,
    incident: Incident,
    text: str,
    *,
    to: str = TO_INCIDENT,
) -> None:
    await enqueue_post(session, incident_id=incident.id, now=services.clock.now(), to=to, text=text)


async def sync_card(session: AsyncSession, services: Services, incident: Incident) -> None:
    await enqueue(
        session, kind=EffectKind.SYNC_CARD, incident_id=incident.id, now=services.clock.now()
    )


async def locked(session: AsyncSession, incident_id: int) -> Incident:
    """The incident's row, locked for this transaction: changes to one incident take turns."""
    incident = await IncidentRepo(session).by_id(incident_id, for_update=True)
    assert incident is not None  # incidents are never deleted
    about_incident(incident.ref)
    return incident
