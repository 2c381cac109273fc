"""The Web API client: one per process, pointed at SLACK_API_URL, retrying what Slack asks us to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient
from slack_sdk.webhook.webhook_response import WebhookResponse

from bot.metrics import Metrics


class WebClient(AsyncWebClient):
    """An AsyncWebClient that keeps its connections, and with `metrics` counts its calls.

    Without a session of its own, slack_sdk opens a new one for every call: a new connection,
    and against Slack a new TLS handshake, each time. This client opens one on its first call
    (in the running loop) and keeps it until `aclose`. With `metrics`, every call and every
    error (after the retries) is counted by method.
    """

    def __init__(self, *, metrics: Metrics | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    def kept_session(self) -> aiohttp.ClientSession:
        """The session whose connections are kept (opened now if need be, in the running loop)."""
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self.session

    def webhook(self, url: str) -> AsyncWebhookClient:
        """A client for a response_url, over the kept connections."""
        return AsyncWebhookClient(url, session=self.kept_session())

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        self.kept_session()
        if self.metrics is None:
            return await super().api_call(api_method, **kwargs)
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

    async def aclose(self) -> None:
        """Close the kept connections (a later call opens new ones)."""
        if self.session is not None and not self.session.closed:
            await self.session.close()


def make_slack_client(
    *, token: str | None, base_url: str, timeout: int = 10, metrics: Metrics | None = None
) -> WebClient:
    """A client that keeps its connections, honours 429 Retry-After and retries 5xx and
    dropped connections.

    With `metrics`, every call and every error is counted (slack_api_calls_total,
    slack_api_errors_total).
    """
    retry_handlers: list[Any] = [
        AsyncConnectionErrorRetryHandler(max_retry_count=3),
        AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        AsyncServerErrorRetryHandler(max_retry_count=3),
    ]
    return WebClient(
        metrics=metrics,
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=retry_handlers,
    )


class KeptRespond(AsyncRespond):
    """Bolt's `respond`, over the Web API client's kept connections (Bolt's opens new ones)."""

    def __init__(self, *, response_url: str | None, client: WebClient) -> None:
        super().__init__(response_url=response_url)
        self.client = client

    async def __call__(
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        message = (
            text  # a whole message
            if isinstance(text, dict)
            else {
                "text": text,
                "blocks": blocks,
                "attachments": attachments,
                "response_type": response_type,
                "replace_original": replace_original,
                "delete_original": delete_original,
                "unfurl_links": unfurl_links,
                "unfurl_media": unfurl_media,
                "thread_ts": thread_ts,
                "metadata": metadata,
            }
        )
        return await self.client.webhook(self.response_url).send_dict(message)
