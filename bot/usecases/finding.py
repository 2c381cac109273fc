"""The incident a request is about, and who may act on it."""

from __future__ import annotations

import re
from dataclasses import replace

from bot.db.repo import IncidentRepo
from bot.errors import UserError
from bot.logs import about_incident
from bot.services import Services
from bot.usecases.requests import Asked


async def find(services: Services, *, asked: Asked) -> int:
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


async def admins_of(services: Services, incident_id: int) -> frozenset[str]:
    """The people the incident's playbook names as admins (user ids)."""
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
    playbook = services.playbook(incident.playbook) if incident else None
    people: set[str] = set()
    for target in playbook.admins if playbook else ():
        people.update(await services.directory.members(target))
    return frozenset(people)


async def find_incident(
    services: Services,
    *,
    asked: Asked,
    incident_id: int | None = None,
) -> int:
    """The incident a request is about, if the actor may see it (by number, channel or id)."""
    if incident_id is None:
        return await find(services, asked=asked)
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
    if incident is None:
        raise UserError("That incident no longer exists.")
    return await find(services, asked=replace(asked, number=incident.number))


_PERSON = re.compile(r"^[UW][A-Z0-9]+$")


def is_person(actor: str) -> bool:
    """Whether an actor is a Slack user (not a monitoring system declaring on a route's behalf)."""
    return _PERSON.match(actor) is not None
