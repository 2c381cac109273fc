"""Use cases: one function per thing a person or another system asks for.

Each one records first (the incident, its timeline and the Slack calls it owes, in one
transaction) and only then acts: the side-effect runner makes the Slack calls after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import grammar
from bot.core.clock import format_time, humanize_duration
from bot.core.enums import EntryKind, EntrySource, Severity, Status
from bot.core.lifecycle import (
    COMMANDER_ROLE,
    AssignRole,
    Change,
    ChangeSeverity,
    ChangeStatus,
    IncidentState,
    Resolve,
    SetStarted,
    TimelineEvent,
    apply,
    may_apply,
    privilege_error,
    severity_label,
    status_label,
)
from bot.core.paging_plan import postmortem_due_at, status_reminder_at
from bot.db.models import Incident, TimelineEntry
from bot.db.repo import IncidentRepo
from bot.errors import UserError
from bot.logs import about_incident
from bot.outbox import (
    ADOPTED_EFFECTS,
    ADOPTED_INCIDENTS,
    OWED,
    TO_INCIDENT,
    WRITES_ADOPTED,
    EffectKind,
    enqueue,
    enqueue_cancel,
    enqueue_post,
    enqueue_timer,
    write_adopted,
)
from bot.services import Services
from bot.slack import blocks
from bot.timers import TimerKind, postmortem_key, status_key, while_open_prefixes

log = logging.getLogger(__name__)

# Roles a person can be given until playbooks name their own.
KNOWN_ROLES = frozenset({COMMANDER_ROLE, "deputy", "scribe", "comms", "ops", "liaison", "lead"})


@dataclass(frozen=True)
class Reply:
    """What the person who asked sees, privately."""

    text: str
    blocks: list[dict[str, Any]] | None = None


# Extra steps of a declaration, run inside its transaction (the playbook's paging plan).
Plan = Callable[[AsyncSession, Incident], Awaitable[None]]


@dataclass(frozen=True)
class Origin:
    """A Slack message an incident was declared from; it becomes the first timeline entry."""

    channel_id: str
    ts: str
    user: str | None
    text: str
    permalink: str | None = None


@dataclass(frozen=True)
class Declaration:
    """What someone declares: from `/incident declare`, the form, or the message shortcut."""

    title: str
    severity: Severity = Severity.SEV3
    private: bool = False
    service: str | None = None
    impact: str | None = None
    origin: Origin | None = None
    source: str = "command"  # command, form, shortcut, alert
    started_at: datetime | None = None  # when impact began, if known (an alert's startsAt)


@dataclass(frozen=True)
class Asked:
    """Who asks, about which incident: named (INC-7), or the one whose channel they are in."""

    actor: str
    number: int | None = None
    channel_id: str | None = None


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
    if ticket is not None:
        ticket.consumed = True
    adopted = session.info.get(ADOPTED_EFFECTS)
    if adopted:
        services.effects.run_adopted(adopted, session.info.get(ADOPTED_INCIDENTS, []))
    if not adopted or session.info.get(OWED):
        services.effects.kick()
    else:
        await asyncio.sleep(0)  # the adopted calls leave before the rest of the work goes on


def ts_to_datetime(ts: str) -> datetime:
    """A Slack message ts ("1700000000.000100") as an aware UTC datetime."""
    return datetime.fromtimestamp(float(Decimal(ts)), UTC)


def _state(incident: Incident, commander: str | None) -> IncidentState:
    return IncidentState(
        status=incident.status,
        severity=incident.severity,
        declared_at=incident.declared_at,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        commander=commander,
    )


def _when(services: Services, at: datetime) -> str:
    """`10:25 AM PST`, with the date when it was not today (a note backdated to yesterday)."""
    tz = services.settings.timezone
    today = services.clock.now().astimezone(tz).date()
    return format_time(at, tz, with_date=at.astimezone(tz).date() != today)


def _stamp(services: Services, event: TimelineEvent) -> str:
    when = _when(services, event.occurred_at)
    by = f" — <@{event.author}>" if event.author else ""
    return f"`{when}` {blocks.escape_mrkdwn(event.text)}{by}"


async def _post(
    session: AsyncSession,
    services: Services,
    incident: Incident,
    text: str,
    *,
    to: str = TO_INCIDENT,
) -> None:
    await enqueue_post(session, incident_id=incident.id, now=services.clock.now(), to=to, text=text)


async def _sync_card(session: AsyncSession, services: Services, incident: Incident) -> None:
    await enqueue(
        session, kind=EffectKind.SYNC_CARD, incident_id=incident.id, now=services.clock.now()
    )


# -- finding the incident a command is about ----------------------------------------------


async def _find(services: Services, *, asked: Asked) -> int:
    """The id of the incident named (or whose channel this is), if the actor may see it."""
    async with services.sessions() as session:
        repo = IncidentRepo(session)
        if asked.number is not None:
            incident = await repo.by_number(asked.number)
            missing = f"There is no incident INC-{asked.number}."
        else:
            incident = await repo.by_channel(asked.channel_id) if asked.channel_id else None
            missing = (
                "This is not an incident channel: name the incident first, "
                "e.g. `/incident INC-7 note …`, or see `/incident list`."
            )
    if incident is None or incident.id is None:
        raise UserError(missing)
    if incident.private and incident.channel_id != asked.channel_id:
        # Outside a private incident's channel, it does not exist for non-members.
        member = incident.channel_id is not None and await services.directory.is_member(
            incident.channel_id, asked.actor
        )
        if not member:
            raise UserError(f"There is no incident INC-{incident.number}.")
    about_incident(incident.ref)
    return incident.id


async def _admins(services: Services, incident_id: int) -> frozenset[str]:
    """The people the incident's playbook names as admins (user ids)."""
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
    playbook = services.playbook(incident.playbook) if incident else None
    people: set[str] = set()
    for target in playbook.admins if playbook else ():
        people.update(await services.directory.members(target))
    return frozenset(people)


async def locked(session: AsyncSession, incident_id: int) -> Incident:
    """The incident's row, locked for this transaction: changes to one incident take turns."""
    incident = await IncidentRepo(session).by_id(incident_id, for_update=True)
    assert incident is not None  # incidents are never deleted
    about_incident(incident.ref)
    return incident


# -- declare ------------------------------------------------------------------------------


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


# -- changes through the state machine ----------------------------------------------------


async def _change(
    services: Services,
    *,
    asked: Asked,
    make: Callable[[datetime], Change],
) -> tuple[Incident, list[TimelineEvent]]:
    incident_id = await _find(services, asked=asked)
    admins = await _admins(services, incident_id)
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        incident = await locked(session, incident_id)
        now = services.clock.now()
        state = _state(incident, await repo.commander(incident_id))
        change = make(now)
        if not may_apply(change, state, actor_is_admin=asked.actor in admins):
            raise privilege_error(change, state, ref=incident.ref)
        new, events = apply(state, change, ref=incident.ref, tz=services.settings.timezone)
        incident.status = new.status
        incident.severity = new.severity
        incident.started_at = new.started_at
        incident.resolved_at = new.resolved_at
        incident.version += 1
        repo.record(incident, events, recorded_at=now)
        if isinstance(change, AssignRole):
            await repo.assign(
                incident_id, role=change.role, user_id=change.user_id, by=asked.actor, at=now
            )
            await enqueue(
                session,
                kind=EffectKind.INVITE,
                incident_id=incident_id,
                now=now,
                payload={"users": [change.user_id]},
            )
        for event in events:
            await _post(session, services, incident, _stamp(services, event))
        # Only the change that resolves or reopens is news; a later edit to a resolved
        # incident (its start time, a role) must not post or announce the resolution again.
        resolved_now = any(e.kind is EntryKind.RESOLVED for e in events)
        if resolved_now:
            await _post(session, services, incident, _resolution_summary(services, incident))
        await _sync_card(session, services, incident)
        if resolved_now:
            await _after_resolution(session, services, incident)
        elif any(e.kind in {EntryKind.REOPENED, EntryKind.SEVERITY} for e in events):
            await reset_status_reminder(session, services, incident)
        if resolved_now or any(e.kind is EntryKind.REOPENED for e in events):
            if not incident.private and services.settings.INCIDENTS_CHANNEL:
                await enqueue(
                    session,
                    kind=EffectKind.ANNOUNCE,
                    incident_id=incident_id,
                    now=now,
                    payload={"event": incident.status.value},
                )
    log.info("recorded %s by %s", ", ".join(e.kind.value for e in events) or "nothing", asked.actor)
    return incident, events


async def change_status(
    services: Services,
    *,
    asked: Asked,
    status: Status,
    at: datetime | None,
    text: str | None,
) -> Reply:
    """Move the incident to another status (resolving and reopening included)."""
    incident, _ = await _change(
        services,
        asked=asked,
        make=lambda now: ChangeStatus(status, at or now, asked.actor, text),
    )
    if incident.status is Status.RESOLVED:
        return _resolved_reply(incident)
    return Reply(f"{incident.ref} is now *{status_label(incident.status)}*.")


async def resolve(
    services: Services,
    *,
    asked: Asked,
    at: datetime | None,
    text: str | None,
) -> Reply:
    """Resolve at `at` or now; ask for the impact and cause still missing."""
    incident, _ = await _change(
        services,
        asked=asked,
        make=lambda now: Resolve(at or now, asked.actor, text),
    )
    return _resolved_reply(incident)


async def _after_resolution(session: AsyncSession, services: Services, incident: Incident) -> None:
    """The fire is out: pagers closed, timers stopped, the draft posted, its due date set."""
    assert incident.id is not None and incident.resolved_at is not None
    now = services.clock.now()
    for kind in (EffectKind.RESOLVE_PAGES, EffectKind.UPLOAD_POSTMORTEM):
        await enqueue(session, kind=kind, incident_id=incident.id, now=now)
    await enqueue_cancel(
        session, incident_id=incident.id, prefixes=while_open_prefixes(incident.id), now=now
    )
    playbook = services.playbook(incident.playbook)
    due = postmortem_due_at(playbook, resolved_at=incident.resolved_at) if playbook else None
    if due is not None:
        await enqueue_timer(
            session,
            incident_id=incident.id,
            kind=TimerKind.POSTMORTEM_DUE,
            key=postmortem_key(incident.id),
            at=due,
            payload={"incident_id": incident.id},
            now=now,
        )


async def reset_status_reminder(
    session: AsyncSession, services: Services, incident: Incident, *, at: datetime | None = None
) -> None:
    """The next status-update reminder at `at`, or one interval (for the severity) from now."""
    playbook = services.playbook(incident.playbook)
    now = services.clock.now()
    due = status_reminder_at(playbook, severity=incident.severity, now=now) if playbook else None
    if due is None or incident.id is None or incident.status is Status.RESOLVED:
        return
    await enqueue_timer(
        session,
        incident_id=incident.id,
        kind=TimerKind.STATUS_REMINDER,
        key=status_key(incident.id),
        at=at or due,
        payload={"incident_id": incident.id},
        now=now,
    )


def _resolution_summary(services: Services, incident: Incident) -> str:
    assert incident.resolved_at is not None
    tz = services.settings.timezone
    began = incident.started_at or incident.declared_at
    crosses = began.astimezone(tz).date() != incident.resolved_at.astimezone(tz).date()
    lines = [
        f":white_check_mark: *{incident.ref} resolved* after "
        f"{humanize_duration(incident.resolved_at - began)} "
        f"({format_time(began, tz, with_date=crosses)} to "
        f"{format_time(incident.resolved_at, tz, with_date=crosses)}), "
        f"{severity_label(incident.severity)}.",
    ]
    for label, value in (
        ("Impact", incident.impact),
        ("Root cause", incident.root_cause),
        ("Resolution", incident.resolution),
    ):
        shown = blocks.escape_mrkdwn(value) if value else "_not recorded yet_"
        lines.append(f"*{label}:* {shown}")
    return "\n".join(lines)


def _resolved_reply(incident: Incident) -> Reply:
    missing = [
        f"`/incident {word} …`"
        for word, value in (("impact", incident.impact), ("cause", incident.root_cause))
        if not value
    ]
    text = f"{incident.ref} is resolved."
    if missing:
        text += " For the postmortem, still record " + " and ".join(missing) + "."
    return Reply(text)


async def change_severity(
    services: Services,
    *,
    asked: Asked,
    severity: Severity,
) -> Reply:
    """Raise or lower the severity (commander or incident admins)."""
    incident, _ = await _change(
        services,
        asked=asked,
        make=lambda now: ChangeSeverity(severity, now, asked.actor),
    )
    return Reply(f"{incident.ref} is now *{severity_label(incident.severity)}*.")


async def set_started(services: Services, *, asked: Asked, at: datetime) -> Reply:
    """Record when impact began."""
    incident, _ = await _change(
        services,
        asked=asked,
        make=lambda now: SetStarted(at, asked.actor),
    )
    shown = format_time(at, services.settings.timezone, with_date=True)
    return Reply(f"Impact on {incident.ref} started at {shown}.")


async def assign_role(
    services: Services,
    *,
    asked: Asked,
    role: str,
    user: grammar.UserRef,
) -> Reply:
    """Give a role to a person, who is invited to the channel."""
    role = role.lower()
    incident_id = await _find(services, asked=asked)
    async with services.sessions() as session:
        found = await IncidentRepo(session).by_id(incident_id)
    playbook = services.playbook(found.playbook) if found else None
    roles = KNOWN_ROLES | set(playbook.roles if playbook else ())
    if role not in roles:
        raise UserError(
            f"`{role}` is not a role here: use one of {', '.join(sorted(roles))} "
            f"(`{grammar.USAGE['role']}`)."
        )
    user_id = await services.directory.resolve(user)
    incident, _ = await _change(
        services,
        asked=asked,
        make=lambda now: AssignRole(role, user_id, now, asked.actor),
    )
    return Reply(f"<@{user_id}> is now {role} of {incident.ref}.")


# -- entries that do not change the state -------------------------------------------------


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
    incident_id = await _find(services, asked=asked)
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
        await _post(session, services, incident, _stamp(services, event))
        if announce and not incident.private and services.settings.INCIDENTS_CHANNEL:
            await enqueue(
                session,
                kind=EffectKind.ANNOUNCE,
                incident_id=incident_id,
                now=now,
                payload={"event": "update", "text": text, "author": asked.actor},
            )
        if field is not None:
            await _sync_card(session, services, incident)
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
    return Reply(f"Noted on {incident.ref}'s timeline at {_when(services, event.occurred_at)}.")


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


# -- reading ------------------------------------------------------------------------------


async def list_open(services: Services, *, actor: str) -> Reply:
    """Open incidents the actor may see."""
    async with services.sessions() as session:
        repo = IncidentRepo(session)
        rows = []
        for incident in await repo.open_incidents():
            assert incident.id is not None
            rows.append((incident, await repo.commander(incident.id)))
    visible = []
    for incident, commander in rows:
        if incident.private and not (
            incident.channel_id and await services.directory.is_member(incident.channel_id, actor)
        ):
            continue
        visible.append(
            blocks.ListedIncident(
                ref=incident.ref,
                title=incident.title,
                severity=incident.severity,
                status=incident.status,
                channel_id=incident.channel_id,
                declared_at=incident.declared_at,
                commander=commander,
            )
        )
    tz = services.settings.timezone
    text = f"{len(visible)} open incident(s)." if visible else "No open incidents."
    return Reply(text, blocks.incident_list_blocks(visible, tz=tz))


async def show_timeline(services: Services, *, asked: Asked) -> Reply:
    """The timeline so far, in the order things happened."""
    incident_id = await _find(services, asked=asked)
    async with services.sessions() as session:
        repo = IncidentRepo(session)
        incident = await repo.by_id(incident_id)
        entries = await repo.timeline(incident_id)
    assert incident is not None
    lines = [
        blocks.TimelineLine(
            occurred_at=e.occurred_at,
            kind=EntryKind(e.kind),
            text=e.text,
            author=e.author,
            permalink=e.permalink,
        )
        for e in entries
        if e.kind not in NOISE
    ]
    tz = services.settings.timezone
    return Reply(
        f"Timeline of {incident.ref}: {len(lines)} entries.",
        blocks.timeline_blocks(incident.ref, lines, tz=tz),
    )


NOISE = frozenset({EntryKind.JOINED, EntryKind.LEFT})


# -- what happens in the channel ----------------------------------------------------------


async def find_incident(
    services: Services,
    *,
    asked: Asked,
    incident_id: int | None = None,
) -> int:
    """The incident a request is about, if the actor may see it (by number, channel or id)."""
    if incident_id is None:
        return await _find(services, asked=asked)
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
    if incident is None:
        raise UserError("That incident no longer exists.")
    return await _find(services, asked=replace(asked, number=incident.number))


_PERSON = re.compile(r"^[UW][A-Z0-9]+$")


def is_person(actor: str) -> bool:
    """Whether an actor is a Slack user (not a monitoring system declaring on a route's behalf)."""
    return _PERSON.match(actor) is not None
