"""Who is who: handles, emails and user groups through the Web API, cached and bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest import mock

import pytest

from bot.emulator import SlackEmulator
from bot.slack import directory as directory_module
from bot.slack.client import WebClient, make_slack_client
from bot.slack.directory import SlackDirectory
from tests.conftest import BOT_TOKEN
from tests.slack_schema import assert_all_calls_valid


@pytest.fixture
async def client(emulator: SlackEmulator) -> AsyncIterator[WebClient]:
    web = make_slack_client(token=BOT_TOKEN, base_url=emulator.url)
    try:
        yield web
    finally:
        await web.aclose()


async def test_every_kind_of_target_resolves_and_is_looked_up_once(
    emulator: SlackEmulator, client: WebClient
) -> None:
    alice = emulator.add_user("alice", email="alice@example.com")
    bob = emulator.add_user("bob")
    group = emulator.add_usergroup("dba", [alice, bob])
    people = SlackDirectory(client)
    for _ in range(3):
        assert await people.members("alice@example.com") == [alice]
        assert await people.members(group) == [alice, bob]
        assert await people.members("@bob") == [bob]
        assert await people.members(alice) == [alice]
    assert len(emulator.calls_to("users.lookupByEmail")) == 1
    assert len(emulator.calls_to("usergroups.users.list")) == 1
    assert len(emulator.calls_to("users.list")) == 1
    assert len(emulator.calls_to("users.info")) == 1
    assert await people.members("nobody@example.com") == []
    assert await people.members("@ghost") == []
    assert_all_calls_valid(emulator.calls)


async def test_the_cache_expires_and_stays_bounded(
    emulator: SlackEmulator, client: WebClient
) -> None:
    emulator.add_user("alice", email="alice@example.com")
    now = [1000.0]
    people = SlackDirectory(client, monotonic=lambda: now[0])
    with mock.patch.object(directory_module, "CACHE_SIZE", 3):
        await people.members("alice@example.com")
        now[0] += directory_module.CACHE_SECONDS + 1
        await people.members("alice@example.com")
        assert len(emulator.calls_to("users.lookupByEmail")) == 2  # refreshed after expiry
        for n in range(5):
            await people.members(f"someone{n}@example.com")
        assert len(people._targets) <= 3
