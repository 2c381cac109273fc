"""From a parsed `/incident` command to the use case that serves it."""

from __future__ import annotations

from typing import Any

from bot import followups, paging, postmortems, stats, usecases
from bot.core import grammar
from bot.core.enums import Severity
from bot.errors import UserError
from bot.oncall import show as oncall_show
from bot.paging import escalation
from bot.services import Services
from bot.usecases import Reply


async def run_command(
    services: Services,
    command: grammar.Command,
    *,
    actor: str,
    channel_id: str | None,
    response_url: str | None = None,
) -> Reply:
    """Route a parsed `/incident` command to its use case."""
    where: dict[str, Any] = {
        "asked": usecases.Asked(actor=actor, number=command.incident, channel_id=channel_id)
    }
    match command:
        case grammar.Declare(title=str() as title):
            return await paging.declare_incident(
                services,
                actor=actor,
                declaration=usecases.Declaration(
                    title=title, severity=command.severity or Severity.SEV3
                ),
                response_url=response_url,
            )
        case grammar.List():
            return await usecases.list_open(services, actor=actor)
        case grammar.StatusCmd():
            return await usecases.change_status(
                services, **where, status=command.status, at=command.at, text=command.text
            )
        case grammar.Resolve():
            return await usecases.resolve(services, **where, at=command.at, text=command.text)
        case grammar.Sev():
            return await usecases.change_severity(services, **where, severity=command.severity)
        case grammar.Role():
            return await usecases.assign_role(
                services, **where, role=command.role, user=command.user
            )
        case grammar.Note():
            return await usecases.add_note(services, **where, text=command.text, at=command.at)
        case grammar.Started():
            return await usecases.set_started(services, **where, at=command.at)
        case grammar.Impact():
            return await usecases.set_summary(services, **where, which="impact", text=command.text)
        case grammar.Cause():
            return await usecases.set_summary(services, **where, which="cause", text=command.text)
        case grammar.Resolution():
            return await usecases.set_summary(
                services, **where, which="resolution", text=command.text
            )
        case grammar.Update():
            return await usecases.post_update(services, **where, text=command.text)
        case grammar.Timeline():
            return await usecases.show_timeline(services, **where)
        case grammar.Measure():
            return await followups.add_measure(services, **where, text=command.text)
        case grammar.Task():
            return await followups.add_task(
                services,
                **where,
                text=command.text,
                owner=command.owner,
                due=command.due,
                response_url=response_url,
            )
        case grammar.Tasks():
            return await followups.list_tasks(services, **where)
        case grammar.Postmortem():
            return await postmortems.request_upload(services, **where)
        case grammar.PageCmd():
            return await escalation.page_now(
                services, **where, target=command.target, message=command.message
            )
        case grammar.OnCallCmd():
            return await oncall_show.show_oncall(services, **where, role=command.role)
        case grammar.Stats():
            return await stats.show_stats(services, **where, days=command.days)
    raise UserError("That command is not available yet: see `/incident help`.")
