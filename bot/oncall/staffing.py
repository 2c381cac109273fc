"""At declaration: fill the roles that name an on-call schedule with the people on call now.

Queued by the STAFF_ROLES executor once the playbook's other people have their roles, and run
apart from the incident's own queue, so a slow or failing provider never holds up a page, the
card or a post. The people on call (and the Slack targets the role names) are found in Slack by
email, given the role (the commander: the first of them, unless someone took it by hand),
invited, and DM-paged when the role is paged now or was already paged; a tier paged later
finds them in the role. Nobody on call, an unknown schedule or a provider that does not answer
leaves the role to whoever else it names, and the channel is told in one line naming the
schedule. Running twice assigns, invites and pages nobody twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.enums import EntryKind, Status
from bot.core.lifecycle import COMMANDER_ROLE, TimelineEvent
from bot.core.playbooks import Playbook, Role
from bot.db.models import Incident, SideEffect
from bot.db.repo import IncidentRepo, PageRepo
from bot.oncall.base import SOURCE_NAMES, OnCallPerson, source_name
from bot.oncall.lookup import OnCallAnswer, in_slack, look_up
from bot.outbox import EffectKind, Executor
from bot.paging.delivery import record_staffing
from bot.paging.plan import SLACK, record_pages
from bot.services import Services
from bot.usecases import transaction


@dataclass(frozen=True)
class Staffing:
    """One role's people as found before anything is written."""

    name: str
    role: Role
    answer: OnCallAnswer
    on_call: list[str]  # Slack ids of the people on call, in the provider's order
    named: list[str]  # Slack ids behind the role's own Slack targets
    not_in_slack: list[OnCallPerson]
    targets_missing: list[str]

    @property
    def people(self) -> list[str]:
        return self.on_call + [p for p in self.named if p not in self.on_call]


def problem(staffing: Staffing) -> str | None:
    """The one line the channel is told about a role's schedule, if anything went wrong."""
    answer, name = staffing.answer, staffing.name
    where = f"{SOURCE_NAMES[answer.source.key]} `{answer.source.identifier}`"
    if answer.failure is not None:
        if answer.failure.kind == "unknown":
            return f"Nobody on call could be found for the {name} role: {where} does not exist"
        return (
            f"Nobody on call could be found for the {name} role: {where} could not be read "
            f"({answer.failure.reason})"
        )
    if not answer.people:
        return f"Nobody is on call for the {name} role in {where}"
    if staffing.not_in_slack:
        who = ", ".join(str(person) for person in staffing.not_in_slack)
        return f"On call for the {name} role in {where} but not found in Slack by email: {who}"
    return None


class OnCallStaffing:
    """The STAFF_ONCALL executor, bound to the services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def executors(self) -> dict[str, Executor]:
        return {EffectKind.STAFF_ONCALL: self.staff_oncall}

    async def staff_oncall(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """Look the schedules up, then fill, invite and DM-page in one transaction."""
        incident_id = int(payload["incident_id"])
        async with self.services.sessions() as session:
            incident = await IncidentRepo(session).by_id(incident_id)
        playbook = self.services.playbook(incident.playbook) if incident else None
        if incident is None or playbook is None or incident.status is Status.RESOLVED:
            return
        roles = {name: role for name, role in playbook.roles.items() if role.oncall is not None}
        answers = await asyncio.gather(
            *(look_up(self.services, playbook=playbook, role=role) for role in roles.values())
        )
        found = [
            await self._find(name, role, answer)
            for (name, role), answer in zip(roles.items(), answers, strict=True)
        ]
        await self._record(incident_id, playbook, found)

    async def _find(self, name: str, role: Role, answer: OnCallAnswer) -> Staffing:
        on_call, not_in_slack = await in_slack(self.services, answer.people)
        named: list[str] = []
        missing: list[str] = []
        for target in role.slack:
            members = await self.services.directory.members(target)
            if not members:
                missing.append(target)
            named += [m for m in members if m not in named]
        return Staffing(name, role, answer, on_call, named, not_in_slack, missing)

    async def _record(self, incident_id: int, playbook: Playbook, found: list[Staffing]) -> None:
        tiered = {name for tier in playbook.tiers for name in tier.page}
        async with transaction(self.services) as session:
            repo = IncidentRepo(session)
            incident = await repo.by_id(incident_id, for_update=True)
            assert incident is not None
            holders = await repo.roles(incident_id)
            pages = await PageRepo(session).of_incident(incident_id)
            # A tier that came before the people were found paged nobody in their role: the
            # number of escalations so far says which tiers have been paged.
            timeline = await repo.timeline(incident_id)
            escalated = sum(1 for entry in timeline if entry.kind == EntryKind.ESCALATION)
            paged_tiers = {name for tier in playbook.tiers[:escalated] for name in tier.page}
            said = {entry.text for entry in timeline if entry.kind == EntryKind.ROLE}
            now = self.services.clock.now()
            events: list[TimelineEvent] = []
            warnings: list[str] = []
            invite: list[str] = []
            for staffing in found:
                name = staffing.name
                line = problem(staffing)
                if line is not None and line not in said:  # said once, even when run again
                    events.append(TimelineEvent(EntryKind.ROLE, now, line, None))
                    warnings.append(f":warning: {line}.")
                people = staffing.people
                if not people:
                    wanted = ", ".join(f"`{t}`" for t in staffing.targets_missing)
                    nobody = f"Nobody could be found for the {name} role ({wanted})"
                    if staffing.targets_missing and nobody not in said:
                        events.append(TimelineEvent(EntryKind.ROLE, now, nobody, None))
                        warnings.append(f":warning: {nobody}.")
                    continue
                events += await self._assign(repo, incident, staffing, holders.get(name, []))
                invite += [p for p in people if p not in invite]
                role_pages = [p for p in pages if p.role == name]
                if name in tiered and not role_pages and name not in paged_tiers:
                    continue  # its tier pages whoever holds the role when it comes
                already = {p.target for p in role_pages if p.provider == SLACK}
                paged = [p for p in people if p != incident.declared_by and p not in already]
                await record_pages(
                    session,
                    self.services,
                    incident,
                    role_name=name,
                    role=None,
                    tier=max((p.tier for p in role_pages), default=0),
                    people=paged,
                )
            await record_staffing(
                session, incident, events=events, warnings=warnings, invite=invite, now=now
            )

    async def _assign(
        self, repo: IncidentRepo, incident: Incident, staffing: Staffing, current: list[str]
    ) -> list[TimelineEvent]:
        name, now = staffing.name, self.services.clock.now()
        people = staffing.people
        if name == COMMANDER_ROLE:
            # The declarer holds it until handed over; someone given it by hand keeps it.
            if current and current[0] != incident.declared_by:
                return []
            people = people[:1]
        events = []
        for person in people:
            if person in current:
                continue
            await repo.assign(incident.id or 0, role=name, user_id=person, by=None, at=now)
            why = ""
            if person in staffing.on_call:
                why = f" (on call in {source_name(staffing.answer.source)})"
            events.append(
                TimelineEvent(EntryKind.ROLE, now, f"<@{person}> is now {name}{why}", None)
            )
        return events
