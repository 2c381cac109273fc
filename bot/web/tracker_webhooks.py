"""POST /webhooks/github and POST /webhooks/jira: issues closed or reopened in the tracker.

Both verify an HMAC-SHA256 of the raw body before reading anything: GitHub's
`X-Hub-Signature-256: sha256=…` with GITHUB_WEBHOOK_SECRET, Jira's `X-Hub-Signature: sha256=…`
with JIRA_WEBHOOK_SECRET. Answers: 404 while the secret is not set (the endpoint is off); 401
for a bad or missing signature; 400 for a signed body that is not the expected JSON; 2xx for
everything else, including `ping`, other events, issues the bot did not file, deliveries seen
before (`X-GitHub-Delivery`, `X-Atlassian-Webhook-Identifier`) and echoes of the bot's own
changes — none of which change anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from bot.followups.tracker_events import IssueEvent, apply_issue_event
from bot.services import Services
from bot.trackers import IssueState
from bot.trackers.github import state_of as github_state
from bot.trackers.jira import state_of as jira_state

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadPayload(Exception):
    """A signed body that is not what the provider sends."""


def github_webhook(services: Services) -> Handler:
    """The handler of POST /webhooks/github."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _receive(
            services,
            request,
            endpoint="github",
            secret=services.settings.GITHUB_WEBHOOK_SECRET,
            signature_header="X-Hub-Signature-256",
            delivery_header="X-GitHub-Delivery",
            parse=_github_event,
        )

    return handle


def jira_webhook(services: Services) -> Handler:
    """The handler of POST /webhooks/jira."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _receive(
            services,
            request,
            endpoint="jira",
            secret=services.settings.JIRA_WEBHOOK_SECRET,
            signature_header="X-Hub-Signature",
            delivery_header="X-Atlassian-Webhook-Identifier",
            parse=_jira_event,
        )

    return handle


Parse = Callable[[Mapping[str, str], Any, str], IssueEvent | str]


async def _receive(
    services: Services,
    request: web.Request,
    *,
    endpoint: str,
    secret: SecretStr | None,
    signature_header: str,
    delivery_header: str,
    parse: Parse,
) -> web.StreamResponse:
    def answer(outcome: str, body: dict[str, Any], status: int = 200) -> web.Response:
        services.metrics.inc("webhook_requests_total", endpoint=endpoint, outcome=outcome)
        return web.json_response(body, status=status)

    key = secret.get_secret_value().strip() if secret is not None else ""
    if not key:  # a blank secret is no secret: anyone could sign
        return answer("off", {"error": f"the {endpoint} webhook is not enabled"}, 404)
    body = await request.read()
    expected = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    given = request.headers.get(signature_header, "").strip()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return answer("unauthorized", {"error": f"bad or missing {signature_header}"}, 401)
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise BadPayload("the body is not a JSON object")
        delivery = request.headers.get(delivery_header, "").strip()
        parsed = parse(request.headers, payload, delivery)
    except (ValueError, BadPayload) as exc:
        reason = str(exc) if isinstance(exc, BadPayload) else "the body is not JSON"
        return answer("bad_request", {"error": reason}, 400)
    if isinstance(parsed, str):
        return answer("ignored", {"ignored": parsed})
    outcome = await apply_issue_event(services, event=parsed)
    return answer(outcome.value, {"outcome": outcome.value, "issue": parsed.key})


def _github_event(headers: Mapping[str, str], payload: Any, delivery: str) -> IssueEvent | str:
    event = headers.get("X-GitHub-Event", "")
    if event == "ping":
        return "ping"
    if event != "issues":
        return f"{event or 'an unnamed'} event"
    action = payload.get("action")
    issue, repository = payload.get("issue"), payload.get("repository")
    if not isinstance(issue, dict) or not isinstance(repository, dict):
        raise BadPayload("an issues event needs `issue` and `repository` objects")
    if not isinstance(issue.get("id"), int) or not isinstance(issue.get("number"), int):
        raise BadPayload("`issue.id` and `issue.number` must be numbers")
    if action not in ("closed", "reopened"):
        return f"issues.{action}"
    if not delivery:
        raise BadPayload("X-GitHub-Delivery is missing")
    sender = payload.get("sender")
    by = sender.get("login") if isinstance(sender, dict) else None
    state = github_state(issue)
    if action == "reopened":
        state = IssueState.OPEN
    return IssueEvent(
        tracker="github",
        delivery=delivery,
        issue_id=str(issue["id"]),
        key=f"{repository.get('full_name')}#{issue['number']}",
        url=str(issue.get("html_url") or "") or None,
        state=state,
        by=str(by) if by else None,
    )


def _jira_event(headers: Mapping[str, str], payload: Any, delivery: str) -> IssueEvent | str:
    event = payload.get("webhookEvent")
    if not isinstance(event, str):
        raise BadPayload("`webhookEvent` is missing")
    if event != "jira:issue_updated":
        return event
    issue = payload.get("issue")
    fields = issue.get("fields") if isinstance(issue, dict) else None
    if not isinstance(issue, dict) or not issue.get("id") or not isinstance(fields, dict):
        raise BadPayload("an issue event needs `issue` with `id` and `fields`")
    if not delivery:
        # Older sites send no identifier: the changelog id and timestamp name the change.
        changelog = payload.get("changelog") if isinstance(payload.get("changelog"), dict) else {}
        delivery = f"{issue['id']}:{changelog.get('id')}:{payload.get('timestamp')}"
    user = payload.get("user")
    by = user.get("displayName") if isinstance(user, dict) else None
    key = str(issue.get("key") or "")
    url = None
    self_link = issue.get("self")
    if isinstance(self_link, str) and "/rest/api/" in self_link and key:
        url = self_link.split("/rest/api/")[0] + f"/browse/{key}"
    return IssueEvent(
        tracker="jira",
        delivery=delivery,
        issue_id=str(issue["id"]),
        key=key,
        url=url,
        state=jira_state(fields),
        by=str(by) if by else None,
    )
