"""Changes through the state machine: status, severity, start, roles, and what resolving sets
off."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import grammar
from bot.core.clock import format_time, humanize_duration
from bot.core.enums import EntryKind, Severity, Status
from bot.core.lifecycle import (
    COMMANDER_ROLE,
    AssignRole,
    Change,
    ChangeSeverity,
    ChangeStatus,
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
from bot.db.models import Incident
from bot.db.repo import IncidentRepo
from bot.errors import UserError
from bot.outbox import EffectKind, enqueue, enqueue_cancel, enqueue_timer
from bot.services import Services
from bot.slack import blocks
from bot.timers import TimerKind, postmortem_key, status_key, while_open_prefixes
from bot.usecases.finding import admins_of, find
from bot.usecases.recording import locked, post, stamp, state_of, sync_card, transaction
from bot.usecases.requests import Asked, Reply

log = logging.getLogger(__name__)

# Roles a person can be given until playbooks name their own.
KNOWN_ROLES = frozenset({COMMANDER_ROLE, "deputy", "scribe", "comms", "ops", "liaison", "lead"})


async def _change(
    services: Services,
    *,
    asked: Asked,
    make: Callable[[datetime], Change],
) -> tuple[Incident, list[TimelineEvent]]:
    incident_id = await find(services, asked=asked)
    admins = await admins_of(services, incident_id)
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        incident = await locked(session, incident_id)
        now = services.clock.now()
        state = state_of(incident, await repo.commander(incident_id))
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
            await post(session, services, incident, stamp(services, event))
        # Only the change that resolves or reopens is news; a later edit to a resolved
        # incident (its start time, a role) must not post or announce the resolution again.
        resolved_now = any(e.kind is EntryKind.RESOLVED for e in events)
        if resolved_now:
            await post(session, services, incident, _resolution_summary(services, incident))
        await sync_card(session, services, incident)
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
    incident_id = await find(services, asked=asked)
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
