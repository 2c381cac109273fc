"""The one translator from exceptions to what a person sees, and the post-ack runner using it.

Work after an ack runs in its own tracked task instead of inside Bolt's listener task: Bolt
loses the ack's response when a listener raises right after acking (it answers 404 after
waiting 3 s), so listeners return at once and errors come here.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from contextlib import nullcontext
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import inbox, messages
from bot.errors import AlreadyHandled, UserError
from bot.services import Services

log = logging.getLogger(__name__)


def after_ack(
    services: Services,
    work: Coroutine[Any, Any, Any],
    *,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    client: AsyncWebClient,
) -> None:
    """Run the work after Slack has its answer; a failure is shown to the person who asked.

    The request's inbox ticket goes with the work: the request is done when the work is.
    """
    ticket = inbox.CURRENT.get()
    if ticket is not None:
        services.inbox.began(ticket)

    sender = _sender_of(body)

    async def run() -> None:
        error_text = None
        try:
            # One person's requests start their work in the order they arrived (a note sent
            # after another is recorded after it); other people's do not wait.
            in_order = services.locks.hold(f"sender:{sender}") if sender else nullcontext()
            async with in_order, services.ack_first.turn():
                await work
        except AlreadyHandled:
            log.info("request already handled by another process; nothing done twice")
        except Exception as error:  # every failure is translated, none is swallowed
            error_text = repr(error)[:1000]
            await show_error(error, body=body, respond=respond, client=client)
        finally:
            if ticket is not None:
                services.inbox.ended(ticket, error=error_text)

    services.inflight.spawn(run(), name=f"after-ack:{body.get('type') or body.get('command')}")


def _sender_of(body: dict[str, Any]) -> str | None:
    """Who sent a command, interaction or event, if it names someone."""
    user, event = body.get("user"), body.get("event")
    candidates = [
        body.get("user_id"),  # slash commands
        user.get("id") if isinstance(user, dict) else None,  # interactions
        event.get("user") if isinstance(event, dict) else None,
    ]
    return next((c for c in candidates if isinstance(c, str) and c), None)


async def show_error(
    error: Exception, *, body: dict[str, Any], respond: AsyncRespond | None, client: AsyncWebClient
) -> None:
    """The one place that turns an exception into what the person sees."""
    if isinstance(error, UserError):
        text = error.message
    else:
        log.error("unhandled error in a Slack listener", exc_info=error)
        text = (
            messages.SLACK_FAILED if isinstance(error, SlackApiError) else messages.INTERNAL_ERROR
        )
    try:
        if respond is not None and _response_url(body):
            await respond(text=text, response_type="ephemeral", replace_original=False)
        elif user := _user(body):
            await client.chat_postMessage(channel=user, text=text)
    except Exception:  # showing the error failed too; it is logged, nothing else to do
        log.warning("could not show an error to the user", exc_info=True)


def _response_url(body: dict[str, Any]) -> str | None:
    if body.get("response_url"):
        return str(body["response_url"])
    urls = body.get("response_urls") or []
    return str(urls[0]["response_url"]) if urls else None


def _user(body: dict[str, Any]) -> str | None:
    user = body.get("user_id") or body.get("user") or {}
    if isinstance(user, str):
        return user
    found = user.get("id")
    return str(found) if found else None
