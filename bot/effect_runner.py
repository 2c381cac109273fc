"""Running the outbox: the side effects committed changes owe, in order per incident and lane.

Several processes may run a runner against one database: an incident's due effects are claimed
(one transaction) before they run, and only the oldest unfinished effect of a lane may start,
whichever process runs it. What can succeed later (rate limits, 5xx, dropped connections) is
retried with backoff; what never will (a refused call) is set aside.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
import sqlalchemy.orm
from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from bot.core.clock import Clock
from bot.db.models import Incident, SideEffect
from bot.errors import RetryLater, SideEffectFailed
from bot.logs import working_on
from bot.metrics import Metrics
from bot.outbox import (
    ADOPTED,
    ADOPTED_EFFECTS,
    ADOPTED_INCIDENTS,
    ADOPTED_READS,
    BARRIER,
    WRITES_ADOPTED,
    Executor,
)
from bot.tasks import AckFirst
from bot.timers import holder_id, holder_is_gone

log = logging.getLogger(__name__)


LEASE = timedelta(seconds=120)
MAX_BACKOFF = timedelta(minutes=10)
RUN_LENGTH = 20  # effects of one incident claimed and made back to back at most
MAX_SNAPSHOTS = 100

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


# Read in the transaction that creates an incident, for its first effects (incident id given).
ReadAhead = Callable[[AsyncSession, int], Awaitable[Any]]


class Snapshot(NamedTuple):
    """An incident as the transaction that created it here committed it."""

    incident: Incident
    read: Any  # what the read ahead found in that transaction (None without one)


@dataclass
class _Ahead:
    """The effect right behind the one running, in the same run (so claimed by it)."""

    effect: SideEffect | None
    taken: bool = False


_AHEAD: ContextVar[_Ahead | None] = ContextVar("effect_ahead", default=None)


def take_next() -> SideEffect | None:
    """For an executor: the effect right behind it in its run, which it begins itself.

    That effect was claimed with this one and runs here next: its executor finds the work
    under way (its calls can then go out while this one still writes back). Once taken, it is
    run even if the runner is stopping. None when no effect is right behind here.
    """
    ahead = _AHEAD.get()
    if ahead is None or ahead.effect is None:
        return None
    ahead.taken = True
    return ahead.effect


def retryable(error: BaseException) -> bool:
    """Whether trying the same call again later may succeed."""
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 200)
        code = str(error.response.get("error", ""))
        return status == 429 or status >= 500 or code in RETRYABLE_SLACK_ERRORS
    if isinstance(error, SideEffectFailed | RetryLater):
        return True
    return isinstance(error, OSError | TimeoutError | asyncio.TimeoutError)


class EffectRunner:
    """Performs committed side effects in order per incident; one per process.

    Each incident's effects form a queue held in the database: only the oldest unfinished
    effect of an incident may start, whichever process runs it, so posts leave in the order
    they were recorded. A runner claims an incident's due effects as one run (one transaction),
    makes the calls back to back, and marks each done as it goes. Incidents do not wait for
    each other: each run is its own task, up to `concurrency` at once. A claim names its
    holder; a holder that died on this machine is recognised at once and its claims retaken.
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        metrics: Metrics,
        poll_seconds: float = 1.0,
        concurrency: int = 16,
        ack_first: AckFirst | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.ack_first = ack_first or AckFirst(patience=0)
        self.executors: dict[str, Executor] = {}
        self.owner = holder_id()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._runs: dict[object, asyncio.Task[int]] = {}  # queue key -> the run under way here
        # Adopted runs waiting for their incident's channel (the barrier) to be created here.
        self._held: dict[int, list[tuple[object, list[SideEffect]]]] = {}
        # Incidents created here, as their committed transaction wrote them: read once by
        # their first effects instead of read back from the database.
        self._snapshots: dict[int, Snapshot] = {}
        self._read_ahead: ReadAhead | None = None
        self._refs: dict[int, str] = {}  # incident id -> INC-n, for the log lines

    def register(self, executors: Mapping[str, Executor]) -> None:
        self.executors.update(executors)

    def kick(self) -> None:
        """Something was just committed: run it now rather than at the next poll."""
        self._wake.set()

    def adopt(self, session: AsyncSession, incident: Incident) -> None:
        """Claim the effects of an incident created in this transaction as they are written.

        Nothing of a new incident can be queued anywhere else, so its effects need no claim
        query: `run_adopted` starts them as soon as the transaction commits, and the calls of
        a declaration run back to back. A runner that is not running adopts nothing.
        """
        if self._task is None or self._stopping or incident.id is None:
            return
        if not session.info.get(WRITES_ADOPTED):
            return  # not a transaction that writes adopted effects: claimed the usual way
        session.info.setdefault(ADOPTED, {})[incident.id] = (self.owner, self.clock.now() + LEASE)
        session.info.setdefault(ADOPTED_INCIDENTS, []).append(incident)

    def read_with_adopted(self, read: ReadAhead) -> None:
        """What the first effects of an incident created here read, read instead by the
        transaction that creates it, just before it commits (see `before_commit`)."""
        self._read_ahead = read

    async def before_commit(self, session: AsyncSession) -> None:
        """In a transaction that adopted incidents, as it is about to commit: the read ahead."""
        if self._read_ahead is None:
            return
        reads = session.info.setdefault(ADOPTED_READS, {})
        for incident in session.info.get(ADOPTED_INCIDENTS, []):
            reads[incident.id] = await self._read_ahead(session, incident.id)

    def run_adopted(self, session: AsyncSession) -> None:
        """Start the committed effects `adopt` claimed, in the transaction `session` just
        committed: the barrier's lane first, the others as soon as the barrier is done."""
        effects: Sequence[SideEffect] = session.info.get(ADOPTED_EFFECTS, [])
        reads = session.info.get(ADOPTED_READS, {})
        for incident in session.info.get(ADOPTED_INCIDENTS, []):
            if incident.id is not None:
                self._refs[incident.id] = incident.ref
                self._snapshots[incident.id] = Snapshot(incident, reads.get(incident.id))
        while len(self._snapshots) > MAX_SNAPSHOTS:  # effects that ran elsewhere took none
            self._snapshots.pop(next(iter(self._snapshots)))
        lanes: dict[object, list[SideEffect]] = {}
        for effect in sorted(effects, key=lambda e: e.id or 0):
            lanes.setdefault((effect.incident_id, effect.lane), []).append(effect)
        barriers = {e.incident_id for e in effects if e.kind == BARRIER}
        for key, run in lanes.items():
            incident_id = run[0].incident_id
            if incident_id in barriers and run[0].kind != BARRIER:
                self._held.setdefault(incident_id or 0, []).append((key, run))
            else:
                self._start(key, run)

    def snapshot(self, incident_id: int) -> Snapshot | None:
        """The incident as the transaction that created it here committed it, and what was
        read ahead with it; once only."""
        return self._snapshots.pop(incident_id, None)

    def _start(self, key: object, effects: list[SideEffect]) -> None:
        task = asyncio.create_task(self._run(effects), name=f"effects:{key}")
        self._runs[key] = task
        task.add_done_callback(functools.partial(self._run_ended, key))

    def _unhold(self, incident_id: int | None) -> list[tuple[object, list[SideEffect]]]:
        return self._held.pop(incident_id, []) if incident_id is not None else []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="effect-runner")

    async def stop(self, grace: float = 10.0) -> None:
        """Let the effects under way finish (a call made but not marked done would run twice)."""
        if self._task is None and not self._runs:
            return
        self._stopping = True
        self._wake.set()
        pending = [t for t in (self._task, *self._runs.values()) if t is not None]
        done, late = await asyncio.wait(pending, timeout=grace)
        if late:
            log.warning("side effects still running after %s s at shutdown; stopping them", grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("side-effect run ended with %r at shutdown", task.exception())
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
                async with self.ack_first.turn():  # a claim pass waits while acks are due
                    await self._start_runs()
            except Exception:  # the loop must outlive a database hiccup; it retries next poll
                log.exception("side-effect runner pass failed")

    async def run_due(self) -> int:
        """Run every effect that is due now, here; return how many finished (done or set aside)."""
        finished = 0
        while True:
            started = await self._start_runs()
            running = list(self._runs.values())
            if not started and not running:
                return finished
            results = await asyncio.gather(*running, return_exceptions=True)
            finished += sum(r for r in results if isinstance(r, int))
            if self._stopping:
                return finished

    async def pending(self) -> int:
        """Effects not yet done (due or waiting for a retry)."""
        async with self.sessions() as session:
            result = await session.execute(
                sa.select(sa.func.count())
                .select_from(SideEffect)
                .where(col(SideEffect.done_at).is_(None))
            )
            return int(result.scalar() or 0)

    async def _start_runs(self) -> int:
        """Claim the due head of every idle queue (up to the bound) and start running it."""
        room = self.concurrency - len(self._runs)
        if room <= 0 or self._stopping:
            return 0
        runs = await self._claim_runs(room)
        for key, effects in runs.items():
            self._start(key, effects)
        return len(runs)

    def _run_ended(self, key: object, _task: asyncio.Task[int]) -> None:
        self._runs.pop(key, None)
        self._wake.set()  # the queue's next effect, or another queue, may be waiting

    async def _dead_holders(self, session: AsyncSession, now: datetime) -> list[str]:
        result = await session.execute(
            sa.select(col(SideEffect.claimed_by))
            .where(
                col(SideEffect.done_at).is_(None),
                col(SideEffect.claimed_until) >= now,
                col(SideEffect.claimed_by).is_not(None),
            )
            .distinct()
        )
        return [h for h in result.scalars() if h and holder_is_gone(h)]

    async def _claim_runs(self, room: int) -> dict[object, list[SideEffect]]:
        """Claim, in one transaction, the due effects at the head of up to `room` queues."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            dead = await self._dead_holders(session, now)
            claimable = sa.or_(
                col(SideEffect.claimed_until).is_(None),
                col(SideEffect.claimed_until) < now,
                col(SideEffect.claimed_by).in_(dead) if dead else sa.false(),
            )
            earlier = sa.orm.aliased(SideEffect)
            heads = await session.execute(
                sa.select(col(SideEffect.id), col(SideEffect.incident_id), col(SideEffect.lane))
                .where(
                    col(SideEffect.done_at).is_(None),
                    col(SideEffect.due_at) <= now,
                    claimable,
                    sa.or_(
                        col(SideEffect.incident_id).is_(None),
                        ~sa.exists().where(
                            col(earlier.incident_id) == col(SideEffect.incident_id),
                            col(earlier.done_at).is_(None),
                            col(earlier.id) < col(SideEffect.id),
                            sa.or_(
                                col(earlier.lane) == col(SideEffect.lane),
                                col(earlier.kind) == BARRIER.value,
                            ),
                        ),
                    ),
                )
                .order_by(col(SideEffect.id))
                .limit(room + len(self._runs))
            )
            wanted: dict[object, list[int]] = {}
            incidents: list[int] = []
            head: Any
            for head in heads.all():
                effect_id, incident_id, lane = head
                key: object = (incident_id, lane) if incident_id is not None else effect_id
                if key in self._runs or len(wanted) >= room:
                    continue
                wanted[key] = [int(effect_id)]
                if incident_id is not None:
                    incidents.append(int(incident_id))
            if incidents:
                # The rest of each run: the due effects right behind the head, in order.
                queued = await session.execute(
                    sa.select(
                        col(SideEffect.id),
                        col(SideEffect.incident_id),
                        col(SideEffect.lane),
                        col(SideEffect.due_at),
                    )
                    .where(col(SideEffect.incident_id).in_(incidents))
                    .where(col(SideEffect.done_at).is_(None))
                    .order_by(col(SideEffect.incident_id), col(SideEffect.id))
                )
                blocked: set[object] = set()
                row: Any
                for row in queued.all():
                    effect_id, incident_id, lane, due_at = row
                    key = (incident_id, lane)
                    run = wanted.get(key)
                    if run is None or effect_id <= run[0] or key in blocked:
                        continue
                    if due_at > now or len(run) >= RUN_LENGTH:
                        blocked.add(key)
                        continue
                    run.append(int(effect_id))
            ids = [effect_id for run in wanted.values() for effect_id in run]
            if not ids:
                return {}
            claimed = await session.execute(
                sa.update(SideEffect)
                .where(col(SideEffect.id).in_(ids), col(SideEffect.done_at).is_(None), claimable)
                .values(claimed_until=now + LEASE, claimed_by=self.owner)
                .returning(col(SideEffect.id))
                .execution_options(synchronize_session=False)
            )
            got = {int(i) for i in claimed.scalars() if i is not None}
            runs: dict[object, list[int]] = {}
            giving_back: list[int] = []
            for key, run in wanted.items():
                # Only a run whose head is ours may start; we keep the unbroken prefix.
                prefix = list(itertools.takewhile(lambda i: i in got, run))
                if prefix:
                    runs[key] = prefix
                giving_back += [i for i in run[len(prefix) :] if i in got]
            if giving_back:
                await session.execute(
                    sa.update(SideEffect)
                    .where(col(SideEffect.id).in_(giving_back))
                    .values(claimed_until=None, claimed_by=None)
                    .execution_options(synchronize_session=False)
                )
            mine = [i for run in runs.values() for i in run]
            rows = await session.execute(select(SideEffect).where(col(SideEffect.id).in_(mine)))
            by_id = {row.id: row for row in rows.scalars()}
        return {key: [by_id[i] for i in run] for key, run in runs.items()}

    async def _run(self, effects: list[SideEffect]) -> int:
        """Make a claimed run's calls back to back; stop at one that must be retried later.

        A call that succeeded is marked done while the next one is already under way: the
        run holds the claim on both, so nothing else can start the next one meanwhile.
        """
        finished = 0
        marking: list[asyncio.Task[bool]] = []
        try:
            ahead = _Ahead(None)
            for index, effect in enumerate(effects):
                if self._stopping and not ahead.taken:
                    # Committed: they wait for the next start.
                    await self._release([*effects[index:], *self._held_effects(effect)])
                    return finished
                ahead = _Ahead(effects[index + 1] if index + 1 < len(effects) else None)
                token = _AHEAD.set(ahead)
                try:
                    error = await self._execute(effect)
                finally:
                    _AHEAD.reset(token)
                if error is None and effect.kind == BARRIER:
                    held = self._unhold(effect.incident_id)
                    if held:  # adopted: the incident's other lanes are claimed here already
                        marking.append(asyncio.create_task(self._finish(effect, None)))
                        for key, run in held:
                            self._start(key, run)
                    else:
                        await self._finish(effect, None)
                        self.kick()  # the incident's other lanes were waiting for this one
                    finished += 1
                    continue
                if error is None:
                    marking.append(asyncio.create_task(self._finish(effect, None)))
                    finished += 1
                    continue
                if await self._finish(effect, error):
                    finished += 1  # set aside for good: it no longer holds the rest
                    if effect.kind == BARRIER:
                        for key, run in self._unhold(effect.incident_id):
                            self._start(key, run)
                    continue
                # They wait behind the retried one (and an adopted incident's other lanes
                # behind its channel), for whichever process claims them next.
                await self._release([*effects[index + 1 :], *self._held_effects(effect)])
                return finished
            return finished
        finally:
            await asyncio.gather(*marking)

    async def _execute(self, effect: SideEffect) -> BaseException | None:
        executor = self.executors.get(effect.kind)
        if executor is None:
            return SideEffectFailed(effect.kind, "no executor registered")
        with working_on(await self._ref(effect.incident_id)):
            try:
                await executor(effect, json.loads(effect.payload))
            except Exception as exc:  # classified by _finish: retried or set aside, never lost
                return exc
        return None

    async def _ref(self, incident_id: int | None) -> str | None:
        """INC-n of the incident an effect is about (numbers never change: kept once read)."""
        if incident_id is None:
            return None
        if incident_id not in self._refs:
            async with self.sessions() as session:
                number = await session.scalar(
                    sa.select(col(Incident.number)).where(col(Incident.id) == incident_id)
                )
            if number is None:
                return None
            self._refs[incident_id] = f"INC-{number}"
        return self._refs[incident_id]

    def _held_effects(self, effect: SideEffect) -> list[SideEffect]:
        if effect.kind != BARRIER:
            return []
        return [e for _, run in self._unhold(effect.incident_id) for e in run]

    async def _release(self, effects: Sequence[SideEffect]) -> None:
        if not effects:
            return
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(SideEffect)
                .where(
                    col(SideEffect.id).in_([e.id for e in effects]),
                    col(SideEffect.claimed_by) == self.owner,
                )
                .values(claimed_until=None, claimed_by=None)
                .execution_options(synchronize_session=False)
            )

    async def _finish(self, effect: SideEffect, error: BaseException | None) -> bool:
        """Record the outcome; whether the effect no longer holds its queue (done or set aside)."""
        with working_on(await self._ref(effect.incident_id)):
            return await self._record_outcome(effect, error)

    async def _record_outcome(self, effect: SideEffect, error: BaseException | None) -> bool:
        now = self.clock.now()
        values: dict[str, Any] = {
            "claimed_until": None,
            "claimed_by": None,
            "attempts": effect.attempts + 1,
        }
        if error is None:
            values["done_at"] = now
            self.metrics.inc("side_effects_total", kind=effect.kind, outcome="done")
            log.debug("%s #%s done", effect.kind, effect.id)
        elif retryable(error) and effect.kind in self.executors:
            backoff = min(timedelta(seconds=2 ** min(effect.attempts, 12)), MAX_BACKOFF)
            if isinstance(error, RetryLater):  # the executor knows when: not sooner, not later
                backoff = max(error.retry_at - now, timedelta(0))
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
                sa.update(SideEffect)
                .where(col(SideEffect.id) == effect.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return "done_at" in values


def _describe(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return f"Slack {error.response.get('error', 'error')} (HTTP {error.response.status_code})"
    return f"{type(error).__name__}: {error}"[:1000]
