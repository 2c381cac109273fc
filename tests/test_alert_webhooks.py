"""POST /webhooks/alertmanager and /webhooks/grafana: who may call, what is refused, kept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from bot.core.clock import FakeClock
from bot.db.models import SideEffect
from bot.emulator import SlackEmulator
from bot.outbox import EffectKind
from tests.alert_fixtures import (
    TOKEN,
    AlertWorld,
    am_alert,
    am_payload,
    grafana_payload,
    grafana_signature,
    running_world,
    start_world,
    stop_world,
)
from tests.conftest import start_bot, stop_bot


@pytest.fixture
async def world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[AlertWorld]:
    async with running_world(db_url=sqlite_url, emulator=emulator, clock=clock) as started:
        yield started


@pytest.fixture
async def world_any_db(
    db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[AlertWorld]:
    async with running_world(db_url=db_url, emulator=emulator, clock=clock) as started:
        yield started


async def _owed(world: AlertWorld) -> list[SideEffect]:
    async with world.bot.services.sessions() as session:
        result = await session.execute(
            select(SideEffect).where(SideEffect.kind == EffectKind.PROCESS_ALERTS)
        )
        return list(result.scalars())


async def test_both_endpoints_are_off_without_a_token(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> None:
    world = await start_world(db_url=sqlite_url, emulator=emulator, clock=clock, token=None)
    try:
        for path in ("/webhooks/alertmanager", "/webhooks/grafana"):
            status, body = await world.send(am_payload([am_alert()]), path=path)
            assert status == 404
            assert "ALERT_WEBHOOK_TOKEN" in body["error"]
    finally:
        await stop_world(world)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-token",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        f"Token {TOKEN}",
    ],
)
async def test_a_wrong_or_missing_credential_is_401_and_keeps_nothing(
    world: AlertWorld, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/webhooks/alertmanager", "/webhooks/grafana"):
        status, body = await world.send(am_payload([am_alert()]), path=path, headers=headers)
        assert status == 401, body
    assert await _owed(world) == []


async def test_non_ascii_credentials_are_refused_not_crashed_on(world: AlertWorld) -> None:
    body = json.dumps(am_payload([am_alert()])).encode()
    for value in ("Bearer tökén-ünïcode", "Bearer \u00e9" + TOKEN):
        async with world.bot.http.post(
            world.bot.url + "/webhooks/alertmanager",
            data=body,
            headers={"Authorization": value.encode("utf-8").decode("latin-1")},
        ) as response:
            assert response.status == 401
    status, _ = await world.send(
        grafana_payload(),
        path="/webhooks/grafana",
        headers={"X-Grafana-Alerting-Signature": "é".encode().decode("latin-1")},
    )
    assert status == 401


async def test_the_bearer_scheme_is_case_insensitive(world: AlertWorld) -> None:
    status, body = await world.send(
        am_payload([am_alert()]), headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert (status, body["routed"]) == (200, 1)


async def test_grafana_hmac_stands_in_for_the_bearer(world: AlertWorld) -> None:
    raw = json.dumps(grafana_payload()).encode()
    now = str(int(world.clock.now().timestamp()))
    good = [
        {"X-Grafana-Alerting-Signature": grafana_signature(raw)},
        {
            "X-Grafana-Alerting-Signature": grafana_signature(raw, timestamp=now),
            "X-Grafana-Alerting-Timestamp": now,
        },
    ]
    for headers in good:
        status, body = await world.send(None, raw=raw, path="/webhooks/grafana", headers=headers)
        assert status == 200, body
    stale = str(int(world.clock.now().timestamp()) - 3600)
    bad = [
        {"X-Grafana-Alerting-Signature": grafana_signature(raw + b" ")},
        {"X-Grafana-Alerting-Signature": "0" * 64},
        # Signed with a timestamp, but the timestamp is not sent: the body alone does not match.
        {"X-Grafana-Alerting-Signature": grafana_signature(raw, timestamp=now)},
        # An old delivery replayed.
        {
            "X-Grafana-Alerting-Signature": grafana_signature(raw, timestamp=stale),
            "X-Grafana-Alerting-Timestamp": stale,
        },
        {
            "X-Grafana-Alerting-Signature": grafana_signature(raw, timestamp="soon"),
            "X-Grafana-Alerting-Timestamp": "soon",
        },
    ]
    for headers in bad:
        status, _ = await world.send(None, raw=raw, path="/webhooks/grafana", headers=headers)
        assert status == 401, headers
    # Alertmanager cannot sign: its endpoint wants the bearer.
    status, _ = await world.send(None, raw=raw, headers=good[0])
    assert status == 401


async def test_without_a_grafana_secret_a_signature_is_not_enough(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> None:
    world = await start_world(
        db_url=sqlite_url, emulator=emulator, clock=clock, grafana_secret=None
    )
    try:
        raw = json.dumps(grafana_payload()).encode()
        headers = {"X-Grafana-Alerting-Signature": grafana_signature(raw)}
        status, _ = await world.send(None, raw=raw, path="/webhooks/grafana", headers=headers)
        assert status == 401
    finally:
        await stop_world(world)


def _broken(**changes: Any) -> dict[str, Any]:
    payload = am_payload([am_alert()])
    alert = payload["alerts"][0]
    for key, value in changes.items():
        if key.startswith("alert_"):
            name = key.removeprefix("alert_")
            if value is None:
                alert.pop(name)
            else:
                alert[name] = value
        elif value is None:
            payload.pop(key)
        else:
            payload[key] = value
    return payload


BAD_PAYLOADS: list[tuple[Any, str]] = [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    ([1, 2], "not a JSON object"),
    (_broken(alerts=None), "alerts"),
    (_broken(alerts="many"), "alerts"),
    (_broken(version="3"), "version"),
    (_broken(alert_labels=None), "labels"),
    (_broken(alert_labels=["a"]), "labels"),
    (_broken(alert_status="burning"), "status"),
    (_broken(alert_startsAt=None), "startsAt"),
    (_broken(alert_startsAt="2026-11-25 10:15:03"), "RFC 3339"),
    (_broken(alert_startsAt="2026-11-25T10:15:03"), "RFC 3339"),  # no zone: which time is it?
    (_broken(alert_startsAt="2026-13-45T10:15:03Z"), "not a valid time"),
    (_broken(alert_startsAt=12345), "startsAt"),
    (_broken(alert_startsAt="0001-01-01T00:00:00Z"), "zero time"),
    (_broken(alert_status="resolved"), "no endsAt"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_PAYLOADS)
async def test_a_malformed_payload_is_400_with_the_reason(
    world: AlertWorld, payload: Any, reason: str
) -> None:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, body = await world.send(None, raw=raw)
    assert status == 400, body
    assert reason in body["error"]
    assert await _owed(world) == []


async def test_bodies_up_to_8_mib_are_read_and_larger_ones_are_413(world: AlertWorld) -> None:
    # Well above the 1 MiB the Slack endpoint accepts: Alertmanager re-sends whole groups.
    alerts = [am_alert(instance=f"web-{i}", summary="x" * 900) for i in range(2500)]
    raw = json.dumps(am_payload(alerts)).encode()
    assert 2 * 1024 * 1024 < len(raw) < 8 * 1024 * 1024
    status, body = await world.send(None, raw=raw)
    assert (status, body["routed"]) == (200, 2500)
    too_big = b" " * (8 * 1024 * 1024 + 1)
    status, body = await world.send(None, raw=too_big)
    assert status == 413


async def test_a_chunked_body_over_the_limit_is_413(world: AlertWorld) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(9):
            yield b" " * (1024 * 1024)

    async with world.bot.http.post(
        world.bot.url + "/webhooks/alertmanager",
        data=chunks(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        assert response.status == 413


async def test_unrouted_alerts_are_202_counted_and_nothing_else(world: AlertWorld) -> None:
    payload = am_payload([am_alert(name="SomethingElse"), am_alert(name="Other", instance="b")])
    status, body = await world.send(payload)
    assert status == 202
    assert body == {"received": 2, "routed": 0}
    await world.settle()
    assert await _owed(world) == []
    assert await world.incidents() == []
    counters = world.bot.services.metrics.render()[0].decode()
    assert 'alerts_unrouted_total{source="alertmanager"} 2' in counters
    assert 'webhook_requests_total{endpoint="alertmanager",outcome="unrouted"} 1' in counters


async def test_the_answer_comes_after_the_commit_and_survives_a_kill(
    db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> None:
    """Nothing is processed before the 2xx; a process killed right after it loses nothing."""
    world = await start_world(db_url=db_url, emulator=emulator, clock=clock)
    await world.bot.services.effects.stop()  # as if killed before any work after the answer
    status, _ = await world.send(am_payload([am_alert(), am_alert(instance="web-2")]))
    assert status == 200
    assert len(await _owed(world)) == 1
    # kill -9: no settle, no draining; the next process finds the delivery in the database.
    await world.bot.http.close()
    await world.runner.cleanup()
    await world.bot.services.engine.dispose()
    settings = world.bot.services.settings
    playbooks = world.bot.services.playbooks
    bot, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    try:
        await bot.settle()
        world.bot = bot
        [incident] = await world.incidents()
        assert len(await world.alerts()) == 2
        assert incident.title == "HighErrorRate: Error rate above 5% on web-1"
    finally:
        await stop_bot(bot, runner)


async def test_accepted_deliveries_are_counted(world_any_db: AlertWorld) -> None:
    world = world_any_db
    status, body = await world.send(am_payload([am_alert(), am_alert(name="Unrouted")]))
    assert (status, body) == (200, {"received": 2, "routed": 1})
    counters = world.bot.services.metrics.render()[0].decode()
    assert 'alerts_received_total{source="alertmanager"} 2' in counters
    assert 'alerts_unrouted_total{source="alertmanager"} 1' in counters
    assert 'webhook_requests_total{endpoint="alertmanager",outcome="accepted"} 1' in counters
