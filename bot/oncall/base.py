"""What every on-call provider is: "who is on call now for this source", and its failures.

A source is a role's `oncall:` in a playbook (`bot.core.playbooks.OnCallSource`). Each provider
(`pagerduty`, `opsgenie`) takes its credential and HTTP client in the constructor and answers
with the people on call now, each with the email they are found in Slack by. Failures:

    OnCallFailed (BotError)
        kind "unknown"      the schedule or policy does not exist (404)
        kind "refused"      the provider refused the credential (401/403) or it is not set
        kind "unavailable"  rate limited, 5xx or no answer, still so after the retries
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bot.core.playbooks import OnCallSource
from bot.errors import BotError

FailureKind = Literal["unknown", "refused", "unavailable"]

PROVIDER_NAMES = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}
SOURCE_NAMES = {
    "pagerduty_schedule": "PagerDuty schedule",
    "pagerduty_escalation_policy": "PagerDuty escalation policy",
    "opsgenie_schedule": "Opsgenie schedule",
}


@dataclass(frozen=True)
class OnCallPerson:
    """Someone on call now, as the provider names them."""

    email: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.email})" if self.name else self.email


class OnCallFailed(BotError):
    """The provider could not say who is on call; `reason` is one line for people."""

    def __init__(self, provider: str, kind: FailureKind, reason: str) -> None:
        super().__init__(f"{PROVIDER_NAMES.get(provider, provider)} {kind}: {reason}")
        self.provider = provider
        self.kind: FailureKind = kind
        self.reason = reason


class OnCallProvider(Protocol):
    """Answers who is on call now in one of its schedules (or escalation policies)."""

    provider: str

    async def on_call(self, source: OnCallSource) -> list[OnCallPerson]:
        """Everyone on call now (every layer, overrides applied), once each; [] for nobody.

        Raises OnCallFailed for an unknown source, a refused credential or an outage.
        """
        ...

    async def exists(self, source: OnCallSource) -> bool:
        """Whether the schedule or policy exists; OnCallFailed when that cannot be told."""
        ...


def source_name(source: OnCallSource) -> str:
    """`PagerDuty schedule PABC123`, as the playbook writes it."""
    return f"{SOURCE_NAMES[source.key]} {source.identifier}"


def describe_source(source: OnCallSource) -> str:
    """Where a role's people come from, for the simulation: `on call in PagerDuty schedule …`."""
    if source.pagerduty_escalation_policy is not None:
        return f"on call at the first level of {source_name(source)}"
    return f"on call in {source_name(source)}"


def dedupe(people: list[OnCallPerson]) -> list[OnCallPerson]:
    """Each email once (case-insensitively), in the order the provider gave them."""
    seen: set[str] = set()
    out: list[OnCallPerson] = []
    for person in people:
        key = person.email.casefold()
        if key not in seen:
            seen.add(key)
            out.append(person)
    return out
