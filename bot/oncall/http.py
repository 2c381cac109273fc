"""GET with the pagers' retry rule (429/5xx/no answer retried, Retry-After honoured).

Failures come back as OnCallFailed: 404 is "unknown", 401/403 "refused", and whatever still
fails after the retries (or any other refusal) "unavailable", each with one line for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bot.errors import PagerFailed
from bot.oncall.base import PROVIDER_NAMES, OnCallFailed
from bot.pagers.retry import RetryPolicy, failure_from

Params = tuple[tuple[str, str], ...]
TIMEOUT = httpx.Timeout(5.0)  # a lookup never holds anything up for long: it is retried instead


async def _get_once(
    http: httpx.AsyncClient,
    *,
    provider: str,
    url: str,
    params: Params,
    headers: Mapping[str, str],
) -> httpx.Response:
    try:
        response = await http.get(url, params=params, headers=headers, timeout=TIMEOUT)
    except httpx.UnsupportedProtocol as exc:
        raise PagerFailed(provider, f"bad URL {url}: {exc}", retryable=False) from exc
    except httpx.TransportError as exc:
        reason = f"{type(exc).__name__} talking to {url}"
        raise PagerFailed(provider, reason, retryable=True) from exc
    if response.is_success:
        return response
    raise failure_from(provider, response)


async def get_json(
    http: httpx.AsyncClient,
    retry: RetryPolicy,
    *,
    provider: str,
    url: str,
    params: Params,
    headers: Mapping[str, str],
) -> Any:
    """The JSON body of a 2xx answer, retried by the policy; OnCallFailed otherwise."""
    name = PROVIDER_NAMES.get(provider, provider)
    try:
        response = await retry.run(
            lambda: _get_once(http, provider=provider, url=url, params=params, headers=headers)
        )
    except PagerFailed as failure:
        if failure.status == 404:
            raise OnCallFailed(provider, "unknown", failure.reason) from None
        if failure.status in (401, 403):
            raise OnCallFailed(
                provider, "refused", f"{name} refused the API key (HTTP {failure.status})"
            ) from None
        answer = f"HTTP {failure.status}" if failure.status is not None else "no answer"
        raise OnCallFailed(provider, "unavailable", f"{name} did not answer ({answer})") from None
    try:
        return response.json()
    except ValueError:
        raise OnCallFailed(provider, "unavailable", f"{name} answered with no JSON") from None
