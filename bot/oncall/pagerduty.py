"""PagerDuty REST API: who is on call now in a schedule, or at an escalation policy's first level.

`GET /oncalls` with `schedule_ids[]` or `escalation_policy_ids[]` and `include[]=users` (so each
user comes with an email), paginated by `limit`/`offset`/`more`. An unknown id is only a filter
that matches nothing, so an empty answer is told apart from an unknown schedule by
`GET /schedules/{id}` (or `/escalation_policies/{id}`), which answers 404 (code 2100).
Auth: `Authorization: Token token=<key>`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from bot.core.playbooks import OnCallSource
from bot.oncall.base import OnCallFailed, OnCallPerson, dedupe, source_name
from bot.oncall.http import get_json
from bot.pagers.retry import RetryPolicy

PROVIDER = "pagerduty"
PAGE_SIZE = 100  # PagerDuty's largest page
MAX_PAGES = 50  # 5,000 on-call entries is far beyond any rota; stop rather than loop forever
ACCEPT = "application/vnd.pagerduty+json;version=2"


class PagerDutyOnCall:
    """Reads PagerDuty schedules and escalation policies with a read-only REST API key."""

    provider = PROVIDER

    def __init__(
        self, *, api_url: str, token: str, http: httpx.AsyncClient, retry: RetryPolicy
    ) -> None:
        if not token.strip():
            raise OnCallFailed(PROVIDER, "refused", "PAGERDUTY_API_TOKEN is not set")
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Token token={token.strip()}", "Accept": ACCEPT}
        self._http = http
        self._retry = retry

    async def _get(self, path: str, params: tuple[tuple[str, str], ...]) -> Any:
        return await get_json(
            self._http,
            self._retry,
            provider=PROVIDER,
            url=self._base + path,
            params=params,
            headers=self._headers,
        )

    async def on_call(self, source: OnCallSource) -> list[OnCallPerson]:
        """Everyone on call now; for an escalation policy, its first level."""
        policy = source.pagerduty_escalation_policy is not None
        filter_key = "escalation_policy_ids[]" if policy else "schedule_ids[]"
        people: list[OnCallPerson] = []
        offset = 0
        for _ in range(MAX_PAGES):
            body = await self._get(
                "/oncalls",
                (
                    (filter_key, source.identifier),
                    ("include[]", "users"),
                    ("limit", str(PAGE_SIZE)),
                    ("offset", str(offset)),
                ),
            )
            entries = body.get("oncalls") if isinstance(body, dict) else None
            if not isinstance(entries, list):
                raise OnCallFailed(PROVIDER, "unavailable", "PagerDuty answered without oncalls")
            for entry in entries:
                person = _person(entry, first_level_only=policy)
                if person is not None:
                    people.append(person)
            if not body.get("more") or not entries:
                break
            offset += len(entries)
        if not people and not await self.exists(source):
            raise OnCallFailed(PROVIDER, "unknown", f"{source_name(source)} does not exist")
        return dedupe(people)

    async def exists(self, source: OnCallSource) -> bool:
        """`GET /schedules/{id}` or `/escalation_policies/{id}`: 404 means no such thing."""
        kind = "escalation_policies" if source.pagerduty_escalation_policy else "schedules"
        try:
            await self._get(f"/{kind}/{quote(source.identifier, safe='')}", ())
        except OnCallFailed as failure:
            if failure.kind == "unknown":
                return False
            raise
        return True


def _person(entry: Any, *, first_level_only: bool) -> OnCallPerson | None:
    if not isinstance(entry, dict):
        return None
    if first_level_only and entry.get("escalation_level") != 1:
        return None
    user = entry.get("user")
    if not isinstance(user, dict):
        return None
    email = user.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None  # a user reference without include[]=users, or a user without an email
    name = user.get("name") or user.get("summary")
    return OnCallPerson(email=email.strip(), name=name if isinstance(name, str) else None)
