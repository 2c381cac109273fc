"""Queries, in one place: the use cases call these inside a transaction they own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.core.enums import EntrySource, Status
from bot.core.lifecycle import COMMANDER_ROLE, TimelineEvent
from bot.db.models import (
    Counter,
    FollowUp,
    Incident,
    Page,
    Person,
    PinHolder,
    ProcessedEvent,
    RoleAssignment,
    TimelineEntry,
)

INCIDENT_COUNTER = "incident"


class IncidentRepo:
    """Incidents, their timelines and roles. Never commits: the caller's transaction decides."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_number(self) -> int:
        """Take the next incident number; concurrent declarations queue on the counter's row.

        The increment is part of the caller's transaction, so a declaration that rolls back
        gives its number back and numbers stay contiguous.
        """
        taken = await self.session.execute(
            sa.update(Counter)
            .where(col(Counter.name) == INCIDENT_COUNTER)
            .values(value=col(Counter.value) + 1)
            .returning(col(Counter.value))
        )
        number = taken.scalar()
        if number is not None:
            return int(number)
        # A database created without the migration's seed row: start it from the incidents.
        result = await self.session.execute(sa.select(sa.func.max(Incident.number)))
        number = int(result.scalar() or 0) + 1
        self.session.add(Counter(name=INCIDENT_COUNTER, value=number))
        await self.session.flush()
        return number

    async def add(self, incident: Incident) -> Incident:
        self.session.add(incident)
        await self.session.flush()
        return incident

    async def by_number(self, number: int, *, for_update: bool = False) -> Incident | None:
        query = select(Incident).where(Incident.number == number)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalars().first()

    async def by_channel(self, channel_id: str, *, for_update: bool = False) -> Incident | None:
        query = select(Incident).where(Incident.channel_id == channel_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalars().first()

    async def by_id(self, incident_id: int, *, for_update: bool = False) -> Incident | None:
        query = select(Incident).where(Incident.id == incident_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalars().first()

    async def open_incidents(self) -> Sequence[Incident]:
        query = (
            select(Incident)
            .where(Incident.status != Status.RESOLVED)
            .order_by(col(Incident.number).desc())
        )
        return (await self.session.execute(query)).scalars().all()

    # -- timeline -------------------------------------------------------------------------

    def record(
        self,
        incident: Incident,
        events: Sequence[TimelineEvent],
        *,
        recorded_at: datetime,
        source: EntrySource = EntrySource.PERSON,
    ) -> list[TimelineEntry]:
        entries = [
            TimelineEntry(
                incident_id=_id(incident),
                occurred_at=event.occurred_at,
                recorded_at=recorded_at,
                kind=event.kind,
                text=event.text,
                author=event.author,
                source=source,
            )
            for event in events
        ]
        self.session.add_all(entries)
        return entries

    async def timeline(
        self, incident_id: int, *, include_retracted: bool = False
    ) -> list[TimelineEntry]:
        query = select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
        if not include_retracted:
            query = query.where(col(TimelineEntry.retracted_at).is_(None))
        query = query.order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
        return list((await self.session.execute(query)).scalars().all())

    async def message_entry(self, incident_id: int, slack_ts: str) -> TimelineEntry | None:
        query = select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id,
            TimelineEntry.source == EntrySource.PINNED_MESSAGE,
            TimelineEntry.slack_ts == slack_ts,
        )
        return (await self.session.execute(query)).scalars().first()

    async def hold_pin(
        self, incident_id: int, *, ts: str, user: str, present: bool, event_at: datetime
    ) -> bool:
        """Record a person's 📌 event; False when a later event of theirs is already applied."""
        holder = await self.session.get(PinHolder, (incident_id, ts, user), with_for_update=True)
        if holder is None:
            self.session.add(
                PinHolder(
                    incident_id=incident_id,
                    slack_ts=ts,
                    user_id=user,
                    present=present,
                    event_at=event_at,
                )
            )
        elif event_at >= holder.event_at:
            holder.present, holder.event_at = present, event_at
        else:
            return False
        await self.session.flush()
        return True

    async def pinners(self, incident_id: int, ts: str) -> list[str]:
        """Who has a 📌 on the message now, in the order they added it."""
        query = (
            select(PinHolder.user_id)
            .where(
                PinHolder.incident_id == incident_id,
                PinHolder.slack_ts == ts,
                col(PinHolder.present).is_(True),
            )
            .order_by(col(PinHolder.event_at), col(PinHolder.user_id))
        )
        return [str(user) for user in (await self.session.execute(query)).scalars()]

    # -- roles ----------------------------------------------------------------------------

    async def roles(self, incident_id: int) -> dict[str, list[str]]:
        query = (
            sa.select(col(RoleAssignment.role), col(RoleAssignment.user_id))
            .where(
                col(RoleAssignment.incident_id) == incident_id,
                col(RoleAssignment.ended_at).is_(None),
            )
            .order_by(col(RoleAssignment.id))
        )
        roles: dict[str, list[str]] = {}
        for role, user_id in (await self.session.execute(query)).all():
            roles.setdefault(role, []).append(user_id)
        return roles

    async def commander(self, incident_id: int) -> str | None:
        return next(iter((await self.roles(incident_id)).get(COMMANDER_ROLE, [])), None)

    async def assign(
        self,
        incident_id: int,
        *,
        role: str,
        user_id: str,
        by: str | None,
        at: datetime,
        new: bool = False,
    ) -> None:
        """Give the role to the user; the commander role has exactly one holder.

        `new`: the incident was created in this transaction, so nobody holds a role yet.
        """
        if not new:
            current = await self.session.execute(
                select(RoleAssignment).where(
                    RoleAssignment.incident_id == incident_id,
                    RoleAssignment.role == role,
                    col(RoleAssignment.ended_at).is_(None),
                )
            )
            holders = current.scalars().all()
            if role == COMMANDER_ROLE:
                for row in holders:
                    row.ended_at = at
            elif any(row.user_id == user_id for row in holders):
                return
        self.session.add(
            RoleAssignment(
                incident_id=incident_id, role=role, user_id=user_id, assigned_by=by, assigned_at=at
            )
        )

    # -- events ---------------------------------------------------------------------------

    async def first_delivery(self, event_id: str, *, at: datetime) -> bool:
        """Remember a Slack event id; False when it was seen before (a retried delivery)."""
        try:
            async with self.session.begin_nested():
                self.session.add(ProcessedEvent(event_id=event_id, received_at=at))
        except IntegrityError:
            return False
        return True


def _id(incident: Incident) -> int:
    assert incident.id is not None, "incident must be flushed before recording its timeline"
    return incident.id


class FollowUpRepo:
    """Measures and tasks of an incident."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_incident(self, incident_id: int) -> list[FollowUp]:
        query = (
            select(FollowUp)
            .where(FollowUp.incident_id == incident_id, col(FollowUp.removed_at).is_(None))
            .order_by(col(FollowUp.id))
        )
        return list((await self.session.execute(query)).scalars().all())

    async def by_id(self, follow_up_id: int, *, for_update: bool = False) -> FollowUp | None:
        query = select(FollowUp).where(FollowUp.id == follow_up_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalars().first()


class PeopleRepo:
    """Display names of Slack users as last seen."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        rows = await self.session.execute(select(Person).where(col(Person.user_id).in_(wanted)))
        return {row.user_id: row.name for row in rows.scalars()}

    async def remember(self, user_id: str, name: str, *, at: datetime) -> None:
        person = await self.session.get(Person, user_id)
        if person is None:
            self.session.add(Person(user_id=user_id, name=name, updated_at=at))
        elif person.name != name:
            person.name = name
            person.updated_at = at


class PageRepo:
    """Pages sent for an incident."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_incident(self, incident_id: int) -> list[Page]:
        query = select(Page).where(Page.incident_id == incident_id).order_by(col(Page.id))
        return list((await self.session.execute(query)).scalars().all())
