"""Durable intake: what a request asks for is committed before it is acknowledged.

Every request that passed the edge's checks is written to the inbox before the answer goes
out; requests arriving together share one transaction. The work after the ack carries the
request's ticket: the first transaction that work commits also marks the request done, in
the same commit, so work that was recorded is never redone. A request whose holder died
before that (a `kill -9` right after the 200) is found by any process's recovery loop and
run again through the same listeners; Slack's own answer to the person goes through the
request's response_url, which outlives the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from bot.core.clock import Clock
from bot.db.bulk import insert_returning_ids
from bot.db.gate import URGENT, WriteGate
from bot.db.models import InboxRequest
from bot.errors import AlreadyHandled
from bot.timers import holder_id, holder_is_gone

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # how long a live holder may take before others step in
MAX_ATTEMPTS = 3  # a request that failed this often is set aside, with its last error


@dataclass
class Ticket:
    """One acknowledged request, as the work after its ack sees it."""

    id: int
    consumed: bool = False  # a committed transaction of its work marked it done
    spawned: int = 0  # pieces of work after the ack still running


CURRENT: ContextVar[Ticket | None] = ContextVar("inbox_ticket", default=None)

Replay = Callable[[InboxRequest], Awaitable[None]]


class Inbox:
    """Records requests before their ack, marks them done with their work, recovers the rest."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        gate: WriteGate | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.gate = gate or WriteGate(enabled=False)
        self.poll_seconds = poll_seconds
        self.owner = holder_id()
        self.replay: Replay | None = None  # set by the wiring: dispatch through the listeners
        self._queue: list[tuple[dict[str, Any], asyncio.Future[Ticket]]] = []
        self._finished: list[tuple[Ticket, str | None]] = []  # done, marked with the next write
        self._writer: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._replays: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stop_asked = asyncio.Event()

    # -- before the ack --------------------------------------------------------------------

    async def record(self, *, source: str, content_type: str, body: str) -> Ticket:
        """Commit the request; requests that arrive while a commit is under way share the next."""
        now = self.clock.now()
        # A plain row, not a model instance: this is on every request's way to its ack.
        row = {
            "source": source,
            "content_type": content_type[:200],
            "body": body,
            "received_at": now,
            "claimed_by": self.owner,
            "claimed_until": now + LEASE,
            "attempts": 0,
        }
        future: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        self._wake_writer()
        return await future

    def _wake_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="inbox-writer")

    async def _write(self) -> None:
        """One transaction for what arrived meanwhile: new requests, and requests now done."""
        while self._queue or self._finished:
            batch, self._queue = self._queue, []
            finished, self._finished = self._finished, []
            try:
                async with self.gate.turn(URGENT), self.sessions() as session, session.begin():
                    tickets = []
                    if batch:
                        table = InboxRequest.__table__  # type: ignore[attr-defined]
                        rows = [row for row, _ in batch]
                        ids = await insert_returning_ids(session, table, rows)
                        tickets = [Ticket(id=i) for i in ids]
                    await self._mark_done(session, finished)
            except Exception as exc:  # each waiting request answers 5xx: Slack will know
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                log.warning("inbox write failed (%r); finished requests are recovered later", exc)
                continue
            for ticket, _ in finished:
                ticket.consumed = True
            for (_, future), ticket in zip(batch, tickets, strict=True):
                if not future.done():
                    future.set_result(ticket)

    async def _mark_done(
        self, session: AsyncSession, finished: list[tuple[Ticket, str | None]]
    ) -> None:
        now = self.clock.now()
        plain = [ticket.id for ticket, error in finished if error is None]
        if plain:
            await session.execute(
                sa.update(InboxRequest)
                .where(col(InboxRequest.id).in_(plain), col(InboxRequest.done_at).is_(None))
                .values(done_at=now, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        for ticket, error in finished:
            if error is not None:
                await session.execute(
                    sa.update(InboxRequest)
                    .where(col(InboxRequest.id) == ticket.id, col(InboxRequest.done_at).is_(None))
                    .values(done_at=now, claimed_until=None, last_error=error)
                    .execution_options(synchronize_session=False)
                )

    # -- after the ack -----------------------------------------------------------------------

    async def consume(self, session: AsyncSession) -> Ticket | None:
        """Inside a work's transaction: mark its request done in the same commit, once.

        Raises AlreadyHandled when another process finished the same request first, so this
        transaction rolls back instead of doing the work a second time.
        """
        ticket = CURRENT.get()
        if ticket is None or ticket.consumed:
            return None
        marked = await session.execute(
            sa.update(InboxRequest)
            .where(col(InboxRequest.id) == ticket.id, col(InboxRequest.done_at).is_(None))
            .values(done_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            raise AlreadyHandled(ticket.id)
        return ticket

    def finish(self, ticket: Ticket, *, error: str | None = None) -> None:
        """The request's work is over: marked done with the next inbox write (one commit for
        all the requests that ended meanwhile), unless a transaction of the work said so."""
        if ticket.consumed:
            return
        self._finished.append((ticket, error))
        self._wake_writer()

    async def flush(self) -> None:
        """Wait until what was recorded or finished so far is committed."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    def began(self, ticket: Ticket) -> None:
        """A piece of work after the ack started; the request is done when the last one ends."""
        ticket.spawned += 1

    def ended(self, ticket: Ticket, *, error: str | None = None) -> None:
        ticket.spawned -= 1
        if ticket.spawned <= 0:
            self.finish(ticket, error=error)

    def finish_soon(self, ticket: Ticket) -> None:
        """After the dispatch: a request that started no work after its ack is done now."""
        if ticket.spawned == 0:
            self.finish(ticket)

    # -- recovery ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="inbox-recovery")

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        self._stop_asked.set()
        tasks = [t for t in (self._loop_task, *self._replays) if t is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.flush()
        self._loop_task = None
        self._stopping = False
        self._stop_asked = asyncio.Event()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.recover()
            except Exception:  # the loop outlives a database hiccup; it tries again next poll
                log.exception("inbox recovery pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._stop_asked.wait()

    async def unfinished(self) -> int:
        """Requests acknowledged and not yet done."""
        async with self.sessions() as session:
            result = await session.execute(
                sa.select(sa.func.count())
                .select_from(InboxRequest)
                .where(col(InboxRequest.done_at).is_(None))
            )
            return int(result.scalar() or 0)

    async def recover(self) -> int:
        """Run again, here, the requests whose holder died or ran out of time; how many."""
        if self.replay is None:
            return 0
        now = self.clock.now()
        async with self.sessions() as session:
            rows = await session.execute(
                select(InboxRequest.id, InboxRequest.claimed_by, InboxRequest.claimed_until)
                .where(col(InboxRequest.done_at).is_(None))
                .order_by(col(InboxRequest.id))
                .limit(100)
            )
            candidates = [
                (int(request_id), holder)
                for request_id, holder, until in rows.all()
                if request_id is not None and _abandoned(holder, until, now, self.owner)
            ]
        taken = 0
        for request_id, holder in candidates:
            request = await self._take(request_id, holder, now)
            if request is None:
                continue
            taken += 1
            if request.attempts > MAX_ATTEMPTS:
                log.warning(
                    "inbox request #%s set aside after %s attempts", request.id, MAX_ATTEMPTS
                )
                self.finish(Ticket(id=request_id), error="set aside after repeated failures")
                continue
            log.warning("running again request #%s, acknowledged by a process now gone", request.id)
            await self._replay(request)
        return taken

    async def _take(
        self, request_id: int, holder: str | None, now: datetime
    ) -> InboxRequest | None:
        async with self.sessions() as session, session.begin():
            claimed = await session.execute(
                sa.update(InboxRequest)
                .where(
                    col(InboxRequest.id) == request_id,
                    col(InboxRequest.done_at).is_(None),
                    col(InboxRequest.claimed_by) == holder
                    if holder is not None
                    else col(InboxRequest.claimed_by).is_(None),
                )
                .values(
                    claimed_by=self.owner,
                    claimed_until=now + LEASE,
                    attempts=InboxRequest.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return await session.get(InboxRequest, request_id)

    async def _replay(self, request: InboxRequest) -> None:
        assert self.replay is not None and request.id is not None
        ticket = Ticket(id=request.id)
        token = CURRENT.set(ticket)
        try:
            await self.replay(request)
        except Exception as exc:  # counted as an attempt; tried again once its lease is over
            log.warning("request #%s failed when run again: %r", request.id, exc)
            return
        finally:
            CURRENT.reset(token)
        if ticket.spawned == 0:
            self.finish(ticket)


def _abandoned(holder: str | None, until: datetime | None, now: datetime, me: str) -> bool:
    if until is None or until < now:
        return True
    return holder is not None and holder != me and holder_is_gone(holder)
