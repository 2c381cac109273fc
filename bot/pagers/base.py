"""What every pager is: the request it gets, the receipt it gives back, and its three verbs.

Each backend lives in its own module (`slack_dm`, `pagerduty`, `opsgenie`, `webhook`) and takes
its target and its HTTP client in the constructor. Any failure is raised as `PagerFailed`:
`retryable=False` when the provider refused the request (a page that will never go through),
`retryable=True` when it kept failing through the retries (rate limit, 5xx, no connection).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from bot.core.enums import Severity

SOURCE = "incident-bot"  # how every provider names us: PD source/client, Opsgenie source
ELLIPSIS = "…"


@dataclass(frozen=True)
class PageRequest:
    """One page for one incident role, as every pager receives it."""

    ref: str  # "INC-7"
    title: str
    severity: Severity
    dedup_key: str  # one per incident and role, e.g. "incident-bot/INC-7/ops"
    summary: str  # one line: "INC-7 (SEV1): Checkout latency spike — page for ops"
    message: str | None = None
    role: str | None = None
    channel_url: str | None = None  # link back to the Slack channel
    page_id: int = 0  # our database id; the Slack buttons carry it
    # The trigger's PageReceipt.external_id, stored with the page and given back for
    # acknowledge/resolve (the Slack DM pager needs it to find its message again).
    external_id: str | None = None


@dataclass(frozen=True)
class PageReceipt:
    """What a provider gave back for a trigger, to find the page again later."""

    provider: str  # "slack" | "pagerduty" | "opsgenie" | "webhook"
    external_id: str | None  # PD dedup_key / Opsgenie requestId / Slack "channel:ts"


class Pager(Protocol):
    """Pages a person or a rota, and follows the page through acknowledge and resolve."""

    provider: str

    async def trigger(self, request: PageRequest) -> PageReceipt:
        """Send the page; raise PagerFailed when it could not be delivered."""
        ...

    async def acknowledge(self, request: PageRequest) -> None:
        """Tell the provider someone took the page (stops its escalation)."""
        ...

    async def resolve(self, request: PageRequest) -> None:
        """Tell the provider the incident is over (closes the alert)."""
        ...


def dedup_key_for(*, ref: str, role: str | None) -> str:
    """The key one incident role's page is known by at every provider."""
    return f"{SOURCE}/{ref}/{role or 'default'}"


def cut(text: str, limit: int) -> str:
    """Cut text to at most limit characters, ending with "…" when it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


def fit_key(key: str, limit: int) -> str:
    """A dedup key within limit characters that stays the same for the same input.

    A plain cut could make two long keys collide, so an over-long key keeps its head and
    ends with a hash of the whole key.
    """
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: limit - len(digest) - 1]}~{digest}"
