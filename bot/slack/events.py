"""Events in incident channels: 📌 reactions and people joining or leaving."""

from __future__ import annotations

from typing import Any

from bot import usecases
from bot.services import Services

PIN = "pushpin"


async def reaction_added(event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    """📌 on a message adds it to the timeline at the message's own time."""
    item = event.get("item", {})
    if event.get("reaction") != PIN or item.get("type") != "message":
        return
    services.inflight.adopt()
    await usecases.record_pin(
        services,
        event_id=body["event_id"],
        channel_id=item["channel"],
        ts=item["ts"],
        pinned_by=event["user"],
        author=event.get("item_user"),
    )


async def reaction_removed(event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    """Taking the 📌 away takes the entry out of the timeline."""
    item = event.get("item", {})
    if event.get("reaction") != PIN or item.get("type") != "message":
        return
    services.inflight.adopt()
    await usecases.retract_pin(
        services,
        event_id=body["event_id"],
        channel_id=item["channel"],
        ts=item["ts"],
        by=event["user"],
    )


async def member_joined(event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    services.inflight.adopt()
    await usecases.record_membership(
        services,
        event_id=body["event_id"],
        channel_id=event["channel"],
        user=event["user"],
        joined=True,
    )


async def member_left(event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    services.inflight.adopt()
    await usecases.record_membership(
        services,
        event_id=body["event_id"],
        channel_id=event["channel"],
        user=event["user"],
        joined=False,
    )
