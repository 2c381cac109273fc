"""The Web API client: one per process, pointed at SLACK_API_URL, retrying what Slack asks us to."""

from __future__ import annotations

from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient


def make_slack_client(*, token: str | None, base_url: str, timeout: int = 10) -> AsyncWebClient:
    """An AsyncWebClient that honours 429 Retry-After and retries 5xx and dropped connections."""
    retry_handlers: list[Any] = [
        AsyncConnectionErrorRetryHandler(max_retry_count=3),
        AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        AsyncServerErrorRetryHandler(max_retry_count=3),
    ]
    return AsyncWebClient(
        token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers
    )
