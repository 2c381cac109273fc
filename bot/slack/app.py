"""Builds the Bolt AsyncApp: identity, services in the context, listeners, one error hook."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack import alert_actions, commands, events, interactions
from bot.slack.client import make_slack_client
from bot.slack.errors import show_error
from bot.slack.ids import ActionId, CallbackId, CommandName

log = logging.getLogger(__name__)


class SlackIdentity:
    """The bot's own identity from auth.test, fetched once and reused by every request."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.result: AuthorizeResult | None = None
        self._loading: asyncio.Task[None] | None = None

    def load_soon(self, services: Services) -> None:
        """Fetch the identity in the background, once at a time."""
        if self._loading is None or self._loading.done():
            self._loading = services.inflight.spawn(self._load_quietly(), name="auth.test")

    async def _load_quietly(self) -> None:
        try:
            await self.load()
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("auth.test failed (%s); will try again on the next request", exc)

    async def load(self) -> AuthorizeResult:
        """Call auth.test once; SlackApiError (invalid_auth …) propagates to the caller."""
        if self.result is None:
            response = await self.client.auth_test()
            self.result = AuthorizeResult.from_auth_test_response(
                bot_token=self.client.token, auth_test_response=response
            )
        return self.result


def build_bolt_app(
    *, signing_secret: str, client: AsyncWebClient, identity: SlackIdentity, services: Services
) -> AsyncApp:
    """The Bolt app with every listener registered and the services injected as `services`."""

    async def authorize(team_id: str | None) -> AuthorizeResult:
        if identity.result is not None:
            return identity.result
        # The ack must not wait on a slow Slack: go on with the token while auth.test runs.
        identity.load_soon(services)
        return AuthorizeResult(enterprise_id=None, team_id=team_id, bot_token=client.token)

    app = AsyncApp(
        # Bolt gives each request a client with the token from `authorize`; its own copy
        # carries the base URL and retry handlers, and no token of its own.
        client=make_slack_client(token=None, base_url=client.base_url),
        signing_secret=signing_secret,
        authorize=authorize,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        ignoring_self_events_enabled=True,
        logger=logging.getLogger("bot.slack"),
    )

    @app.middleware
    async def inject_services(
        context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        context["services"] = services
        await next()

    app.command(CommandName.INCIDENT)(commands.incident_command)
    app.action(ActionId.STATUS_SELECT)(interactions.card_menu_selected)
    app.action(ActionId.SEVERITY_SELECT)(interactions.card_menu_selected)
    app.action(ActionId.ACKNOWLEDGE_PAGE)(interactions.page_button)
    app.action(ActionId.ESCALATE_PAGE)(interactions.page_button)
    app.action(ActionId.SNOOZE_REMINDER)(interactions.snooze_button)
    app.action(ActionId.COMPLETE_TASK)(interactions.task_button)
    app.action(ActionId.REMOVE_TASK)(interactions.task_button)
    app.action(ActionId.DECLARE_FROM_ALERT)(alert_actions.declare_button)
    app.action(ActionId.RESOLVE_FROM_ALERTS)(alert_actions.resolve_button)
    app.shortcut(CallbackId.DECLARE_SHORTCUT)(interactions.declare_shortcut)
    app.view(CallbackId.DECLARE_MODAL)(interactions.declare_submitted)
    app.event("reaction_added")(events.reaction_added)
    app.event("reaction_removed")(events.reaction_removed)
    app.event("member_joined_channel")(events.member_joined)
    app.event("member_left_channel")(events.member_left)
    # Messages in channels arrive when the app is added to them; nothing to do with them.
    app.event(re.compile(r"^message$"))(_ignore)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any], respond: AsyncRespond) -> None:
        await show_error(error, body=body, respond=respond, client=client)

    return app


async def _ignore() -> None:
    return None
