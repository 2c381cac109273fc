"""For `playbooks check`: does each role's on-call schedule (or policy) exist?

Asked only where a credential is set (PAGERDUTY_API_TOKEN; the Opsgenie key the role would
use). A provider that refuses the key or does not answer is reported once in the log, and its
schedules are left unchecked rather than reported as missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx

from bot.config import Settings
from bot.core.playbooks import Playbook, Role
from bot.oncall.base import PROVIDER_NAMES, OnCallFailed
from bot.oncall.lookup import ATTEMPTS, MAX_DELAY, credential_env, provider_from, secret_value
from bot.pagers.retry import RetryPolicy
from bot.playbook_check import SourceExists

log = logging.getLogger(__name__)


def source_checker(
    settings: Settings, environ: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> SourceExists:
    """A SourceExists that asks the providers (each question with its own HTTP client)."""
    policy = retry or RetryPolicy(attempts=ATTEMPTS, max_delay=MAX_DELAY)
    given_up: set[str] = set()

    async def exists(playbook: Playbook, role: Role) -> bool | None:
        source = role.oncall
        if source is None or source.provider in given_up:
            return None
        secret = secret_value(environ, settings, credential_env(playbook, role, source))
        if not secret:
            return None
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
            provider = provider_from(source, secret, settings=settings, http=http, retry=policy)
            try:
                return await provider.exists(source)
            except OnCallFailed as failure:
                given_up.add(source.provider)
                name = PROVIDER_NAMES[source.provider]
                log.warning("%s schedules not checked: %s", name, failure.reason)
                return None

    return exists
