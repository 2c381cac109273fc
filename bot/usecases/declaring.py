"""Declaring an incident: the incident, its first entries and the calls it owes, in one
transaction (the channel's calls run as soon as it commits)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import grammar
from bot.core.enums import EntryKind, EntrySource, Status
from bot.core.lifecycle import COMMANDER_ROLE, TimelineEvent, severity_label
from bot.db.models import Incident, TimelineEntry
from bot.db.repo import IncidentRepo
from bot.errors import UserError
from bot.logs import about_incident
from bot.outbox import EffectKind, enqueue
from bot.services import Services
from bot.slack import blocks
from bot.usecases.finding import is_person
from bot.usecases.recording import transaction, ts_to_datetime
from bot.usecases.requests import Declaration, Origin, Plan, Reply

log = logging.getLogger(__name__)


async def declare(
    services: Services,
    *,
    actor: str,
    declaration: Declaration,
    response_url: str | None = None,
    playbook: str | None = None,
    plan: Plan | None = None,
) -> Reply:
    """Open an incident: the record at once, the channel and card right after.

    `plan` runs in the same transaction right after the channel is asked for and before
    anything cosmetic: the playbook's pages and timers go there, so they leave first.
    """
    title = declaration.title.strip()
    if not title:
        raise UserError(f"Give the incident a title: `{grammar.USAGE['declare']}`.")
    now = services.clock.now()
    severity, impact = declaration.severity, declaration.impact
    for attempt in range(10):
        try:
            async with transaction(services) as session:
                repo = IncidentRepo(session)
                incident = await repo.add(
                    Incident(
                        number=await repo.next_number(),
                        title=title,
                        severity=severity,
                        status=Status.INVESTIGATING,
                        private=declaration.private,
                        service=declaration.service,
                        impact=impact.strip() if impact else None,
                        playbook=playbook,
                        declared_by=actor,
                        declared_at=now,
                        started_at=declaration.started_at,
                    )
                )
                about_incident(incident.ref)
                await _record_declaration(
                    session, services, incident, declaration.origin, response_url, plan
                )
            break
        except IntegrityError:
            # Two declarations took the same number at once; the loser takes the next one.
            if attempt == 9:
                raise
    services.metrics.inc("incidents_declared_total", source=declaration.source)
    log.info("declared (%s, from %s) by %s", severity.value, declaration.source, actor)
    shown = f"*{incident.ref}* ({severity_label(severity)}): {blocks.escape_mrkdwn(title)}"
    return Reply(f"Declared {shown}. Opening its channel now…")


async def _record_declaration(
    session: AsyncSession,
    services: Services,
    incident: Incident,
    origin: Origin | None,
    response_url: str | None,
    plan: Plan | None,
) -> None:
    repo = IncidentRepo(session)
    now = incident.declared_at
    actor = incident.declared_by
    assert incident.id is not None
    sev = severity_label(incident.severity)
    # A monitoring system (an alert route) declares too; it is nobody to invite or tell.
    person = is_person(actor)
    by = "" if person else f" by {actor}"
    events = [
        TimelineEvent(
            EntryKind.DECLARED,
            now,
            f"Incident declared{by} ({sev}): {incident.title}",
            actor if person else None,
        )
    ]
    repo.record(incident, events, recorded_at=now)
    if origin is not None:
        session.add(
            TimelineEntry(
                incident_id=incident.id,
                occurred_at=ts_to_datetime(origin.ts),
                recorded_at=now,
                kind=EntryKind.PINNED,
                text=origin.text,
                author=origin.user,
                source=EntrySource.PINNED_MESSAGE,
                slack_channel=origin.channel_id,
                slack_ts=origin.ts,
                permalink=origin.permalink,
            )
        )
    if person:
        await repo.assign(
            incident.id, role=COMMANDER_ROLE, user_id=actor, by=actor, at=now, new=True
        )
    # The channel first (every lane waits for it), then, in their own lanes, the channel made
    # ready and the playbook's pages: neither waits for the other. They are claimed here as
    # they are written, and run by this process as soon as this commits.
    services.effects.adopt(session, incident)
    await enqueue(session, kind=EffectKind.CREATE_CHANNEL, incident_id=incident.id, now=now)
    await enqueue(
        session,
        kind=EffectKind.SET_UP_CHANNEL,
        incident_id=incident.id,
        now=now,
        payload={"users": [actor] if person else []},
    )
    if plan is not None:
        await plan(session, incident)
    await enqueue(session, kind=EffectKind.SET_TOPIC, incident_id=incident.id, now=now)
    if person:
        await enqueue(
            session,
            kind=EffectKind.TELL_DECLARER,
            incident_id=incident.id,
            now=now,
            payload={"response_url": response_url},
        )
    if not incident.private and services.settings.INCIDENTS_CHANNEL:
        await enqueue(
            session,
            kind=EffectKind.ANNOUNCE,
            incident_id=incident.id,
            now=now,
            payload={"event": "declared"},
        )
