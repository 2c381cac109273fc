"""The postmortem draft: gathered from what the bot recorded, rendered by the pure core."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.core.clock import format_time, humanize_duration
from bot.core.enums import EntryKind, FollowUpKind
from bot.core.issue_status import issue_parts
from bot.core.postmortem import PostmortemEntry, PostmortemFacts, TaskItem, render_postmortem
from bot.db.models import FollowUp, Incident
from bot.db.repo import FollowUpRepo, IncidentRepo, PageRepo, PeopleRepo
from bot.errors import UserError
from bot.outbox import EffectKind, enqueue
from bot.services import Services
from bot.usecases import Asked, Reply, find_incident, transaction

MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class Draft:
    """A rendered postmortem and what it is about."""

    incident: Incident
    markdown: str
    people: frozenset[str]

    @property
    def filename(self) -> str:
        return f"{self.incident.ref}-postmortem.md"


async def incident_id_of(services: Services, number: int) -> int:
    """The id of INC-<number>, or UserError."""
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_number(number)
    if incident is None or incident.id is None:
        raise UserError(f"There is no incident INC-{number}.")
    return incident.id


async def draft(services: Services, *, incident_id: int, refresh_names: bool = False) -> Draft:
    """Render the postmortem from the database (names as last seen, or looked up first)."""
    async with services.sessions() as session:
        repo = IncidentRepo(session)
        incident = await repo.by_id(incident_id)
        assert incident is not None
        entries = await repo.timeline(incident_id)
        roles = await repo.roles(incident_id)
        follow_ups = await FollowUpRepo(session).of_incident(incident_id)
        pages = await PageRepo(session).of_incident(incident_id)
        people = _people(
            [e.author for e in entries],
            [u for holders in roles.values() for u in holders],
            [f.owner for f in follow_ups],
            *(MENTION.findall(e.text) for e in entries),
        )
        mentioned = set(people)
        for text in (incident.impact, incident.root_cause, incident.resolution, incident.title):
            mentioned.update(MENTION.findall(text or ""))
        for item in follow_ups:
            mentioned.update(MENTION.findall(item.text))
    if refresh_names:
        await remember_names(services, mentioned)
    async with services.sessions() as session:
        names = await PeopleRepo(session).names(mentioned)
    acks = [p.acknowledged_at - p.created_at for p in pages if p.acknowledged_at is not None]
    facts = PostmortemFacts(
        ref=incident.ref,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        declared_at=incident.declared_at,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        impact=incident.impact,
        root_cause=incident.root_cause,
        resolution=incident.resolution,
        commander=next(iter(roles.get("commander", [])), None),
        people=tuple(sorted(people, key=lambda u: (names.get(u) or u).lower())),
        time_to_acknowledge=min(acks) if acks else None,
        measures=tuple(f.text for f in follow_ups if f.kind is FollowUpKind.MEASURE),
        tasks=tuple(_task_item(f) for f in follow_ups if f.kind is FollowUpKind.TASK),
    )
    timeline = [
        PostmortemEntry(
            occurred_at=e.occurred_at,
            kind=EntryKind(e.kind),
            text=e.text,
            author=e.author,
            group=e.alert_group,
        )
        for e in entries
    ]
    markdown = render_postmortem(
        facts, timeline, tz=services.settings.timezone, names=names, now=services.clock.now()
    )
    return Draft(incident=incident, markdown=markdown, people=frozenset(mentioned))


async def remember_names(services: Services, user_ids: Iterable[str]) -> None:
    """Look people up in Slack and remember their display names."""
    found: dict[str, str] = {}
    for user_id in sorted(set(user_ids)):
        user = await services.directory.user(user_id)
        if user is None:
            continue
        profile = user.get("profile") or {}
        name = profile.get("display_name") or user.get("real_name") or user.get("name")
        if name:
            found[user_id] = str(name)[:200]
    if not found:
        return
    async with services.sessions() as session, session.begin():
        people = PeopleRepo(session)
        for user_id, name in found.items():
            await people.remember(user_id, name, at=services.clock.now())


def _people(*groups: Iterable[str | None]) -> set[str]:
    return {user for group in groups for user in group if user}


def summary(document: Draft, *, tz: ZoneInfo) -> str:
    """The short message posted with the uploaded draft."""
    incident = document.incident
    began = incident.started_at or incident.declared_at
    if incident.resolved_at is None:
        state = f"ongoing since {format_time(began, tz, with_date=True)} (DRAFT)"
    else:
        state = f"lasted {humanize_duration(incident.resolved_at - began)}"
    return (
        f":memo: Postmortem draft for *{incident.ref}*: {state}. "
        "Fill in what is missing with `/incident impact|cause|resolution|measure|task …` "
        "and ask for a new draft with `/incident postmortem`."
    )


async def request_upload(services: Services, *, asked: Asked) -> Reply:
    """`/incident postmortem`: the draft is uploaded to the incident's channel."""
    incident_id = await find_incident(services, asked=asked)
    async with transaction(services) as session:
        incident = await IncidentRepo(session).by_id(incident_id)
        assert incident is not None
        await enqueue(
            session,
            kind=EffectKind.UPLOAD_POSTMORTEM,
            incident_id=incident_id,
            now=services.clock.now(),
        )
    where = f"<#{incident.channel_id}>" if incident.channel_id else "its channel"
    return Reply(f"The postmortem draft of {incident.ref} is on its way to {where}.")


def _task_item(task: FollowUp) -> TaskItem:
    issue = issue_parts(
        tracker=task.tracker, state=task.issue_state, key=task.issue_key, error=task.issue_error
    )
    return TaskItem(
        text=task.text,
        owner=task.owner,
        due=task.due,
        done=task.done_at is not None,
        issue=issue[0] if issue else None,
        issue_url=task.issue_url if issue and issue[1] else None,
        issue_state=issue[1] if issue else None,
    )
