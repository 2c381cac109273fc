"""Events in incident channels: 📌 reactions and people joining or leaving."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot import channel_events
from bot.services import Services
from bot.slack.errors import after_ack
from bot.usecases import ts_to_datetime

PIN = "pushpin"


def _pinned_message(event: dict[str, Any]) -> dict[str, Any] | None:
    item: dict[str, Any] = event.get("item", {})
    if event.get("reaction") != PIN or item.get("type") != "message":
        return None
    return item


def _event_time(event: dict[str, Any]) -> datetime | None:
    """When Slack says the reaction happened: orders events handled by different processes."""
    try:
        return ts_to_datetime(str(event["event_ts"]))
    except (KeyError, ArithmeticError, ValueError, OverflowError):
        return None


async def reaction_added(
    event: dict[str, Any], body: dict[str, Any], services: Services, client: AsyncWebClient
) -> None:
    """📌 on a message adds it to the timeline at the message's own time."""
    if (item := _pinned_message(event)) is None:
        return
    work = channel_events.set_pin(
        services,
        event_id=body["event_id"],
        channel_id=item["channel"],
        ts=item["ts"],
        user=event["user"],
        present=True,
        author=event.get("item_user"),
        event_at=_event_time(event),
    )
    after_ack(services, work, body=body, respond=None, client=client)


async def reaction_removed(
    event: dict[str, Any], body: dict[str, Any], services: Services, client: AsyncWebClient
) -> None:
    """Taking the 📌 away takes the entry out of the timeline."""
    if (item := _pinned_message(event)) is None:
        return
    work = channel_events.set_pin(
        services,
        event_id=body["event_id"],
        channel_id=item["channel"],
        ts=item["ts"],
        user=event["user"],
        present=False,
        author=None,
        event_at=_event_time(event),
    )
    after_ack(services, work, body=body, respond=None, client=client)


async def member_joined(
    event: dict[str, Any], body: dict[str, Any], services: Services, client: AsyncWebClient
) -> None:
    """Someone joined an incident channel: a system entry."""
    work = channel_events.record_membership(
        services,
        event_id=body["event_id"],
        channel_id=event["channel"],
        user=event["user"],
        joined=True,
    )
    after_ack(services, work, body=body, respond=None, client=client)


async def member_left(
    event: dict[str, Any], body: dict[str, Any], services: Services, client: AsyncWebClient
) -> None:
    """Someone left an incident channel: a system entry."""
    work = channel_events.record_membership(
        services,
        event_id=body["event_id"],
        channel_id=event["channel"],
        user=event["user"],
        joined=False,
    )
    after_ack(services, work, body=body, respond=None, client=client)
