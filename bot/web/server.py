"""The aiohttp application: POST /slack/events, GET /healthz, GET /metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot import paging, postmortems
from bot.db.engine import ping
from bot.errors import DatabaseUnavailable, UserError
from bot.pagers.base import SOURCE
from bot.services import Services
from bot.web import alert_webhooks

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack never sends more; anything larger is refused with 413.

SERVICES = web.AppKey("services", Services)
BOLT = web.AppKey("bolt", AsyncApp)


def create_web_app(*, services: Services, bolt: AsyncApp) -> web.Application:
    """The whole HTTP surface of `python -m bot serve`."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[count_requests])
    app[SERVICES] = services
    app[BOLT] = bolt
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(r"/incidents/{number:\d{1,9}}/postmortem.md", postmortem)
    app.router.add_post("/webhooks/pagerduty", pagerduty_webhook)
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
        services.metrics.inc(
            "http_request_milliseconds_total",
            int((time.perf_counter() - started) * 1000),
            path=path,
        )


async def slack_events(request: web.Request) -> web.StreamResponse:
    """Slash commands, interactivity and events; Bolt verifies the signature (401 otherwise)."""
    bolt_request = await to_bolt_request(request)
    bolt_response = await request.app[BOLT].async_dispatch(bolt_request)
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
    return web.Response(
        text=request.app[SERVICES].metrics.render(), content_type="text/plain", charset="utf-8"
    )


async def postmortem(request: web.Request) -> web.StreamResponse:
    """The Markdown draft, for holders of POSTMORTEM_TOKEN; nobody else learns anything."""
    services = request.app[SERVICES]
    expected = services.settings.POSTMORTEM_TOKEN
    # An empty or blank POSTMORTEM_TOKEN (`POSTMORTEM_TOKEN=` in .env) is no token at all.
    secret = expected.get_secret_value() if expected is not None else ""
    given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix(
        "Bearer "
    )
    if not secret.strip() or not hmac.compare_digest(given.encode(), secret.encode()):
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
        event = json.loads(body)["event"]
        event_type, data = str(event["event_type"]), event.get("data") or {}
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
    except (ValueError, KeyError, TypeError, AttributeError):
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
        await paging.acknowledge(
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
    return any(hmac.compare_digest(expected, s.strip()) for s in given.split(","))
