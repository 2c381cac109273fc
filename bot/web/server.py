"""The aiohttp application: POST /slack/events, GET /healthz, GET /metrics."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot import gauges, inbox, paging, postmortems
from bot.db.engine import ping
from bot.errors import DatabaseUnavailable, UserError
from bot.pagers.base import SOURCE
from bot.paging import escalation
from bot.services import Services
from bot.slack import shapes
from bot.web import alert_webhooks, protocol_errors, tracker_webhooks
from bot.web.bodies import BadRequest, json_object
from bot.web.slack_edge import content_type_of, parse_slack_body, refuse, verify_slack_signature

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack never sends more; anything larger is refused with 413.

SERVICES = web.AppKey("services", Services)
WEBHOOK_OUTCOMES = {400: "bad_request", 401: "unauthorized", 404: "off", 413: "too_large"}
BOLT = web.AppKey("bolt", AsyncApp)


def create_web_app(
    *, services: Services, bolt: AsyncApp, slack_events: bool = True
) -> web.Application:
    """The whole HTTP surface of `python -m bot serve`."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[count_requests])
    protocol_errors.install()  # malformed HTTP and hang-ups: one WARNING line, rate-limited
    app[SERVICES] = services
    app[BOLT] = bolt
    if slack_events:  # off in Socket Mode, where nothing signs what arrives on PORT
        app.router.add_post("/slack/events", slack_events_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(r"/incidents/{number:\d{1,9}}/postmortem.md", postmortem)
    app.router.add_post("/webhooks/pagerduty", pagerduty_webhook)
    app.router.add_post("/webhooks/github", tracker_webhooks.github_webhook(services))
    app.router.add_post("/webhooks/jira", tracker_webhooks.jira_webhook(services))
    app.router.add_post("/webhooks/alertmanager", alert_webhooks.alertmanager(services))
    app.router.add_post("/webhooks/grafana", alert_webhooks.grafana(services))
    return app


@web.middleware
async def count_requests(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    services = request.app[SERVICES]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        path = route.canonical if route is not None else "unmatched"
        services.metrics.inc("http_requests_total", path=path, status=str(status))
        elapsed = time.perf_counter() - started
        services.metrics.inc(
            "http_request_milliseconds_total",
            int(elapsed * 1000),
            path=path,
        )
        if path == "/slack/events":
            services.metrics.observe("slack_ack_seconds", elapsed)
        if path == "/webhooks/pagerduty":
            outcome = WEBHOOK_OUTCOMES.get(status, "ok" if status < 300 else "error")
            services.metrics.inc("webhook_requests_total", endpoint="pagerduty", outcome=outcome)


async def slack_events_handler(request: web.Request) -> web.StreamResponse:
    """Slash commands, interactivity and events: signature, shape, recorded, then answered."""
    services = request.app[SERVICES]
    with services.ack_first.answering():
        return await _answer_slack(request, services)


async def _answer_slack(request: web.Request, services: Services) -> web.StreamResponse:
    raw = await request.read()
    secret = services.settings.secret("SLACK_SIGNING_SECRET")
    if not verify_slack_signature(raw, request.headers, secret, time.time()):
        return web.json_response({"error": "bad or missing Slack signature"}, status=401)
    content_type = content_type_of(request.headers)
    try:
        payload = parse_slack_body(raw, content_type)
    except BadRequest as exc:
        return web.json_response({"error": exc.reason}, status=400)
    if (refusal := shapes.check(payload)) is not None:
        return refuse(services, payload, refusal)
    body = raw.decode()  # UTF-8: parse_slack_body refused anything else
    # Durable before the ack: once Slack has our 200 it never sends this again.
    kind = content_type or ""
    ticket = await services.inbox.record(source="slack", content_type=kind, body=body)
    token = inbox.CURRENT.set(ticket)
    try:
        bolt_response = await request.app[BOLT].async_dispatch(
            AsyncBoltRequest(body=body, headers={"content-type": kind})
        )
    finally:
        inbox.CURRENT.reset(token)
    services.inbox.finish_soon(ticket)
    return await to_aiohttp_response(bolt_response)


async def healthz(request: web.Request) -> web.StreamResponse:
    """200 when the database answers, 503 with the reason when it does not."""
    services = request.app[SERVICES]
    try:
        await ping(services.engine, timeout=2.0)
    except DatabaseUnavailable as exc:
        return web.json_response({"status": "unavailable", "database": exc.reason}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus exposition; the gauges are read from the database first."""
    services = request.app[SERVICES]
    await gauges.refresh(services)
    body, content_type = services.metrics.render(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def postmortem(request: web.Request) -> web.StreamResponse:
    """The Markdown draft, for holders of POSTMORTEM_TOKEN; nobody else learns anything."""
    services = request.app[SERVICES]
    expected = services.settings.POSTMORTEM_TOKEN
    # An empty or blank POSTMORTEM_TOKEN (`POSTMORTEM_TOKEN=` in .env) is no token at all.
    secret = expected.get_secret_value() if expected is not None else ""
    given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix(
        "Bearer "
    )
    # Header bytes that are not UTF-8 reach us as surrogates: no token, not a 500.
    given_bytes = given.encode("utf-8", "surrogateescape")
    if not secret.strip() or not hmac.compare_digest(given_bytes, secret.encode()):
        # The same answer whether the incident exists or not, private or not.
        return web.json_response({"error": "a valid POSTMORTEM_TOKEN is required"}, status=401)
    try:
        incident_id = await postmortems.incident_id_of(services, int(request.match_info["number"]))
    except UserError as exc:
        return web.json_response({"error": exc.message}, status=404)
    document = await postmortems.draft(services, incident_id=incident_id)
    return web.Response(
        text=document.markdown,
        content_type="text/markdown",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{document.filename}"'},
    )


INCIDENT_IN_TITLE = re.compile(r"\b(INC-\d{1,9})\b")
OUR_KEY = re.compile(rf"^{re.escape(SOURCE)}/(INC-\d{{1,9}})/")


async def pagerduty_webhook(request: web.Request) -> web.StreamResponse:
    """PagerDuty V3 webhooks: an acknowledgement made in PagerDuty stops our escalation."""
    services = request.app[SERVICES]
    setting = services.settings.PAGERDUTY_WEBHOOK_SECRET
    # A blank secret (`PAGERDUTY_WEBHOOK_SECRET=` in .env) is no secret: anyone could sign.
    secret = setting.get_secret_value().strip() if setting is not None else ""
    body = await request.read()
    if not secret or not _pagerduty_signed(body, request, secret):
        return web.json_response({"error": "bad or missing X-PagerDuty-Signature"}, status=401)
    try:
        event = json_object(body)["event"]
        event_type, data = str(event["event_type"]), event.get("data") or {}
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
    except BadRequest as exc:
        return web.json_response({"error": exc.reason}, status=400)
    except (KeyError, TypeError, AttributeError):
        return web.json_response({"error": "not a PagerDuty V3 webhook payload"}, status=400)
    if event_type != "incident.acknowledged":
        return web.json_response({"ignored": event_type})
    # incident_key is the dedup_key we triggered with ("incident-bot/INC-7/ops"). A key from
    # another source means another system's incident, whatever its title says; without a
    # key, the title (our summary starts with the INC-n) names the incident.
    key = data.get("incident_key")
    found = OUR_KEY.match(key) if isinstance(key, str) else None
    if found is None and isinstance(key, str) and key:
        return web.json_response({"ignored": "an incident that did not come from this bot"})
    found = found or INCIDENT_IN_TITLE.search(str(data.get("title", "")))
    if found is None:
        return web.json_response({"ignored": "no incident of ours in the title"})
    number = int(found.group(1).removeprefix("INC-"))
    agent_ref = event.get("agent")
    agent = str((agent_ref.get("summary") if isinstance(agent_ref, dict) else None) or "someone")
    try:
        incident_id = await postmortems.incident_id_of(services, number)
        # incident_key is the dedup_key we triggered with: it names the role's page.
        alert = data.get("incident_key")
        await escalation.acknowledge(
            services,
            incident_id=incident_id,
            by=f"PagerDuty:{agent}",
            by_name=f"{agent} (PagerDuty)",
            provider=paging.PAGERDUTY,
            dedup_key=alert if isinstance(alert, str) else None,
        )
    except UserError as exc:  # unknown incident or already acknowledged: nothing to do
        return web.json_response({"ignored": exc.message})
    return web.json_response({"acknowledged": f"INC-{number}"})


def _pagerduty_signed(body: bytes, request: web.Request, secret: str) -> bool:
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = request.headers.get("X-PagerDuty-Signature", "")
    if not given.isascii():  # compare_digest raises TypeError on other text
        return False
    return any(hmac.compare_digest(expected, s.strip()) for s in given.split(","))
