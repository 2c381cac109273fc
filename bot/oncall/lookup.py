"""Who is on call now for a role: the right provider and credential, a minute's cache, Slack ids.

PagerDuty's REST key is `PAGERDUTY_API_TOKEN`; Opsgenie's is the role's `opsgenie.api_key_env`,
else the playbook's top-level `opsgenie.api_key_env`, else `OPSGENIE_API_KEY`. Every call to a
provider is counted in `oncall_lookups_total{provider,outcome}` (found, nobody, unknown,
refused, unavailable); answers from the cache are not calls and are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import httpx
from pydantic import SecretStr

from bot.config import Settings
from bot.core.playbooks import DEFAULT_OPSGENIE_KEY_ENV, OnCallSource, Playbook, Role
from bot.oncall.base import OnCallFailed, OnCallPerson, OnCallProvider
from bot.oncall.opsgenie import OpsgenieOnCall
from bot.oncall.pagerduty import PagerDutyOnCall
from bot.pagers.retry import RetryPolicy
from bot.services import Services

METRIC = "oncall_lookups_total"
ATTEMPTS = 3  # fewer than a page's: a lookup that keeps failing is reported, not waited for
MAX_DELAY = 2.0


@dataclass(frozen=True)
class OnCallAnswer:
    """Who a role's source says is on call now, or why it could not say."""

    source: OnCallSource
    people: tuple[OnCallPerson, ...] = ()
    failure: OnCallFailed | None = None


def opsgenie_key_env(playbook: Playbook, role: Role) -> str:
    """The variable holding the Opsgenie key for a role's schedule lookups."""
    if role.opsgenie is not None:
        return playbook.opsgenie_key_env(role.opsgenie)
    if playbook.opsgenie is not None:
        return playbook.opsgenie.api_key_env
    return DEFAULT_OPSGENIE_KEY_ENV


def credential_env(playbook: Playbook, role: Role, source: OnCallSource) -> str:
    """The name of the variable whose value is sent to the provider."""
    if source.provider == "opsgenie":
        return opsgenie_key_env(playbook, role)
    return "PAGERDUTY_API_TOKEN"


def lookup_retry(services: Services) -> RetryPolicy:
    """The pagers' retry rule (and injected sleep), with fewer and shorter waits."""
    base = services.pager_retry
    return replace(base, attempts=min(base.attempts, ATTEMPTS), max_delay=MAX_DELAY)


def secret_value(environ: Mapping[str, str], settings: Settings, name: str) -> str:
    """A credential from the environment, else from the settings (PAGERDUTY_API_TOKEN…)."""
    value = environ.get(name, "").strip()
    if value:
        return value
    secret = getattr(settings, name, None)
    return secret.get_secret_value().strip() if isinstance(secret, SecretStr) else ""


def provider_from(
    source: OnCallSource,
    secret: str,
    *,
    settings: Settings,
    http: httpx.AsyncClient,
    retry: RetryPolicy,
) -> OnCallProvider:
    """The provider that reads this source, with its credential."""
    if source.provider == "opsgenie":
        return OpsgenieOnCall(
            api_url=settings.OPSGENIE_API_URL, api_key=secret, http=http, retry=retry
        )
    return PagerDutyOnCall(api_url=settings.PAGERDUTY_API_URL, token=secret, http=http, retry=retry)


def provider_for(services: Services, playbook: Playbook, role: Role) -> OnCallProvider:
    """The provider behind a role's `oncall:`; OnCallFailed("refused") without a credential."""
    source = role.oncall
    assert source is not None
    env = credential_env(playbook, role, source)
    secret = secret_value(services.environ, services.settings, env)
    if not secret:
        raise OnCallFailed(source.provider, "refused", f"{env} is not set")
    return provider_from(
        source,
        secret,
        settings=services.settings,
        http=services.http,
        retry=lookup_retry(services),
    )


async def look_up(services: Services, *, playbook: Playbook, role: Role) -> OnCallAnswer:
    """Who is on call now for the role, from the cache when asked less than a minute ago."""
    source = role.oncall
    assert source is not None
    key = (source.provider, source.key, source.identifier, credential_env(playbook, role, source))
    cached = services.oncall_cache.get(key, now=services.clock.now())
    if cached is not None:
        return OnCallAnswer(source, cached)
    try:
        provider = provider_for(services, playbook, role)
        people = await provider.on_call(source)
    except OnCallFailed as failure:
        services.metrics.inc(METRIC, provider=source.provider, outcome=failure.kind)
        return OnCallAnswer(source, failure=failure)
    services.metrics.inc(METRIC, provider=source.provider, outcome="found" if people else "nobody")
    answer = OnCallAnswer(source, tuple(people))
    services.oncall_cache.put(key, answer.people, now=services.clock.now())
    return answer


async def in_slack(
    services: Services, people: tuple[OnCallPerson, ...]
) -> tuple[list[str], list[OnCallPerson]]:
    """The Slack user ids of the people on call (found by email), and those Slack lacks."""
    found: list[str] = []
    missing: list[OnCallPerson] = []
    for person in people:
        ids = await services.directory.members(person.email)
        if not ids:
            missing.append(person)
        found += [user for user in ids if user not in found]
    return found, missing
