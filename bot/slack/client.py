"""The Web API client: one per process, pointed at SLACK_API_URL, retrying what Slack asks us to."""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import Metrics


class MeteredWebClient(AsyncWebClient):
    """An AsyncWebClient counting its calls and their errors (after the retries) by method."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        self.metrics.inc("slack_api_calls_total", method=api_method)
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or f"http_{exc.response.status_code}")
            self.metrics.inc("slack_api_errors_total", method=api_method, error=error)
            raise
        except (aiohttp.ClientError, OSError, TimeoutError):
            self.metrics.inc("slack_api_errors_total", method=api_method, error="connection")
            raise


def make_slack_client(
    *, token: str | None, base_url: str, timeout: int = 10, metrics: Metrics | None = None
) -> AsyncWebClient:
    """An AsyncWebClient that honours 429 Retry-After and retries 5xx and dropped connections.

    With `metrics`, every call and every error is counted (slack_api_calls_total,
    slack_api_errors_total).
    """
    retry_handlers: list[Any] = [
        AsyncConnectionErrorRetryHandler(max_retry_count=3),
        AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        AsyncServerErrorRetryHandler(max_retry_count=3),
    ]
    if metrics is not None:
        return MeteredWebClient(
            metrics=metrics,
            token=token,
            base_url=base_url,
            timeout=timeout,
            retry_handlers=retry_handlers,
        )
    return AsyncWebClient(
        token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers
    )
