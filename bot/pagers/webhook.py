"""A generic JSON webhook: one POST per trigger, acknowledge and resolve, optionally signed.

Body: `{"event", "ref", "title", "severity", "dedup_key", "summary", "message", "role",
"channel_url"}`. With a secret, `X-Incident-Bot-Signature: sha256=<hex HMAC-SHA256 of the exact
body bytes>`, so the receiver can check the page came from us. Any 2xx is success.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import httpx

from bot.pagers.base import PageReceipt, PageRequest
from bot.pagers.retry import RetryPolicy, post_json

PROVIDER = "webhook"
SIGNATURE_HEADER = "X-Incident-Bot-Signature"


def signature(secret: str, body: bytes) -> str:
    """The signature header value for body: `sha256=<hex digest>`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether header is the right signature of body (what a receiver runs)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


class WebhookPager:
    """Posts page events as JSON to any URL that answers 2xx."""

    provider = PROVIDER

    def __init__(
        self, *, url: str, secret: str | None, http: httpx.AsyncClient, retry: RetryPolicy
    ) -> None:
        self._url = url
        self._secret = secret or None
        self._http = http
        self._retry = retry

    @staticmethod
    def event(request: PageRequest, event: str) -> dict[str, Any]:
        """The JSON body for one event about a page."""
        return {
            "event": event,
            "ref": request.ref,
            "title": request.title,
            "severity": request.severity.value,
            "dedup_key": request.dedup_key,
            "summary": request.summary,
            "message": request.message,
            "role": request.role,
            "channel_url": request.channel_url,
        }

    def _sign(self, body: bytes) -> Mapping[str, str]:
        return {SIGNATURE_HEADER: signature(self._secret, body)} if self._secret else {}

    async def _send(self, request: PageRequest, event: str) -> None:
        await post_json(
            self._http,
            self._retry,
            provider=PROVIDER,
            url=self._url,
            payload=self.event(request, event),
            sign=self._sign,
        )

    async def trigger(self, request: PageRequest) -> PageReceipt:
        """Post the trigger event; the receipt carries our dedup key."""
        await self._send(request, "trigger")
        return PageReceipt(provider=PROVIDER, external_id=request.dedup_key)

    async def acknowledge(self, request: PageRequest) -> None:
        """Post the acknowledge event."""
        await self._send(request, "acknowledge")

    async def resolve(self, request: PageRequest) -> None:
        """Post the resolve event."""
        await self._send(request, "resolve")
