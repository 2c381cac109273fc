"""Changes made in the tracker: closing, reopening or dropping an issue moves its task.

One use case for both webhooks. A delivery seen before, an issue the bot did not file, and
the tracker's echo of the bot's own change (the task already says what the issue says) change
nothing; anything else is recorded on the timeline and said in the incident's channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import select

from bot.core.enums import EntryKind, EntrySource, FollowUpKind
from bot.core.issue_status import TRACKER_NAMES
from bot.core.lifecycle import TimelineEvent
from bot.db.models import FollowUp
from bot.db.repo import IncidentRepo
from bot.outbox import enqueue_post
from bot.services import Services
from bot.slack import blocks
from bot.trackers import IssueState
from bot.usecases import transaction


class Outcome(StrEnum):
    """What a tracker's event did, for the webhook's answer and the metrics."""

    DUPLICATE = "duplicate"  # a delivery seen before
    UNKNOWN = "unknown"  # not an issue the bot filed
    UNCHANGED = "unchanged"  # the echo of our own change, or nothing that moves a task
    COMPLETED = "completed"
    REOPENED = "reopened"
    DROPPED = "dropped"


@dataclass(frozen=True)
class IssueEvent:
    """An issue's new state, as a tracker's webhook reports it."""

    tracker: str  # github | jira
    delivery: str  # the provider's delivery id, the same on a redelivery
    issue_id: str
    key: str
    url: str | None
    state: IssueState
    by: str | None  # who did it, as the tracker names them


async def apply_issue_event(services: Services, *, event: IssueEvent) -> Outcome:
    """Complete, reopen or drop the task whose issue changed; once per delivery."""
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        now = services.clock.now()
        if not await repo.first_delivery(f"{event.tracker}:{event.delivery}"[:64], at=now):
            return Outcome.DUPLICATE
        query = (
            select(FollowUp)
            .where(FollowUp.tracker == event.tracker, FollowUp.issue_id == event.issue_id)
            .with_for_update()
        )
        task = (await session.execute(query)).scalars().first()
        if task is None:
            return Outcome.UNKNOWN
        task.issue_state = event.state.value
        task.issue_key = event.key or task.issue_key  # Jira keys change when issues move
        task.issue_url = event.url or task.issue_url
        outcome = Outcome.UNCHANGED
        if event.state is IssueState.OPEN and (task.done_at or task.removed_at):
            task.done_at = task.removed_at = None
            outcome = Outcome.REOPENED
        elif event.state is IssueState.COMPLETED and (task.done_at is None or task.removed_at):
            task.done_at, task.removed_at = task.done_at or now, None
            outcome = Outcome.COMPLETED
        elif event.state is IssueState.NOT_PLANNED and task.removed_at is None:
            task.removed_at = now
            outcome = Outcome.DROPPED
        if outcome is Outcome.UNCHANGED:
            return outcome
        incident = await repo.by_id(task.incident_id)
        assert incident is not None
        name = TRACKER_NAMES.get(event.tracker, event.tracker)
        verb = {
            Outcome.COMPLETED: "completed",
            Outcome.REOPENED: "reopened",
            Outcome.DROPPED: "dropped (closed as not planned)",
        }[outcome]
        by = f" by {event.by}" if event.by else ""
        what = "Measure" if task.kind is FollowUpKind.MEASURE else "Task"
        text = f"{what} “{task.text}” {verb} in {name} ({event.key}){by}"
        repo.record(
            incident,
            [TimelineEvent(EntryKind.FOLLOW_UP, now, text, None)],
            recorded_at=now,
            source=EntrySource.SYSTEM,
        )
        key = blocks.escape_mrkdwn(event.key)
        link = f"<{event.url}|{key}>" if event.url else key
        task_text = blocks.escape_mrkdwn(blocks.truncate(task.text, 200))
        by_text = f" by {blocks.escape_mrkdwn(event.by)}" if event.by else ""
        await enqueue_post(
            session,
            incident_id=incident.id,
            now=now,
            text=f":ticket: {what} _{task_text}_ {verb} in {name} ({link}){by_text}.",
        )
    return outcome
