"""Follow-ups: corrective measures and specific tasks, the last two sections of a postmortem.

When the incident's playbook names a tracker (`followups:`), each task (and each measure,
with `measures: true`) is also filed there as an issue (`bot.followups.issues`), and changes
made in the tracker come back through its webhook (`bot.followups.tracker_events`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from bot.core import grammar
from bot.core.enums import FollowUpKind
from bot.core.playbooks import FollowUps
from bot.db.models import FollowUp
from bot.db.repo import FollowUpRepo, IncidentRepo
from bot.errors import UserError
from bot.followups.issues import issue_label, plan_filing, plan_sync, where
from bot.outbox import enqueue_timer
from bot.postmortems import remember_names
from bot.services import Services
from bot.slack import blocks
from bot.timers import TimerKind, task_key
from bot.usecases import Asked, Reply, find_incident, transaction


async def add_measure(services: Services, *, asked: Asked, text: str) -> Reply:
    """A corrective or preventative measure."""
    incident_id = await find_incident(services, asked=asked)
    async with transaction(services) as session:
        incident = await IncidentRepo(session).by_id(incident_id)
        assert incident is not None
        measure = FollowUp(
            incident_id=incident_id,
            kind=FollowUpKind.MEASURE,
            text=text,
            created_by=asked.actor,
            created_at=services.clock.now(),
        )
        session.add(measure)
        config = _followups(services, incident.playbook)
        filed = await plan_filing(session, services, measure, config)
    also = f" Its issue in {where(config)} is pending." if filed and config else ""
    return Reply(f"Measure added to {incident.ref}'s postmortem.{also}")


async def add_task(
    services: Services,
    *,
    asked: Asked,
    text: str,
    owner: grammar.UserRef | None,
    due: date | None,
    response_url: str | None = None,
) -> Reply:
    """A specific follow-up task, with an owner and a due date when given."""
    owner_id = await services.directory.resolve(owner) if owner is not None else None
    if owner_id is not None:
        # Remembered now, so a draft rendered without Slack (CLI, HTTP) shows the name too.
        await remember_names(services, [owner_id])
    today = services.clock.now().astimezone(services.settings.timezone).date()
    if due is not None and due < today:
        raise UserError(
            f"The due date {due.isoformat()} has passed: give today or a later date "
            f"(`{grammar.USAGE['task']}`)."
        )
    incident_id = await find_incident(services, asked=asked)
    async with transaction(services) as session:
        incident = await IncidentRepo(session).by_id(incident_id)
        assert incident is not None
        task = FollowUp(
            incident_id=incident_id,
            kind=FollowUpKind.TASK,
            text=text,
            owner=owner_id,
            due=due,
            created_by=asked.actor,
            created_at=services.clock.now(),
        )
        session.add(task)
        await session.flush()
        config = _followups(services, incident.playbook)
        filed = await plan_filing(session, services, task, config, response_url=response_url)
        if due is not None and owner_id is not None and task.id is not None:
            # Overdue: 9 AM (incident time zone) the day after the due date, unless done by then.
            at = datetime.combine(
                due + timedelta(days=1), time(9), tzinfo=services.settings.timezone
            )
            await enqueue_timer(
                session,
                incident_id=incident_id,
                kind=TimerKind.TASK_OVERDUE,
                key=task_key(task.id),
                at=at,
                payload={"task_id": task.id},
                now=services.clock.now(),
            )
    who = f", owner <@{owner_id}>" if owner_id else ""
    when = f", due {due.isoformat()}" if due else ""
    also = f" Its issue in {where(config)} is pending." if filed and config else ""
    return Reply(f"Task added to {incident.ref}{who}{when}.{also}")


async def list_tasks(services: Services, *, asked: Asked) -> Reply:
    """The tasks with buttons to complete or remove them."""
    incident_id = await find_incident(services, asked=asked)
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
        items = await FollowUpRepo(session).of_incident(incident_id)
    assert incident is not None
    tasks = [
        blocks.TaskLine(
            id=item.id or 0,
            text=item.text,
            owner=item.owner,
            due=item.due,
            done=item.done_at is not None,
            issue=issue_label(item),
            issue_url=item.issue_url,
        )
        for item in items
        if item.kind is FollowUpKind.TASK
    ]
    text = f"{incident.ref} has {len(tasks)} task(s)." if tasks else f"{incident.ref} has no tasks."
    return Reply(text, blocks.task_list_blocks(incident.ref, tasks))


async def finish_task(services: Services, *, task_id: int, asked: Asked, remove: bool) -> Reply:
    """Complete a task (or remove it); a completed task no longer reminds its owner."""
    async with services.sessions() as session:
        found = await FollowUpRepo(session).by_id(task_id)
    gone = UserError("That task no longer exists.")
    if found is None or found.removed_at is not None or found.kind is not FollowUpKind.TASK:
        raise gone
    try:
        await find_incident(services, asked=asked, incident_id=found.incident_id)
    except UserError:
        # A private incident's task is no task at all to an outsider: not even its incident.
        raise gone from None
    async with transaction(services) as session:
        task = await FollowUpRepo(session).by_id(task_id, for_update=True)
        assert task is not None
        now = services.clock.now()
        if remove:
            task.removed_at = now
        elif task.done_at is not None:
            raise UserError("That task is already done.")
        else:
            task.done_at = now
        await plan_sync(session, services, task)
    verb = "removed" if remove else "done"
    return Reply(f"Task {verb}: {blocks.escape_mrkdwn(task.text)}")


def _followups(services: Services, playbook: str | None) -> FollowUps | None:
    found = services.playbook(playbook)
    return found.followups if found is not None else None
