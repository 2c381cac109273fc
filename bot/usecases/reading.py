"""Reading: the open incidents, and an incident's timeline."""

from __future__ import annotations

from bot.core.enums import EntryKind
from bot.db.repo import IncidentRepo
from bot.services import Services
from bot.slack import blocks
from bot.usecases.finding import find
from bot.usecases.requests import Asked, Reply


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
    incident_id = await find(services, asked=asked)
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
