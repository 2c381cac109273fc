"""Retrying pager calls: deterministic exponential backoff that honours Retry-After.

The rule every provider shares: 2xx is delivered; 408, 429 and 5xx, dropped connections and
timeouts are worth another try; any other answer (400, 401, 403, 404, 422…) is a refusal that
the same request will meet again, so it is raised at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from bot.errors import PagerFailed

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 429})
MAX_REASON = 500


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a pager call is tried; `sleep` is injectable for tests."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy needs at least one attempt")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays cannot be negative")

    def delay(self, failed_attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after attempt number failed_attempt (1-based) before the next one."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return min(self.base_delay * 2.0 ** (failed_attempt - 1), self.max_delay)

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Call attempt until it succeeds, raises a permanent PagerFailed, or attempts run out."""
        for number in range(1, self.attempts + 1):
            try:
                return await attempt()
            except PagerFailed as failure:
                if not failure.retryable:
                    raise
                if number == self.attempts:
                    raise PagerFailed(
                        failure.provider,
                        f"{failure.reason} (gave up after {self.attempts} attempts)",
                        retryable=True,
                        status=failure.status,
                        retry_after=failure.retry_after,
                    ) from failure
                await self.sleep(self.delay(number, failure.retry_after))
        raise AssertionError("unreachable: the last attempt returns or raises")


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now, or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def describe(response: httpx.Response) -> str:
    """What a refusing provider said, from its JSON `message`/`errors` or its plain text."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    parts: list[str] = []
    if isinstance(body, Mapping):
        for key in ("status", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("errors: " + "; ".join(str(error) for error in errors))
        elif isinstance(errors, Mapping) and errors:
            parts.append("errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    if not parts:
        text = response.text.strip()
        parts.append(text or response.reason_phrase or "no body")
    reason = " — ".join(parts)
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def failure_from(provider: str, response: httpx.Response) -> PagerFailed:
    """The PagerFailed a non-2xx answer means, retryable for 408/429/5xx."""
    status = response.status_code
    retryable = status in RETRYABLE_STATUSES or status >= 500
    return PagerFailed(
        provider,
        describe(response),
        retryable=retryable,
        status=status,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


async def send_once(
    http: httpx.AsyncClient,
    *,
    provider: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST body once; return a 2xx response, else raise the PagerFailed it means."""
    try:
        response = await http.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", **headers},
            params=params,
        )
    except httpx.UnsupportedProtocol as exc:
        raise PagerFailed(provider, f"bad URL {url}: {exc}", retryable=False) from exc
    except httpx.TransportError as exc:
        # Connection refused, reset, DNS failure or timeout: the provider never answered.
        reason = f"{type(exc).__name__} talking to {url}: {exc or 'no detail'}"
        raise PagerFailed(provider, reason, retryable=True) from exc
    if response.is_success:
        return response
    raise failure_from(provider, response)


async def post_json(
    http: httpx.AsyncClient,
    retry: RetryPolicy,
    *,
    provider: str,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    sign: Callable[[bytes], Mapping[str, str]] | None = None,
) -> httpx.Response:
    """POST payload as JSON, retried by the policy; `sign` adds headers computed from the body."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    sent_headers = {**(headers or {}), **(sign(body) if sign else {})}
    return await retry.run(
        lambda: send_once(
            http, provider=provider, url=url, body=body, headers=sent_headers, params=params
        )
    )
