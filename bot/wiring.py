"""Wiring: settings and services are built here once, at start-up, and passed down."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.db.engine import ping
from bot.db.migrate import check_schema
from bot.errors import ConfigError
from bot.services import Services, build_services
from bot.slack.app import SlackIdentity, build_bolt_app
from bot.slack.effects import SlackEffects
from bot.web.server import BOLT, create_web_app

log = logging.getLogger(__name__)


async def check_database(services: Services) -> None:
    """The database answers and its schema is at the code's migration head."""
    await ping(services.engine)
    await check_schema(services.engine)


def build_web(services: Services) -> tuple[web.Application, SlackIdentity]:
    """The Bolt app inside the aiohttp app, sharing the services."""
    services.effects.register(SlackEffects(services).executors())
    identity = SlackIdentity(services.slack)
    bolt = build_bolt_app(
        signing_secret=services.settings.secret("SLACK_SIGNING_SECRET"),
        client=services.slack,
        identity=identity,
        services=services,
    )
    return create_web_app(services=services, bolt=bolt), identity


async def verify_slack_token(identity: SlackIdentity) -> None:
    """Fail fast on a token Slack refuses; a Slack outage only delays the check."""
    try:
        await identity.load()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown_error"))
        if error in {"invalid_auth", "not_authed", "account_inactive", "token_revoked"}:
            raise ConfigError(
                "SLACK_BOT_TOKEN",
                f"was refused by Slack ({error})",
                "reinstall the app and copy it again",
            ) from None
        log.warning("auth.test failed (%s); will retry on the first request", error)
    except (OSError, TimeoutError) as exc:
        log.warning("Slack is unreachable at start-up (%s); will retry on the first request", exc)


async def serve(settings: Settings, *, ready: asyncio.Event | None = None) -> None:
    """Run the HTTP server until SIGTERM or SIGINT, then drain and close."""
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    services = build_services(settings)
    runner: web.AppRunner | None = None
    try:
        await check_database(services)
        app, identity = build_web(services)
        await verify_slack_token(identity)
        runner = web.AppRunner(app, shutdown_timeout=10, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, settings.HOST, settings.PORT).start()
        services.effects.start()
        log.info("serving on http://%s:%s", settings.HOST, settings.PORT)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("shutting down: finishing in-flight requests")
    finally:
        if runner is not None:
            await runner.cleanup()
        try:
            await services.inflight.wait(10)
        except TimeoutError:
            log.warning("%d background tasks still running at shutdown", len(services.inflight))
        await services.aclose()
    log.info("stopped")


async def socket_mode(settings: Settings) -> None:
    """Socket Mode: the same listeners over a WebSocket, plus /healthz and /metrics on PORT."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
    if settings.SLACK_SIGNING_SECRET is None:
        # Socket Mode requests are not signed; Bolt still wants a value.
        settings = settings.model_copy(update={"SLACK_SIGNING_SECRET": _unused_secret()})
    services = build_services(settings)
    try:
        await check_database(services)
        app, identity = build_web(services)
        await verify_slack_token(identity)
        handler = AsyncSocketModeHandler(app[BOLT], settings.secret("SLACK_APP_TOKEN"))
        services.effects.start()
        await handler.start_async()  # type: ignore[no-untyped-call]
    finally:
        await services.aclose()


def _unused_secret() -> SecretStr:
    return SecretStr("socket-mode-requests-are-not-signed")
