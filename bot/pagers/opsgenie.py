"""Opsgenie through the Alert API: create an alert with responders, acknowledge and close it.

The incident role's dedup key is the alert `alias`, so acknowledge and close address the alert
by alias (`identifierType=alias`). Opsgenie answers 202 `{"result": "Request will be processed",
"took": …, "requestId": …}`; 401/403/400/422 are refusals; 429 and 5xx are retried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bot.core.enums import Severity
from bot.pagers.base import SOURCE, PageReceipt, PageRequest, cut, fit_key
from bot.pagers.retry import RetryPolicy, post_json

PROVIDER = "opsgenie"
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15000
MAX_ENTITY = 512
MAX_TAGS = 20
MAX_TAG = 50
MAX_DETAIL = 1000  # Opsgenie caps details at 8,000 characters in all; we send five at most

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
RESPONDER_TYPES = ("team", "user", "escalation", "schedule")
NOTES = {"acknowledge": "Acknowledged in Slack", "close": "Closed: the incident is resolved"}

OPSGENIE_PRIORITY: dict[Severity, str] = {
    Severity.SEV1: "P1",
    Severity.SEV2: "P2",
    Severity.SEV3: "P3",
    Severity.SEV4: "P4",
}


def check_responder(responder: Mapping[str, str]) -> dict[str, str]:
    """A responder as Opsgenie documents it, or ValueError saying what is wrong."""
    kind = responder.get("type")
    if kind not in RESPONDER_TYPES:
        raise ValueError(f"Opsgenie responder type must be one of {RESPONDER_TYPES}, got {kind!r}")
    keys = ("id", "username") if kind == "user" else ("id", "name")
    if not any(responder.get(key) for key in keys):
        raise ValueError(f"Opsgenie {kind} responder needs {' or '.join(keys)}")
    return {key: value for key, value in responder.items() if key in ("type", *keys) and value}


class OpsgeniePager:
    """Pages Opsgenie responders (teams, users, escalations, schedules) with one alert per role."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        api_key: str,
        api_url: str,
        responders: Sequence[Mapping[str, str]],
        priority: str | None,
        http: httpx.AsyncClient,
        retry: RetryPolicy,
    ) -> None:
        if not api_key.strip():
            raise ValueError("OpsgeniePager needs an API key")
        if priority is not None and priority not in PRIORITIES:
            raise ValueError(f"Opsgenie priority must be one of {PRIORITIES}, got {priority!r}")
        self._api_key = api_key
        self._alerts_url = api_url.rstrip("/") + "/v2/alerts"
        self._responders = [check_responder(responder) for responder in responders]
        self._priority = priority
        self._http = http
        self._retry = retry

    def alert(self, request: PageRequest) -> dict[str, Any]:
        """The create-alert body for a page."""
        lines = [f"{request.ref}: {request.title}"]
        if request.message:
            lines.append(request.message)
        if request.channel_url:
            lines.append(f"Slack channel: {request.channel_url}")
        details = {"incident": request.ref, "severity": request.severity.value}
        if request.role:
            details["role"] = cut(request.role, MAX_DETAIL)
        if request.channel_url:
            details["channel"] = cut(request.channel_url, MAX_DETAIL)
        tags = [SOURCE, request.ref, request.severity.value]
        if request.role:
            tags.append(request.role)
        body: dict[str, Any] = {
            "message": cut(" ".join(request.summary.split()) or request.ref, MAX_MESSAGE),
            "alias": fit_key(request.dedup_key, MAX_ALIAS),
            "description": cut("\n\n".join(lines), MAX_DESCRIPTION),
            "responders": list(self._responders),
            "priority": self._priority or OPSGENIE_PRIORITY[request.severity],
            "source": SOURCE,
            "entity": cut(request.ref, MAX_ENTITY),
            "tags": list(dict.fromkeys(cut(tag, MAX_TAG) for tag in tags))[:MAX_TAGS],
            "details": details,
        }
        return body

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"GenieKey {self._api_key}"}

    def _alert_url(self, request: PageRequest, action: str) -> str:
        # The alias holds slashes ("incident-bot/INC-7/ops"): encode them inside the path.
        alias = quote(fit_key(request.dedup_key, MAX_ALIAS), safe="")
        return f"{self._alerts_url}/{alias}/{action}"

    async def trigger(self, request: PageRequest) -> PageReceipt:
        """Create the alert; Opsgenie deduplicates on the alias while it is open."""
        response = await post_json(
            self._http,
            self._retry,
            provider=PROVIDER,
            url=self._alerts_url,
            payload=self.alert(request),
            headers=self._headers(),
        )
        request_id: Any = None
        try:
            answer = response.json()
            request_id = answer.get("requestId") if isinstance(answer, dict) else None
        except ValueError:
            pass
        return PageReceipt(
            provider=PROVIDER, external_id=request_id if isinstance(request_id, str) else None
        )

    async def _act(self, request: PageRequest, action: str) -> None:
        await post_json(
            self._http,
            self._retry,
            provider=PROVIDER,
            url=self._alert_url(request, action),
            payload={"source": SOURCE, "note": f"{NOTES[action]} ({request.ref})"},
            headers=self._headers(),
            params={"identifierType": "alias"},
        )

    async def acknowledge(self, request: PageRequest) -> None:
        """Acknowledge the alert by alias."""
        await self._act(request, "acknowledge")

    async def resolve(self, request: PageRequest) -> None:
        """Close the alert by alias because the incident is resolved."""
        await self._act(request, "close")
