"""Wiring: settings and services are built here once, at start-up, and passed down."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError

from bot import postmortems
from bot.alerts import AlertWork
from bot.config import Settings
from bot.core.grammar import parse_incident_ref
from bot.core.playbooks import Playbook
from bot.db.engine import ping
from bot.db.migrate import check_schema
from bot.db.models import InboxRequest
from bot.errors import ConfigError
from bot.followups.issues import FollowUpIssues
from bot.oncall.check import source_checker
from bot.oncall.staffing import OnCallStaffing
from bot.paging import Paging
from bot.playbook_check import check_directory, format_problem, load_valid_directory
from bot.reminders import Reminders
from bot.services import Services, build_services
from bot.slack.app import SlackIdentity, build_bolt_app
from bot.slack.effects import SlackEffects
from bot.web.server import create_web_app

log = logging.getLogger(__name__)


async def check_database(services: Services) -> None:
    """The database answers and its schema is at the code's migration head."""
    await ping(services.engine)
    await check_schema(services.engine)


def load_playbooks(settings: Settings) -> list[Playbook]:
    """The playbooks in PLAYBOOKS_DIR; PlaybookInvalid lists every problem, file and line."""
    return load_valid_directory(Path(settings.PLAYBOOKS_DIR))


def prepare(services: Services, identity: SlackIdentity) -> None:
    """Register what the background runs (side effects, timers); nothing starts running yet."""
    services.effects.register(SlackEffects(services, identity).executors())
    services.effects.register(Paging(services).executors())
    services.effects.register(FollowUpIssues(services).executors())
    services.effects.register(OnCallStaffing(services).executors())
    services.effects.register(AlertWork(services).executors())
    reminders = Reminders(services)
    services.effects.register(reminders.executors())
    services.timers.start(reminders.handle)


def start_background(services: Services) -> None:
    """Run side effects now, recover unfinished requests, and contend for running the timers."""
    services.effects.start()
    services.inbox.start()
    services.timers.start_polling()


def build_listeners(services: Services) -> tuple[AsyncApp, SlackIdentity]:
    """The Bolt app, also the way a request acknowledged by a dead process is run again."""
    identity = SlackIdentity(services.slack)
    prepare(services, identity)
    bolt = build_bolt_app(client=services.slack, identity=identity, services=services)

    async def replay(request: InboxRequest) -> None:
        # Its ack goes nowhere; the person hears from the work (response_url, DMs, channel).
        await bolt.async_dispatch(
            AsyncBoltRequest(body=request.body, headers={"content-type": request.content_type})
        )

    services.inbox.replay = replay
    return bolt, identity


# Young objects collected every 10,000 allocations instead of 700: during a burst of
# requests, far fewer of them are promoted, so the full collections that stall the event
# loop come much less often (bench/ack_latency: note p99 29-33 ms instead of 34-54 ms).
GC_THRESHOLDS = (10_000, 10, 10)


def settle_memory() -> None:
    """Once started: what start-up built lives as long as the process, so it is moved out of
    the garbage collector's sight, and young objects are collected less often. A full
    collection during a burst of requests then walks only what the requests made, and seldom
    (measured: pauses of 80-100 ms otherwise, bench/ack_latency)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def build_web(services: Services) -> tuple[web.Application, SlackIdentity]:
    """The Bolt app inside the aiohttp app, sharing the services (prepared for background work)."""
    services.settings.require("SLACK_SIGNING_SECRET")
    bolt, identity = build_listeners(services)
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


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _drain(services: Services, runner: web.AppRunner | None) -> None:
    """Finish in-flight requests and the work after their acks, then close."""
    if runner is not None:
        await runner.cleanup()
    try:
        await services.inflight.wait(10)
    except TimeoutError:
        log.warning("%d background tasks still running at shutdown", len(services.inflight))
    await services.aclose()


async def _start_http(services: Services, app: web.Application) -> web.AppRunner:
    settings = services.settings
    runner = web.AppRunner(app, shutdown_timeout=10, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.HOST, settings.PORT).start()
    log.info("serving on http://%s:%s", settings.HOST, settings.PORT)
    return runner


async def serve(settings: Settings) -> None:
    """Run the HTTP server until SIGTERM or SIGINT, then drain and close."""
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    services = build_services(settings)  # checks DATABASE_URL first
    services.playbooks = tuple(load_playbooks(settings))
    runner: web.AppRunner | None = None
    try:
        await check_database(services)
        app, identity = build_web(services)
        await verify_slack_token(identity)
        runner = await _start_http(services, app)
        start_background(services)
        settle_memory()
        await _until_signal()
        log.info("shutting down: finishing in-flight requests")
    finally:
        await _drain(services, runner)
    log.info("stopped")


async def socket_mode(settings: Settings) -> None:
    """Socket Mode: the listeners over a WebSocket; /healthz and /metrics still on PORT.

    Slack's connection refreshes lose nothing: the next connection opens before the old one
    closes (bot/slack/socket_mode.py).
    """
    from bot.slack.socket_mode import Intake, SocketMode

    settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
    services = build_services(settings)  # checks DATABASE_URL first
    services.playbooks = tuple(load_playbooks(settings))
    runner: web.AppRunner | None = None
    socket: SocketMode | None = None
    try:
        await check_database(services)
        bolt, identity = build_listeners(services)
        # No /slack/events here: requests come over the socket, and nothing on PORT may
        # reach the listeners without Slack's signature.
        app = create_web_app(services=services, bolt=bolt, slack_events=False)
        await verify_slack_token(identity)
        runner = await _start_http(services, app)
        socket = SocketMode(
            bolt=bolt,
            app_token=settings.secret("SLACK_APP_TOKEN"),
            slack=services.slack,
            metrics=services.metrics,
            intake=Intake(inbox=services.inbox),
        )
        await socket.start()
        start_background(services)
        settle_memory()
        await _until_signal()
        log.info("shutting down: acknowledging what was received, then closing")
    finally:
        if socket is not None:
            await socket.close()
        await _drain(services, runner)
    log.info("stopped")


async def worker(settings: Settings) -> None:
    """The background work alone (owed Slack calls and pages, the timers), until SIGTERM.

    Every `serve` process runs the same loops; side effects are claimed before they run and
    only the holder of the scheduler lease runs timers, so any number of processes can share
    a database without doing anything twice.
    """
    settings.require("SLACK_BOT_TOKEN")
    services = build_services(settings)  # checks DATABASE_URL first
    services.playbooks = tuple(load_playbooks(settings))
    try:
        await check_database(services)
        build_listeners(services)  # to run again what a dead `serve` acknowledged
        start_background(services)
        settle_memory()
        log.info("worker running")
        await _until_signal()
    finally:
        await _drain(services, None)
    log.info("stopped")


async def write_postmortem(settings: Settings, ref: str) -> str:
    """The Markdown `/incident postmortem` uploads; names are refreshed when Slack is set up."""
    number = parse_incident_ref(ref)
    services = build_services(settings)
    try:
        await check_database(services)
        incident_id = await postmortems.incident_id_of(services, number)
        refresh = settings.SLACK_BOT_TOKEN is not None
        try:
            document = await postmortems.draft(
                services, incident_id=incident_id, refresh_names=refresh
            )
        except (SlackApiError, OSError) as exc:
            log.warning("names not refreshed from Slack (%s); using those last seen", exc)
            document = await postmortems.draft(services, incident_id=incident_id)
        return document.markdown
    finally:
        await services.aclose()


async def write_timeline(settings: Settings, ref: str, *, format: str = "text") -> str:
    """The incident's whole timeline; names are refreshed when Slack is set up."""
    from bot.timeline_export import export_timeline

    number = parse_incident_ref(ref)
    services = build_services(settings)
    try:
        await check_database(services)
        incident_id = await postmortems.incident_id_of(services, number)
        refresh = settings.SLACK_BOT_TOKEN is not None
        try:
            return await export_timeline(
                services, incident_id=incident_id, format=format, refresh_names=refresh
            )
        except (SlackApiError, OSError) as exc:
            log.warning("names not refreshed from Slack (%s); using those last seen", exc)
            return await export_timeline(services, incident_id=incident_id, format=format)
    finally:
        await services.aclose()


async def check_playbooks(settings: Settings, directory: str | None) -> list[str]:
    """Every problem in the playbooks, one line each; handles are checked when a token is set.

    When Slack cannot be asked (unreachable, token refused), the files are still checked and
    the reason the handles were not is logged.
    """
    path = Path(directory or settings.PLAYBOOKS_DIR)
    problems = None
    # On-call schedules are checked where PAGERDUTY_API_TOKEN or an Opsgenie key is set.
    sources = source_checker(settings, os.environ)
    if settings.SLACK_BOT_TOKEN is not None:
        services = build_services(settings)

        async def exists(target: str) -> bool:
            return bool(await services.directory.members(target))

        try:
            problems = await check_directory(path, lookup_user=exists, source_exists=sources)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
            log.warning("Slack handles not checked: Slack could not be asked (%s)", reason)
        finally:
            await services.aclose()
    if problems is None:
        problems = await check_directory(path, lookup_user=None, source_exists=sources)
    return [format_problem(problem) for problem in problems]
