"""How broken HTTP from the internet is logged: one WARNING line, no traceback, rate-limited.

aiohttp logs a malformed request (a header line over 8 KiB, a bad request line, bad chunking)
and a client that hangs up mid-body at ERROR with a traceback, on the `aiohttp.server` logger.
Those are facts about the caller, not defects of ours, and anyone can send them by the
thousand: this filter turns each into one short WARNING and lets through at most `burst`
of them per `window` seconds, then says how many it left out. Everything else on that logger
(an exception from our own handler) stays an ERROR with its traceback: an ERROR in the log
always means a defect of ours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import ClientConnectionResetError
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

SERVER_LOGGER = "aiohttp.server"

# The caller broke the protocol or went away; nothing we did wrong.
CALLER_FAULTS: tuple[type[BaseException], ...] = (
    HttpProcessingError,  # BadHttpMessage, LineTooLong, BadStatusLine, InvalidHeader …
    RequestPayloadError,
    ConnectionResetError,
    ClientConnectionResetError,
    BrokenPipeError,
    asyncio.IncompleteReadError,
)


class ProtocolErrorPolicy(logging.Filter):
    """A logging filter for `aiohttp.server`: caller faults become rate-limited WARNING lines."""

    def __init__(
        self,
        *,
        burst: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = clock
        self._window_start = clock()
        self._shown = 0
        self._left_out = 0

    def reset(self) -> None:
        """Start a new window with nothing shown (tests share one process-wide policy)."""
        self._window_start, self._shown, self._left_out = self.clock(), 0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not _is_caller_fault(error):
            return True
        now = self.clock()
        left_out = 0
        if now - self._window_start >= self.window:
            left_out, self._left_out = self._left_out, 0
            self._window_start, self._shown = now, 0
        if self._shown >= self.burst:
            self._left_out += 1
            return False
        self._shown += 1
        summary = f"{record.getMessage()}: {_describe(error)}"
        if left_out:
            summary += f" ({left_out} more like it in the last {self.window:.0f} s not logged)"
        record.msg, record.args = "%s", (summary,)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install(logger: logging.Logger | None = None) -> ProtocolErrorPolicy:
    """Put the policy on aiohttp's server logger, once however often it is called."""
    target = logger or logging.getLogger(SERVER_LOGGER)
    for existing in target.filters:
        if isinstance(existing, ProtocolErrorPolicy):
            return existing
    policy = ProtocolErrorPolicy()
    target.addFilter(policy)
    return policy


def _is_caller_fault(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # look through chained causes too
        if isinstance(current, CALLER_FAULTS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if len(text) > 200:
        text = text[:199] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
