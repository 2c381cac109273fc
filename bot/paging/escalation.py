"""Responding to pages: escalation tier by tier, acknowledgement, paging on demand.

A tier is paged when its timer falls due (or the Escalate button is pressed) unless someone
acknowledged; its people are the role holders STAFF_ROLES found, paged right after it when it
is still owed. An acknowledgement, from Slack or from a provider's webhook, stops the
escalation and tells the providers. `/incident page` pages a role, a person or a user group
now, outside the schedule. Delivering the pages is `bot.paging`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.core import grammar, paging_plan
from bot.core.clock import humanize_duration
from bot.core.enums import EntryKind, EntrySource, PageState, Status
from bot.core.lifecycle import TimelineEvent
from bot.core.paging_plan import STOPPED_BY_ACK
from bot.core.playbooks import Role
from bot.db.models import Page, SideEffect
from bot.db.repo import IncidentRepo, PageRepo
from bot.errors import UserError
from bot.logs import about_incident
from bot.outbox import EffectKind, enqueue, enqueue_cancel, enqueue_post
from bot.paging.plan import page_tier, record_pages
from bot.services import Services
from bot.timers import timer_prefixes
from bot.usecases import Asked, Reply, find_incident, transaction


async def escalate(services: Services, *, incident_id: int, tier: int, actor: str | None) -> bool:
    """Page tier `tier` unless someone acknowledged or it was paged already; True if it was.

    Its people are the role holders STAFF_ROLES found. While that is still owed (a slow or
    failing directory, a process that died), the tier's pagers are paged now and its people
    right after STAFF_ROLES, in the page lane (PAGE_PEOPLE): never without them.
    """
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        # Checked under the incident's lock: a timer and a button (or two presses) at once
        # must not both page the tier.
        incident = await repo.by_id(incident_id, for_update=True)
        assert incident is not None
        pages = await PageRepo(session).of_incident(incident_id)
        playbook = services.playbook(incident.playbook)
        if playbook is None or not paging_plan.may_escalate(
            tier=tier,
            tier_count=len(playbook.tiers),
            resolved=incident.status is Status.RESOLVED,
            acknowledged=any(p.state is PageState.ACKNOWLEDGED for p in pages),
            highest_tier_paged=max((p.tier for p in pages), default=0),
        ):
            return False
        now = services.clock.now()
        if await _owes(session, incident_id, EffectKind.STAFF_ROLES):
            roles: dict[str, list[str]] = {}
            if paging_plan.roles_with_people(playbook, tier):
                await enqueue(
                    session,
                    kind=EffectKind.PAGE_PEOPLE,
                    incident_id=incident_id,
                    now=now,
                    payload={"tier": tier},
                )
        else:
            roles = await repo.roles(incident_id)
        await page_tier(session, services, incident, playbook, tier=tier, actor=actor, people=roles)
        who = paging_plan.tier_pages(playbook, tier)
        await enqueue_post(
            session,
            incident_id=incident_id,
            now=now,
            text=f":rotating_light: Escalated to tier {tier}: {', '.join(who)}.",
        )
    return True


async def _owes(session: AsyncSession, incident_id: int, kind: EffectKind) -> bool:
    """Whether an effect of this kind is still to be made for the incident."""
    owed = await session.execute(
        select(SideEffect.id)
        .where(
            SideEffect.incident_id == incident_id,
            SideEffect.kind == kind,
            col(SideEffect.done_at).is_(None),
        )
        .limit(1)
    )
    return owed.first() is not None


async def acknowledge(
    services: Services,
    *,
    page_id: int | None = None,
    incident_id: int | None = None,
    by: str,
    by_name: str | None = None,
    provider: str | None = None,
    dedup_key: str | None = None,
) -> Reply:
    """Someone took the page: escalation stops, the providers are told, the timeline says when.

    A page is named by `page_id` (the Slack button), or by the incident and, for an
    acknowledgement made at a provider, that provider and the alert's dedup key.
    """
    async with services.sessions() as session:
        page = await session.get(Page, page_id) if page_id is not None else None
        if page is not None:
            incident_id = page.incident_id
        pages = await PageRepo(session).of_incident(incident_id) if incident_id else []
    if incident_id is None or not pages:
        raise UserError("That page no longer exists.")
    _refuse_if_acknowledged(pages)
    async with transaction(services) as session:
        repo = IncidentRepo(session)
        incident = await repo.by_id(incident_id, for_update=True)
        assert incident is not None
        about_incident(incident.ref)
        # Two acknowledgements at once (a retried webhook, a double press): the first wins.
        pages = await PageRepo(session).of_incident(incident_id)
        _refuse_if_acknowledged(pages)
        now = services.clock.now()
        taken = page or _page_taken(pages, provider=provider, dedup_key=dedup_key)
        row = await session.get(Page, taken.id, with_for_update=True)
        assert row is not None
        row.state = PageState.ACKNOWLEDGED
        row.acknowledged_at = now
        row.acknowledged_by = by[:64]
        first_page = min(p.created_at for p in pages)
        after = humanize_duration(now - first_page)
        role = f" for {taken.role}" if taken.role else ""
        who = _who(by) if by_name is None else by_name
        repo.record(
            incident,
            [
                TimelineEvent(
                    EntryKind.ACK,
                    now,
                    f"{who} acknowledged the page{role} (after {after})",
                    by if by.startswith(("U", "W")) else None,
                )
            ],
            recorded_at=now,
            source=EntrySource.PERSON,
        )
        await enqueue_cancel(
            session,
            incident_id=incident_id,
            prefixes=timer_prefixes(incident_id, STOPPED_BY_ACK),
            now=now,
        )
        await enqueue(session, kind=EffectKind.ACK_PAGES, incident_id=incident_id, now=now)
        await enqueue_post(
            session,
            incident_id=incident_id,
            now=now,
            text=f":white_check_mark: {who} acknowledged the page{role} after {after}; "
            "escalation stopped.",
        )
    services.metrics.inc("pages_acknowledged_total", provider=taken.provider)
    services.metrics.observe(
        "time_to_acknowledge_seconds", max((now - first_page).total_seconds(), 0.0)
    )
    return Reply(f"Thanks — you acknowledged {incident.ref}; escalation stopped.")


def _refuse_if_acknowledged(pages: Sequence[Page]) -> None:
    first = next((p for p in pages if p.state is PageState.ACKNOWLEDGED), None)
    if first is not None:
        raise UserError(f"Already acknowledged by {_who(first.acknowledged_by)}.")


def _page_taken(pages: Sequence[Page], *, provider: str | None, dedup_key: str | None) -> Page:
    """The page an acknowledgement made at a provider is about: its alert's, else its latest."""
    if provider is not None:
        sent = [p for p in pages if p.provider == provider and p.state is not PageState.FAILED]
        same_alert = [p for p in sent if p.dedup_key == dedup_key]
        if same_alert or sent:
            return (same_alert or sent)[-1]
    return pages[0]


def _who(user: str | None) -> str:
    if user and user.startswith(("U", "W")):
        return f"<@{user}>"
    return user or "someone"


async def escalate_now(services: Services, *, page_id: int, actor: str) -> Reply:
    """The Escalate button: page the next tier at once."""
    async with services.sessions() as session:
        page = await session.get(Page, page_id)
        pages = await PageRepo(session).of_incident(page.incident_id) if page else []
    if page is None:
        raise UserError("That page no longer exists.")
    tier = max(p.tier for p in pages) + 1
    if not await escalate(services, incident_id=page.incident_id, tier=tier, actor=actor):
        raise UserError("There is no further tier to escalate to, or the page was acknowledged.")
    return Reply(f"Escalated to tier {tier}.")


async def page_now(
    services: Services,
    *,
    asked: Asked,
    target: str | grammar.UserRef | grammar.GroupRef,
    message: str | None,
) -> Reply:
    """`/incident page ROLE|@user [message]`: page now, outside the schedule."""
    incident_id = await find_incident(services, asked=asked)
    people: list[str] = []
    role_name: str | None = None
    role: Role | None = None
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
        roles = await IncidentRepo(session).roles(incident_id)
        pages = await PageRepo(session).of_incident(incident_id)
    assert incident is not None
    playbook = services.playbook(incident.playbook)
    if isinstance(target, str):
        role_name = target
        role = playbook.roles.get(target) if playbook else None
        people = roles.get(target, [])
        if role is None and not people:
            known = sorted(set(roles) | set(playbook.roles if playbook else ()))
            raise UserError(
                f"`{target}` is not a role of {incident.ref}: page one of "
                f"{', '.join(known) or 'its people by @name'} (`{grammar.USAGE['page']}`)."
            )
    elif isinstance(target, grammar.GroupRef):
        people = await services.directory.members(target.id)
        if not people:
            raise UserError(f"The user group <!subteam^{target.id}> has nobody in it to page.")
    else:
        people = [await services.directory.resolve(target)]
    pager = role if role is not None and role.has_pager else None
    if pager is None and not people:
        raise UserError(
            f"Nobody is behind `{role_name}` to page yet: `/incident role {role_name} @user` first."
        )
    tier = max((p.tier for p in pages), default=0)
    async with transaction(services) as session:
        locked = await IncidentRepo(session).by_id(incident_id, for_update=True)
        assert locked is not None
        await record_pages(
            session,
            services,
            locked,
            role_name=role_name,
            role=pager,
            tier=tier,
            people=people,
            message=message,
        )
        if people:
            await enqueue(
                session,
                kind=EffectKind.INVITE,
                incident_id=incident_id,
                now=services.clock.now(),
                payload={"users": people},
            )
    who = role_name or ", ".join(f"<@{p}>" for p in people)
    return Reply(f"Paging {who} for {incident.ref} now.")
