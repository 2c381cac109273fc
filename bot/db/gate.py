"""Turns at SQLite's one write lock, taken in the process, with requests waiting for an ack first.

SQLite lets one transaction write at a time, and a waiting writer polls for the lock: whoever
polls at the right moment wins, and a connection waits in the pool behind every transaction
already queued. Under load the commit that stands between a request and its 200 then waits
behind the work of requests acknowledged long ago. Taking turns here first, with the inbox's
commits served before anything else, keeps the ack as fast as one commit. PostgreSQL has row
locks and needs none of this: there the gate is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

URGENT, NORMAL = 0, 1

# Whether the current task is inside an explicit (write) transaction: SQLite begins those with
# the write lock taken up front, and every other transaction (a read) without it.
WRITING: ContextVar[bool] = ContextVar("writing", default=False)


class WriteGate:
    """A lock handed to the most urgent waiter first (then in arrival order)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._mine: ContextVar[bool] = ContextVar(f"gate-{id(self)}", default=False)
        self._held = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def turn(self, priority: int = NORMAL) -> AsyncIterator[None]:
        """Hold the gate for one write transaction (again inside it: already held)."""
        if not self.enabled or self._mine.get():
            yield
            return
        await self._acquire(priority)
        token = self._mine.set(True)
        try:
            yield
        finally:
            self._mine.reset(token)
            self._release()

    async def _acquire(self, priority: int) -> None:
        if not self._held and not self._waiting:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed over just as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)  # still held: handed straight to the next waiter
                return
        self._held = False


class GatedSession(AsyncSession):
    """A session whose explicit transactions (`session.begin()`) take their turn at the gate."""

    gate: WriteGate = WriteGate(enabled=False)

    def begin(self) -> Any:
        return _GatedBegin(self.gate, super().begin())


class _GatedBegin:
    def __init__(self, gate: WriteGate, begin: Any) -> None:
        self._turn = gate.turn()
        self._begin = begin
        self._writing: Token[bool] | None = None

    async def __aenter__(self) -> Any:
        await self._turn.__aenter__()
        self._writing = WRITING.set(True)
        try:
            return await self._begin.__aenter__()
        except BaseException as exc:
            self._leave()
            await self._turn.__aexit__(type(exc), exc, exc.__traceback__)
            raise

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._begin.__aexit__(*exc)
        finally:
            self._leave()
            await self._turn.__aexit__(*exc)

    def _leave(self) -> None:
        if self._writing is not None:
            WRITING.reset(self._writing)
            self._writing = None


def gated_session_class(gate: WriteGate) -> type[GatedSession]:
    """Sessions bound to one gate (one per engine)."""
    return type("GatedSession", (GatedSession,), {"gate": gate})
