"""Shared pieces for the pager tests: a recording sleep, HTTP clients, and the fakes started."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.enums import Severity
from bot.emulator import SlackEmulator
from bot.pagers.base import PageRequest, dedup_key_for
from bot.pagers.retry import RetryPolicy
from tests.pagers.fakes import FakeOpsgenie, FakePagerDuty, FakeWebhook

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"  # 32 characters, as PagerDuty issues them
GENIE_KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
WEBHOOK_SECRET = "whsec-test-secret"


class RecordingSleep:
    """An injected sleep: remembers each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_request(
    *,
    ref: str = "INC-7",
    role: str | None = "ops",
    severity: Severity = Severity.SEV1,
    title: str = "Checkout latency spike",
    summary: str | None = None,
    page_id: int = 41,
) -> PageRequest:
    """A page as the page-role use case would build it."""
    return PageRequest(
        ref=ref,
        title=title,
        severity=severity,
        dedup_key=dedup_key_for(ref=ref, role=role),
        summary=summary or f"{ref} ({severity.value.upper()}): {title} — page for {role}",
        message="Checkout p99 is over 4 s since 10:02.",
        role=role,
        channel_url="https://acme.slack.com/archives/C0INC7",
        page_id=page_id,
    )


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def retry(sleep: RecordingSleep) -> RetryPolicy:
    return RetryPolicy(attempts=4, base_delay=0.5, max_delay=8.0, sleep=sleep)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def opsgenie() -> AsyncIterator[FakeOpsgenie]:
    fake = FakeOpsgenie(api_key=GENIE_KEY)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def webhook() -> AsyncIterator[FakeWebhook]:
    fake = FakeWebhook(secret=WEBHOOK_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(bot_token="xoxb-pager-tests")
    await emu.start()
    yield emu
    await emu.stop()


def slack_client(emu: SlackEmulator) -> AsyncWebClient:
    """A client without slack_sdk's own retry handlers, so only the pager's policy retries."""
    return AsyncWebClient(token=emu.bot_token, base_url=emu.url, retry_handlers=[])
