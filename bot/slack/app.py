"""Builds the Bolt AsyncApp: identity, services in the context, listeners, one error hook."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack import alert_actions, commands, events, interactions
from bot.slack.client import KeptRespond, make_slack_client
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
    *, client: AsyncWebClient, identity: SlackIdentity, services: Services
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
        signing_secret="verified-at-the-edge",  # unused: verification is off (see below)
        authorize=authorize,
        # The edge (bot/web/slack_edge.py) checked the signature on the raw bytes before the
        # request was recorded; one run again after a crash is stale by then: not refused.
        request_verification_enabled=False,
        # Listeners ack and hand their work to a tracked task, so they return at once: the
        # answer goes out when the listener returns, with no polling for the ack.
        process_before_response=True,
        # Kinds without a listener come to `on_error` below, which acks them with a 200.
        raise_error_for_unhandled_request=True,
        ignoring_self_events_enabled=True,
        logger=logging.getLogger("bot.slack"),
    )

    @app.middleware
    async def inject_services(
        context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        context["services"] = services
        # Listeners' own calls (views.open) go through the services' client, which counts
        # them in /metrics; it holds the same bot token as Bolt's per-request copy.
        context["client"] = services.slack
        if context.response_url is not None:  # replies over the same kept connections
            context["respond"] = KeptRespond(
                response_url=context.response_url, client=services.slack
            )
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

    unhandled = UnhandledKinds()

    @app.error
    async def on_error(
        error: Exception, body: dict[str, Any], respond: AsyncRespond
    ) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            return unhandled.ack(body)
        await show_error(error, body=body, respond=respond, client=client)
        return None

    return app


async def _ignore() -> None:
    return None


class UnhandledKinds:
    """Requests no listener takes: acked with a 200, since Slack treats 404 as a failure.

    A button from an older version of a message, an unknown callback_id or an event type the
    app does not use is logged at DEBUG; `app_rate_limited` (Slack is dropping our events) is a
    WARNING, once per process.
    """

    def __init__(self) -> None:
        self.rate_limited_warned = False

    def ack(self, body: dict[str, Any]) -> BoltResponse:
        """The 200 for a request without a listener, logged as above."""
        kind = body.get("type") or ("command" if "command" in body else "unknown")
        if kind == "app_rate_limited":
            if not self.rate_limited_warned:
                self.rate_limited_warned = True
                log.warning(
                    "Slack is rate-limiting the events it sends this app "
                    "(app_rate_limited, minute %s); some events were dropped",
                    body.get("minute_rate_limited"),
                )
        else:
            log.debug("no listener for a Slack %s request; acked", kind)
        return BoltResponse(status=200, body="")
