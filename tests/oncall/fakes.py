"""Fake on-call providers on real ports, as strict as the documentation.

FakePagerDutyREST serves `GET /oncalls`, `GET /schedules/{id}` and `GET /escalation_policies/{id}`
(`Authorization: Token token=…`, 401 code 2006; 404 code 2100; `include[]=users` for emails;
`limit`/`offset`/`more` pagination, at most `max_limit` entries a page). FakeOpsgenieOnCall
serves `GET /v2/schedules/{identifier}/on-calls` (`GenieKey` auth, `scheduleIdentifierType`
id by default or name, `flat=true` for `onCallRecipients`, 404 for an unknown schedule).

A schedule has layers (rotations), each with the people on call in it now, and overrides that
put someone else on call in place of a scheduled person. `fail_next` (from FakeServer) makes
the next requests answer 429 with Retry-After, 500…; `stop()` takes the provider down.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.pagers.fakes import FakeOpsgenie, FakeServer, Received

PD_MAX_LIMIT = 100


@dataclass
class Rota:
    """Who is on call now in one schedule: per layer, with overrides applied on top."""

    name: str
    layers: list[list[str]] = field(default_factory=list)  # people (keys of `users`) per layer
    overrides: dict[str, str] = field(default_factory=dict)  # scheduled person -> stand-in
    id: str = ""

    def now(self) -> list[str]:
        """Everyone on call now, one entry per layer slot, overrides applied."""
        return [self.overrides.get(person, person) for layer in self.layers for person in layer]


@dataclass
class FakePagerDutyREST(FakeServer):
    """The slice of PagerDuty's REST API the on-call lookups use."""

    token: str = "pd-rest-token-0000"
    users: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {id, name, email}
    schedules: dict[str, Rota] = field(default_factory=dict)  # schedule id -> rota
    # policy id -> levels, each level a list of targets: schedule ids or user keys
    policies: dict[str, list[list[str]]] = field(default_factory=dict)
    max_limit: int = PD_MAX_LIMIT

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/oncalls", self._oncalls)
        app.router.add_get("/schedules/{id}", self._schedule)
        app.router.add_get("/escalation_policies/{id}", self._policy)

    # -- building the account --------------------------------------------------------------

    def add_user(self, key: str, *, email: str, name: str | None = None) -> str:
        user_id = "PU" + uuid.uuid5(uuid.NAMESPACE_DNS, key).hex[:5].upper()
        self.users[key] = {"id": user_id, "name": name or key.title(), "email": email}
        return user_id

    def add_schedule(
        self,
        schedule_id: str,
        *,
        layers: list[list[str]],
        overrides: dict[str, str] | None = None,
        policies: tuple[str, ...] = (),
    ) -> Rota:
        """A schedule, used at the first level of each policy named (or of a policy of its own:
        PagerDuty only computes on-calls for schedules that an escalation policy uses)."""
        rota = Rota(name=f"Schedule {schedule_id}", layers=layers, overrides=overrides or {})
        rota.id = schedule_id
        self.schedules[schedule_id] = rota
        for policy in policies or (f"EP{schedule_id[1:]}",):
            self.policies.setdefault(policy, [[]])[0].append(schedule_id)
        return rota

    # -- answering ---------------------------------------------------------------------------

    @staticmethod
    def _error(seen: Received, status: int, message: str, code: int) -> web.Response:
        return FakeServer._answer(seen, status, {"error": {"message": message, "code": code}})

    def _failure_body(self, status: int) -> Any:
        if status == 429:
            return {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
        return {"error": {"message": "Internal Server Error", "code": 2000}}

    async def _guard(self, request: web.Request) -> tuple[Received, web.Response | None]:
        seen = await self._record(request)
        seen.query = {k: ",".join(request.query.getall(k)) for k in request.query}
        injected = self._injected_answer(seen, self._failure_body)
        if injected is not None:
            return seen, injected
        if request.headers.get("Authorization") != f"Token token={self.token}":
            return seen, self._error(seen, 401, "Authentication failed", 2006)
        return seen, None

    def _user(self, key: str, *, full: bool) -> dict[str, Any]:
        user = self.users[key]
        reference = {
            "id": user["id"],
            "type": "user_reference",
            "summary": user["name"],
            "self": f"https://api.pagerduty.com/users/{user['id']}",
            "html_url": f"https://acme.pagerduty.com/users/{user['id']}",
        }
        if not full:
            return reference
        return {**reference, "type": "user", "name": user["name"], "email": user["email"]}

    def _entries(self, request: web.Request) -> list[dict[str, Any]]:
        schedule_ids = set(request.query.getall("schedule_ids[]", []))
        policy_ids = set(request.query.getall("escalation_policy_ids[]", []))
        full = "users" in request.query.getall("include[]", [])
        entries: list[dict[str, Any]] = []
        for policy_id, levels in self.policies.items():
            if policy_ids and policy_id not in policy_ids:
                continue
            for level, targets in enumerate(levels, start=1):
                for target in targets:
                    rota = self.schedules.get(target)
                    if schedule_ids and (rota is None or target not in schedule_ids):
                        continue
                    people = rota.now() if rota is not None else [target]
                    for person in people:
                        entries.append(
                            {
                                "escalation_policy": {"id": policy_id, "type": "ep_reference"},
                                "escalation_level": level,
                                "schedule": (
                                    {"id": target, "type": "schedule_reference"} if rota else None
                                ),
                                "user": self._user(person, full=full),
                                "start": "2026-11-25T08:00:00Z",
                                "end": "2026-11-26T08:00:00Z",
                            }
                        )
        return entries

    async def _oncalls(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        try:
            limit = int(request.query.get("limit", "25"))
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            return self._error(seen, 400, "Invalid Input Provided", 2001)
        if limit < 1 or offset < 0:
            return self._error(seen, 400, "Invalid Input Provided", 2001)
        limit = min(limit, self.max_limit)
        entries = self._entries(request)
        page = entries[offset : offset + limit]
        body = {
            "oncalls": page,
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(entries),
            "total": None,
        }
        return self._answer(seen, 200, body)

    async def _schedule(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        rota = self.schedules.get(request.match_info["id"])
        if rota is None:
            return self._error(seen, 404, "Not Found", 2100)
        return self._answer(seen, 200, {"schedule": {"id": rota.id, "name": rota.name}})

    async def _policy(self, request: web.Request) -> web.Response:
        seen, refused = await self._guard(request)
        if refused is not None:
            return refused
        policy_id = request.match_info["id"]
        if policy_id not in self.policies:
            return self._error(seen, 404, "Not Found", 2100)
        return self._answer(seen, 200, {"escalation_policy": {"id": policy_id}})

    def oncall_requests(self) -> list[Received]:
        return [r for r in self.received if r.path == "/oncalls"]


@dataclass
class FakeOpsgenieOnCall(FakeOpsgenie):
    """Opsgenie's Who Is On Call API for named schedules (each also has an id), next to the
    Alert API of FakeOpsgenie: one Opsgenie, as OPSGENIE_API_URL names it."""

    schedules: dict[str, Rota] = field(default_factory=dict)  # name -> rota

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/v2/schedules/{identifier}/on-calls", self._on_calls)

    def add_schedule(
        self, name: str, *, layers: list[list[str]], overrides: dict[str, str] | None = None
    ) -> Rota:
        rota = Rota(name=name, layers=layers, overrides=overrides or {})
        rota.id = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
        self.schedules[name] = rota
        return rota

    def _on_call_reply(self, seen: Received, status: int, body: dict[str, Any]) -> web.Response:
        answer = {**body, "took": 0.01, "requestId": self.new_request_id()}
        return self._answer(seen, status, answer)

    async def _on_calls(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        injected = self._injected_answer(seen, self._failure_body)
        if injected is not None:
            return injected
        if request.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return self._on_call_reply(seen, 401, {"message": "Could not authenticate"})
        kind = request.query.get("scheduleIdentifierType", "id")
        if kind not in ("id", "name"):
            return self._on_call_reply(seen, 422, {"message": "Invalid schedule identifier type"})
        identifier = request.match_info["identifier"]
        if kind == "name":
            rota = self.schedules.get(identifier)
        else:
            rota = next((r for r in self.schedules.values() if r.id == identifier), None)
        if rota is None:
            message = f"No schedule exists with {kind} [{identifier}]"
            return self._on_call_reply(seen, 404, {"message": message})
        parent = {"id": rota.id, "name": rota.name, "enabled": True}
        if request.query.get("flat") == "true":
            data: dict[str, Any] = {"_parent": parent, "onCallRecipients": rota.now()}
        else:
            participants = [
                {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, p)), "name": p, "type": "user"}
                for p in rota.now()
            ]
            data = {"_parent": parent, "onCallParticipants": participants}
        return self._on_call_reply(seen, 200, {"data": data})
