"""Paging at declaration: who is paged at once, which tiers later, and the pages' records.

The playbook's rules come from `bot.core.paging_plan` (which `playbooks simulate` plays too):
roles whose pager no escalation tier names are paged at once, and so is a tier due at once
(`after: 0s`); the playbook's people are found, given their roles and paged by Slack DM by
STAFF_ROLES (`bot.paging.delivery`). Every page is a timeline entry and a PAGE effect.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from bot import usecases
from bot.core import paging_plan
from bot.core.enums import EntryKind, EntrySource, PageState
from bot.core.lifecycle import TimelineEvent
from bot.core.paging_plan import Due, PagerKind
from bot.core.playbooks import Playbook, Role, select_playbook
from bot.db.models import Incident, Page
from bot.db.repo import IncidentRepo
from bot.outbox import (
    EffectKind,
    enqueue,
    enqueue_post,
    enqueue_timer,
)
from bot.pagers.base import dedup_key_for
from bot.services import Services
from bot.slack import blocks
from bot.timers import TimerKind, escalation_key, timer_prefixes
from bot.usecases import Declaration, Reply

log = logging.getLogger(__name__)

CHECKLIST_NUDGE_AFTER = paging_plan.CHECKLIST_NUDGE_AFTER

SLACK = "slack"
PAGERDUTY = "pagerduty"
OPSGENIE = "opsgenie"
WEBHOOK = "webhook"


# -- at declaration ------------------------------------------------------------------------


async def plan_declaration(
    session: AsyncSession, services: Services, incident: Incident, playbook: Playbook
) -> None:
    """Inside the declaring transaction: who gets paged now, which tiers later, reminders.

    What is paged and when comes from `bot.core.paging_plan`, the rules the simulator plays too.
    """
    assert incident.id is not None
    now = incident.declared_at
    plan = paging_plan.plan_declaration(playbook, severity=incident.severity, declared_at=now)
    # Pagers first: they need no Slack lookups, and nothing else is as urgent.
    for name, tier in plan.paged_now.items():
        role = playbook.roles[name]
        if tier == 0 and role.has_pager:
            await record_pages(session, services, incident, role_name=name, role=role, tier=tier)
    # A tier due now is paged now, not at the next timer poll; its people's DMs leave as soon
    # as STAFF_ROLES has found them.
    for tier in plan.tiers_now:
        await page_tier(session, services, incident, playbook, tier=tier, actor=None, people={})
    await enqueue(session, kind=EffectKind.STAFF_ROLES, incident_id=incident.id, now=now)
    # Escalations first, then the status reminder and the checklist nudge: pages before
    # what only helps the people who come.
    for timer in plan.timers:
        payload = {"incident_id": incident.id} | ({"tier": timer.tier} if timer.tier else {})
        await enqueue_timer(
            session,
            incident_id=incident.id,
            kind=TimerKind(timer.kind.value),
            key=_timer_key(incident.id, timer),
            at=timer.at,
            payload=payload,
            now=now,
        )
    if plan.checklist:
        await enqueue_post(
            session,
            incident_id=incident.id,
            now=now,
            text=blocks.checklist_text(f"Checklist ({playbook.name})", playbook.checklist),
        )
    for bookmark in playbook.bookmarks:
        await enqueue(
            session,
            kind=EffectKind.BOOKMARK,
            incident_id=incident.id,
            now=now,
            payload={"title": bookmark.title, "link": str(bookmark.link)},
        )


def _timer_key(incident_id: int, timer: paging_plan.Timer) -> str:
    """The key a planned timer is stored under (a later one with the same key replaces it)."""
    if timer.kind is Due.ESCALATE:
        return escalation_key(incident_id, timer.tier)
    return timer_prefixes(incident_id, [timer.kind])[0]


async def record_pages(
    session: AsyncSession,
    services: Services,
    incident: Incident,
    *,
    role_name: str | None,
    role: Role | None,
    tier: int,
    people: Sequence[str] = (),
    message: str | None = None,
    tier_opsgenie: bool = False,
) -> list[Page]:
    """Page rows (and their PAGE side effects) for a role's pagers and its people's DMs."""
    assert incident.id is not None
    now = services.clock.now()
    targets: list[tuple[str, str]] = []
    if role is not None:
        written = {
            PagerKind.PAGERDUTY: role.pagerduty.routing_key_env if role.pagerduty else "",
            PagerKind.OPSGENIE: role_name or "",
            PagerKind.WEBHOOK: role.webhook.url_env if role.webhook else "",
        }
        targets += [(kind.value, written[kind]) for kind in paging_plan.role_pagers(role)]
    if tier_opsgenie:
        targets.append((OPSGENIE, f"tier {tier}"))
    targets += [(SLACK, user) for user in people]
    pages = []
    for provider, target in targets:
        key_role = role_name if not tier_opsgenie or provider != OPSGENIE else f"tier-{tier}"
        page = Page(
            incident_id=incident.id,
            role=role_name,
            provider=provider,
            target=target,
            dedup_key=dedup_key_for(ref=incident.ref, role=key_role),
            message=message,
            tier=tier,
            state=PageState.TRIGGERED,
            created_at=now,
        )
        session.add(page)
        pages.append(page)
    await session.flush()
    repo = IncidentRepo(session)
    for page in pages:
        who = f"<@{page.target}>" if page.provider == SLACK else provider_name(page.provider)
        what = f"Paged {role_name} ({who})" if role_name else f"Paged {who}"
        if tier_opsgenie and page.provider == OPSGENIE:
            what = f"Paged the Opsgenie responders of escalation tier {tier}"
        repo.record(
            incident,
            [TimelineEvent(EntryKind.PAGE, now, what + (f": {message}" if message else ""), None)],
            recorded_at=now,
            source=EntrySource.SYSTEM,
        )
        await enqueue(
            session,
            kind=EffectKind.PAGE,
            incident_id=incident.id,
            now=now,
            payload={"page_id": page.id},
        )
    return pages


async def page_tier(
    session: AsyncSession,
    services: Services,
    incident: Incident,
    playbook: Playbook,
    *,
    tier: int,
    actor: str | None,
    people: Mapping[str, Sequence[str]],
) -> None:
    """Record tier `tier` being paged: its timeline entry, its roles' pages, its Opsgenie's."""
    now = services.clock.now()
    text = paging_plan.escalation_text(
        playbook, tier, actor=actor, elapsed=now - incident.declared_at
    )
    IncidentRepo(session).record(
        incident,
        [TimelineEvent(EntryKind.ESCALATION, now, text, actor)],
        recorded_at=now,
        source=EntrySource.SYSTEM if actor is None else EntrySource.PERSON,
    )
    spec = playbook.tiers[tier - 1]
    for name in spec.page:
        await record_pages(
            session,
            services,
            incident,
            role_name=name,
            role=playbook.roles[name],
            tier=tier,
            people=people.get(name, []),
        )
    if spec.opsgenie is not None:
        await record_pages(
            session,
            services,
            incident,
            role_name=None,
            role=None,
            tier=tier,
            tier_opsgenie=True,
        )


def provider_name(provider: str) -> str:
    return {PAGERDUTY: "PagerDuty", OPSGENIE: "Opsgenie", WEBHOOK: "webhook"}.get(
        provider, provider
    )


async def declare_incident(
    services: Services,
    *,
    actor: str,
    declaration: Declaration,
    response_url: str | None = None,
    playbook: Playbook | None = None,
    then: usecases.Plan | None = None,
) -> Reply:
    """Declare under the playbook that fits the service and severity (if any).

    An alert route names its own playbook; `then` runs last in the declaring transaction.
    """
    playbook = playbook or select_playbook(
        services.playbooks, service=declaration.service, severity=declaration.severity
    )
    if playbook is None:
        return await usecases.declare(
            services, actor=actor, declaration=declaration, response_url=response_url, plan=then
        )

    async def plan(session: AsyncSession, incident: Incident) -> None:
        await plan_declaration(session, services, incident, playbook)
        if then is not None:
            await then(session, incident)

    return await usecases.declare(
        services,
        actor=actor,
        declaration=replace(declaration, private=declaration.private or playbook.private),
        response_url=response_url,
        playbook=playbook.name,
        plan=plan,
    )
