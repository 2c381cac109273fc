"""Work that goes on after Slack was answered: tracked, so shutdown and tests can wait."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

log = logging.getLogger(__name__)


class Inflight:
    """The set of background tasks still running for requests already acknowledged."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def adopt(self) -> None:
        """Count the current task (a Bolt listener running after its ack) as in flight."""
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def wait(self, seconds: float = 30.0) -> None:
        """Return once nothing is in flight (new tasks started meanwhile included)."""
        async with asyncio.timeout(seconds):
            while True:
                pending = {t for t in self._tasks if t is not asyncio.current_task()}
                if not pending:
                    return
                await asyncio.wait(pending)

    def __len__(self) -> int:
        return len(self._tasks)


class KeyedLocks:
    """One FIFO lock per key, kept only while someone holds or waits for it.

    Work of one process that must take turns (alert writes on SQLite, one alert group at a
    time); what must hold across processes is ordered by the database instead.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class AckFirst:
    """Requests waiting for their answer go before the work of requests already answered.

    The work after an ack and the side-effect runner run on the same event loop as the
    requests still waiting for their 200: during a burst they would compete with those acks
    (and, on SQLite, a write of theirs holds the one write lock the next acks' commit needs).
    Background work asks `turn()` first and waits while answers are being prepared or keep
    coming (the last `burst` answers within `window` seconds), a little at most (`patience`),
    so that a steady stream of requests never starves it. A lone request's work starts at once.
    """

    def __init__(
        self,
        *,
        patience: float = 2.0,
        concurrency: int = 8,
        burst: int = 8,
        window: float = 0.05,
    ) -> None:
        self.patience = patience
        self.window = window
        self._answering = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._slots = asyncio.Semaphore(concurrency)
        self._answered: collections.deque[float] = collections.deque(maxlen=burst)

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the work that stands between a request and its answer."""
        self._answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._answering -= 1
            self._answered.append(time.monotonic())
            if self._answering == 0:
                self._quiet.set()

    def _burst_left(self) -> float:
        """How long until the recent answers no longer make a burst (0: they do not)."""
        if len(self._answered) < (self._answered.maxlen or 0):
            return 0.0
        return max(0.0, self._answered[0] + self.window - time.monotonic())

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Around a piece of background work: after the answers, a few at a time."""
        async with self._slots:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.patience):
                    while True:
                        await self._quiet.wait()
                        pause = self._burst_left()
                        if not pause:
                            break
                        await asyncio.sleep(pause)  # a gap between requests of a burst
            yield
