"""`/incident oncall [ROLE]`: who is on call now for each role that names a schedule.

Inside an incident (its channel, or `/incident INC-7 oncall`) the incident's playbook is read;
anywhere else, the default playbook. Answers come from the minute's cache when there is one.
"""

from __future__ import annotations

import asyncio

from bot.core.enums import Severity
from bot.core.playbooks import Playbook, select_playbook
from bot.db.repo import IncidentRepo
from bot.errors import UserError
from bot.oncall.base import SOURCE_NAMES
from bot.oncall.lookup import OnCallAnswer, in_slack, look_up
from bot.services import Services
from bot.slack.blocks import escape_mrkdwn
from bot.usecases import Asked, Reply, find_incident


async def _playbook_for(services: Services, asked: Asked) -> tuple[Playbook, str]:
    """The playbook asked about, and how to name it in the answer."""
    in_incident = asked.number is not None
    if not in_incident and asked.channel_id:
        async with services.sessions() as session:
            in_incident = await IncidentRepo(session).by_channel(asked.channel_id) is not None
    if not in_incident:
        default = select_playbook(services.playbooks, service=None, severity=Severity.SEV4)
        if default is None:
            raise UserError(
                "There is no default playbook to read on-call schedules from: ask inside an "
                "incident's channel, or name one (`/incident INC-7 oncall`)."
            )
        return default, f"playbook `{default.name}`"
    incident_id = await find_incident(services, asked=asked)
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
    assert incident is not None
    playbook = services.playbook(incident.playbook)
    if playbook is None:
        raise UserError(f"{incident.ref} has no playbook, so none of its roles has a schedule.")
    return playbook, f"{incident.ref}, playbook `{playbook.name}`"


async def _line(services: Services, name: str, answer: OnCallAnswer) -> str:
    source = answer.source
    where = f"{SOURCE_NAMES[source.key]} `{source.identifier}`"
    if source.pagerduty_escalation_policy is not None:
        where += " (first level)"
    if answer.failure is not None:
        if answer.failure.kind == "unknown":
            return f"• *{name}* — {where} does not exist"
        return f"• *{name}* — {where} could not be read: {answer.failure.reason}"
    if not answer.people:
        return f"• *{name}* — {where}: nobody is on call"
    found, missing = await in_slack(services, answer.people)
    who = [f"<@{user}>" for user in found]
    who += [f"{escape_mrkdwn(str(person))}, not found in Slack" for person in missing]
    return f"• *{name}* — {where}: {', '.join(who)}"


async def show_oncall(services: Services, *, asked: Asked, role: str | None) -> Reply:
    """Who is on call now for each role (or the one named) that names an on-call schedule."""
    playbook, named = await _playbook_for(services, asked)
    if role is not None and role not in playbook.roles:
        roles = ", ".join(f"`{r}`" for r in playbook.roles) or "none"
        raise UserError(f"`{role}` is not a role of {named}; its roles: {roles}.")
    chosen = {n: r for n, r in playbook.roles.items() if role is None or n == role}
    scheduled = {n: r for n, r in chosen.items() if r.oncall is not None}
    if not scheduled:
        what = f"The {role} role of {named} is not" if role else f"No role of {named} is"
        return Reply(
            f"{what} filled from an on-call schedule. A role names one with "
            "`oncall: {pagerduty_schedule: PABC123}` (or `pagerduty_escalation_policy`, "
            "`opsgenie_schedule`)."
        )
    answers = await asyncio.gather(
        *(look_up(services, playbook=playbook, role=r) for r in scheduled.values())
    )
    lines = [f"*On call now* ({named}):"]
    for name, answer in zip(scheduled, answers, strict=True):
        lines.append(await _line(services, name, answer))
    others = [n for n in chosen if n not in scheduled]
    if others:
        lines.append(f"Not from a schedule: {', '.join(others)}.")
    return Reply("\n".join(lines))
