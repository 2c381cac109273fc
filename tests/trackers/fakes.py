"""Fake GitHub and Jira on real ports, as strict as their documentation.

Both record every request, check auth first (GitHub `Bearer`/`token`; Jira basic email:token),
validate bodies as the real APIs do (GitHub 422 `Validation Failed` with `errors`; Jira 400
with `errorMessages`/`errors`, ADF required for descriptions), answer rate limits the way
they do (403/429 with Retry-After or an exhausted `x-ratelimit-reset`; a request inside the
block window prolongs it and is counted in `early`), keep a consistent listing beside a
search index that lags (`index()` catches it up), and can commit a create and then drop the
connection (`drop_next_create`). Every change is also a webhook delivery, signed as the
provider signs it, in `deliveries`: the tests post them to the bot (and post them again).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from tests.pagers.fakes import FakeServer, Received

Now = Callable[[], datetime]


@dataclass
class Delivery:
    """A webhook as the provider would POST it: headers and the raw body."""

    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class RateLimited(FakeServer):
    """Failure injection shared by both fakes: block windows and dropped answers."""

    now: Now = field(default=lambda: datetime.now().astimezone())
    blocked_until: datetime | None = None
    block_status: int = 403
    block_primary: bool = False  # x-ratelimit-remaining: 0 and x-ratelimit-reset
    block_seconds: int = 60
    early: int = 0  # requests that came inside a block window
    _limit_next: bool = False
    _drop_next_create: int = 0
    _slow_next_create: float = 0.0
    webhook_secret: str = "hook-secret"
    deliveries: list[Delivery] = field(default_factory=list)

    def rate_limit_next(self, *, seconds: int = 60, status: int = 403, primary: bool = False):  # type: ignore[no-untyped-def]
        """The next request opens a block window of `seconds`."""
        self._limit_next = True
        self.block_seconds, self.block_status, self.block_primary = seconds, status, primary

    def slow_next_create(self, seconds: float) -> None:
        """The next create is committed only after `seconds`: the client has given up by then."""
        self._slow_next_create = seconds

    async def _maybe_slow(self) -> None:
        seconds, self._slow_next_create = self._slow_next_create, 0.0
        if seconds:
            await asyncio.sleep(seconds)

    def drop_next_create(self, times: int = 1) -> None:
        """The next create(s) are committed, then the connection is closed unanswered."""
        self._drop_next_create = times

    def _limited(self, seen: Received) -> web.Response | None:
        now = self.now()
        if self.blocked_until is not None and now < self.blocked_until:
            self.early += 1
            self.blocked_until = now + timedelta(seconds=self.block_seconds)  # prolonged
            return self._block_answer(seen, now)
        if self._limit_next:
            self._limit_next = False
            self.blocked_until = now + timedelta(seconds=self.block_seconds)
            return self._block_answer(seen, now)
        return None

    def _block_answer(self, seen: Received, now: datetime) -> web.Response:
        assert self.blocked_until is not None
        left = max(math.ceil((self.blocked_until - now).total_seconds()), 1)
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-used": "5000"}
        if self.block_primary:
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(math.ceil(self.blocked_until.timestamp()))
            message = "API rate limit exceeded for user ID 1."
        else:
            headers["x-ratelimit-remaining"] = "4000"
            headers["Retry-After"] = str(left)
            message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        return self._answer(seen, self.block_status, self.limit_body(message), **headers)

    def limit_body(self, message: str) -> Any:
        return {"message": message}

    def _dropping(self) -> bool:
        if self._drop_next_create > 0:
            self._drop_next_create -= 1
            return True
        return False


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer (the create is already committed)."""
    transport = request.transport
    if transport is not None:
        transport.close()
    raise web.HTTPInternalServerError  # never reaches the client: the socket is gone


# --- GitHub ------------------------------------------------------------------------------------


@dataclass
class FakeGitHub(RateLimited):
    """Issues of the repositories in `repos`, under an optional path prefix (`/api/v3`)."""

    token: str = "ghp_test_token_0123456789"
    repos: tuple[str, ...] = ("acme/infra",)
    collaborators: set[str] = field(default_factory=lambda: {"bob-gh", "carol"})
    prefix: str = ""
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    indexed: set[int] = field(default_factory=set)  # issue ids the search API knows
    _next_id: int = 5000

    @property
    def api_url(self) -> str:
        return self.base_url + self.prefix

    def routes(self, app: web.Application) -> None:
        p = self.prefix
        app.router.add_post(p + "/repos/{owner}/{name}/issues", self._create)
        app.router.add_get(p + "/repos/{owner}/{name}/issues", self._list)
        app.router.add_patch(p + "/repos/{owner}/{name}/issues/{number}", self._patch)
        app.router.add_get(p + "/repos/{owner}/{name}/collaborators/{login}", self._collaborator)
        app.router.add_get(p + "/search/issues", self._search)

    # -- what the tests read and do -------------------------------------------------------

    def all_issues(self, repo: str = "acme/infra") -> list[dict[str, Any]]:
        return self.issues.setdefault(repo, [])

    def index(self) -> None:
        """The search index catches up."""
        self.indexed = {i["id"] for issues in self.issues.values() for i in issues}

    def change_by_person(
        self, number: int, *, state: str, reason: str | None, by: str = "octocat"
    ) -> Delivery:
        """Someone closes or reopens an issue on github.com; returns its webhook delivery."""
        issue = self.all_issues()[number - 1]
        self._set_state(issue, state, reason)
        return self._deliver("issues", "closed" if state == "closed" else "reopened", issue, by)

    # -- handlers -------------------------------------------------------------------------

    def _failure_body(self, status: int) -> Any:
        return {"message": "Server Error" if status >= 500 else f"injected {status}"}

    async def _guard(self, request: web.Request) -> tuple[Received, web.Response | None]:
        seen = await self._record(request)
        injected = self._injected_answer(seen, self._failure_body)
        if injected is not None:
            return seen, injected
        limited = self._limited(seen)
        if limited is not None:
            return seen, limited
        auth = request.headers.get("Authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            body = {
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            }
            return seen, self._answer(seen, 401, body)
        repo = f"{request.match_info.get('owner')}/{request.match_info.get('name')}"
        if "owner" in request.match_info and repo not in self.repos:
            return seen, self._answer(seen, 404, {"message": "Not Found"})
        return seen, None

    @staticmethod
    def _invalid(seen: Received, errors: list[dict[str, Any]]) -> web.Response:
        body = {
            "message": "Validation Failed",
            "errors": errors,
            "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
            "status": "422",
        }
        return FakeServer._answer(seen, 422, body)

    async def _create(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        body = seen.body
        if not isinstance(body, dict):
            return self._answer(seen, 400, {"message": "Problems parsing JSON"})
        errors: list[dict[str, Any]] = []
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            errors.append({"resource": "Issue", "field": "title", "code": "missing_field"})
        elif len(title) > 256:
            errors.append({"resource": "Issue", "field": "title", "code": "invalid"})
        text = body.get("body")
        if text is not None and (not isinstance(text, str) or len(text) > 65536):
            errors.append({"resource": "Issue", "field": "body", "code": "invalid"})
        labels = body.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            errors.append({"resource": "Issue", "field": "labels", "code": "invalid"})
        assignees = body.get("assignees", [])
        if not isinstance(assignees, list):
            errors.append({"resource": "Issue", "field": "assignees", "code": "invalid"})
        else:
            for login in assignees:
                if login not in self.collaborators:
                    errors.append(
                        {
                            "value": login,
                            "resource": "Issue",
                            "field": "assignees",
                            "code": "invalid",
                        }
                    )
        if errors:
            return self._invalid(seen, errors)
        await self._maybe_slow()
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        issues = self.all_issues(repo)
        self._next_id += 1
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        issue = {
            "id": self._next_id,
            "node_id": f"I_{self._next_id}",
            "number": len(issues) + 1,
            "html_url": f"https://github.com/{repo}/issues/{len(issues) + 1}",
            "title": title,
            "body": text,
            "state": "open",
            "state_reason": None,
            "labels": [{"name": name} for name in labels],
            "assignees": [{"login": login} for login in assignees],
            "created_at": stamp,
            "updated_at": stamp,
            "_updated": self.now(),
            "_repo": repo,
        }
        issues.append(issue)
        self._deliver("issues", "opened", issue, "incident-bot[bot]")
        if self._dropping():
            return _drop(request)
        return self._answer(seen, 201, _public(issue))

    async def _list(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        items = list(self.all_issues(repo))
        since = request.query.get("since")
        if since:
            when = datetime.fromisoformat(since.replace("Z", "+00:00"))
            items = [i for i in items if i["_updated"] >= when]
        if request.query.get("state", "open") != "all":
            items = [i for i in items if i["state"] == request.query.get("state", "open")]
        if request.query.get("direction", "desc") == "desc":
            items.reverse()
        per_page = min(int(request.query.get("per_page", "30")), 100)
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        return self._answer(seen, 200, [_public(i) for i in chunk])

    async def _search(self, request: web.Request) -> web.Response:
        """`/search/issues`: only what the index has caught up with."""
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        words = request.query.get("q", "").split()
        found = [
            _public(i)
            for issues in self.issues.values()
            for i in issues
            if i["id"] in self.indexed
            and all(w in (i["body"] or "") for w in words if ":" not in w)
        ]
        return self._answer(seen, 200, {"total_count": len(found), "items": found})

    async def _patch(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        issues = self.all_issues(repo)
        number = int(request.match_info["number"])
        if not 1 <= number <= len(issues):
            return self._answer(seen, 404, {"message": "Not Found"})
        body = seen.body if isinstance(seen.body, dict) else {}
        state, reason = body.get("state"), body.get("state_reason")
        if state not in ("open", "closed") or reason not in (
            None,
            "completed",
            "not_planned",
            "reopened",
        ):
            return self._invalid(seen, [{"resource": "Issue", "field": "state", "code": "invalid"}])
        issue = issues[number - 1]
        before = issue["state"], issue["state_reason"]
        self._set_state(issue, state, reason)
        if (issue["state"], issue["state_reason"]) != before:
            action = "closed" if state == "closed" else "reopened"
            self._deliver("issues", action, issue, "incident-bot[bot]")
        return self._answer(seen, 200, _public(issue))

    async def _collaborator(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        if request.match_info["login"] in self.collaborators:
            seen.status = 204
            return web.Response(status=204)
        return self._answer(seen, 404, {"message": "Not Found"})

    def _set_state(self, issue: dict[str, Any], state: str, reason: str | None) -> None:
        issue["state"] = state
        if state == "closed":
            issue["state_reason"] = reason or "completed"
        else:
            issue["state_reason"] = "reopened" if reason else None
        issue["_updated"] = self.now()
        issue["updated_at"] = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _deliver(self, event: str, action: str, issue: dict[str, Any], by: str) -> Delivery:
        payload = {
            "action": action,
            "issue": _public(issue),
            "repository": {"id": 1, "full_name": issue["_repo"], "name": issue["_repo"]},
            "sender": {"login": by, "type": "Bot" if by.endswith("[bot]") else "User"},
        }
        raw = json.dumps(payload).encode()
        delivery = Delivery(
            headers={
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/abc123",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-GitHub-Hook-ID": "123",
                "X-Hub-Signature-256": sign(self.webhook_secret, raw),
            },
            body=raw,
        )
        self.deliveries.append(delivery)
        return delivery

    def ping(self) -> Delivery:
        raw = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 123}).encode()
        return Delivery(
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(self.webhook_secret, raw),
            },
            body=raw,
        )


def _public(issue: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in issue.items() if not k.startswith("_")}


# --- Jira --------------------------------------------------------------------------------------

STATUSES = {
    "To Do": ("10000", "new"),
    "In Progress": ("10001", "indeterminate"),
    "Done": ("10002", "done"),
}
# This workflow names its done transition "Mark complete": choose by category, not by name.
TRANSITIONS = [("11", "Back to do", "To Do"), ("21", "Start", "In Progress")]
DONE_TRANSITION = ("31", "Mark complete", "Done")
RESOLUTIONS = ("Done", "Won't Do", "Duplicate")


def adf_errors(doc: Any) -> str | None:
    """Why Jira would refuse a description; None when it is a valid ADF document."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    content = doc.get("content")
    if not isinstance(content, list):
        return "ADF: doc needs a content array"
    for block in content:
        if not isinstance(block, dict) or block.get("type") != "paragraph":
            return "ADF: only paragraphs are expected here"
        for node in block.get("content") or []:
            if not isinstance(node, dict) or node.get("type") != "text":
                return "ADF: a paragraph holds text nodes"
            if not isinstance(node.get("text"), str) or not node["text"]:
                return "ADF: text nodes must not be empty"
            for mark in node.get("marks") or []:
                if mark.get("type") != "link" or not isinstance(
                    (mark.get("attrs") or {}).get("href"), str
                ):
                    return "ADF: a link mark needs attrs.href"
    return None


def adf_text(node: Any) -> str:
    if isinstance(node, dict):
        own = node.get("text", "") if node.get("type") == "text" else ""
        return own + " ".join(adf_text(c) for c in node.get("content") or [])
    return ""


_JQL_TEXT = re.compile(r'^project = "(?P<project>[A-Z0-9_]+)" AND text ~ "(?P<word>\w+)"$')


def _words(issue: dict[str, Any]) -> str:
    fields = issue["fields"]
    return f"{fields.get('summary', '')} {adf_text(fields.get('description'))}"


_JQL_NEWEST = re.compile(r'^project = "(?P<project>[A-Z0-9_]+)" ORDER BY created DESC$')


@dataclass
class FakeJira(RateLimited):
    """One Jira Cloud site with projects, users and a three-status workflow."""

    email: str = "bot@acme.example"
    api_token: str = "ATATT3xFfGF0-test-token"
    projects: tuple[str, ...] = ("OPS",)
    issue_types: tuple[str, ...] = ("Task", "Bug", "Story")
    users: dict[str, str] = field(default_factory=lambda: {"bob@acme.example": "acc-bob"})
    issues: list[dict[str, Any]] = field(default_factory=list)
    indexed: set[str] = field(default_factory=set)
    block_status: int = 429
    _next_id: int = 10000

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/rest/api/3/issue", self._create)
        app.router.add_get("/rest/api/3/issue/{ref}", self._get)
        app.router.add_get("/rest/api/3/issue/{ref}/transitions", self._transitions)
        app.router.add_post("/rest/api/3/issue/{ref}/transitions", self._transition)
        app.router.add_post("/rest/api/3/search/jql", self._search)
        app.router.add_get("/rest/api/3/search", self._gone)
        app.router.add_get("/rest/api/3/user/search", self._users)

    def rate_limit_next(self, *, seconds: int = 60, status: int = 429, primary: bool = False):  # type: ignore[no-untyped-def]
        super().rate_limit_next(seconds=seconds, status=status, primary=primary)

    def limit_body(self, message: str) -> Any:
        return {"errorMessages": ["Rate limit exceeded."], "errors": {}}

    def index(self) -> None:
        self.indexed = {i["id"] for i in self.issues}

    def issue(self, key: str) -> dict[str, Any]:
        return next(i for i in self.issues if i["key"] == key)

    def change_by_person(self, key: str, *, status: str, resolution: str | None = None) -> Delivery:
        """Someone moves the issue in Jira; returns the `jira:issue_updated` delivery."""
        issue = self.issue(key)
        before = issue["fields"]["status"]["name"]
        self._move(issue, status, resolution)
        return self._deliver("jira:issue_updated", issue, before, "Dana Ops")

    # -- handlers -------------------------------------------------------------------------

    def _failure_body(self, status: int) -> Any:
        return {"errorMessages": [f"Internal server error ({status})"], "errors": {}}

    async def _guard(self, request: web.Request) -> tuple[Received, web.Response | None]:
        seen = await self._record(request)
        injected = self._injected_answer(seen, self._failure_body)
        if injected is not None:
            return seen, injected
        limited = self._limited(seen)
        if limited is not None:
            return seen, limited
        basic = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {basic}":
            body = {
                "errorMessages": [
                    "You are not authenticated. Authentication required to perform this operation."
                ],
                "errors": {},
            }
            return seen, self._answer(seen, 401, body)
        return seen, None

    @staticmethod
    def _bad(
        seen: Received, errors: dict[str, str], messages: list[str] | None = None
    ) -> web.Response:
        return FakeServer._answer(seen, 400, {"errorMessages": messages or [], "errors": errors})

    async def _create(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        body = seen.body
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._bad(seen, {}, ["Unexpected character: the body is not issue JSON"])
        errors: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in self.issue_types:
            errors["issuetype"] = "Specify an issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255 or "\n" in summary:
            errors["summary"] = "Summary must be less than 255 characters and on one line."
        if "description" in fields:
            problem = adf_errors(fields["description"])
            if problem:
                errors["description"] = problem
        due = fields.get("duedate")
        if due is not None and (
            not isinstance(due, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d", due)
        ):
            errors["duedate"] = f"Error parsing date string: {due}"
        for label in fields.get("labels") or []:
            if not isinstance(label, str) or " " in label:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        assignee = fields.get("assignee")
        if assignee is not None and (assignee or {}).get("accountId") not in self.users.values():
            errors["assignee"] = "The user does not exist or cannot be assigned."
        unknown = set(fields) - {
            "project",
            "issuetype",
            "summary",
            "description",
            "duedate",
            "labels",
            "assignee",
        }
        for name in unknown:
            errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen."
        if errors:
            return self._bad(seen, errors)
        await self._maybe_slow()
        self._next_id += 1
        number = sum(1 for i in self.issues if i["key"].startswith(f"{project}-")) + 1
        issue = {
            "id": str(self._next_id),
            "key": f"{project}-{number}",
            "fields": {**fields, "resolution": None, "created": self.now().isoformat()},
            "properties": {p["key"]: p["value"] for p in body.get("properties") or []},
        }
        self._move(issue, "To Do", None)
        self.issues.append(issue)
        self._deliver("jira:issue_created", issue, None, "Incident Bot")
        if self._dropping():
            return _drop(request)
        answer = {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{self.base_url}/rest/api/3/issue/{issue['id']}",
        }
        return self._answer(seen, 201, answer)

    def _find(self, ref: str) -> dict[str, Any] | None:
        return next((i for i in self.issues if ref in (i["id"], i["key"])), None)

    def _view(self, issue: dict[str, Any], request: web.Request) -> dict[str, Any]:
        wanted = request.query.get("properties", "")
        return {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{self.base_url}/rest/api/3/issue/{issue['id']}",
            "fields": issue["fields"],
            "properties": {k: v for k, v in issue["properties"].items() if k in wanted.split(",")},
        }

    async def _get(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        issue = self._find(request.match_info["ref"])
        if issue is None:
            body = {
                "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                "errors": {},
            }
            return self._answer(seen, 404, body)
        return self._answer(seen, 200, self._view(issue, request))

    def _available(self, issue: dict[str, Any], expand: bool) -> list[dict[str, Any]]:
        current = issue["fields"]["status"]["name"]
        out = []
        for tid, name, to in [*TRANSITIONS, DONE_TRANSITION]:
            if to == current:
                continue
            status_id, category = STATUSES[to]
            one: dict[str, Any] = {
                "id": tid,
                "name": name,
                "to": {"id": status_id, "name": to, "statusCategory": {"key": category}},
            }
            if expand and to == "Done":
                one["fields"] = {
                    "resolution": {
                        "required": False,
                        "allowedValues": [{"name": r} for r in RESOLUTIONS],
                    }
                }
            out.append(one)
        return out

    async def _transitions(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        issue = self._find(request.match_info["ref"])
        if issue is None:
            return self._answer(
                seen, 404, {"errorMessages": ["Issue does not exist"], "errors": {}}
            )
        expand = "transitions.fields" in request.query.get("expand", "")
        return self._answer(seen, 200, {"transitions": self._available(issue, expand)})

    async def _transition(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        issue = self._find(request.match_info["ref"])
        if issue is None:
            return self._answer(
                seen, 404, {"errorMessages": ["Issue does not exist"], "errors": {}}
            )
        body = seen.body if isinstance(seen.body, dict) else {}
        wanted = str((body.get("transition") or {}).get("id"))
        chosen = next((t for t in self._available(issue, True) if t["id"] == wanted), None)
        if chosen is None:
            return self._bad(seen, {}, [f"Transition id '{wanted}' is not valid for this issue."])
        resolution = ((body.get("fields") or {}).get("resolution") or {}).get("name")
        if resolution is not None and resolution not in RESOLUTIONS:
            return self._bad(seen, {"resolution": f"Resolution '{resolution}' does not exist"})
        before = issue["fields"]["status"]["name"]
        self._move(issue, chosen["to"]["name"], resolution)
        self._deliver("jira:issue_updated", issue, before, "Incident Bot")
        seen.status = 204
        return web.Response(status=204)

    async def _search(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        body = seen.body if isinstance(seen.body, dict) else {}
        jql = str(body.get("jql", ""))
        visible = [
            i
            for i in self.issues
            if i["id"] in self.indexed or int(i["id"]) in (body.get("reconcileIssues") or [])
        ]
        text, newest = _JQL_TEXT.match(jql), _JQL_NEWEST.match(jql)
        if text:
            # JQL's text search matches whole words of the summary and description.
            found = [
                i
                for i in visible
                if i["key"].startswith(text["project"] + "-")
                and text["word"] in re.split(r"\W+", _words(i))
            ]
        elif newest:
            found = [i for i in visible if i["key"].startswith(newest["project"] + "-")]
            found.sort(key=lambda i: int(i["id"]), reverse=True)
        else:
            return self._bad(seen, {}, [f"Error in the JQL Query: {jql}"])
        limit = int(body.get("maxResults", 50))
        issues = [
            {"id": i["id"], "key": i["key"], "fields": {"status": i["fields"]["status"]}}
            for i in found[:limit]
        ]
        return self._answer(seen, 200, {"issues": issues, "isLast": True})

    async def _gone(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        body = {
            "errorMessages": [
                "The requested API has been removed. "
                "Please migrate to the /rest/api/3/search/jql API."
            ]
        }
        return self._answer(seen, 410, body)

    async def _users(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        query = request.query.get("query", "").lower()
        found = [
            {"accountId": acc, "emailAddress": email, "displayName": email, "active": True}
            for email, acc in self.users.items()
            if email == query
        ]
        return self._answer(seen, 200, found)

    def _move(self, issue: dict[str, Any], status: str, resolution: str | None) -> None:
        status_id, category = STATUSES[status]
        issue["fields"]["status"] = {
            "id": status_id,
            "name": status,
            "statusCategory": {"key": category},
        }
        if category == "done":
            issue["fields"]["resolution"] = {"name": resolution or "Done"}
        else:
            issue["fields"]["resolution"] = None

    def _deliver(self, event: str, issue: dict[str, Any], before: str | None, by: str) -> Delivery:
        payload: dict[str, Any] = {
            "timestamp": int(self.now().timestamp() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": "issue_generic"
            if event.endswith("updated")
            else "issue_created",
            "user": {"accountId": "acc-" + by.lower().replace(" ", "-"), "displayName": by},
            "issue": {
                "id": issue["id"],
                "key": issue["key"],
                "self": f"{self.base_url}/rest/api/3/issue/{issue['id']}",
                "fields": issue["fields"],
            },
        }
        if before is not None:
            payload["changelog"] = {
                "id": str(len(self.deliveries) + 1),
                "items": [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fromString": before,
                        "toString": issue["fields"]["status"]["name"],
                    }
                ],
            }
        raw = json.dumps(payload).encode()
        delivery = Delivery(
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-Atlassian-Webhook-Identifier": str(1000 + len(self.deliveries)),
                "X-Atlassian-Webhook-Flow": "Primary",
                "X-Hub-Signature": sign(self.webhook_secret, raw),
            },
            body=raw,
        )
        self.deliveries.append(delivery)
        return delivery
