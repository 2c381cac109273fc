"""Fake pager providers on real ports, each as strict as the provider's documentation.

Every fake records each request it received (valid or not) and answers like the provider:
PagerDuty Events API v2, the Opsgenie Alert API, and a generic webhook receiver. `fail_next`
makes the next N requests answer an injected status (429 with Retry-After, 500, 400…).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.pagers.webhook import SIGNATURE_HEADER, verify_signature

PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")
OG_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
OG_RESPONDER_TYPES = ("team", "user", "escalation", "schedule")


@dataclass
class Received:
    """One request as a fake saw it, and what the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: Any
    status: int = 0
    answer: Any = None


@dataclass
class _Injected:
    status: int
    remaining: int
    retry_after: str | None
    body: Any


@dataclass
class FakeServer:
    """An aiohttp server on 127.0.0.1 with a free port, recording and failure injection."""

    received: list[Received] = field(default_factory=list)
    _injected: list[_Injected] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        """Serve on a free port; return the base URL (no trailing slash)."""
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving: further requests are refused at the TCP level."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(
        self, status: int, *, times: int = 1, retry_after: str | None = None, body: Any = None
    ) -> None:
        """Answer the next `times` requests with `status` (before any validation)."""
        self._injected.append(_Injected(status, times, retry_after, body))

    def new_request_id(self) -> str:
        return f"req-{next(self._ids):06d}"

    async def _record(self, request: web.Request) -> Received:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        seen = Received(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            raw=raw,
            body=body,
        )
        self.received.append(seen)
        return seen

    def _take_injected(self) -> _Injected | None:
        if not self._injected:
            return None
        injected = self._injected[0]
        injected.remaining -= 1
        if injected.remaining <= 0:
            self._injected.pop(0)
        return injected

    @staticmethod
    def _answer(seen: Received, status: int, body: Any, **headers: str) -> web.Response:
        seen.status = status
        seen.answer = body
        return web.json_response(body, status=status, headers=headers or None)

    def _injected_answer(self, seen: Received, default_body: Any) -> web.Response | None:
        injected = self._take_injected()
        if injected is None:
            return None
        headers = {"Retry-After": injected.retry_after} if injected.retry_after else {}
        body = injected.body if injected.body is not None else default_body(injected.status)
        return self._answer(seen, injected.status, body, **headers)


# --- PagerDuty Events API v2 --------------------------------------------------------------------


def _pd_errors(event: Any) -> list[str]:
    """What PagerDuty's Events API v2 would list as wrong with this event."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors: list[str] = []
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != 32:
        errors.append("'routing_key' must be a 32 character integration key")
    action = event.get("event_action")
    if action not in PD_ACTIONS:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append(f"'dedup_key' is required for {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or not an object"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not 1 <= len(summary) <= 1024:
            errors.append("'payload.summary' must be a string of 1 to 1024 characters")
        source = payload.get("source")
        if not isinstance(source, str) or not source.strip():
            errors.append("'payload.source' is missing or blank")
        if payload.get("severity") not in PD_SEVERITIES:
            errors.append("'payload.severity' must be one of critical, error, warning, info")
        for key in ("component", "group", "class", "timestamp"):
            if key in payload and not isinstance(payload[key], str):
                errors.append(f"'payload.{key}' must be a string")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            errors.append("'payload.custom_details' must be an object")
        links = event.get("links", [])
        if not isinstance(links, list) or not all(
            isinstance(link, dict) and isinstance(link.get("href"), str) for link in links
        ):
            errors.append("'links' must be a list of objects with 'href'")
        for key in ("client", "client_url"):
            if key in event and not isinstance(event[key], str):
                errors.append(f"'{key}' must be a string")
    return errors


@dataclass
class FakePagerDuty(FakeServer):
    """`POST /v2/enqueue` as documented for the Events API v2."""

    events: list[dict[str, Any]] = field(default_factory=list)  # accepted events, in order
    alerts: dict[str, str] = field(default_factory=dict)  # dedup_key -> last action

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/enqueue", self._enqueue)

    @staticmethod
    def _failure_body(status: int) -> Any:
        if status == 400:
            return {"status": "invalid event", "message": "Event object is invalid", "errors": []}
        if status == 429:
            return {"status": "throttle event", "message": "Too many requests"}
        return {"status": "error", "message": "Internal server error"}

    async def _enqueue(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        injected = self._injected_answer(seen, self._failure_body)
        if injected is not None:
            return injected
        if request.content_type != "application/json" or seen.body is None:
            body = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["Request body is not JSON"],
            }
            return self._answer(seen, 400, body)
        errors = _pd_errors(seen.body)
        if errors:
            answer = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
            return self._answer(seen, 400, answer)
        event = seen.body
        dedup_key = event.get("dedup_key") or f"pd-{self.new_request_id()}"
        self.events.append(event)
        self.alerts[dedup_key] = event["event_action"]
        answer = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        return self._answer(seen, 202, answer)


# --- Opsgenie Alert API -------------------------------------------------------------------------


def _limit(errors: dict[str, str], body: dict[str, Any], key: str, most: int) -> None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > most):
        errors[key] = f"{key} must be a string of at most {most} characters"


def _og_alert_errors(body: Any) -> dict[str, str]:
    """What Opsgenie's create-alert validation would refuse."""
    if not isinstance(body, dict):
        return {"body": "Request body is not a JSON object"}
    errors: dict[str, str] = {}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        errors["message"] = "Message can not be empty."
    elif len(message) > 130:
        errors["message"] = "Message can not be longer than 130 characters."
    _limit(errors, body, "alias", 512)
    _limit(errors, body, "description", 15000)
    _limit(errors, body, "entity", 512)
    _limit(errors, body, "source", 100)
    _limit(errors, body, "user", 100)
    _limit(errors, body, "note", 25000)
    if "priority" in body and body["priority"] not in OG_PRIORITIES:
        errors["priority"] = "Priority should be one of P1, P2, P3, P4, P5."
    responders = body.get("responders", [])
    if not isinstance(responders, list):
        errors["responders"] = "responders must be a list"
    else:
        for index, responder in enumerate(responders):
            kind = responder.get("type") if isinstance(responder, dict) else None
            if kind not in OG_RESPONDER_TYPES:
                errors[f"responders[{index}].type"] = "type must be team/user/escalation/schedule"
                continue
            keys = ("id", "username") if kind == "user" else ("id", "name")
            if not any(isinstance(responder.get(key), str) and responder[key] for key in keys):
                errors[f"responders[{index}]"] = f"{kind} responder needs {' or '.join(keys)}"
    tags = body.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 20:
        errors["tags"] = "at most 20 tags"
    elif any(not isinstance(tag, str) or len(tag) > 50 for tag in tags):
        errors["tags"] = "each tag at most 50 characters"
    details = body.get("details", {})
    if not isinstance(details, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in details.items()
    ):
        errors["details"] = "details must map strings to strings"
    elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
        errors["details"] = "details can not exceed 8000 characters"
    return errors


@dataclass
class FakeOpsgenie(FakeServer):
    """`POST /v2/alerts`, `…/{alias}/acknowledge` and `…/{alias}/close` with GenieKey auth."""

    api_key: str = "og-test-key-0000"
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # alias -> alert + status
    actions: list[tuple[str, str]] = field(default_factory=list)  # (action, alias)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/alerts", self._create)
        app.router.add_post("/v2/alerts/{identifier}/{action}", self._act)

    def _reply(self, seen: Received, status: int, message: str, **extra: Any) -> web.Response:
        body = {"result" if status == 202 else "message": message, "took": 0.01}
        body.update(extra)
        body["requestId"] = self.new_request_id()
        return self._answer(seen, status, body)

    def _failure_body(self, status: int) -> Any:
        text = "You are making too many requests" if status == 429 else "Internal Server Error"
        return {"message": text, "took": 0.0, "requestId": self.new_request_id()}

    def _unauthorized(self, seen: Received) -> web.Response | None:
        if seen.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return self._reply(seen, 401, "Could not authenticate")
        return None

    async def _create(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        injected = self._injected_answer(seen, self._failure_body)
        if injected is not None:
            return injected
        refused = self._unauthorized(seen)
        if refused is not None:
            return refused
        errors = _og_alert_errors(seen.body)
        if errors:
            message = "Request body is not processable. Please check the errors."
            return self._reply(seen, 422, message, errors=errors)
        alias = seen.body.get("alias") or seen.body["message"]
        existing = self.alerts.get(alias)
        if existing is None or existing["status"] == "closed":
            self.alerts[alias] = {**seen.body, "status": "open", "count": 1}
        else:
            existing["count"] += 1  # Opsgenie deduplicates an open alert with the same alias
        return self._reply(seen, 202, "Request will be processed")

    async def _act(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        action = request.match_info["action"]
        if action not in ("acknowledge", "close"):
            return self._reply(seen, 404, f"Unknown action {action}")
        injected = self._injected_answer(seen, self._failure_body)
        if injected is not None:
            return injected
        refused = self._unauthorized(seen)
        if refused is not None:
            return refused
        if request.query.get("identifierType") != "alias":
            return self._reply(seen, 422, "identifierType=alias expected by this fake")
        body = seen.body if seen.body is not None else {}
        errors = _og_alert_errors({"message": "-", **body}) if isinstance(body, dict) else {}
        if not isinstance(body, dict) or errors:
            return self._reply(seen, 422, "Request body is not processable.", errors=errors)
        alias = request.match_info["identifier"]
        self.actions.append((action, alias))
        if alias in self.alerts:
            self.alerts[alias]["status"] = "acked" if action == "acknowledge" else "closed"
        return self._reply(seen, 202, "Request will be processed")


# --- generic webhook ----------------------------------------------------------------------------


@dataclass
class FakeWebhook(FakeServer):
    """A receiver at `POST /hook` that checks the signature when it knows the secret."""

    secret: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        injected = self._injected_answer(seen, lambda status: {"error": f"injected {status}"})
        if injected is not None:
            return injected
        if self.secret is not None and not verify_signature(
            self.secret, seen.raw, seen.headers.get(SIGNATURE_HEADER)
        ):
            return self._answer(seen, 401, {"error": "bad signature"})
        if request.content_type != "application/json" or not isinstance(seen.body, dict):
            return self._answer(seen, 400, {"error": "expected a JSON object"})
        self.events.append(seen.body)
        return self._answer(seen, 200, {"ok": True})
