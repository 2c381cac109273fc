"""Entries that do not change the incident's state: notes, the summary's fields, updates."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.core.enums import EntryKind
from bot.core.lifecycle import TimelineEvent
from bot.db.models import Incident
from bot.db.repo import IncidentRepo
from bot.outbox import EffectKind, enqueue
from bot.services import Services
from bot.usecases.changes import reset_status_reminder
from bot.usecases.finding import find
from bot.usecases.recording import locked, post, stamp, sync_card, time_shown, transaction
from bot.usecases.requests import Asked, Reply

log = logging.getLogger(__name__)


async def _add_entry(
    services: Services,
    *,
    asked: Asked,
    kind: EntryKind,
    text: str,
    at: datetime | None = None,
    field: str | None = None,
    value: str | None = None,
    announce: bool = False,
) -> tuple[Incident, TimelineEvent]:
    incident_id = await find(services, asked=asked)
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        incident = await locked(session, incident_id)
        now = services.clock.now()
        when = at or now  # a note may predate the declaration: that is how people backfill
        if field is not None:
            # The field holds the bare value; the entry's text may carry a label.
            setattr(incident, field, value if value is not None else text)
            incident.version += 1
        event = TimelineEvent(kind, when, text, asked.actor)
        repo.record(incident, [event], recorded_at=now)
        await post(session, services, incident, stamp(services, event))
        if announce and not incident.private and services.settings.INCIDENTS_CHANNEL:
            await enqueue(
                session,
                kind=EffectKind.ANNOUNCE,
                incident_id=incident_id,
                now=now,
                payload={"event": "update", "text": text, "author": asked.actor},
            )
        if field is not None:
            await sync_card(session, services, incident)
        if kind is EntryKind.UPDATE:
            await reset_status_reminder(session, services, incident)  # an update was just given
    log.info("recorded %s by %s", kind.value, asked.actor)
    return incident, event


async def add_note(
    services: Services,
    *,
    asked: Asked,
    text: str,
    at: datetime | None,
) -> Reply:
    """A timeline entry at the time it happened."""
    incident, event = await _add_entry(
        services,
        asked=asked,
        kind=EntryKind.NOTE,
        text=text,
        at=at,
    )
    return Reply(
        f"Noted on {incident.ref}'s timeline at {time_shown(services, event.occurred_at)}."
    )


SUMMARY_FIELDS = {"impact": "impact", "cause": "root_cause", "resolution": "resolution"}
SUMMARY_LABELS = {"impact": "Impact", "cause": "Root cause", "resolution": "Resolution"}


async def set_summary(
    services: Services,
    *,
    asked: Asked,
    which: str,
    text: str,
) -> Reply:
    """Impact, root cause or resolution for the postmortem summary."""
    label = SUMMARY_LABELS[which]
    incident, _ = await _add_entry(
        services,
        asked=asked,
        kind=EntryKind.SUMMARY,
        text=f"{label}: {text}",
        field=SUMMARY_FIELDS[which],
        value=text,
    )
    return Reply(f"{label} of {incident.ref} recorded.")


async def post_update(services: Services, *, asked: Asked, text: str) -> Reply:
    """A status update for the channel and the announcement channel."""
    incident, _ = await _add_entry(
        services,
        asked=asked,
        kind=EntryKind.UPDATE,
        text=text,
        announce=True,
    )
    where = "" if incident.private or not services.settings.INCIDENTS_CHANNEL else " and "
    where += f"<#{services.settings.INCIDENTS_CHANNEL}>" if where else ""
    return Reply(f"Update posted to {incident.ref}'s channel{where}.")
