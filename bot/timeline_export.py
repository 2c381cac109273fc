"""`python -m bot timeline INC-7`: an incident's whole timeline record, as text or JSON.

Text is the postmortem's own `* TIME: text` lines (bot/core/postmortem.py), with nothing left
out or summarised: people joining and leaving, summary fields and follow-ups included. JSON has
the same entries with everything recorded about each. Entries whose 📌 was taken away are no
longer on the timeline and are left out of both.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.enums import EntryKind
from bot.core.postmortem import PostmortemEntry, timeline_lines
from bot.db.models import TimelineEntry
from bot.db.repo import IncidentRepo, PeopleRepo
from bot.postmortems import MENTION, remember_names
from bot.services import Services

FORMATS = ("text", "json")


async def export_timeline(
    services: Services, *, incident_id: int, format: str = "text", refresh_names: bool = False
) -> str:
    """The timeline of the incident, every entry, in `format` (text or json)."""
    async with services.sessions() as session:
        repo = IncidentRepo(session)
        incident = await repo.by_id(incident_id)
        assert incident is not None
        entries = await repo.timeline(incident_id)  # in the order things happened
    people = {e.author for e in entries if e.author}
    for entry in entries:
        people.update(MENTION.findall(entry.text))
    if refresh_names:
        await remember_names(services, people)
    async with services.sessions() as session:
        names = await PeopleRepo(session).names(people)
    tz = services.settings.timezone
    if format == "json":
        document = {
            "incident": incident.ref,
            "title": incident.title,
            "timezone": tz.key,
            "entries": [_as_json(entry, names) for entry in entries],
        }
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    lines = timeline_lines(
        (
            PostmortemEntry(
                occurred_at=e.occurred_at, kind=EntryKind(e.kind), text=e.text, author=e.author
            )
            for e in entries
        ),
        tz=tz,
        names=names,
    )
    return "".join(line + "\n" for line in lines)


def _as_json(entry: TimelineEntry, names: dict[str, str]) -> dict[str, Any]:
    return {
        "occurred_at": _iso(entry.occurred_at),
        "recorded_at": _iso(entry.recorded_at),
        "kind": entry.kind,
        "source": entry.source.value,
        "text": entry.text,
        "author": entry.author,
        "author_name": names.get(entry.author) if entry.author else None,
        "permalink": entry.permalink,
        "slack_channel": entry.slack_channel,
        "slack_ts": entry.slack_ts,
        "pinned_by": entry.pinners(),
    }


def _iso(at: datetime) -> str:
    return at.isoformat()
