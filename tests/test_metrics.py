"""GET /metrics: prometheus-client's exposition, read back with its own parser."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.metrics import Metrics
from bot.timers import TimerKind
from tests.conftest import BotHarness
from tests.conversation import reply_to
from tests.scrape import scrape


async def test_a_declaration_shows_in_counters_gauges_and_slack_calls(
    bot_any_db: BotHarness,
) -> None:
    bot = bot_any_db
    alice = bot.emulator.add_user("alice")
    before = await scrape(bot)
    assert before.value("incidents_open", severity="sev2") == 0
    assert before.value("timers_pending") == 0
    assert before.kind("incidents_open") == "gauge"
    assert before.kind("slack_ack_seconds") == "histogram"
    assert before.kind("time_to_acknowledge_seconds") == "histogram"

    await reply_to(bot, "declare sev2 Checkout is down", user=alice, answers=2)
    await bot.services.timers.schedule(
        TimerKind.STATUS_REMINDER,
        key="status:1",
        at=bot.services.clock.now() + timedelta(minutes=30),
        payload={"incident_id": 1},
    )
    after = await scrape(bot)
    assert after.value("incidents_declared_total", source="command") == 1
    assert after.value("incidents_open", severity="sev2") == 1
    assert after.value("incidents_open", severity="sev1") == 0
    assert after.value("timers_pending") == 1
    assert after.value("slack_api_calls_total", method="conversations.create") == 1
    assert after.value("slack_ack_seconds_count") == 1
    assert after.value("http_requests_total", path="/slack/events", status="200") == 1
    done = after.value("side_effects_total", kind="create_channel", outcome="done")
    assert done == 1

    channel = bot.emulator.calls_to("conversations.create")[0].response["channel"]["id"]
    await reply_to(bot, "resolve", user=alice, channel=channel)
    resolved = await scrape(bot)
    assert resolved.value("incidents_open", severity="sev2") == 0


async def test_slack_errors_are_counted_by_method_and_error(bot: BotHarness) -> None:
    alice = bot.emulator.add_user("alice")
    bot.emulator.fail_next("conversations.create", status=200, error="restricted_action")
    await bot.command("declare sev3 Search is slow", user=alice)
    await bot.settle()
    metrics = await scrape(bot)
    assert metrics.value("slack_api_calls_total", method="conversations.create") == 1
    errors = metrics.value(
        "slack_api_errors_total", method="conversations.create", error="restricted_action"
    )
    assert errors == 1


def test_every_services_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.inc("pages_total", provider="slack", outcome="sent")
    assert first.value("pages_total", provider="slack", outcome="sent") == 1
    assert second.value("pages_total", provider="slack", outcome="sent") is None


def test_names_nobody_declared_get_a_metric_on_first_use() -> None:
    metrics = Metrics()
    metrics.inc("escalations_total", tier="1")
    metrics.inc("escalations", 2, tier="1")  # the same counter, named without `_total`
    metrics.observe("lookup_seconds", 0.2, provider="pagerduty")
    metrics.set("queue_depth", 7)
    assert metrics.value("escalations_total", tier="1") == 3
    assert metrics.value("lookup_seconds_count", provider="pagerduty") == 1
    assert metrics.value("queue_depth") == 7
    text = metrics.render()[0].decode()
    assert "# TYPE escalations_total counter" in text
    assert "# TYPE lookup_seconds histogram" in text


def test_a_call_with_the_wrong_labels_or_kind_is_logged_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="bot.metrics"):
        for _ in range(3):
            metrics.inc("pages_total", provider="slack")  # no outcome
            metrics.observe("pages_total", 1.0)
            metrics.inc("slack_ack_seconds")
    assert metrics.value("pages_total", provider="slack", outcome="") == 3
    assert len(caplog.records) == 3
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it() -> None:
    metrics = Metrics()
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().endswith("# EOF\n")
