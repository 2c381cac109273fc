"""Record first, then act: side effects are rows committed with the change, run after it.

A use case writes its change and the Slack calls it implies in one transaction (`enqueue`,
`enqueue_post`, `enqueue_timer`); `bot.effect_runner` then performs them in order per incident
and lane, whichever process claims them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.bulk import insert_returning_ids
from bot.db.models import SideEffect
from bot.timers import TimerKind

log = logging.getLogger(__name__)


class EffectKind(StrEnum):
    CREATE_CHANNEL = "create_channel"
    SET_UP_CHANNEL = "set_up_channel"  # the declarer in, the card posted and pinned
    SET_TOPIC = "set_topic"
    TELL_DECLARER = "tell_declarer"
    INVITE = "invite"
    POST_CARD = "post_card"
    SYNC_CARD = "sync_card"  # chat.update of the card and the topic, coalesced
    ANNOUNCE = "announce"
    POST = "post"
    CAPTURE_PIN = "capture_pin"
    BOOKMARK = "bookmark"
    UPLOAD_POSTMORTEM = "upload_postmortem"
    STAFF_ROLES = "staff_roles"  # resolve the playbook's people, assign, invite, DM-page them
    PAGE = "page"
    PAGE_PEOPLE = "page_people"  # a tier's people by DM, once STAFF_ROLES has found them
    ACK_PAGES = "ack_pages"  # tell the providers someone acknowledged
    RESOLVE_PAGES = "resolve_pages"  # tell the providers the incident is over
    SCHEDULE = "schedule"
    CANCEL_TIMERS = "cancel_timers"
    FILE_ISSUE = "file_issue"  # a task (or measure) becomes an issue in the playbook's tracker
    SYNC_ISSUE = "sync_issue"  # close or reopen that issue to match the task
    # Fill roles from PagerDuty/Opsgenie schedules; queued outside the incident's order (no
    # incident_id) so that a slow provider never holds up the incident's pages and posts.
    STAFF_ONCALL = "staff_oncall"
    PROCESS_ALERTS = "process_alerts"  # a webhook's alerts: group, declare, record
    ALERT_DIGEST = "alert_digest"  # new and resolved alerts told in the channel, coalesced


Executor = Callable[[SideEffect, Mapping[str, Any]], Awaitable[None]]

# An incident's effects run in order within a lane; lanes do not wait for each other, so a
# page never waits behind the channel's cosmetics, nor a channel post behind a slow pager.
SLACK_LANE, PAGE_LANE, TIMER_LANE = "slack", "page", "timers"
LANES = {
    EffectKind.PAGE: PAGE_LANE,
    EffectKind.STAFF_ROLES: PAGE_LANE,
    EffectKind.PAGE_PEOPLE: PAGE_LANE,
    EffectKind.ACK_PAGES: PAGE_LANE,
    EffectKind.RESOLVE_PAGES: PAGE_LANE,
    EffectKind.TELL_DECLARER: PAGE_LANE,  # the channel's link once the pages have left
    # What is only cosmetic waits for the pages: a declaration pages before anything else.
    EffectKind.SET_TOPIC: PAGE_LANE,
    EffectKind.BOOKMARK: PAGE_LANE,
    EffectKind.SCHEDULE: TIMER_LANE,
    EffectKind.CANCEL_TIMERS: TIMER_LANE,
}
# Every lane of an incident waits for its channel to exist (pages carry its link).
BARRIER = EffectKind.CREATE_CHANNEL

# Kinds whose pending duplicates are pointless: one run brings Slack up to date.
COALESCED = frozenset({EffectKind.SYNC_CARD})


async def enqueue(
    session: AsyncSession,
    *,
    kind: EffectKind,
    incident_id: int | None,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Add a side effect to the caller's transaction."""
    if kind in COALESCED and incident_id is not None:
        pending = await session.execute(
            select(SideEffect.id).where(
                SideEffect.kind == kind,
                SideEffect.incident_id == incident_id,
                col(SideEffect.done_at).is_(None),
                col(SideEffect.claimed_until).is_(None),
            )
        )
        if pending.first() is not None:
            return
    holder, until = session.info.get(ADOPTED, {}).get(incident_id, (None, None))
    effect = SideEffect(
        kind=kind,
        lane=LANES.get(kind, SLACK_LANE),
        incident_id=incident_id,
        payload=json.dumps(dict(payload or {})),
        created_at=now,
        due_at=now,
        claimed_by=holder,
        claimed_until=until,
    )
    if holder is not None:
        # Written with the transaction's other adopted effects in one INSERT (write_adopted).
        session.info.setdefault(ADOPTED_EFFECTS, []).append(effect)
    else:
        session.add(effect)
        session.info[OWED] = True


async def write_adopted(session: AsyncSession) -> None:
    """Insert the effects this transaction adopted, in one statement; give each its id.

    Called by `usecases.transaction` before it commits (only there are effects adopted).
    """
    effects: list[SideEffect] = session.info.get(ADOPTED_EFFECTS) or []
    if not effects:
        return
    table = SideEffect.__table__  # type: ignore[attr-defined]
    columns = [c.name for c in table.columns if c.name != "id"]
    rows = [{name: getattr(effect, name) for name in columns} for effect in effects]
    ids = await insert_returning_ids(session, table, rows)
    for effect, effect_id in zip(effects, ids, strict=True):
        effect.id = effect_id


# session.info keys: incidents whose effects this transaction claims as it writes them (a new
# incident: nothing of it can be queued elsewhere), and the effects so claimed, which the
# runner starts as soon as the transaction commits (`EffectRunner.adopt`); whether it owes
# effects that are not so claimed (the runner is woken to claim them).
ADOPTED, ADOPTED_EFFECTS, OWED = "outbox.adopted", "outbox.adopted_effects", "outbox.owed"
ADOPTED_INCIDENTS = "outbox.adopted_incidents"
ADOPTED_READS = "outbox.adopted_reads"  # incident id -> what was read ahead for its effects
WRITES_ADOPTED = "outbox.writes_adopted"  # set by the one place that calls write_adopted


# Where a POST goes, besides a user id (a DM).
TO_INCIDENT = "incident"  # the incident's own channel
TO_ANNOUNCEMENTS = "announce"  # INCIDENTS_CHANNEL


async def enqueue_post(
    session: AsyncSession,
    *,
    incident_id: int | None,
    text: str,
    now: datetime,
    to: str = TO_INCIDENT,
    blocks: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """A message for the incident's channel, INCIDENTS_CHANNEL, or a person (a user id)."""
    payload: dict[str, Any] = {"to": to, "text": text}
    if blocks:
        payload["blocks"] = list(blocks)
    await enqueue(session, kind=EffectKind.POST, incident_id=incident_id, now=now, payload=payload)


async def enqueue_timer(
    session: AsyncSession,
    *,
    incident_id: int | None,
    kind: TimerKind,
    key: str,
    at: datetime,
    payload: Mapping[str, Any],
    now: datetime,
) -> None:
    """Set a timer once this transaction commits (through the outbox, so it is never lost)."""
    await enqueue(
        session,
        kind=EffectKind.SCHEDULE,
        incident_id=incident_id,
        now=now,
        payload={"kind": kind.value, "key": key, "at": at.isoformat(), "payload": dict(payload)},
    )


async def enqueue_cancel(
    session: AsyncSession, *, incident_id: int | None, prefixes: Sequence[str], now: datetime
) -> None:
    """Cancel the timers whose keys start with any of the prefixes, once this commits."""
    await enqueue(
        session,
        kind=EffectKind.CANCEL_TIMERS,
        incident_id=incident_id,
        now=now,
        payload={"prefixes": list(prefixes)},
    )


@dataclass(frozen=True)
class OwedTimer:
    """A change to a timer that is committed in the outbox but not yet made in the job store."""

    at: datetime | None  # None: the timer is being cancelled


async def owed_timer(session: AsyncSession, *, incident_id: int, key: str) -> OwedTimer | None:
    """The last change to the timer `key` that the runner still owes; None when it owes none.

    A timer set or cancelled with a change is a SCHEDULE or CANCEL_TIMERS effect committed with
    it, and reaches the job store only when the runner gets to it, after the incident's earlier
    effects (a slow post holds it back). Until then this, not the job store, says when it is due.
    """
    result = await session.execute(
        select(SideEffect.kind, SideEffect.payload)
        .where(
            SideEffect.incident_id == incident_id,
            col(SideEffect.done_at).is_(None),
            col(SideEffect.kind).in_([EffectKind.SCHEDULE, EffectKind.CANCEL_TIMERS]),
        )
        .order_by(col(SideEffect.id).desc())
    )
    for kind, payload in result.all():
        data = json.loads(payload)
        if kind == EffectKind.SCHEDULE and data.get("key") == key:
            return OwedTimer(datetime.fromisoformat(str(data["at"])))
        if kind == EffectKind.CANCEL_TIMERS and any(
            key.startswith(str(prefix)) for prefix in data.get("prefixes", [])
        ):
            return OwedTimer(None)
    return None
