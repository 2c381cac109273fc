"""Opsgenie Who Is On Call API: `GET /v2/schedules/{identifier}/on-calls?flat=true`.

A schedule is named by its id (the API's default) or its name (`scheduleIdentifierType=name`);
a playbook may write either, so an id-shaped value (a UUID) is sent as an id and anything else
as a name. `flat=true` answers `onCallRecipients`: the usernames, which are emails, of everyone
on call now across the schedule's rotations, overrides applied. An unknown schedule is 404.
Auth: `Authorization: GenieKey <key>`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from bot.core.playbooks import OnCallSource
from bot.oncall.base import OnCallFailed, OnCallPerson, dedupe, source_name
from bot.oncall.http import get_json
from bot.pagers.retry import RetryPolicy

PROVIDER = "opsgenie"
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def identifier_type(identifier: str) -> str:
    """`id` for an Opsgenie id (a UUID), `name` for anything else."""
    return "id" if _UUID_RE.match(identifier) else "name"


class OpsgenieOnCall:
    """Reads Opsgenie schedules with an API integration's key."""

    provider = PROVIDER

    def __init__(
        self, *, api_url: str, api_key: str, http: httpx.AsyncClient, retry: RetryPolicy
    ) -> None:
        if not api_key.strip():
            raise OnCallFailed(PROVIDER, "refused", "the Opsgenie API key is not set")
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"GenieKey {api_key.strip()}"}
        self._http = http
        self._retry = retry

    async def _on_calls(self, source: OnCallSource) -> Any:
        identifier = source.identifier
        try:
            return await get_json(
                self._http,
                self._retry,
                provider=PROVIDER,
                url=f"{self._base}/v2/schedules/{quote(identifier, safe='')}/on-calls",
                params=(("scheduleIdentifierType", identifier_type(identifier)), ("flat", "true")),
                headers=self._headers,
            )
        except OnCallFailed as failure:
            if failure.kind == "unknown":
                raise OnCallFailed(
                    PROVIDER, "unknown", f"{source_name(source)} does not exist"
                ) from None
            raise

    async def on_call(self, source: OnCallSource) -> list[OnCallPerson]:
        """Everyone on call now in the schedule."""
        body = await self._on_calls(source)
        data = body.get("data") if isinstance(body, dict) else None
        recipients = data.get("onCallRecipients") if isinstance(data, dict) else None
        if recipients is None:
            recipients = []  # nobody on call: Opsgenie may leave the list out
        if not isinstance(recipients, list):
            raise OnCallFailed(PROVIDER, "unavailable", "Opsgenie answered without recipients")
        people = [
            OnCallPerson(email=str(r).strip())
            for r in recipients
            if isinstance(r, str) and "@" in r
        ]
        return dedupe(people)

    async def exists(self, source: OnCallSource) -> bool:
        """Whether Opsgenie knows the schedule (its on-calls answer 404 when it does not)."""
        try:
            await self._on_calls(source)
        except OnCallFailed as failure:
            if failure.kind == "unknown":
                return False
            raise
        return True
