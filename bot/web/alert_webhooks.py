"""POST /webhooks/alertmanager and /webhooks/grafana: alerts in, answered once committed.

- Off (404) without ALERT_WEBHOOK_TOKEN; the caller sends `Authorization: Bearer <token>`
  (Alertmanager's `http_config.authorization`, Grafana's Authorization header), else 401.
- Grafana's HMAC signature (`X-Grafana-Alerting-Signature`, hex HMAC-SHA256 of the raw body, or
  of `timestamp:body` when the timestamp header is sent) is accepted in place of the bearer when
  GRAFANA_WEBHOOK_SECRET is set; a timestamp more than five minutes away is a replay: 401.
- Bodies up to 8 MiB are read (Alertmanager re-sends whole groups); larger ones get 413. The
  app-wide limit (1 MiB, for Slack) does not apply: these handlers read the stream themselves.
- A malformed payload is 400 with the reason; alerts no route takes are 202 and counted;
  accepted alerts are 200 once committed, and processed after the answer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import SecretStr

from bot import alerts
from bot.core.alerts import ALERTMANAGER, GRAFANA, PayloadRefused
from bot.services import Services

MAX_ALERT_BODY = 8 * 1024 * 1024
CHUNK = 64 * 1024
SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
# Grafana has no default name for its timestamp header; these are the ones its docs use.
TIMESTAMP_HEADERS = ("X-Grafana-Alerting-Timestamp", "X-Grafana-Alerting-Signature-Timestamp")
REPLAY_WINDOW = 300  # seconds

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def alertmanager(services: Services) -> Handler:
    """The Alertmanager webhook receiver (payload version 4)."""
    return _receiver(services, source=ALERTMANAGER)


def grafana(services: Services) -> Handler:
    """The Grafana Alerting webhook contact point."""
    return _receiver(services, source=GRAFANA)


def _secret(value: SecretStr | None) -> str:
    # A blank value (`ALERT_WEBHOOK_TOKEN=` in .env) is no secret: anyone would match it.
    return value.get_secret_value().strip() if value is not None else ""


def _receiver(services: Services, *, source: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        def answer(status: int, outcome: str, **body: object) -> web.Response:
            services.metrics.inc("webhook_requests_total", endpoint=source, outcome=outcome)
            return web.json_response(body, status=status)

        settings = services.settings
        token = _secret(settings.ALERT_WEBHOOK_TOKEN)
        if not token:
            return answer(404, "off", error="alert webhooks are off (ALERT_WEBHOOK_TOKEN unset)")
        body = await _read(request)
        if body is None:
            return answer(413, "too_large", error=f"bodies over {MAX_ALERT_BODY} bytes are refused")
        secret = _secret(settings.GRAFANA_WEBHOOK_SECRET) if source == GRAFANA else ""
        now = services.clock.now().timestamp()
        if not (_bearer(request, token) or (secret and _signed(request, body, secret, now))):
            return answer(
                401, "unauthorized", error="a valid bearer token or signature is required"
            )
        try:
            intake = await alerts.receive(services, source=source, body=body)
        except PayloadRefused as exc:
            return answer(400, "bad_request", error=str(exc))
        if intake.routed == 0:
            return answer(202, "unrouted", received=intake.received, routed=0)
        return answer(200, "accepted", received=intake.received, routed=intake.routed)

    return handle


async def _read(request: web.Request) -> bytes | None:
    """The body, or None when it is larger than MAX_ALERT_BODY."""
    if request.content_length is not None and request.content_length > MAX_ALERT_BODY:
        return None
    data = bytearray()
    while True:
        chunk = await request.content.read(CHUNK)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > MAX_ALERT_BODY:
            return None


def _raw(value: str) -> bytes:
    # aiohttp decodes header bytes leniently; compare what was sent, whatever it holds.
    return value.encode("utf-8", "surrogateescape")


def _bearer(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(_raw(given.strip()), token.encode())


def _signed(request: web.Request, body: bytes, secret: str, now: float) -> bool:
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not given:
        return False
    timestamp = next((request.headers[h] for h in TIMESTAMP_HEADERS if h in request.headers), None)
    message = body
    if timestamp is not None:
        stamp = timestamp.strip()
        if not stamp.isascii() or not stamp.isdigit() or abs(now - int(stamp)) > REPLAY_WINDOW:
            return False
        message = stamp.encode() + b":" + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(_raw(given.lower()), expected.encode())
