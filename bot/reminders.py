"""What timers do when they fire, and the side effects that set and cancel them.

A timer only names what to look at (an incident, a task); the handler reads the database as
it is now and does nothing when the reason is gone (resolved, acknowledged, task done).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import format_time, humanize_duration
from bot.core.enums import FollowUpKind, Status
from bot.core.lifecycle import severity_label
from bot.db.models import Incident, SideEffect
from bot.db.repo import FollowUpRepo, IncidentRepo
from bot.errors import UserError
from bot.logs import working_on
from bot.outbox import TO_INCIDENT, EffectKind, Executor, enqueue_post, owed_timer
from bot.paging import escalation
from bot.services import Services
from bot.slack import blocks
from bot.slack.ids import ActionId
from bot.timers import TimerKind, status_key
from bot.usecases import Reply, reset_status_reminder, transaction

log = logging.getLogger(__name__)


class Reminders:
    """Timer handling and timer side effects, bound to the services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def executors(self) -> dict[str, Executor]:
        return {EffectKind.SCHEDULE: self.schedule, EffectKind.CANCEL_TIMERS: self.cancel}

    async def schedule(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        await self.services.timers.schedule(
            TimerKind(payload["kind"]),
            key=str(payload["key"]),
            at=datetime.fromisoformat(str(payload["at"])),
            payload=payload.get("payload", {}),
        )

    async def cancel(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        for prefix in payload.get("prefixes", []):
            await self.services.timers.cancel_prefix(str(prefix))

    async def handle(self, kind: TimerKind, payload: Mapping[str, Any]) -> None:
        """The one entry point of every timer; its log lines name the incident it is about."""
        self.services.metrics.inc("timers_fired_total", kind=kind.value)
        with working_on(await self._ref(payload)):
            await self._handle(kind, payload)

    async def _ref(self, payload: Mapping[str, Any]) -> str | None:
        """INC-n of the incident a timer's payload names (directly, or through its task)."""
        async with self.services.sessions() as session:
            incident_id = payload.get("incident_id")
            if incident_id is None and payload.get("task_id") is not None:
                task = await FollowUpRepo(session).by_id(int(payload["task_id"]))
                incident_id = task.incident_id if task is not None else None
            if incident_id is None:
                return None
            incident = await IncidentRepo(session).by_id(int(incident_id))
        return incident.ref if incident is not None else None

    async def _handle(self, kind: TimerKind, payload: Mapping[str, Any]) -> None:
        if kind is TimerKind.ESCALATE:
            await escalation.escalate(
                self.services,
                incident_id=int(payload["incident_id"]),
                tier=int(payload["tier"]),
                actor=None,
            )
        elif kind is TimerKind.STATUS_REMINDER:
            await self.status_reminder(int(payload["incident_id"]))
        elif kind is TimerKind.CHECKLIST_NUDGE:
            await self.checklist_nudge(int(payload["incident_id"]))
        elif kind is TimerKind.POSTMORTEM_DUE:
            await self.postmortem_due(int(payload["incident_id"]))
        elif kind is TimerKind.TASK_OVERDUE:
            await self.task_overdue(int(payload["task_id"]))

    async def _say(self, incident_id: int, text: str, *, to: str = TO_INCIDENT) -> None:
        """One message, owed through the outbox (the channel, or a person by DM)."""
        async with transaction(self.services) as session:
            await enqueue_post(
                session, incident_id=incident_id, now=self.services.clock.now(), to=to, text=text
            )

    async def _open_incident(self, incident_id: int) -> Incident | None:
        async with self.services.sessions() as session:
            incident = await IncidentRepo(session).by_id(incident_id)
        if incident is None or incident.status is Status.RESOLVED:
            return None
        return incident

    async def status_reminder(self, incident_id: int) -> None:
        """Remind the channel, and record the next reminder in the same transaction.

        The incident's row is locked, so a Snooze waits for this (and then moves the timer set
        here, still owed by the outbox) or this waits for a Snooze (and finds the reminder
        moved later: that later timer reminds, not this one). An update given meanwhile moves
        it the same way.
        """
        async with transaction(self.services) as session:
            incident = await IncidentRepo(session).by_id(incident_id, for_update=True)
            if incident is None or incident.status is Status.RESOLVED:
                return
            playbook = self.services.playbook(incident.playbook)
            every = playbook.reminder_interval(incident.severity) if playbook else None
            if every is None:
                return
            now = self.services.clock.now()
            due = await next_status_reminder(session, self.services, incident_id)
            if due is not None and due > now:
                return  # moved since this timer was set; the timer at `due` reminds
            text = (
                f":alarm_clock: Time for a status update on {incident.ref} "
                f"({severity_label(incident.severity)}: every {humanize_duration(every)}): "
                "`/incident update …`"
            )
            await enqueue_post(
                session,
                incident_id=incident_id,
                now=now,
                text=text,
                blocks=snooze_blocks(text, incident_id),
            )
            await reset_status_reminder(session, self.services, incident, at=now + every)

    async def checklist_nudge(self, incident_id: int) -> None:
        incident = await self._open_incident(incident_id)
        playbook = self.services.playbook(incident.playbook) if incident else None
        if incident is None or playbook is None or not playbook.checklist:
            return
        text = blocks.checklist_text(f"Checklist for {incident.ref}", playbook.checklist)
        await self._say(incident_id, text)

    async def postmortem_due(self, incident_id: int) -> None:
        async with self.services.sessions() as session:
            repo = IncidentRepo(session)
            incident = await repo.by_id(incident_id)
            commander = await repo.commander(incident_id)
        if incident is None or incident.status is not Status.RESOLVED:
            return
        text = (
            f":memo: The postmortem of {incident.ref} is due today. "
            f"`/incident {incident.ref} postmortem` uploads the latest draft."
        )
        await self._say(incident_id, text, to=commander or incident.declared_by)

    async def task_overdue(self, task_id: int) -> None:
        async with self.services.sessions() as session:
            task = await FollowUpRepo(session).by_id(task_id)
            incident = await IncidentRepo(session).by_id(task.incident_id) if task else None
        if (
            task is None
            or incident is None
            or task.kind is not FollowUpKind.TASK
            or task.done_at is not None
            or task.removed_at is not None
            or task.owner is None
            or task.due is None
        ):
            return
        text = (
            f":hourglass: Your task from {incident.ref} was due {task.due.isoformat()}: "
            f"{blocks.escape_mrkdwn(task.text)} — `/incident {incident.ref} tasks` to complete it."
        )
        await self._say(task.incident_id, text, to=task.owner)


def snooze_blocks(text: str, incident_id: int) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": ActionId.SNOOZE_REMINDER.value,
                    "text": {"type": "plain_text", "text": "Snooze"},
                    "value": str(incident_id),
                }
            ],
        },
    ]


async def next_status_reminder(
    session: AsyncSession, services: Services, incident_id: int
) -> datetime | None:
    """When the incident's next status-update reminder is due; None when none is set.

    The outbox comes first: the timer a reminder, an update or a Snooze sets is committed there
    with it and reaches the job store only after the incident's earlier effects have run (the
    reminder's own post, however long Slack takes). The job store answers when nothing is owed.
    """
    key = status_key(incident_id)
    owed = await owed_timer(session, incident_id=incident_id, key=key)
    if owed is not None:
        return owed.at
    return await services.timers.when(key)


async def snooze(services: Services, *, incident_id: int, actor: str) -> Reply:
    """The Snooze button: the next reminder comes one interval later than it would have.

    Pushing the pending reminder back, rather than setting it one interval from now, is what
    makes Snooze do something when pressed just after a reminder: the next one was already
    due one interval later. "Pending" includes a timer still owed by the outbox (the reminder
    just posted, its next timer not yet stored) and a reminder due now whose timer has fired
    but not yet posted (it finds itself moved and stays quiet): the incident's row is locked,
    so a Snooze and a reminder never read the schedule at the same time.
    """
    async with transaction(services) as session:
        incident = await IncidentRepo(session).by_id(incident_id, for_update=True)
        if incident is None:
            raise UserError("That incident no longer exists.")
        if incident.status is Status.RESOLVED:
            return Reply("That incident is resolved; no more reminders.")
        playbook = services.playbook(incident.playbook)
        every = playbook.reminder_interval(incident.severity) if playbook else None
        if every is None:
            return Reply("This incident has no status-update reminders.")
        now = services.clock.now()
        due = await next_status_reminder(session, services, incident_id)
        at = max(due or now, now) + every
        await reset_status_reminder(session, services, incident, at=at)
    return Reply(f"Snoozed: the next reminder is at {format_time(at, services.settings.timezone)}.")
