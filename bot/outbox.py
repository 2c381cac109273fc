"""Record first, then act: side effects are rows committed with the change, run after it.

A use case writes its change and the Slack calls it implies in one transaction; the runner
then performs them in order, per incident, retrying what can succeed later (rate limits,
5xx, dropped connections) with backoff, and setting aside what never will (a refused call).
Several processes may run a runner against one database: a row is claimed before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from bot.core.clock import Clock
from bot.db.models import SideEffect
from bot.errors import SideEffectFailed
from bot.metrics import Metrics
from bot.timers import TimerKind

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
MAX_BACKOFF = timedelta(minutes=10)
BATCH = 200

# Slack errors that a later attempt can cure; any other `ok: false` is final.
RETRYABLE_SLACK_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)


class EffectKind(StrEnum):
    CREATE_CHANNEL = "create_channel"
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
    ACK_PAGES = "ack_pages"  # tell the providers someone acknowledged
    RESOLVE_PAGES = "resolve_pages"  # tell the providers the incident is over
    SCHEDULE = "schedule"
    CANCEL_TIMERS = "cancel_timers"
    PROCESS_ALERTS = "process_alerts"  # a webhook's alerts: group, declare, record
    ALERT_DIGEST = "alert_digest"  # new and resolved alerts told in the channel, coalesced


Executor = Callable[[SideEffect, Mapping[str, Any]], Awaitable[None]]

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
    session.add(
        SideEffect(
            kind=kind,
            incident_id=incident_id,
            payload=json.dumps(dict(payload or {})),
            created_at=now,
            due_at=now,
        )
    )


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


def retryable(error: BaseException) -> bool:
    """Whether trying the same call again later may succeed."""
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 200)
        code = str(error.response.get("error", ""))
        return status == 429 or status >= 500 or code in RETRYABLE_SLACK_ERRORS
    if isinstance(error, SideEffectFailed):
        return True
    return isinstance(error, OSError | TimeoutError | asyncio.TimeoutError)


class EffectRunner:
    """Performs committed side effects in order per incident; one per process."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        metrics: Metrics,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.executors: dict[str, Executor] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.owner = f"runner-{id(self):x}"

    def register(self, executors: Mapping[str, Executor]) -> None:
        self.executors.update(executors)

    def kick(self) -> None:
        """Something was just committed: run it now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="effect-runner")

    async def stop(self, grace: float = 10.0) -> None:
        """Let the effect under way finish (a call made but not marked done would run twice)."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            log.warning("side effects still running after %s s at shutdown; stopping them", grace)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self._stopping = False

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.run_due()
            except Exception:  # the loop must outlive a database hiccup; it retries next poll
                log.exception("side-effect runner pass failed")

    async def run_due(self) -> int:
        """Run every effect that is due now; return how many finished (done or set aside)."""
        async with self._lock:
            done = 0
            while True:
                batch = await self._due()
                if not batch:
                    return done
                groups: dict[object, list[int]] = {}
                for effect_id, incident_id in batch:
                    key = incident_id if incident_id is not None else ("solo", effect_id)
                    groups.setdefault(key, []).append(effect_id)
                results = await asyncio.gather(*(self._run_group(ids) for ids in groups.values()))
                progressed = sum(results)
                done += progressed
                if progressed == 0 or self._stopping:
                    return done  # stopping: what is left waits, committed, for the next start

    async def pending(self) -> int:
        """Effects not yet done (due or waiting for a retry)."""
        async with self.sessions() as session:
            result = await session.execute(
                sa.select(sa.func.count())
                .select_from(SideEffect)
                .where(col(SideEffect.done_at).is_(None))
            )
            return int(result.scalar() or 0)

    async def _due(self) -> list[tuple[int, int | None]]:
        now = self.clock.now()
        async with self.sessions() as session:
            result = await session.execute(
                select(SideEffect.id, SideEffect.incident_id)
                .where(
                    col(SideEffect.done_at).is_(None),
                    col(SideEffect.due_at) <= now,
                    sa.or_(
                        col(SideEffect.claimed_until).is_(None),
                        col(SideEffect.claimed_until) < now,
                    ),
                )
                .order_by(col(SideEffect.id))
                .limit(BATCH)
            )
            return [(int(row[0]), row[1]) for row in result.all()]

    async def _run_group(self, effect_ids: list[int]) -> int:
        done = 0
        for effect_id in effect_ids:
            if not await self._run_one(effect_id):
                break  # keep the incident's order: later effects wait for a retried one
            done += 1  # done, or set aside for good: either way it no longer holds the rest
        return done

    async def _claim(self, effect_id: int) -> SideEffect | None:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                sa.update(SideEffect)
                .where(
                    col(SideEffect.id) == effect_id,
                    col(SideEffect.done_at).is_(None),
                    sa.or_(
                        col(SideEffect.claimed_until).is_(None),
                        col(SideEffect.claimed_until) < now,
                    ),
                )
                .values(claimed_until=now + LEASE)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return await session.get(SideEffect, effect_id)

    async def _run_one(self, effect_id: int) -> bool:
        """Whether the effect is finished: done, or set aside because it can never succeed."""
        effect = await self._claim(effect_id)
        if effect is None:
            return False
        executor = self.executors.get(effect.kind)
        error: BaseException | None = None
        if executor is None:
            error = SideEffectFailed(effect.kind, "no executor registered")
        else:
            try:
                await executor(effect, json.loads(effect.payload))
            except Exception as exc:  # classified below: retried or set aside, never lost
                error = exc
        return await self._finish(effect, error)

    async def _finish(self, effect: SideEffect, error: BaseException | None) -> bool:
        now = self.clock.now()
        values: dict[str, Any] = {"claimed_until": None, "attempts": effect.attempts + 1}
        if error is None:
            values["done_at"] = now
            self.metrics.inc("side_effects_total", kind=effect.kind, outcome="done")
        elif retryable(error) and effect.kind in self.executors:
            backoff = min(timedelta(seconds=2 ** min(effect.attempts, 12)), MAX_BACKOFF)
            values["due_at"] = now + backoff
            values["last_error"] = _describe(error)
            self.metrics.inc("side_effects_total", kind=effect.kind, outcome="retry")
            log.warning(
                "%s #%s failed, retrying in %s: %s",
                effect.kind,
                effect.id,
                backoff,
                _describe(error),
            )
        else:
            values["done_at"] = now
            values["failed"] = True
            values["last_error"] = _describe(error)
            self.metrics.inc("side_effects_total", kind=effect.kind, outcome="failed")
            log.error("%s #%s failed for good: %s", effect.kind, effect.id, _describe(error))
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(SideEffect).where(col(SideEffect.id) == effect.id).values(**values)
            )
        return "done_at" in values


def _describe(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return f"Slack {error.response.get('error', 'error')} (HTTP {error.response.status_code})"
    return f"{type(error).__name__}: {error}"[:1000]
