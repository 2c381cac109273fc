"""What every tracker is: the issue it is asked to file, the issue it gives back, three verbs.

Each tracker (`github`, `jira`) lives in its own module and takes its site, credentials, HTTP
client and clock in the constructor. A call is made once: retrying is the outbox's job. Any
failure is raised as `TrackerFailed`: `retryable=True` when the same call may succeed later
(5xx, 408, rate limits, timeouts, dropped connections), with `retry_at` when the tracker said
when to come back; `retryable=False` when the tracker refused the request for good.

A tracker that said "come back at T" (Retry-After, x-ratelimit-reset) is not called again
before T, by any task: its `Gate` remembers, because a request sent inside the block window
prolongs the block.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx

from bot.core.clock import Clock
from bot.errors import BotError
from bot.metrics import Metrics

SOURCE = "incident-bot"
MARKER_PREFIX = "incident-bot:"
MAX_REASON = 300
DEFAULT_TIMEOUT = 10.0


class IssueState(StrEnum):
    """Where an issue stands in its tracker, in the three words both trackers can say."""

    OPEN = "open"
    COMPLETED = "completed"  # closed as done
    NOT_PLANNED = "not_planned"  # closed without doing it (GitHub not_planned, Jira Won't Do)


@dataclass(frozen=True)
class Span:
    """A run of text in an issue's body, a link when `href` is set."""

    text: str
    href: str | None = None


Line = tuple[Span, ...]


@dataclass(frozen=True)
class Owner:
    """The task's owner as Slack knows them; each tracker resolves them its own way."""

    slack_id: str
    name: str | None = None  # display name
    handle: str | None = None  # Slack username, without `@`
    email: str | None = None


@dataclass(frozen=True)
class IssueDraft:
    """One task (or measure) as every tracker receives it."""

    title: str
    lines: tuple[Line, ...]  # what links the incident: number, title, severity, channel
    marker: str  # written in the issue, to find it again when a create's answer was lost
    due: date | None = None
    owner: Owner | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Issue:
    """An issue as filed: a stable id, the key people read, its link and its state."""

    id: str  # GitHub's issue id, Jira's issue id: what webhooks name
    key: str  # "acme/infra#12", "OPS-7"
    url: str
    state: IssueState = IssueState.OPEN


class TrackerFailed(BotError):
    """A tracker call failed: refused for good, or worth trying again (at `retry_at`)."""

    def __init__(
        self,
        tracker: str,
        reason: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        answer = f"HTTP {status}" if status is not None else "no HTTP answer"
        super().__init__(f"{tracker} call failed ({answer}): {reason}")
        self.tracker = tracker
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_at = retry_at


class Tracker(Protocol):
    """Files issues, finds them again, and opens or closes them."""

    name: str  # "github" | "jira"

    async def create(self, draft: IssueDraft) -> Issue:
        """File the issue once (this call is not retried here)."""
        ...

    async def find(self, marker: str, *, since: datetime) -> Issue | None:
        """The issue carrying marker, created after since, read from a consistent source."""
        ...

    async def set_state(self, issue: Issue, state: IssueState) -> IssueState:
        """Bring the issue to state; return the state it is in afterwards."""
        ...


def marker_for(token: str) -> str:
    """The text written in an issue so the bot can recognise its own issue."""
    return f"{MARKER_PREFIX}{token}"


@dataclass
class Gate:
    """When a tracker may be called again; shared by every call to that tracker.

    Calls through one gate are also made one at a time: GitHub counts concurrent requests
    towards its secondary rate limits and asks clients to send them serially.
    """

    blocked_until: datetime | None = None
    serial: asyncio.Lock = field(default_factory=asyncio.Lock)

    def check(self, tracker: str, now: datetime) -> None:
        """Raise (without calling) while the tracker's block window lasts."""
        if self.blocked_until is not None and now < self.blocked_until:
            raise TrackerFailed(
                tracker,
                f"rate limited until {self.blocked_until.isoformat()}",
                retryable=True,
                retry_at=self.blocked_until,
            )

    def block(self, until: datetime) -> None:
        if self.blocked_until is None or until > self.blocked_until:
            self.blocked_until = until


@dataclass
class Caller:
    """One HTTP call at a time to one tracker: the gate, the metrics, the failure it means."""

    tracker: str
    http: httpx.AsyncClient
    clock: Clock
    metrics: Metrics
    gate: Gate = field(default_factory=Gate)
    timeout: float = DEFAULT_TIMEOUT

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """The response when 2xx (or in ok_statuses), else the TrackerFailed it means."""
        async with self.gate.serial:
            return await self._send(
                method, url, headers=headers, json_body=json_body, params=params, ok=ok_statuses
            )

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json_body: Any,
        params: Mapping[str, str] | None,
        ok: frozenset[int],
    ) -> httpx.Response:
        self.gate.check(self.tracker, self.clock.now())
        content = None
        sent_headers = dict(headers)
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            sent_headers["Content-Type"] = "application/json"
        try:
            response = await self.http.request(
                method,
                url,
                content=content,
                headers=sent_headers,
                params=params,
                timeout=self.timeout,
            )
        except httpx.UnsupportedProtocol as exc:
            self._count("refused")
            raise TrackerFailed(self.tracker, f"bad URL {url}: {exc}", retryable=False) from exc
        except httpx.TransportError as exc:
            # Refused, reset, timed out: the tracker may or may not have done it.
            self._count("unreachable")
            reason = f"{type(exc).__name__} talking to {url}: {exc or 'no detail'}"
            raise TrackerFailed(self.tracker, reason, retryable=True) from exc
        if response.is_success or response.status_code in ok:
            self._count("ok")
            exhausted = rate_limit_end(
                {k: v for k, v in response.headers.items() if k.lower() != "retry-after"},
                now=self.clock.now(),
            )
            if exhausted is not None:  # the last call of the window: wait for its reset
                self.gate.block(exhausted)
            return response
        raise self._failure(response)

    def _count(self, outcome: str) -> None:
        self.metrics.inc("tracker_calls_total", tracker=self.tracker, outcome=outcome)

    def _failure(self, response: httpx.Response) -> TrackerFailed:
        status = response.status_code
        now = self.clock.now()
        retry_at = rate_limit_end(response.headers, now=now)
        reason = describe(response)
        # GitHub's secondary limits are 403s; without headers only the message tells them apart.
        secondary = status == 403 and "rate limit" in reason.lower()
        limited = status == 429 or (status == 403 and (retry_at is not None or secondary))
        if limited:
            # Secondary limits without a Retry-After: GitHub asks for at least a minute.
            until = retry_at or now + timedelta(minutes=1)
            self.gate.block(until)
            self._count("rate_limited")
            return TrackerFailed(
                self.tracker, reason, retryable=True, status=status, retry_at=until
            )
        retryable = status == 408 or status >= 500
        self._count("failed" if retryable else "refused")
        return TrackerFailed(
            self.tracker,
            reason,
            retryable=retryable,
            status=status,
            retry_at=retry_at if retryable else None,  # a 503 may say when, too
        )


def rate_limit_end(headers: Mapping[str, str], *, now: datetime) -> datetime | None:
    """When a rate-limited answer says to come back: Retry-After, else an exhausted reset."""
    retry_after = headers.get("retry-after") or headers.get("Retry-After")
    if retry_after:
        text = retry_after.strip()
        try:
            return now + timedelta(seconds=max(float(text), 0.0))
        except ValueError:
            try:
                when = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return when if when.tzinfo else when.replace(tzinfo=UTC)
    remaining = headers.get("x-ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset")
    if remaining is not None and remaining.strip() == "0" and reset:
        try:
            return datetime.fromtimestamp(int(reset.strip()), UTC)
        except (ValueError, OverflowError):
            return None
    return None


def describe(response: httpx.Response) -> str:
    """What a refusing tracker said: GitHub's `message`/`errors`, Jira's `errorMessages`."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    parts: list[str] = []
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            parts.append(message)
        for text in body.get("errorMessages") or []:
            parts.append(str(text))
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("; ".join(_github_error(error) for error in errors))
        elif isinstance(errors, Mapping) and errors:
            parts.append("; ".join(f"{k}: {v}" for k, v in errors.items()))
    if not parts:
        parts.append(response.text.strip()[:200] or response.reason_phrase or "no body")
    reason = " — ".join(parts)
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def _github_error(error: object) -> str:
    if isinstance(error, Mapping):
        if isinstance(error.get("message"), str):
            return str(error["message"])
        return f"{error.get('field', '?')} {error.get('code', 'invalid')}"
    return str(error)


def fits(text: str, limit: int) -> str:
    """Text cut to limit characters, ending with "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
