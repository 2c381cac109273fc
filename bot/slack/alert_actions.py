"""Buttons on the bot's alert messages: Declare on a prompt, Resolve once every alert resolved."""

from __future__ import annotations

from typing import Any

from bot import alerts
from bot.services import Services
from bot.slack.interactions import id_button
from bot.usecases import Reply


async def _declare(
    services: Services, group_id: int, body: dict[str, Any], action: dict[str, Any]
) -> Reply:
    return await alerts.declare_from_prompt(
        services,
        group_id=group_id,
        actor=body["user"]["id"],
        prompt_channel=body.get("channel", {}).get("id"),
        prompt_ts=body.get("container", {}).get("message_ts"),
    )


async def _resolve(
    services: Services, incident_id: int, body: dict[str, Any], action: dict[str, Any]
) -> Reply:
    return await alerts.resolve_from_prompt(
        services,
        incident_id=incident_id,
        actor=body["user"]["id"],
        channel_id=body.get("channel", {}).get("id"),
    )


declare_button = id_button("an alert group", _declare)  # "Declare incident?" in ALERTS_CHANNEL
resolve_button = id_button("an incident", _resolve)  # every alert of an incident has resolved
