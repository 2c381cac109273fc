"""Timers that survive a restart: APScheduler 3 (AsyncIOScheduler) with its jobs in our database.

Escalations, status-update reminders, checklist nudges, postmortem-due and overdue-task
reminders are APScheduler date jobs stored by the SQLAlchemy job store in the bot's own
database, so a restart (kill -9 included) finds them again. A job missed while the bot was down
runs once after start-up: coalesced, with no misfire grace limit.

Several processes may share the database: each adds and cancels jobs, but only the holder of the
`scheduler` lease runs them; the others try for the lease on every poll. The holder renews it
every poll; a stopping holder gives it up. One killed (kill -9, a crash) cannot: its lease is
taken over when it expires, or at once by a process on the same machine that can see the
holder's pid no longer exists (the holder id names its pid, boot and pid namespace), so a
restart does not leave escalations waiting for a dead process's lease to run out.

APScheduler stores, replaces and removes the jobs; its own wake-up timer is not used. The lease
holder's poll runs what is due on the injected clock, once a second. So timers follow the same
clock in production and in tests, jobs added by other processes are seen within a second, and
no job-store query ever blocks the event loop: the job store is synchronous, so every call to
it runs in a worker thread (on SQLite a blocking call could otherwise wait on a write lock held
by a coroutine that cannot run until it returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.core.clock import Clock
from bot.core.paging_plan import STOPPED_BY_RESOLUTION, Due
from bot.db.gate import WriteGate
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
    return timer_prefixes(incident_id, STOPPED_BY_RESOLUTION)


def timer_prefixes(incident_id: int, kinds: Iterable[Due]) -> list[str]:
    """The key prefixes of an incident's timers of these kinds (for cancelling them)."""
    prefixes = {
        Due.ESCALATE: f"escalate:{incident_id}:",
        Due.STATUS_REMINDER: status_key(incident_id),
        Due.CHECKLIST_NUDGE: checklist_key(incident_id),
        Due.POSTMORTEM_DUE: postmortem_key(incident_id),
    }
    return [prefixes[kind] for kind in kinds]


def _this_machine() -> str | None:
    """This boot of this kernel and this pid namespace: where a holder's pid means a process."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux: holders are only ever replaced when their lease expires
        return None
    return f"{boot}/{namespace}"


MACHINE = _this_machine()


def holder_id(pid: int | None = None) -> str:
    """A lease holder: unique per scheduler, naming its process and machine when known."""
    unique = uuid.uuid4().hex[:12]
    return f"{unique}:{pid or os.getpid()}@{MACHINE}" if MACHINE else unique


def holder_is_gone(holder: str) -> bool:
    """Whether `holder` was a process on this machine that no longer exists.

    False whenever that cannot be known: another machine or container, no /proc, or our own
    pid (another scheduler in this process, as in tests).
    """
    pid, _, machine = holder.partition(":")[2].partition("@")
    if MACHINE is None or machine != MACHINE or not pid.isdigit():
        return False
    if int(pid) <= 0 or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, as another user
        return False
    return False


async def fire(database: str, kind: str, payload: str) -> None:
    """The callable every stored job names; APScheduler needs one it can import.

    Jobs never run through it: the scheduler stays paused and `Timers.run_due` hands each due
    job's kind and payload to the handler of the instance that read it from its store.
    """
    log.error("timer %s was run by APScheduler itself; Timers.run_due runs timers", kind)


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
        gate: WriteGate | None = None,
    ) -> None:
        self.key = make_url(database_url).render_as_string(hide_password=True)
        self.sessions = sessions
        self.clock = clock
        # The job store writes through its own synchronous connection: on SQLite it takes
        # its turn at the process's write gate like every other writer.
        self.gate = gate or WriteGate(enabled=False)
        self.handler: Handler | None = None
        self._poller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._running = asyncio.Lock()  # one pass at a time: poll and settle may overlap
        self.holder = holder_id()
        self.leader = False
        url = sync_url(database_url)
        options = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
        self.store = SQLAlchemyJobStore(url=url, engine_options=options)
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self.store},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone="UTC",
        )

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, handler: Handler) -> None:
        """Open the job store; jobs only run in the process holding the lease (see poll)."""
        self.handler = handler
        if not self.scheduler.running:
            # Paused: APScheduler keeps the jobs; `poll` decides when they run.
            self.scheduler.start(paused=True)

    def start_polling(self, every: float = 1.0) -> None:
        """Contend for the lease, and run due timers when it is ours, every `every` seconds."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll_forever(every), name="timers-poll")

    async def _poll_forever(self, every: float) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll()
            except Exception:  # a database hiccup must not end the loop; the next poll retries
                log.exception("scheduler lease poll failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._stopping.wait()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop running timers (they stay stored) and give the lease to another process.

        A pass under way finishes first (up to `grace` seconds): its timers have already left
        the store, so cutting it short would lose them.
        """
        if self._poller is not None:
            self._stopping.set()
            try:
                await asyncio.wait_for(self._poller, grace)
            except TimeoutError:
                log.warning("a timer was still running at shutdown; it was cut short")
            self._poller = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.leader:
            with contextlib.suppress(Exception):
                await self.release()
            self.leader = False
        self.store.engine.dispose()

    async def poll(self) -> None:
        """Take or keep the lease; the lease holder runs the timers that are due."""
        leader = await self._hold_lease()
        if leader != self.leader:
            log.info("this process %s the timers", "now runs" if leader else "no longer runs")
        self.leader = leader
        if leader:
            await self.run_due()

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
            lease = await session.get(Lease, LEASE_NAME)
            if lease is None:
                session.add(Lease(name=LEASE_NAME, holder=self.holder, expires_at=now + LEASE_FOR))
                return True
            if not holder_is_gone(lease.holder):
                return False
            # Killed without giving the lease up (kill -9, a crash): take it over now, unless
            # another process has just done so.
            taken = await session.execute(
                sa.update(Lease)
                .where(col(Lease.name) == LEASE_NAME, col(Lease.holder) == lease.holder)
                .values(holder=self.holder, expires_at=now + LEASE_FOR)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return False
            log.info(
                "took over the scheduler lease of %s, a process that no longer exists", lease.holder
            )
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

    async def schedule(
        self, kind: TimerKind, *, key: str, at: datetime, payload: Mapping[str, Any]
    ) -> None:
        """Run `kind` at `at`; a timer with the same key is replaced."""
        async with self.gate.turn():
            await asyncio.to_thread(
                self.scheduler.add_job,
                "bot.timers:fire",
                trigger="date",
                run_date=at,
                id=key,
                args=[self.key, kind.value, json.dumps(dict(payload), sort_keys=True)],
                replace_existing=True,
            )

    async def cancel_prefix(self, prefix: str) -> None:
        """Forget every timer whose key starts with prefix (a whole key cancels that timer)."""

        def remove() -> None:
            for job in self.scheduler.get_jobs():
                if job.id.startswith(prefix):
                    with contextlib.suppress(JobLookupError):
                        self.scheduler.remove_job(job.id)

        async with self.gate.turn():
            await asyncio.to_thread(remove)

    async def when(self, key: str) -> datetime | None:
        """When the timer `key` is due; None when there is no such timer.

        Read from the job store itself, not through the scheduler, which holds one lock around
        every store call: called inside a transaction holding SQLite's write lock (a Snooze),
        it would otherwise wait out the busy timeout behind a timer being stored meanwhile.
        """
        job = await asyncio.to_thread(self.store.lookup_job, key)
        return job.next_run_time if job is not None else None

    async def pending(self) -> dict[str, datetime]:
        """Key -> when, for every stored timer."""
        jobs = await asyncio.to_thread(self.scheduler.get_jobs)
        return {job.id: job.next_run_time for job in jobs}

    async def run_due(self, now: datetime | None = None) -> int:
        """Run every stored timer due at `now` (the injected clock's time) once; return how many.

        Each due job leaves the store before it runs (a date trigger has no next time): a
        timer missed while the bot was down runs once, after start-up, and never twice.
        """
        now = now or self.clock.now()
        handler = self.handler
        if handler is None:
            return 0  # not started: leave the timers in the store

        def take_due() -> list[Job]:
            due: list[Job] = self.store.get_due_jobs(now)
            for job in due:
                with contextlib.suppress(JobLookupError):
                    self.store.remove_job(job.id)
            return due

        async with self._running:
            async with self.gate.turn():
                due = await asyncio.to_thread(take_due)
            for job in due:
                try:
                    _database, kind, payload = job.args
                    await handler(TimerKind(kind), json.loads(payload))
                except Exception:  # one failing timer must not keep the others from running
                    log.exception("timer %s failed", job.id)
        return len(due)
