"""Timers that survive a restart: APScheduler 3 (AsyncIOScheduler) with its jobs in our database.

Escalations, status-update reminders, checklist nudges, postmortem-due and overdue-task
reminders are APScheduler date jobs stored by the SQLAlchemy job store in the bot's own
database, so a restart (kill -9 included) finds them again. A job missed while the bot was down
runs once after start-up: coalesced, with no misfire grace limit.

Several processes may share the database: each adds and cancels jobs, but only the holder of the
`scheduler` lease runs them (the others keep their scheduler paused and try for the lease on
every poll). The leader's poll also wakes APScheduler up, so it sees jobs other processes added.

Tests drive the same job store with a controllable clock through `run_due(now)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.core.clock import Clock
from bot.db.models import Lease

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
LEASE_FOR = timedelta(seconds=30)


class TimerKind(StrEnum):
    ESCALATE = "escalate"
    STATUS_REMINDER = "status_reminder"
    CHECKLIST_NUDGE = "checklist_nudge"
    POSTMORTEM_DUE = "postmortem_due"
    TASK_OVERDUE = "task_overdue"


Handler = Callable[[TimerKind, Mapping[str, Any]], Awaitable[None]]


def escalation_key(incident_id: int, tier: int) -> str:
    return f"escalate:{incident_id}:{tier}"


def status_key(incident_id: int) -> str:
    return f"status:{incident_id}"


def checklist_key(incident_id: int) -> str:
    return f"checklist:{incident_id}"


def postmortem_key(incident_id: int) -> str:
    return f"postmortem:{incident_id}"


def task_key(task_id: int) -> str:
    return f"task:{task_id}"


def while_open_prefixes(incident_id: int) -> list[str]:
    """The timers that only make sense while the incident is open."""
    return [f"escalate:{incident_id}:", status_key(incident_id), checklist_key(incident_id)]


# APScheduler 3 stores a job's callable by its import path, so the function it calls after a
# restart must be module-level; it finds the process's handler here, by database. The wiring
# registers the handler when the scheduler starts and removes it when it stops.
_HANDLERS: dict[str, Handler] = {}


async def fire(database: str, kind: str, payload: str) -> None:
    """The one function every stored job calls."""
    handler = _HANDLERS.get(database)
    if handler is None:
        log.error("timer %s fired with no handler registered for %s", kind, database)
        return
    await handler(TimerKind(kind), json.loads(payload))


def sync_url(url: str) -> str:
    """The synchronous driver's URL for the same database (the job store is synchronous)."""
    parsed = make_url(url)
    driver = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}
    return parsed.set(drivername=driver.get(parsed.drivername, parsed.drivername)).render_as_string(
        hide_password=False
    )


class Timers:
    """Schedule, cancel and run the bot's timers."""

    def __init__(
        self,
        *,
        database_url: str,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
    ) -> None:
        self.key = make_url(database_url).render_as_string(hide_password=True)
        self.sessions = sessions
        self.clock = clock
        self.handler: Handler | None = None
        self._poller: asyncio.Task[None] | None = None
        self.holder = f"{uuid.uuid4().hex[:12]}"
        self.leader = False
        self.store = SQLAlchemyJobStore(url=sync_url(database_url))
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self.store},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone="UTC",
        )

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, handler: Handler) -> None:
        """Open the job store; jobs only run once this process holds the lease (see poll)."""
        self.handler = handler
        _HANDLERS[self.key] = handler
        if not self.scheduler.running:
            self.scheduler.start(paused=True)

    def start_polling(self, every: float = 5.0) -> None:
        """Contend for the lease, and wake the leader's scheduler, every few seconds."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll_forever(every), name="timers-poll")

    async def _poll_forever(self, every: float) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # a database hiccup must not end the loop; the next poll retries
                log.exception("scheduler lease poll failed")
            await asyncio.sleep(every)

    async def stop(self) -> None:
        """Stop running timers (they stay stored) and give the lease to another process."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.leader:
            with contextlib.suppress(Exception):
                await self.release()
            self.leader = False
        self.store.engine.dispose()
        if self.handler is not None and _HANDLERS.get(self.key) is self.handler:
            del _HANDLERS[self.key]

    async def poll(self) -> None:
        """Take or keep the lease; the leader's APScheduler runs, and looks for new jobs."""
        leader = await self._hold_lease()
        if leader and not self.leader:
            log.info("this process now runs the scheduler")
            self.scheduler.resume()
        elif not leader and self.leader:
            log.info("another process runs the scheduler now")
            self.scheduler.pause()
        self.leader = leader
        if leader:
            self.scheduler.wakeup()

    async def _hold_lease(self) -> bool:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            updated = await session.execute(
                sa.update(Lease)
                .where(
                    col(Lease.name) == LEASE_NAME,
                    sa.or_(col(Lease.holder) == self.holder, col(Lease.expires_at) < now),
                )
                .values(holder=self.holder, expires_at=now + LEASE_FOR)
            )
            if updated.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if await session.get(Lease, LEASE_NAME) is not None:
                return False
            session.add(Lease(name=LEASE_NAME, holder=self.holder, expires_at=now + LEASE_FOR))
        return True

    async def release(self) -> None:
        """Give the lease up at shutdown so another process takes over at once."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.delete(Lease).where(
                    col(Lease.name) == LEASE_NAME, col(Lease.holder) == self.holder
                )
            )

    # -- jobs ---------------------------------------------------------------------------------

    def schedule(
        self, kind: TimerKind, *, key: str, at: datetime, payload: Mapping[str, Any]
    ) -> None:
        """Run `kind` at `at`; a timer with the same key is replaced."""
        self.scheduler.add_job(
            "bot.timers:fire",
            trigger="date",
            run_date=at,
            id=key,
            args=[self.key, kind.value, json.dumps(dict(payload), sort_keys=True)],
            replace_existing=True,
        )

    def cancel(self, key: str) -> None:
        """Forget a timer; unknown keys are fine."""
        if self.scheduler.get_job(key) is not None:
            self.scheduler.remove_job(key)

    def cancel_prefix(self, prefix: str) -> None:
        for job in self.scheduler.get_jobs():
            if job.id.startswith(prefix):
                self.scheduler.remove_job(job.id)

    def pending(self) -> dict[str, datetime]:
        """Key -> when, for every stored timer."""
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    async def run_due(self, now: datetime | None = None) -> int:
        """Run every stored timer due at `now` (the injected clock's time) once; return how many.

        This is APScheduler's own processing step, driven by our clock: each due job is taken
        out of the store before it runs (a date trigger has no next time), so it runs once.
        """
        now = now or self.clock.now()
        ran = 0
        for job in self.store.get_due_jobs(now):
            self.store.remove_job(job.id)
            try:
                await job.func(*job.args, **job.kwargs)
            except Exception:  # one failing timer must not keep the others from running
                log.exception("timer %s failed", job.id)
            ran += 1
        return ran
