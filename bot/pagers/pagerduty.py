"""PagerDuty through the Events API v2: trigger, acknowledge and resolve one alert per dedup key.

PagerDuty answers 202 `{"status": "success", "message": "Event processed", "dedup_key": …}`;
400 `{"status": "invalid event", "errors": […]}` is a refusal; 429 and 5xx are retried.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.core.enums import Severity
from bot.pagers.base import SOURCE, PageReceipt, PageRequest, cut, fit_key
from bot.pagers.retry import RetryPolicy, post_json

PROVIDER = "pagerduty"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
MAX_DETAIL = 2000  # keep custom_details well inside PagerDuty's 512 KB event limit

PAGERDUTY_SEVERITY: dict[Severity, str] = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}


class PagerDutyPager:
    """Pages a PagerDuty service through its Events API v2 integration (routing) key."""

    provider = PROVIDER

    def __init__(
        self, *, routing_key: str, events_url: str, http: httpx.AsyncClient, retry: RetryPolicy
    ) -> None:
        if not routing_key.strip():
            raise ValueError("PagerDutyPager needs a routing key")
        self._routing_key = routing_key
        self._events_url = events_url
        self._http = http
        self._retry = retry

    def trigger_event(self, request: PageRequest) -> dict[str, Any]:
        """The Events v2 trigger body for a page."""
        details: dict[str, str] = {
            "incident": request.ref,
            "title": cut(request.title, MAX_DETAIL),
            "severity": request.severity.value,
        }
        if request.role:
            details["role"] = request.role
        if request.message:
            details["message"] = cut(request.message, MAX_DETAIL)
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": fit_key(request.dedup_key, MAX_DEDUP_KEY),
            "payload": {
                "summary": cut(" ".join(request.summary.split()) or request.ref, MAX_SUMMARY),
                "source": SOURCE,
                "severity": PAGERDUTY_SEVERITY[request.severity],
                "component": request.role or "incident",
                "group": request.ref,
                "custom_details": details,
            },
            "client": SOURCE,
        }
        if request.channel_url:
            event["client_url"] = request.channel_url
            event["links"] = [{"href": request.channel_url, "text": f"{request.ref} in Slack"}]
        return event

    def follow_up_event(self, request: PageRequest, action: str) -> dict[str, Any]:
        """An acknowledge or resolve body: only the key, the action and the dedup key."""
        return {
            "routing_key": self._routing_key,
            "event_action": action,
            "dedup_key": fit_key(request.dedup_key, MAX_DEDUP_KEY),
        }

    async def _send(self, event: dict[str, Any]) -> httpx.Response:
        return await post_json(
            self._http, self._retry, provider=PROVIDER, url=self._events_url, payload=event
        )

    async def trigger(self, request: PageRequest) -> PageReceipt:
        """Open (or re-trigger) the alert for this incident role."""
        event = self.trigger_event(request)
        response = await self._send(event)
        echoed: Any = None
        try:
            body = response.json()
            echoed = body.get("dedup_key") if isinstance(body, dict) else None
        except ValueError:
            pass
        key = echoed if isinstance(echoed, str) and echoed else event["dedup_key"]
        return PageReceipt(provider=PROVIDER, external_id=key)

    async def acknowledge(self, request: PageRequest) -> None:
        """Acknowledge the alert, which stops PagerDuty's escalation."""
        await self._send(self.follow_up_event(request, "acknowledge"))

    async def resolve(self, request: PageRequest) -> None:
        """Resolve the alert because the incident is resolved."""
        await self._send(self.follow_up_event(request, "resolve"))
