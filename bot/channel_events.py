"""What happens in an incident channel without a command: 📌 on messages, people joining.

A 📌 puts a message on the timeline at its own time; the entry follows who still has a 📌 on
it, by Slack's own event times, so events handled by different processes end as Slack says.
Joins and leaves are system entries. A retried event (same id) changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.enums import EntryKind, EntrySource
from bot.core.lifecycle import TimelineEvent
from bot.db.models import TimelineEntry
from bot.db.repo import IncidentRepo
from bot.outbox import EffectKind, enqueue
from bot.services import Services
from bot.usecases import locked, transaction, ts_to_datetime


async def record_membership(
    services: Services, *, event_id: str, channel_id: str, user: str, joined: bool
) -> None:
    """A person joined or left an incident channel: a system entry, once per event."""
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        incident = await repo.by_channel(channel_id)
        if incident is None or not await repo.first_delivery(event_id, at=services.clock.now()):
            return
        now = services.clock.now()
        kind = EntryKind.JOINED if joined else EntryKind.LEFT
        text = f"<@{user}> {'joined' if joined else 'left'} the channel"
        repo.record(
            incident,
            [TimelineEvent(kind, now, text, user)],
            recorded_at=now,
            source=EntrySource.SYSTEM,
        )


async def set_pin(
    services: Services,
    *,
    event_id: str,
    channel_id: str,
    ts: str,
    user: str,
    present: bool,
    author: str | None,
    event_at: datetime | None,
) -> None:
    """A 📌 added (`present`) or removed: the message is on the timeline at its own time while
    anyone still has a 📌 on it, and retracted (kept) when the last one is taken away.

    Each person's latest event (by Slack's own event time) says whether they hold a 📌, so an
    add and a remove handled by two processes in either order end the same way. The incident's
    row lock makes concurrent events on one incident take turns.
    """
    now = services.clock.now()
    event_at = event_at or now
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        found = await repo.by_channel(channel_id)
        if found is None or found.id is None:
            return
        incident = await locked(session, found.id)
        if not await repo.first_delivery(event_id, at=now):
            return
        assert incident.id is not None
        if not await repo.hold_pin(
            incident.id, ts=ts, user=user, present=present, event_at=event_at
        ):
            return  # an older event than the one already applied for this person
        pinners = await repo.pinners(incident.id, ts)
        existing = await repo.message_entry(incident.id, ts)
        if not pinners:
            if existing is not None and existing.retracted_at is None:
                existing.pinned_by = None
                existing.retracted_at = now
                existing.retracted_by = user
            return
        if existing is not None:
            existing.pinned_by = " ".join(pinners)
            existing.retracted_at = None
            existing.retracted_by = None
            return
        session.add(
            TimelineEntry(
                incident_id=incident.id,
                occurred_at=ts_to_datetime(ts),
                recorded_at=now,
                kind=EntryKind.PINNED,
                text="",
                author=author,
                source=EntrySource.PINNED_MESSAGE,
                slack_channel=channel_id,
                slack_ts=ts,
                pinned_by=" ".join(pinners),
            )
        )
        # The text is fetched right after, once: an edit made later does not change it.
        await enqueue(
            session,
            kind=EffectKind.CAPTURE_PIN,
            incident_id=incident.id,
            now=now,
            payload={"ts": ts, "pinned_by": pinners[0]},
        )
