"""GitHub Issues through the REST API: file, find again by marker, close and reopen.

- Auth is `Authorization: Bearer <token>`; the base URL may carry a path (GitHub Enterprise
  Server serves the API under `/api/v3`).
- The owner is assigned when GitHub can take them: the playbook's `logins` map first, else
  their Slack handle when it is a collaborator (`GET …/collaborators/{login}`, 204 or 404).
  An assignee GitHub refuses (422 on `assignees`) is named in the body instead.
- The search API lags behind; the repository's issue listing (`state=all`, newest first,
  `since` the task was made) is consistent, so that is where a lost create is looked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
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
    TrackerFailed,
    fits,
)

NAME = "github"
MAX_TITLE = 256
MAX_BODY = 60000  # GitHub refuses bodies over 65,536 characters
PAGE_SIZE = 100
MAX_PAGES = 10
API_VERSION = "2022-11-28"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


class GitHubTracker:
    """Issues of one repository."""

    name = NAME

    def __init__(
        self,
        *,
        api_url: str,
        repo: str,
        token: str,
        http: httpx.AsyncClient,
        clock: Clock,
        metrics: Metrics,
        logins: Mapping[str, str] | None = None,
        gate: Gate | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not token.strip():
            raise ValueError("GitHubTracker needs a token")
        self.repo = repo
        self._base = api_url.rstrip("/")
        self._logins = {key.casefold(): login for key, login in (logins or {}).items()}
        self._headers = {
            "Authorization": f"Bearer {token.strip()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "incident-bot",
        }
        self._caller = Caller(NAME, http, clock, metrics, gate or Gate(), timeout)

    def _url(self, path: str) -> str:
        return f"{self._base}/repos/{self.repo}{path}"

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._caller.send(method, self._url(path), headers=self._headers, **kwargs)

    # -- the verbs ------------------------------------------------------------------------

    async def create(self, draft: IssueDraft) -> Issue:
        """POST /repos/{owner}/{repo}/issues, assigning the owner when GitHub can."""
        login = await self.assignee(draft.owner)
        payload: dict[str, Any] = {
            "title": fits(draft.title, MAX_TITLE),
            "body": self.body(draft, assigned=login),
        }
        if draft.labels:
            payload["labels"] = list(draft.labels)
        if login is not None:
            payload["assignees"] = [login]
        try:
            response = await self._send("POST", "/issues", json_body=payload)
        except TrackerFailed as failure:
            if login is None or failure.status != 422 or "assignee" not in failure.reason:
                raise
            # A login GitHub cannot assign (not a collaborator): name the owner instead.
            payload.pop("assignees")
            payload["body"] = self.body(draft, assigned=None)
            response = await self._send("POST", "/issues", json_body=payload)
        return self.issue(_object(response))

    async def find(self, marker: str, *, since: datetime) -> Issue | None:
        """Look through the issues updated since then, newest first, for the marker."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for page in range(1, MAX_PAGES + 1):
            response = await self._send(
                "GET",
                "/issues",
                params={
                    "state": "all",
                    "sort": "created",
                    "direction": "desc",
                    "since": stamp,
                    "per_page": str(PAGE_SIZE),
                    "page": str(page),
                },
            )
            items = response.json()
            if not isinstance(items, list):
                raise TrackerFailed(NAME, "the issue listing is not a list", retryable=True)
            for item in items:
                if isinstance(item, dict) and "pull_request" not in item:
                    if marker in str(item.get("body") or ""):
                        return self.issue(item)
            if len(items) < PAGE_SIZE:
                return None
        return None

    async def set_state(self, issue: Issue, state: IssueState) -> IssueState:
        """PATCH the issue: closed as completed or not planned, or open again."""
        number = issue.key.rpartition("#")[2]
        repo = issue.key.rpartition("#")[0] or self.repo
        if state is IssueState.OPEN:
            payload = {"state": "open", "state_reason": "reopened"}
        else:
            payload = {"state": "closed", "state_reason": state.value}
        response = await self._caller.send(
            "PATCH",
            f"{self._base}/repos/{repo}/issues/{number}",
            headers=self._headers,
            json_body=payload,
        )
        return self.issue(_object(response)).state

    # -- pieces ---------------------------------------------------------------------------

    async def assignee(self, owner: Owner | None) -> str | None:
        """The login to assign: from `logins`, else the Slack handle if a collaborator."""
        if owner is None:
            return None
        for key in (owner.slack_id, f"@{owner.handle}" if owner.handle else "", owner.email):
            if key and key.casefold() in self._logins:
                return self._logins[key.casefold()]
        if not owner.handle or not re.fullmatch(r"[A-Za-z0-9-]{1,39}", owner.handle):
            return None
        response = await self._send(
            "GET", f"/collaborators/{quote(owner.handle)}", ok_statuses=frozenset({404})
        )
        return owner.handle if response.status_code == 204 else None

    def body(self, draft: IssueDraft, *, assigned: str | None) -> str:
        """Markdown: the incident's lines, owner and due date, and the hidden marker."""
        lines = [render_line(line) for line in draft.lines]
        if draft.owner is not None:
            who = _owner_text(draft.owner)
            if assigned is None:
                who += " (not assigned here: no GitHub login known for them)"
            lines.append(f"**Owner:** {who}")
        if draft.due is not None:
            lines.append(f"**Due:** {draft.due.isoformat()}")
        text = fits("\n\n".join(lines), MAX_BODY)
        return f"{text}\n\n<!-- {draft.marker} -->\n"

    def issue(self, item: Mapping[str, Any]) -> Issue:
        """An Issue from GitHub's JSON."""
        try:
            number = int(item["number"])
            issue_id = str(item["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TrackerFailed(NAME, f"an issue without {exc}", retryable=False) from None
        return Issue(
            id=issue_id,
            key=f"{self.repo}#{number}",
            url=str(item.get("html_url") or ""),
            state=state_of(item),
        )


def state_of(item: Mapping[str, Any]) -> IssueState:
    """GitHub's `state` and `state_reason` in our words."""
    if item.get("state") != "closed":
        return IssueState.OPEN
    if item.get("state_reason") in ("not_planned", "duplicate"):
        return IssueState.NOT_PLANNED
    return IssueState.COMPLETED


def render_line(line: Line) -> str:
    """A line of spans as Markdown, links kept, everything else escaped."""
    parts = []
    for span in line:
        text = _MARKDOWN_SPECIAL.sub(r"\\\1", span.text)
        parts.append(f"[{text}]({span.href})" if span.href else text)
    return "".join(parts)


def _owner_text(owner: Owner) -> str:
    name = owner.name or owner.handle or owner.slack_id
    handle = f" (@{owner.handle} in Slack)" if owner.handle and owner.handle != name else ""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", f"{name}{handle}")


def _object(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TrackerFailed(NAME, "the answer is not a JSON object", retryable=True)
    return body
