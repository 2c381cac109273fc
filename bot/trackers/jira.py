"""Jira Cloud through the REST API v3: file, find again by marker, move through transitions.

- Basic auth with `email:api_token`.
- Descriptions are Atlassian Document Format; `duedate` is `YYYY-MM-DD`; the owner is the
  account `GET /rest/api/3/user/search?query=<email>` finds for their Slack email.
- The marker is written in the description (and kept as an issue property). A lost create is
  looked for by text search on it, but `/rest/api/3/search/jql` lags behind writes, so also by
  reading the newest issues of the project one by one (`GET …/issue/{key}` is consistent and
  keys are numbered in order), from a little before the newest one the index knows.
- Closing and reopening go through the transitions API, choosing by the target status's
  category (`done`, `new`), never by name: workflows name them differently.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from bot.core.clock import Clock
from bot.metrics import Metrics
from bot.trackers.base import (
    DEFAULT_TIMEOUT,
    Caller,
    Gate,
    Issue,
    IssueDraft,
    IssueState,
    Line,
    Owner,
    Span,
    TrackerFailed,
    fits,
)

NAME = "jira"
PROPERTY = "incidentBot"  # the issue property holding {"marker": …}
MAX_SUMMARY = 255
MAX_TEXT = 30000
WALK_BEHIND = 50  # issues read before the newest the index knows (it may index out of order)
WALK_LIMIT = 100
WALK_MISSES = 5  # keys in a row that do not exist: the end of the project
NOT_PLANNED_RESOLUTIONS = ("won't do", "won't fix", "duplicate", "cannot reproduce", "declined")
_KEY_RE = re.compile(r"^([A-Z][A-Z0-9_]*)-(\d+)$")


class JiraTracker:
    """Issues of one Jira project on one site."""

    name = NAME

    def __init__(
        self,
        *,
        url: str,
        project: str,
        issue_type: str,
        email: str,
        token: str,
        http: httpx.AsyncClient,
        clock: Clock,
        metrics: Metrics,
        gate: Gate | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not email.strip() or not token.strip():
            raise ValueError("JiraTracker needs an email and an API token")
        self.site = url.rstrip("/")
        self.project = project
        self.issue_type = issue_type
        basic = base64.b64encode(f"{email.strip()}:{token.strip()}".encode()).decode()
        self._headers = {"Authorization": f"Basic {basic}", "Accept": "application/json"}
        self._caller = Caller(NAME, http, clock, metrics, gate or Gate(), timeout)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._caller.send(
            method, f"{self.site}/rest/api/3{path}", headers=self._headers, **kwargs
        )

    # -- the verbs ------------------------------------------------------------------------

    async def create(self, draft: IssueDraft) -> Issue:
        """POST /rest/api/3/issue with an ADF description, due date, labels and assignee."""
        account = await self.account(draft.owner)
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": fits(" ".join(draft.title.split()), MAX_SUMMARY),
            "description": self.description(draft, assigned=account is not None),
        }
        if draft.labels:
            fields["labels"] = list(draft.labels)
        if draft.due is not None:
            fields["duedate"] = draft.due.isoformat()
        if account is not None:
            fields["assignee"] = {"accountId": account}
        payload = {
            "fields": fields,
            "properties": [{"key": PROPERTY, "value": {"marker": draft.marker}}],
        }
        response = await self._send("POST", "/issue", json_body=payload)
        body = _object(response)
        key = str(body.get("key") or "")
        return Issue(id=str(body.get("id") or ""), key=key, url=self.browse(key))

    async def find(self, marker: str, *, since: datetime) -> Issue | None:
        """By the property through JQL, then by reading the newest issues one by one."""
        # Text search on the marker's token (one word, so JQL tokenises it whole): it finds
        # issues the index has caught up with; each candidate is read to check its marker.
        token = marker.rpartition(":")[2]
        if re.fullmatch(r"[A-Za-z0-9]+", token):
            for candidate in await self._search(
                f'project = "{self.project}" AND text ~ "{token}"', limit=5, optional=True
            ):
                found = await self._read(str(candidate.get("id") or candidate.get("key")))
                if found is not None and _carries(found, marker):
                    return self.issue(found)
        newest = await self._search(f'project = "{self.project}" ORDER BY created DESC')
        known = _number(str(newest[0].get("key", ""))) if newest else 0
        misses = 0
        for number in range(max(known - WALK_BEHIND, 0) + 1, known + WALK_LIMIT + 1):
            item = await self._read(f"{self.project}-{number}")
            if item is None:
                misses += 1
                if number > known and misses >= WALK_MISSES:
                    return None
                continue
            misses = 0
            if _carries(item, marker):
                return self.issue(item)
        return None

    async def _read(self, ref: str) -> dict[str, Any] | None:
        """One issue, read consistently; None when it does not exist."""
        response = await self._send(
            "GET",
            f"/issue/{quote(ref)}",
            params={"fields": "status,resolution,description", "properties": PROPERTY},
            ok_statuses=frozenset({404}),
        )
        return None if response.status_code == 404 else _object(response)

    async def set_state(self, issue: Issue, state: IssueState) -> IssueState:
        """The transition whose target status is in the wanted category, if not there yet."""
        ref = quote(issue.id or issue.key)
        now = await self._send("GET", f"/issue/{ref}", params={"fields": "status,resolution"})
        current = self.issue(_object(now))
        if current.state is state:
            return state
        if IssueState.OPEN not in (current.state, state):
            return current.state  # closed either way: a done status is not left for another
        listed = _object(
            await self._send(
                "GET", f"/issue/{ref}/transitions", params={"expand": "transitions.fields"}
            )
        )
        transitions = [t for t in listed.get("transitions") or [] if isinstance(t, dict)]
        wanted = ("new", "indeterminate") if state is IssueState.OPEN else ("done",)
        chosen = _transition(transitions, wanted)
        if chosen is None:
            raise TrackerFailed(
                NAME,
                f"{issue.key} has no transition to a {'/'.join(wanted)} status",
                retryable=False,
            )
        payload: dict[str, Any] = {"transition": {"id": str(chosen["id"])}}
        resolution = _resolution_for(chosen, state)
        if resolution is not None:
            payload["fields"] = {"resolution": {"name": resolution}}
        await self._send("POST", f"/issue/{ref}/transitions", json_body=payload)
        return state

    # -- pieces ---------------------------------------------------------------------------

    def browse(self, key: str) -> str:
        return f"{self.site}/browse/{key}"

    async def account(self, owner: Owner | None) -> str | None:
        """The Jira account behind the owner's Slack email, if Jira finds exactly them."""
        if owner is None or not owner.email:
            return None
        response = await self._send("GET", "/user/search", params={"query": owner.email})
        users = response.json()
        if not isinstance(users, list):
            return None
        for user in users:
            if not isinstance(user, dict) or not user.get("accountId"):
                continue
            email = user.get("emailAddress")  # hidden by some privacy settings
            if user.get("active", True) and (email is None or email.lower() == owner.email.lower()):
                return str(user["accountId"])
        return None

    def description(self, draft: IssueDraft, *, assigned: bool) -> dict[str, Any]:
        """The body as an Atlassian Document Format document."""
        lines: list[Line] = list(draft.lines)
        if draft.owner is not None:
            owner = draft.owner
            name = owner.name or owner.handle or owner.slack_id
            handle = f" (@{owner.handle} in Slack)" if owner.handle and owner.handle != name else ""
            note = "" if assigned else " — not assigned here: no Jira account found for them"
            lines.append((Span("Owner: "), Span(f"{name}{handle}{note}")))
        if draft.due is not None:
            lines.append((Span(f"Due: {draft.due.isoformat()}"),))
        lines.append((Span(f"Filed by {draft.marker}"),))
        return adf(lines)

    def issue(self, item: Mapping[str, Any]) -> Issue:
        key = str(item.get("key") or "")
        fields = _fields(item)
        return Issue(
            id=str(item.get("id") or ""), key=key, url=self.browse(key), state=state_of(fields)
        )

    async def _search(
        self, jql: str, *, limit: int = 1, optional: bool = False
    ) -> list[dict[str, Any]]:
        """`POST /search/jql` (eventually consistent); optional: a refused query finds nothing."""
        try:
            response = await self._send(
                "POST",
                "/search/jql",
                json_body={"jql": jql, "fields": ["status", "resolution"], "maxResults": limit},
            )
        except TrackerFailed as failure:
            if optional and not failure.retryable:
                return []
            raise
        issues = _object(response).get("issues")
        return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []


def state_of(fields: Mapping[str, Any]) -> IssueState:
    """A Jira issue's status category (and resolution) in our words."""
    status = fields.get("status")
    category = status.get("statusCategory") if isinstance(status, dict) else None
    if not isinstance(category, dict):
        return IssueState.OPEN
    if category.get("key") != "done":
        return IssueState.OPEN
    resolution = fields.get("resolution")
    name = str(resolution.get("name", "")) if isinstance(resolution, dict) else ""
    if name.strip().lower() in NOT_PLANNED_RESOLUTIONS:
        return IssueState.NOT_PLANNED
    return IssueState.COMPLETED


def adf(lines: Sequence[Line]) -> dict[str, Any]:
    """One ADF paragraph per line; links as `link` marks; no empty text nodes (Jira refuses)."""
    content: list[dict[str, Any]] = []
    budget = MAX_TEXT
    for line in lines:
        nodes: list[dict[str, Any]] = []
        for span in line:
            text = span.text[: max(budget, 0)]
            budget -= len(text)
            if not text:
                continue
            node: dict[str, Any] = {"type": "text", "text": text}
            if span.href:
                node["marks"] = [{"type": "link", "attrs": {"href": span.href}}]
            nodes.append(node)
        if nodes:
            content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def adf_text(node: Any) -> str:
    """Every text node of an ADF document, joined."""
    if isinstance(node, dict):
        own = str(node.get("text", "")) if node.get("type") == "text" else ""
        return own + " ".join(adf_text(child) for child in node.get("content") or [])
    if isinstance(node, list):
        return " ".join(adf_text(child) for child in node)
    return ""


def _carries(item: Mapping[str, Any], marker: str) -> bool:
    properties = item.get("properties")
    if isinstance(properties, dict):
        value = properties.get(PROPERTY)
        if isinstance(value, dict) and value.get("marker") == marker:
            return True
    return marker in adf_text(_fields(item).get("description"))


def _fields(item: Mapping[str, Any]) -> Mapping[str, Any]:
    fields = item.get("fields")
    return fields if isinstance(fields, dict) else {}


def _number(key: str) -> int:
    found = _KEY_RE.match(key)
    return int(found.group(2)) if found else 0


def _transition(
    transitions: Sequence[Mapping[str, Any]], categories: Sequence[str]
) -> Mapping[str, Any] | None:
    for category in categories:
        for transition in transitions:
            to = transition.get("to") if isinstance(transition.get("to"), dict) else {}
            status_category = to.get("statusCategory") if isinstance(to, dict) else None
            key = status_category.get("key") if isinstance(status_category, dict) else None
            if key == category and transition.get("id") is not None:
                return transition
    return None


def _resolution_for(transition: Mapping[str, Any], state: IssueState) -> str | None:
    """A "Won't Do"-like resolution when closing as not planned and the screen asks for one."""
    if state is not IssueState.NOT_PLANNED:
        return None
    fields = transition.get("fields") if isinstance(transition.get("fields"), dict) else {}
    resolution = fields.get("resolution") if isinstance(fields, dict) else None
    allowed = resolution.get("allowedValues") if isinstance(resolution, dict) else None
    for value in allowed or []:
        name = str(value.get("name", "")) if isinstance(value, dict) else ""
        if name.strip().lower() in NOT_PLANNED_RESOLUTIONS:
            return name
    return None


def _object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TrackerFailed(NAME, "the answer is not a JSON object", retryable=True)
    return body
