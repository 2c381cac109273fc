"""Delivering pages: the side effects that find the playbook's people and page them.

STAFF_ROLES finds the people (handles, emails, user groups), gives them their roles, invites
and DM-pages them; PAGE sends one page through its pager; PAGE_PEOPLE pages a tier's people
once they are found; ACK_PAGES and RESOLVE_PAGES tell the providers. A pager that still fails
after its retries hands over to the Slack DM of the role's people (or the commander), and the
channel is told.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from slack_sdk.errors import SlackClientError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core import paging_plan
from bot.core.enums import EntryKind, EntrySource, PageState, Status
from bot.core.lifecycle import COMMANDER_ROLE, TimelineEvent, severity_label
from bot.core.playbooks import Playbook
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
from bot.pagers.base import Pager, PageRequest
from bot.pagers.opsgenie import OpsgeniePager
from bot.pagers.pagerduty import PagerDutyPager
from bot.pagers.slack_dm import SlackDMPager
from bot.pagers.webhook import WebhookPager
from bot.paging.plan import (
    OPSGENIE,
    PAGERDUTY,
    SLACK,
    WEBHOOK,
    provider_name,
    record_pages,
)
from bot.services import Services
from bot.timers import TimerKind, escalation_key
from bot.usecases import transaction

log = logging.getLogger(__name__)


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
            what = f"Paging {page.role or 'responders'} through {provider_name(page.provider)}"
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
            await record_staffing(
                session, incident, events=events, warnings=warnings, invite=invite, now=now
            )
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


async def record_staffing(
    session: AsyncSession,
    incident: Incident,
    *,
    events: list[TimelineEvent],
    warnings: list[str],
    invite: list[str],
    now: datetime,
) -> None:
    """What filling the roles found: its timeline entries, its warnings posted in the channel,
    the people invited, and the card brought up to date."""
    IncidentRepo(session).record(incident, events, recorded_at=now, source=EntrySource.SYSTEM)
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
