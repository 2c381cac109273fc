"""The `/incident` slash command: ack at once, parse, hand over to one use case."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import dispatch
from bot.core import grammar
from bot.core.playbooks import all_services
from bot.errors import UserError
from bot.services import Services
from bot.slack import blocks
from bot.slack.errors import after_ack


async def incident_command(
    ack: AsyncAck,
    command: dict[str, Any],
    services: Services,
    respond: AsyncRespond,
    client: AsyncWebClient,
) -> None:
    """Help and parse errors are answered in the ack itself; the rest right after it."""
    tz = services.settings.timezone
    try:
        parsed = grammar.parse(command.get("text", ""), now=services.clock.now(), tz=tz)
    except UserError as exc:
        await ack(response_type="ephemeral", text=f"{exc.message}\n\n{grammar.HELP_TEXT}")
        return
    if isinstance(parsed, grammar.Help):
        await ack(response_type="ephemeral", text=grammar.HELP_TEXT)
        return
    await ack()
    work = run(parsed, command=command, services=services, respond=respond, client=client)
    after_ack(services, work, body=command, respond=respond, client=client)


async def run(
    parsed: grammar.Command,
    *,
    command: dict[str, Any],
    services: Services,
    respond: AsyncRespond,
    client: AsyncWebClient,
) -> None:
    if isinstance(parsed, grammar.Declare) and parsed.title is None:
        # trigger_id expires 3 s after the command: the form opens before anything else.
        view = blocks.declare_modal(
            severity=parsed.severity, services=all_services(services.playbooks)
        )
        await client.views_open(trigger_id=command["trigger_id"], view=view)
        return
    reply = await dispatch.run_command(
        services,
        parsed,
        actor=command["user_id"],
        channel_id=command.get("channel_id"),
        response_url=command.get("response_url"),
    )
    await respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral")
