"""Paging: who is paged at declaration, and delivering every page.

At declaration the playbook's people are found (handles, emails, user groups), given their
roles, invited and paged by Slack DM; roles whose pager no escalation tier names are paged
at once, and so is a tier due at once (`after: 0s`). These rules live in
`bot.core.paging_plan`, which `playbooks simulate` plays too; escalation, acknowledgement and
paging on demand are `bot.escalation`'s. Every page is a timeline entry. A pager that still
fails after its retries hands over to the Slack DM of the role's people (or the commander),
and the channel is told.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from slack_sdk.errors import SlackClientError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import usecases
from bot.core import paging_plan
from bot.core.enums import EntryKind, EntrySource, PageState, Status
from bot.core.lifecycle import COMMANDER_ROLE, TimelineEvent, severity_label
from bot.core.paging_plan import Due, PagerKind
from bot.core.playbooks import Playbook, Role, select_playbook
from bot.db.models import Incident, Page, SideEffect
from bot.db.repo import IncidentRepo, PageRepo
from bot.errors import PagerFailed
from bot.outbox import (
    EffectKind,
    Executor,
    enqueue,
    enqueue_post,
    enqueue_timer,
)
from bot.pagers.base import Pager, PageRequest, dedup_key_for
from bot.pagers.opsgenie import OpsgeniePager
from bot.pagers.pagerduty import PagerDutyPager
from bot.pagers.slack_dm import SlackDMPager
from bot.pagers.webhook import WebhookPager
from bot.services import Services
from bot.slack import blocks
from bot.timers import TimerKind, escalation_key, timer_prefixes
from bot.usecases import Declaration, Reply, transaction

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
        who = f"<@{page.target}>" if page.provider == SLACK else _provider_name(page.provider)
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


def _provider_name(provider: str) -> str:
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


# -- delivering a page ---------------------------------------------------------------------


class Paging:
    """Side-effect executors and timer handlers for pages; bound to the services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def executors(self) -> dict[str, Executor]:
        return {
            EffectKind.STAFF_ROLES: self.staff_roles,
            EffectKind.PAGE: self.page,
            EffectKind.PAGE_PEOPLE: self.page_people,
            EffectKind.ACK_PAGES: self.ack_pages,
            EffectKind.RESOLVE_PAGES: self.resolve_pages,
        }

    # -- helpers ------------------------------------------------------------------------------

    async def _load(self, incident_id: int) -> tuple[Incident, Playbook | None]:
        async with self.services.sessions() as session:
            incident = await IncidentRepo(session).by_id(incident_id)
        assert incident is not None
        return incident, self.services.playbook(incident.playbook)

    def _request(self, incident: Incident, page: Page) -> PageRequest:
        role = f" — page for {page.role}" if page.role else ""
        channel = None
        if incident.channel_id:
            channel = f"https://slack.com/app_redirect?channel={incident.channel_id}"
        return PageRequest(
            ref=incident.ref,
            title=incident.title,
            severity=incident.severity,
            dedup_key=page.dedup_key,
            summary=f"{incident.ref} ({severity_label(incident.severity)}): {incident.title}{role}",
            message=page.message,
            role=page.role,
            channel_url=channel,
            page_id=page.id or 0,
            external_id=page.external_ref,
        )

    def pager_for(self, incident: Incident, playbook: Playbook | None, page: Page) -> Pager:
        """The pager behind a page row; PagerFailed(retryable=False) when it cannot exist."""
        settings, env = self.services.settings, self.services.environ
        retry = self.services.pager_retry
        if page.provider == SLACK:
            return SlackDMPager(client=self.services.slack, user_id=page.target, retry=retry)
        if playbook is None:
            raise PagerFailed(
                page.provider, f"playbook `{incident.playbook}` is gone", retryable=False
            )
        role = playbook.roles.get(page.role or "")
        try:
            if page.provider == PAGERDUTY and role is not None and role.pagerduty is not None:
                return PagerDutyPager(
                    routing_key=_secret(env, role.pagerduty.routing_key_env),
                    events_url=settings.PAGERDUTY_EVENTS_URL,
                    http=self.services.http,
                    retry=retry,
                )
            if page.provider == OPSGENIE:
                target = role.opsgenie if role is not None else None
                if target is None and page.tier >= 1 and page.tier <= len(playbook.tiers):
                    target = playbook.tiers[page.tier - 1].opsgenie
                if target is not None:
                    return OpsgeniePager(
                        api_key=_secret(env, playbook.opsgenie_key_env(target)),
                        api_url=settings.OPSGENIE_API_URL,
                        responders=[r.model_dump(exclude_none=True) for r in target.responders],
                        priority=target.priority,
                        http=self.services.http,
                        retry=retry,
                    )
            if page.provider == WEBHOOK and role is not None and role.webhook is not None:
                secret = role.webhook.secret_env
                return WebhookPager(
                    url=_secret(env, role.webhook.url_env),
                    secret=_secret(env, secret) if secret else None,
                    http=self.services.http,
                    retry=retry,
                )
        except ValueError as exc:
            raise PagerFailed(page.provider, str(exc), retryable=False) from None
        raise PagerFailed(
            page.provider, "the playbook no longer defines this pager", retryable=False
        )

    # -- executors ----------------------------------------------------------------------------

    async def page(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """Send one page; after its retries fail, fall back to Slack DMs and tell the channel."""
        await self.deliver(int(payload["page_id"]))

    async def deliver(self, page_id: int) -> None:
        async with self.services.sessions() as session:
            page = await session.get(Page, page_id)
        assert page is not None
        if page.state is not PageState.TRIGGERED or page.external_ref is not None:
            return  # already delivered, acknowledged or given up
        incident, playbook = await self._load(page.incident_id)
        try:
            pager = self.pager_for(incident, playbook, page)
            receipt = await pager.trigger(self._request(incident, page))
        except PagerFailed as failure:
            self.services.metrics.inc("pages_total", provider=page.provider, outcome="failed")
            await self._fall_back(incident, playbook, page, failure)
            return
        self.services.metrics.inc("pages_total", provider=page.provider, outcome="sent")
        await self._save_page(page_id, external_ref=receipt.external_id or "sent")
        if page.role and playbook is not None:
            await self._bring_escalation_forward(incident, playbook, page)

    async def _save_page(self, page_id: int, **values: Any) -> None:
        async with self.services.sessions() as session, session.begin():
            page = await session.get(Page, page_id, with_for_update=True)
            assert page is not None
            for name, value in values.items():
                setattr(page, name, value)

    async def _bring_escalation_forward(
        self, incident: Incident, playbook: Playbook, page: Page
    ) -> None:
        """A role's ack_timeout makes the next tier come sooner than its `after`."""
        timer = paging_plan.next_tier_brought_forward(
            playbook,
            role_name=page.role,
            tier=page.tier,
            paged_at=self.services.clock.now(),
            declared_at=incident.declared_at,
        )
        if timer is None:
            return
        assert incident.id is not None
        async with transaction(self.services) as session:
            await enqueue_timer(
                session,
                incident_id=incident.id,
                kind=TimerKind.ESCALATE,
                key=escalation_key(incident.id, timer.tier),
                at=timer.at,
                payload={"incident_id": incident.id, "tier": timer.tier},
                now=self.services.clock.now(),
            )

    async def _fall_back(
        self,
        incident: Incident,
        playbook: Playbook | None,
        page: Page,
        failure: PagerFailed,
    ) -> None:
        """The page could not go out: record why, DM the people instead, tell the channel."""
        assert incident.id is not None
        people = (
            [] if page.provider == SLACK else await self._fallback_people(incident, playbook, page)
        )
        async with transaction(self.services) as session:
            row = await session.get(Page, page.id, with_for_update=True)
            assert row is not None
            row.state = PageState.FAILED
            row.error = str(failure)
            repo = IncidentRepo(session)
            already = {
                p.target
                for p in await PageRepo(session).of_incident(incident.id)
                if p.provider == SLACK and p.tier == page.tier
            }
            fallback = [person for person in people if person not in already]
            what = f"Paging {page.role or 'responders'} through {_provider_name(page.provider)}"
            if page.provider == SLACK:
                what = f"The Slack DM page to <@{page.target}>"
            instead = ", ".join(f"<@{p}>" for p in fallback)
            text = f"{what} failed ({failure.reason})" + (
                f"; paged {instead} by Slack DM instead." if fallback else "."
            )
            now = self.services.clock.now()
            repo.record(
                incident,
                [TimelineEvent(EntryKind.PAGE, now, text, None)],
                recorded_at=now,
                source=EntrySource.SYSTEM,
            )
            await enqueue_post(session, incident_id=incident.id, now=now, text=f":warning: {text}")
            if fallback:
                await record_pages(
                    session,
                    self.services,
                    incident,
                    role_name=page.role,
                    role=None,
                    tier=page.tier,
                    people=fallback,
                    message=page.message,
                )

    async def _fallback_people(
        self, incident: Incident, playbook: Playbook | None, page: Page
    ) -> list[str]:
        """Who a failed pager hands over to: the role's people, else the commander."""
        assert incident.id is not None
        async with self.services.sessions() as session:
            roles = await IncidentRepo(session).roles(incident.id)
            staffing = await session.scalar(
                sa.select(sa.func.count())
                .select_from(SideEffect)
                .where(
                    col(SideEffect.incident_id) == incident.id,
                    col(SideEffect.kind) == EffectKind.STAFF_ROLES,
                    col(SideEffect.done_at).is_(None),
                )
            )
        people = roles.get(page.role or "", [])
        if not people and staffing:
            # Pagers leave before the roles are staffed (the commander is still the declarer):
            # the people the playbook names are the ones who are about to hold the roles.
            people = await self._playbook_people(playbook, page.role)
            people = people or (await self._playbook_people(playbook, COMMANDER_ROLE))[:1]
        return people or roles.get(COMMANDER_ROLE, [])

    async def _playbook_people(self, playbook: Playbook | None, role_name: str | None) -> list[str]:
        role = playbook.roles.get(role_name or "") if playbook is not None else None
        people: list[str] = []
        for target in role.slack if role is not None else ():
            try:
                members = await self.services.directory.members(target)
            except (SlackClientError, OSError) as exc:  # Slack is failing too: nobody from here
                log.warning("could not look up %s for a fallback page: %s", target, exc)
                continue
            people += [m for m in members if m not in people]
        return people

    async def staff_roles(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """Find the playbook's people, give them their roles, invite and DM-page them."""
        assert effect.incident_id is not None
        incident, playbook = await self._load(effect.incident_id)
        if playbook is None:
            return
        found: dict[str, list[str]] = {}
        missing: dict[str, list[str]] = {}
        for name, role in playbook.roles.items():
            if role.oncall is not None:
                continue  # staffed by STAFF_ONCALL with its schedule's people, after the pages
            people: list[str] = []
            for target in role.slack:
                members = await self.services.directory.members(target)
                if not members:
                    missing.setdefault(name, []).append(target)
                people += [m for m in members if m not in people]
            found[name] = people
        paged_now = paging_plan.roles_paged_at_declaration(playbook)
        pages: list[Page] = []
        async with transaction(self.services) as session:
            repo = IncidentRepo(session)
            now = self.services.clock.now()
            events: list[TimelineEvent] = []
            warnings: list[str] = []  # posted in the channel too
            invite: list[str] = []
            for name, people in found.items():
                role = playbook.roles[name]
                if not people:
                    # A role that names nobody on purpose is the declarer's (commander) or left
                    # open quietly; only targets that were named and not found are reported.
                    if missing.get(name):
                        wanted = ", ".join(f"`{t}`" for t in missing[name])
                        nobody = f"Nobody could be found for the {name} role ({wanted})"
                        events.append(TimelineEvent(EntryKind.ROLE, now, nobody, None))
                        warnings.append(f":warning: {nobody}.")
                    continue
                holders = people[:1] if name == COMMANDER_ROLE else people
                for person in holders:
                    await repo.assign(incident.id or 0, role=name, user_id=person, by=None, at=now)
                    events.append(
                        TimelineEvent(EntryKind.ROLE, now, f"<@{person}> is now {name}", None)
                    )
                invite += [p for p in people if p not in invite]
                if name in paged_now:
                    paged = [p for p in people if p != incident.declared_by]
                    pages += await record_pages(
                        session,
                        self.services,
                        incident,
                        role_name=name,
                        role=None,
                        tier=paged_now[name],
                        people=paged,
                    )
            repo.record(incident, events, recorded_at=now, source=EntrySource.SYSTEM)
            for warning in warnings:
                await enqueue_post(session, incident_id=incident.id, now=now, text=warning)
            if invite:
                await enqueue(
                    session,
                    kind=EffectKind.INVITE,
                    incident_id=incident.id,
                    now=now,
                    payload={"users": invite},
                )
            await enqueue(session, kind=EffectKind.SYNC_CARD, incident_id=incident.id, now=now)
            if any(role.oncall is not None for role in playbook.roles.values()):
                await enqueue(
                    session,
                    kind=EffectKind.STAFF_ONCALL,
                    incident_id=None,
                    now=now,
                    payload={"incident_id": incident.id},
                )
        # The DMs leave now, before the card and topic further down the outbox.
        for page in pages:
            await self.deliver(page.id or 0)

    async def page_people(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """A tier's people, paged by DM once STAFF_ROLES (ahead in this lane) has found them."""
        assert effect.incident_id is not None
        tier = int(payload["tier"])
        async with transaction(self.services) as session:
            repo = IncidentRepo(session)
            incident = await repo.by_id(effect.incident_id, for_update=True)
            assert incident is not None
            playbook = self.services.playbook(incident.playbook)
            pages = await PageRepo(session).of_incident(effect.incident_id)
            if (
                playbook is None
                or incident.status is Status.RESOLVED
                or any(p.state is PageState.ACKNOWLEDGED for p in pages)
            ):
                return  # someone took it (or it is over) meanwhile: nobody else is woken
            holders = await repo.roles(effect.incident_id)
            paged: list[Page] = []
            for name in paging_plan.roles_with_people(playbook, tier):
                paged += await record_pages(
                    session,
                    self.services,
                    incident,
                    role_name=name,
                    role=None,
                    tier=tier,
                    people=holders.get(name, []),
                )
        for page in paged:
            await self.deliver(page.id or 0)

    async def ack_pages(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """Tell PagerDuty, Opsgenie and webhooks that the incident was acknowledged."""
        await self._tell_providers(effect, acknowledge=True)

    async def resolve_pages(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """Close the incident's alerts at every provider."""
        await self._tell_providers(effect, acknowledge=False)

    async def _tell_providers(self, effect: SideEffect, *, acknowledge: bool) -> None:
        assert effect.incident_id is not None
        incident, playbook = await self._load(effect.incident_id)
        async with self.services.sessions() as session:
            pages = await PageRepo(session).of_incident(effect.incident_id)
        told: set[tuple[str, str, str]] = set()
        for page in pages:
            # One alert per dedup key at a provider; one DM per person (its buttons go away).
            key = (page.provider, page.dedup_key, page.target if page.provider == SLACK else "")
            undelivered = page.provider == SLACK and page.external_ref is None
            if page.state is PageState.FAILED or undelivered or key in told:
                continue
            told.add(key)
            try:
                pager = self.pager_for(incident, playbook, page)
                request = self._request(incident, page)
                if acknowledge:
                    await pager.acknowledge(request)
                else:
                    await pager.resolve(request)
            except PagerFailed as failure:
                if failure.retryable:
                    raise  # the runner tries the whole effect again later
                log.warning("could not tell %s about %s: %s", page.provider, incident.ref, failure)


def _secret(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set in the environment")
    return value
