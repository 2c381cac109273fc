"""The pager that always works: a Slack DM with Acknowledge and Escalate buttons.

The trigger's receipt is `"<dm channel>:<ts>"`, so acknowledge and resolve can edit that DM
(`chat.update`), replacing the buttons with a line saying what happened.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import PagerFailed
from bot.pagers.base import PageReceipt, PageRequest
from bot.pagers.retry import RetryPolicy, retry_after_seconds
from bot.slack.blocks import Block, page_blocks, page_fallback_text

PROVIDER = "slack"
ACKNOWLEDGED = "✅ Acknowledged — thanks for taking this page."
RESOLVED = "☑️ The incident is resolved; nothing more to do for this page."

# Slack's error codes that mean "try again later" even when the HTTP status is 200.
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "fatal_error", "internal_error", "service_unavailable"}
)
_CHANNEL_IN_URL = re.compile(r"(?:/archives/|[?&]id=)([CG][A-Z0-9]+)")


def channel_id_from_url(url: str | None) -> str | None:
    """The channel id in a Slack channel link (`…/archives/C123` or `slack://…&id=C123`)."""
    if not url:
        return None
    match = _CHANNEL_IN_URL.search(url)
    return match.group(1) if match else None


def _failure(exc: Exception) -> PagerFailed:
    """What a Slack Web API exception means for a page."""
    if isinstance(exc, SlackApiError):
        status = int(exc.response.status_code)
        error = str(exc.response.get("error") or "unknown_error")
        headers: Any = exc.response.headers or {}
        retry_after = None
        for name, value in dict(headers).items():
            if str(name).lower() == "retry-after":
                retry_after = retry_after_seconds(str(value))
        retryable = status == 429 or status >= 500 or error in RETRYABLE_ERRORS
        return PagerFailed(
            PROVIDER, error, retryable=retryable, status=status, retry_after=retry_after
        )
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        # Refused, reset or timed out before Slack answered.
        return PagerFailed(PROVIDER, f"{type(exc).__name__}: {exc}", retryable=True)
    return PagerFailed(PROVIDER, f"{type(exc).__name__}: {exc}", retryable=False)


class SlackDMPager:
    """Pages one person by direct message from the bot.

    `retry` defaults to a single attempt, because the bot's Slack client
    (`bot.slack.client.make_slack_client`) already retries 429, 5xx and dropped connections
    by Slack's rules; pass a policy when the client does not.
    """

    provider = PROVIDER

    def __init__(
        self, *, client: AsyncWebClient, user_id: str, retry: RetryPolicy | None = None
    ) -> None:
        self._client = client
        self._user_id = user_id
        self._retry = retry or RetryPolicy(attempts=1)
        self._sent: dict[str, str] = {}  # dedup_key -> "channel:ts", for callers without it

    async def _call(self, send: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            try:
                response = await send()
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                raise _failure(exc) from exc
            data = response.data
            return data if isinstance(data, dict) else {}

        return await self._retry.run(attempt)

    def _blocks(self, request: PageRequest) -> list[Block]:
        return page_blocks(
            ref=request.ref,
            title=request.title,
            severity=request.severity,
            message=request.message,
            page_id=request.page_id,
            channel_id=channel_id_from_url(request.channel_url),
        )

    def _text(self, request: PageRequest) -> str:
        return page_fallback_text(ref=request.ref, title=request.title, severity=request.severity)

    async def trigger(self, request: PageRequest) -> PageReceipt:
        """DM the person the page with its buttons; the receipt is `"channel:ts"`."""
        answer = await self._call(
            lambda: self._client.chat_postMessage(
                channel=self._user_id,
                text=self._text(request),
                blocks=self._blocks(request),
                unfurl_links=False,
            )
        )
        external_id = f"{answer.get('channel', self._user_id)}:{answer.get('ts', '')}"
        self._sent[request.dedup_key] = external_id
        return PageReceipt(provider=PROVIDER, external_id=external_id)

    async def _replace_buttons(self, request: PageRequest, note: str) -> None:
        where = request.external_id or self._sent.get(request.dedup_key)
        if not where or ":" not in where:
            return  # no DM of ours to edit (sent by an earlier process, receipt not kept)
        channel, ts = where.split(":", 1)
        blocks = [block for block in self._blocks(request) if block.get("type") != "actions"]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
        await self._call(
            lambda: self._client.chat_update(
                channel=channel, ts=ts, text=self._text(request), blocks=blocks
            )
        )

    async def acknowledge(self, request: PageRequest) -> None:
        """Replace the DM's buttons with "Acknowledged"."""
        await self._replace_buttons(request, ACKNOWLEDGED)

    async def resolve(self, request: PageRequest) -> None:
        """Replace the DM's buttons with a line saying the incident is resolved."""
        await self._replace_buttons(request, RESOLVED)
