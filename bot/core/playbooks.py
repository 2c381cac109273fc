"""Playbooks: who is paged, when, and what an incident's channel starts with; read from YAML.

A playbook file (`playbooks/NAME.yaml`) looks like this:

    name: database                    # optional; defaults to the file name without .yaml
    match: {services: [postgres, checkout-db], min_severity: sev2}
    private: false                    # true: incidents under this playbook are private
    admins: ["@dana", "S0SECLEADS"]   # besides the commander: change severity, resolve, reopen
    opsgenie: {api_key_env: OG_KEY}   # default Opsgenie API key for this file's roles and tiers
    roles:
      commander: {slack: ["@alice", "S0DBONCALL"], required: true}
      ops:       {pagerduty: {routing_key_env: PD_DB_KEY}, ack_timeout: 5m}
      dba:       {opsgenie: {responders: [{type: team, name: dba}], priority: P2}}
      hooks:     {webhook: {url_env: DB_HOOK_URL, secret_env: DB_HOOK_SECRET}}
      comms:     {slack: ["U024BE7LH"]}
    escalation:                       # tiers paged in turn until someone acknowledges
      - {after: 5m, page: [ops]}
      - {after: 10m, page: [commander], opsgenie: {responders: [{type: team, name: dba}]}}
    reminders: {status_update_every: {sev1: 15m, sev2: 30m, sev3: 2h}}
    checklist: ["Post a status update", "Check the cache hit rate dashboard"]
    bookmarks: [{title: DB dashboard, link: "https://grafana.example.com/d/db"}]
    postmortem: {due_in: 5d}
    followups:                        # where /incident task files its issues (one tracker)
      github: {repo: acme/infra, token_env: GITHUB_TOKEN, labels: [incident],
               logins: {"@bob": bob-gh}}
      # or jira: {url: "https://acme.atlassian.net", project: OPS, issue_type: Task,
      #           email_env: JIRA_EMAIL, token_env: JIRA_API_TOKEN}
      measures: false                 # true: measures are filed too

Rules the loader enforces, each reported with file, line and a fix:

- `match` has `services: [...]` (compared case-insensitively, optional `min_severity`, default
  sev4 = every severity) and/or `default: true`; at most one default playbook per directory.
  A playbook that matches nothing is an error. Selection: playbooks whose services include the
  incident's service and whose `min_severity` is met (sev1 meets sev2) win, the stricter
  `min_severity` first, then by name; else the default, whatever the severity; else none.
- `required: true` on a role: the incident must have someone in it; a role without Slack
  targets (the default playbook's commander) is filled by hand or by the declarer.
- Names are unique across the directory; without `name:` the file name is the name.
- Slack targets are user ids (`U…`/`W…`), user-group ids (`S…`), `@handles` or emails.
- Durations are written `30s`, `5m`, `2h`, `1d` or `1h30m` and are above zero; only a tier's
  `after` may be `0s` (page at once). `after` counts from the start of paging (the declaration),
  not from the previous tier, so the tiers' `after` values strictly increase.
- `ack_timeout` is allowed on every role: a Slack DM with an Acknowledge button can always page.
- Secrets live in the environment: `routing_key_env`, `api_key_env`, `url_env`, `secret_env`
  name variables (`^[A-Z][A-Z0-9_]*$`); an inline `routing_key:`, `api_key:`, `url:`, `token:` or
  `secret:` is an error. A webhook URL always comes from `url_env` (URLs often carry tokens).
- Opsgenie API key: a role's or tier's own `api_key_env`, else the file's top-level
  `opsgenie: {api_key_env: ...}`, else the variable `OPSGENIE_API_KEY`. It is never taken from
  another role (two roles may use two keys). `priority` is P1..P5; without it the pager derives
  one from the incident's severity. Responders follow the Opsgenie Alert API: `type` team,
  escalation or schedule with `id` or `name`; `type` user with `id` or `username`.
- `oncall:` on a role names one rota its people are looked up in at declaration:
  `pagerduty_schedule` or `pagerduty_escalation_policy` (PagerDuty ids such as `PABC123`) or
  `opsgenie_schedule` (a schedule's name or id).
- Unknown keys are errors, with a "did you mean" when one is close.
- Every problem of a file is reported in one run: a wrong value does not hide the checks
  around it (the tiers' roles and order, the checks across files, Slack users); see
  `_validate_in_passes`.
- `followups:` names exactly one tracker. GitHub: `repo` is `owner/name`, `logins` maps Slack
  targets to GitHub logins. Jira: `url` is https (http only for a loopback host, for tests),
  `project` is a project key (`OPS`). Tokens and emails come from `token_env`/`email_env`;
  an inline `token:` is an error. Labels have no spaces (Jira refuses them).

Why pyyaml here, in the pure core: it is a parser with no I/O, and its node tree is the only way
to give each error the line it is on. Reading files stays in `bot.playbook_check`.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from bot.core.clock import DURATION_FORMATS, parse_duration
from bot.core.enums import Severity
from bot.errors import BotError, UserError

DEFAULT_OPSGENIE_KEY_ENV = "OPSGENIE_API_KEY"
SEVERITIES_TEXT = "use sev1, sev2, sev3 or sev4 (sev1 is the most severe)"
SLACK_TARGET_FORMATS = (
    "write a user id (`U024BE7LH`), an `@handle`, an email, or a user-group id (`S0DBONCALL`)"
)
RESPONDER_TYPES = ("team", "user", "escalation", "schedule")
OPSGENIE_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")

_ENV_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID_RE = re.compile(r"^S[A-Z0-9]{2,}$")
_HANDLE_RE = re.compile(r"^@[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MENTION_RE = re.compile(r"^<[@!]?((?:[UWS])[A-Z0-9]+)(?:\|[^>]*)?>$")
_WORDY_DURATION_RE = re.compile(r"([0-9]+)\s*([a-z]+)")
_DURATION_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
}


# --- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaybookProblem:
    """One thing wrong in a playbook file; line and column are 1-based, 0 when not known."""

    file: str
    line: int
    column: int
    path: str
    message: str
    fix: str


def format_problem(problem: PlaybookProblem) -> str:
    """Render a problem as `file:line: path: message — fix`."""
    where = f"{problem.file}:{problem.line}" if problem.line else problem.file
    parts = [where]
    if problem.path:
        parts.append(problem.path)
    text = problem.message if not problem.fix else f"{problem.message} — {problem.fix}"
    parts.append(text)
    return ": ".join(parts)


class PlaybookInvalid(BotError):
    """One or more playbooks are wrong; `problems` lists every one of them."""

    def __init__(self, problems: Sequence[PlaybookProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = (
            "1 problem in the playbooks" if count == 1 else f"{count} problems in the playbooks"
        )
        super().__init__("\n".join([heading + ":", *map(format_problem, self.problems)]))


def _fail(message: str, fix: str = "") -> PydanticCustomError:
    # "{message}" keeps braces in people's text from being read as a template.
    return PydanticCustomError("playbook", "{message}", {"message": message, "fix": fix})


def _quote(value: object, limit: int = 40) -> str:
    text = " ".join(str(value).replace("`", "'").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`"


def format_duration(delta: timedelta) -> str:
    """A duration as playbooks write it: `30s`, `5m`, `1h30m`, `5d`."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out


# --- value types ------------------------------------------------------------------------------


def _duration_fix(text: str) -> str:
    words = text.strip().lower().replace(",", " ").replace(" and ", " ")
    pairs = _WORDY_DURATION_RE.findall(words)
    leftover = _WORDY_DURATION_RE.sub("", words).strip()
    if pairs and not leftover and all(unit in _DURATION_UNITS for _, unit in pairs):
        suggestion = "".join(f"{count}{_DURATION_UNITS[unit]}" for count, unit in pairs)
        try:
            parse_duration(suggestion)
        except UserError:
            return DURATION_FORMATS
        return f"write `{suggestion}`"
    return DURATION_FORMATS


def _to_duration(value: object, *, allow_zero: bool) -> timedelta:
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail("expected a duration", DURATION_FORMATS)
    elif isinstance(value, int | float):
        raise _fail(
            f"{_quote(value)} has no unit", f"write it with one, e.g. `{value}m` or `{value}s`"
        )
    else:
        try:
            delta = parse_duration(value)
        except UserError:
            raise _fail(f"{_quote(value)} is not a duration", _duration_fix(value)) from None
    if delta < timedelta(0) or (delta == timedelta(0) and not allow_zero):
        raise _fail("a duration must be longer than zero", "write e.g. `30s`, `5m` or `1h`")
    return delta


def _duration(value: object) -> timedelta:
    return _to_duration(value, allow_zero=False)


def _offset(value: object) -> timedelta:
    return _to_duration(value, allow_zero=True)


def _looks_secret(text: str) -> bool:
    has_digit = any(ch.isdigit() for ch in text)
    return len(text) >= 24 or (len(text) >= 12 and has_digit and not re.search(r"[_\-. ]", text))


def _env_name(value: object) -> str:
    if not isinstance(value, str):
        raise _fail("expected the name of an environment variable", "write e.g. `PD_DB_KEY`")
    if _ENV_RE.match(value):
        if _looks_secret(value) and "_" not in value:
            raise _fail(
                "this looks like the secret itself, not the name of a variable",
                "put the secret in an environment variable and write its name here, "
                "e.g. `PD_DB_KEY`",
            )
        return value
    fix = (
        "write the variable's name: capitals, digits and `_`, starting with a letter "
        "(e.g. `PD_DB_KEY`), and keep the secret itself in the environment"
    )
    candidate = re.sub(r"[^A-Z0-9_]", "_", value.strip().upper())
    if not _looks_secret(value) and _ENV_RE.match(candidate):
        fix = f"write `{candidate}`"
    raise _fail("not an environment variable name", fix)


class SlackTargetKind(StrEnum):
    """What a Slack target in a playbook names."""

    USER_ID = "user_id"
    USERGROUP_ID = "usergroup_id"
    HANDLE = "handle"
    EMAIL = "email"


def slack_target_kind(target: str) -> SlackTargetKind | None:
    """Classify a Slack target as written in a playbook; None when it is none of them."""
    if _USER_ID_RE.match(target):
        return SlackTargetKind.USER_ID
    if _GROUP_ID_RE.match(target):
        return SlackTargetKind.USERGROUP_ID
    if _HANDLE_RE.match(target):
        return SlackTargetKind.HANDLE
    if _EMAIL_RE.match(target):
        return SlackTargetKind.EMAIL
    return None


def _slack_target(value: object) -> str:
    if not isinstance(value, str):
        raise _fail(f"{_quote(value)} is not a Slack target", SLACK_TARGET_FORMATS)
    text = value.strip()
    if slack_target_kind(text) is not None:
        return text
    mention = _MENTION_RE.match(text)
    if mention:
        fix = f"write the bare id: `{mention.group(1)}`"
    elif re.match(r"^[CGD][A-Z0-9]{2,}$", text):
        fix = "that looks like a channel, and roles need people: " + SLACK_TARGET_FORMATS
    elif re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", text):
        fix = f"write `@{text}` if that is a handle (handles start with `@`)"
    else:
        fix = SLACK_TARGET_FORMATS
    raise _fail(f"{_quote(value)} is not a Slack target", fix)


def _severity(value: object) -> Severity:
    if isinstance(value, Severity):
        return value
    if isinstance(value, str):
        try:
            return Severity(value.strip().lower())
        except ValueError:
            pass
    raise _fail(f"{_quote(value)} is not a severity", SEVERITIES_TEXT)


def _playbook_name(value: object) -> str:
    if isinstance(value, str) and _NAME_RE.match(value):
        return value
    raise _fail(
        f"{_quote(value)} is not a playbook name",
        "use lowercase letters, digits, `-` and `_` (without `name:`, the file name is used)",
    )


def _role_name(value: object) -> str:
    if isinstance(value, str) and _ROLE_RE.match(value):
        return value
    suggestion = re.sub(r"[^a-z0-9_-]+", "-", str(value).strip().lower()).strip("-")
    fix = "use lowercase letters, digits, `-` and `_`, starting with a letter"
    if _ROLE_RE.match(suggestion):
        fix += f", e.g. `{suggestion}`"
    raise _fail(f"{_quote(value)} is not a role name", fix)


def _text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail("expected text", "write a string; quote it if it contains `:` or `#`")
    text = str(value).strip()
    if not text:
        raise _fail("this text is empty", "write something or remove the entry")
    return text


def _link(value: object) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(f"{_quote(text)} is not a web link", "write a full `https://…` address")
    if parts.password or parts.username:
        raise _fail(
            "this link carries credentials, and everyone in the channel sees bookmarks",
            "link to a page that needs no password in its address",
        )
    return text


def _choice(what: str, allowed: Sequence[str], *, upper: bool = False) -> BeforeValidator:
    def check(value: object) -> str:
        if isinstance(value, str):
            text = value.strip().upper() if upper else value.strip().lower()
            if text in allowed:
                return text
        raise _fail(f"{_quote(value)} is not {what}", "use one of " + ", ".join(allowed))

    return BeforeValidator(check)


def _none_as_empty(value: object) -> object:
    # `commander:` with nothing after it is YAML for null; it means a role with no targets.
    return {} if value is None else value


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Offset = Annotated[timedelta, BeforeValidator(_offset)]
EnvName = Annotated[str, BeforeValidator(_env_name)]
SlackTarget = Annotated[str, BeforeValidator(_slack_target)]
SlackTargets = Annotated[tuple[SlackTarget, ...], BeforeValidator(_one_or_many)]
SeverityLevel = Annotated[Severity, BeforeValidator(_severity)]
RoleName = Annotated[str, BeforeValidator(_role_name)]
Text = Annotated[str, BeforeValidator(_text)]
Link = Annotated[str, BeforeValidator(_link)]
ResponderType = Annotated[
    Literal["team", "user", "escalation", "schedule"],
    _choice("an Opsgenie responder type", RESPONDER_TYPES),
]
OpsgeniePriority = Annotated[
    Literal["P1", "P2", "P3", "P4", "P5"],
    _choice("an Opsgenie priority", OPSGENIE_PRIORITIES, upper=True),
]


ONCALL_KEYS = ("pagerduty_schedule", "pagerduty_escalation_policy", "opsgenie_schedule")
_PAGERDUTY_ID_RE = re.compile(r"^[A-Z0-9]{6,20}$")
_PAGERDUTY_URL_ID_RE = re.compile(r"/(?:schedules|escalation_policies)/([A-Z0-9]{6,20})\b")
_OPSGENIE_SCHEDULE_RE = re.compile(r"^[^/\s?#][^/?#]{0,99}$")


def _pagerduty_id(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if _PAGERDUTY_ID_RE.match(text):
        return text
    fix = "write the id from its address in PagerDuty (…/schedules/PABC123), e.g. `PABC123`"
    found = _PAGERDUTY_URL_ID_RE.search(text)
    if found:
        fix = f"write the bare id: `{found.group(1)}`"
    elif text and _PAGERDUTY_ID_RE.match(text.upper()):
        fix = f"PagerDuty ids are upper case: `{text.upper()}`"
    raise _fail(f"{_quote(value)} is not a PagerDuty id", fix)


def _opsgenie_schedule(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if _OPSGENIE_SCHEDULE_RE.match(text) and not text.startswith(("http:", "https:")):
        return text
    raise _fail(
        f"{_quote(value)} is not an Opsgenie schedule",
        "write the schedule's name (e.g. `dba-schedule`) or its id",
    )


PagerDutyId = Annotated[str, BeforeValidator(_pagerduty_id)]
OpsgenieSchedule = Annotated[str, BeforeValidator(_opsgenie_schedule)]


def _severity_rank(severity: Severity) -> int:
    """0 for sev1 (the most severe) up to 3 for sev4."""
    return list(Severity).index(severity)


# --- the model --------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Model):
    """Which incidents a playbook is for."""

    services: Annotated[tuple[Text, ...], BeforeValidator(_one_or_many)] = ()
    min_severity: SeverityLevel = Severity.SEV4
    default: bool = False

    @model_validator(mode="after")
    def _matches_something(self) -> Match:
        if not self.services and not self.default:
            raise _fail(
                "this playbook matches no incident",
                "add `services: [...]`, or `default: true` for the default playbook",
            )
        return self

    def covers(self, *, service: str | None, severity: Severity) -> bool:
        """Whether an incident on service at severity falls under `services`/`min_severity`."""
        if service is None or _severity_rank(severity) > _severity_rank(self.min_severity):
            return False
        wanted = service.strip().casefold()
        return any(own.casefold() == wanted for own in self.services)


class PagerDutyTarget(_Model):
    """A PagerDuty Events API v2 integration; the routing key is read from the environment."""

    routing_key_env: EnvName


class OpsgenieResponder(_Model):
    """An Opsgenie Alert API responder: a team, escalation or schedule by id or name; a user."""

    type: ResponderType
    id: Text | None = None
    name: Text | None = None
    username: Text | None = None

    @model_validator(mode="after")
    def _named_once(self) -> OpsgenieResponder:
        keys = ("id", "username") if self.type == "user" else ("id", "name")
        given = [key for key in ("id", "name", "username") if getattr(self, key) is not None]
        if len(given) != 1 or given[0] not in keys:
            raise _fail(
                f"a `{self.type}` responder needs exactly one of `{keys[0]}` or `{keys[1]}`",
                "e.g. `{type: team, name: dba}` or `{type: user, username: ann@example.com}`",
            )
        return self


class OpsgenieTarget(_Model):
    """An Opsgenie alert: its responders, priority, and the variable holding the API key."""

    api_key_env: EnvName | None = None
    responders: tuple[OpsgenieResponder, ...] = ()
    priority: OpsgeniePriority | None = None


class OpsgenieDefaults(_Model):
    """Top-level `opsgenie:` settings shared by the file's roles and tiers."""

    api_key_env: EnvName


class WebhookTarget(_Model):
    """A generic webhook; the URL (and an optional signing secret) come from the environment."""

    url_env: EnvName
    secret_env: EnvName | None = None


class OnCallSource(_Model):
    """Where a role's people are looked up at declaration: one PagerDuty or Opsgenie rota."""

    pagerduty_schedule: PagerDutyId | None = None
    pagerduty_escalation_policy: PagerDutyId | None = None
    opsgenie_schedule: OpsgenieSchedule | None = None

    @model_validator(mode="after")
    def _one_source(self) -> OnCallSource:
        given = [key for key in ONCALL_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise _fail(
                "`oncall:` names exactly one of " + ", ".join(f"`{k}`" for k in ONCALL_KEYS),
                "e.g. `oncall: {pagerduty_schedule: PABC123}` or "
                "`oncall: {opsgenie_schedule: dba-schedule}`",
            )
        return self

    @property
    def key(self) -> str:
        """The one key written: `pagerduty_schedule`, `pagerduty_escalation_policy` or …"""
        return next(key for key in ONCALL_KEYS if getattr(self, key) is not None)

    @property
    def identifier(self) -> str:
        """The schedule's or policy's id (or Opsgenie name) as the playbook writes it."""
        value: str = getattr(self, self.key)
        return value

    @property
    def provider(self) -> str:
        """`pagerduty` or `opsgenie`."""
        return "opsgenie" if self.opsgenie_schedule is not None else "pagerduty"


class Role(_Model):
    """A role in an incident and the people or pagers behind it."""

    slack: SlackTargets = ()
    required: bool = False
    pagerduty: PagerDutyTarget | None = None
    opsgenie: OpsgenieTarget | None = None
    webhook: WebhookTarget | None = None
    ack_timeout: Duration | None = None
    oncall: OnCallSource | None = None

    @property
    def has_pager(self) -> bool:
        """Whether a pager other than a Slack DM is configured."""
        return any(t is not None for t in (self.pagerduty, self.opsgenie, self.webhook))


class EscalationTier(_Model):
    """Paged when nobody has acknowledged `after` the start of paging."""

    after: Offset
    page: Annotated[tuple[RoleName, ...], BeforeValidator(_one_or_many)] = ()
    opsgenie: OpsgenieTarget | None = None

    @model_validator(mode="after")
    def _pages_someone(self) -> EscalationTier:
        if self.opsgenie is not None and not self.opsgenie.responders:
            raise _fail(
                "a tier's `opsgenie:` needs `responders:`",
                "e.g. `opsgenie: {responders: [{type: team, name: dba}]}`",
            )
        if not self.page and self.opsgenie is None:
            raise _fail("this tier pages no one", "add `page: [ROLE, ...]` or `opsgenie:`")
        return self


class Reminders(_Model):
    """How often the channel is reminded to post a status update, per severity."""

    status_update_every: dict[SeverityLevel, Duration] = Field(default_factory=dict)


class Bookmark(_Model):
    """A link bookmarked in the incident channel."""

    title: Text
    link: Link


class PostmortemPolicy(_Model):
    """When the postmortem is due after the incident is resolved."""

    due_in: Duration | None = None


# --- follow-ups in the team's tracker ---------------------------------------------------------

_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_GITHUB_LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_JIRA_PROJECT_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _github_repo(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if _REPO_RE.match(text) and not text.endswith((".git", "/")):
        return text
    fix = "write the repository as `owner/name`, e.g. `acme/infra`"
    found = re.search(r"github\.com[/:]([^/\s]+/[^/\s]+?)(?:\.git)?/?$", text)
    if found and _REPO_RE.match(found.group(1)):
        fix = f"write `{found.group(1)}`"
    raise _fail(f"{_quote(value)} is not a GitHub repository", fix)


def _github_login(value: object) -> str:
    text = value.strip().removeprefix("@") if isinstance(value, str) else ""
    if _GITHUB_LOGIN_RE.match(text):
        return text
    raise _fail(
        f"{_quote(value)} is not a GitHub login",
        "write the person's GitHub username, e.g. `bob-gh`",
    )


def _jira_url(value: object) -> str:
    text = _text(value)
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password:
        raise _fail(
            "this address carries credentials",
            "write the site's address alone; the credentials come from `email_env` and `token_env`",
        )
    if parts.scheme == "https" and host:
        return text.rstrip("/")
    if parts.scheme == "http" and host in _LOOPBACK_HOSTS:
        return text.rstrip("/")  # a test server on this machine
    fix = "write the site's https address, e.g. `https://acme.atlassian.net`"
    if parts.scheme == "http" and host:
        fix = f"write `{urlunsplit(('https', parts.netloc, parts.path, '', ''))}`"
    raise _fail(f"{_quote(text)} is not an https address", fix)


def _jira_project(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if _JIRA_PROJECT_RE.match(text):
        return text
    fix = "write the project's key as Jira shows it, e.g. `OPS`"
    upper = re.sub(r"[^A-Z0-9_]", "", text.upper())
    if _JIRA_PROJECT_RE.match(upper):
        fix = f"write `{upper}`"
    raise _fail(f"{_quote(value)} is not a Jira project key", fix)


def _label(value: object) -> str:
    text = _text(value)
    if len(text) > 50 or any(ch.isspace() for ch in text):
        raise _fail(
            f"{_quote(text)} is not a label",
            "write labels without spaces, at most 50 characters (Jira refuses spaces)",
        )
    return text


GitHubRepo = Annotated[str, BeforeValidator(_github_repo)]
GitHubLogin = Annotated[str, BeforeValidator(_github_login)]
JiraUrl = Annotated[str, BeforeValidator(_jira_url)]
JiraProject = Annotated[str, BeforeValidator(_jira_project)]
Labels = Annotated[
    tuple[Annotated[str, BeforeValidator(_label)], ...], BeforeValidator(_one_or_many)
]


class GitHubFollowUps(_Model):
    """Tasks filed as GitHub issues in `repo`; the token is read from `token_env`."""

    repo: GitHubRepo
    token_env: EnvName
    labels: Labels = ()
    logins: dict[SlackTarget, GitHubLogin] = Field(default_factory=dict)


class JiraFollowUps(_Model):
    """Tasks filed as Jira issues in `project` at `url`; basic auth from the environment."""

    url: JiraUrl
    project: JiraProject
    issue_type: Text = "Task"
    email_env: EnvName
    token_env: EnvName
    labels: Labels = ()


class FollowUps(_Model):
    """Where a playbook's follow-up tasks (and, when `measures`, its measures) are filed."""

    github: GitHubFollowUps | None = None
    jira: JiraFollowUps | None = None
    measures: bool = False

    @model_validator(mode="after")
    def _one_tracker(self) -> FollowUps:
        if self.github is None and self.jira is None:
            raise _fail(
                "`followups:` names no tracker",
                "add `github: {repo: owner/name, token_env: GITHUB_TOKEN}` or `jira: {…}`",
            )
        if self.github is not None and self.jira is not None:
            raise _fail("`followups:` names two trackers", "keep one of `github:` and `jira:`")
        return self

    @property
    def tracker(self) -> str:
        """`github` or `jira`."""
        return "github" if self.github is not None else "jira"


Roles = dict[RoleName, Annotated[Role, BeforeValidator(_none_as_empty)]]


# --- alert routes -----------------------------------------------------------------------------

# A matcher value holding any of these is a full-match regular expression.
REGEX_CHARACTERS = frozenset("|.*+?[(")
_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_regex(value: str) -> bool:
    """Whether an alert route's matcher value is read as a regular expression."""
    return any(ch in REGEX_CHARACTERS for ch in value)


def _label_name(value: object) -> str:
    if isinstance(value, str) and _LABEL_RE.match(value):
        return value
    raise _fail(
        f"{_quote(value)} is not a label name",
        "use letters, digits and `_`, starting with a letter or `_` (as Prometheus does)",
    )


def _matcher_value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail("expected a label value", "write a string; quote it if it holds `|` or `:`")
    text = str(value)
    if is_regex(text):
        try:
            re.compile(text)
        except re.error as exc:
            raise _fail(
                f"{_quote(text)} is not a valid regular expression ({exc.msg})",
                "fix the expression, or escape `|.*+?[(` with `\\` to match them literally",
            ) from None
    return text


def _route_severity(value: object) -> object:
    # `severity: sev2` is shorthand for a fixed severity.
    return {"fixed": value} if isinstance(value, str | Severity) else value


LabelName = Annotated[str, BeforeValidator(_label_name)]
MatcherValue = Annotated[str, BeforeValidator(_matcher_value)]


class AlertSeverity(_Model):
    """An alert route's severity: fixed, or read from a label through a map."""

    fixed: SeverityLevel | None = None
    from_label: LabelName | None = None
    map: dict[str, SeverityLevel] = Field(default_factory=dict)
    default: SeverityLevel = Severity.SEV3

    @model_validator(mode="after")
    def _one_way(self) -> AlertSeverity:
        if self.fixed is None and self.from_label is None:
            raise _fail(
                "this severity names neither a severity nor a label",
                "write `severity: sev2`, or `{from_label: severity, map: {critical: sev1}}`",
            )
        return self

    def for_labels(self, labels: Mapping[str, str]) -> Severity:
        """The severity of an alert with these labels."""
        if self.fixed is not None:
            return self.fixed
        value = labels.get(self.from_label or "", "")
        return self.map.get(value, self.map.get(value.lower(), self.default))


class AlertRoute(_Model):
    """Alerts whose labels match come to this playbook (`alerts:` in a playbook)."""

    match: dict[LabelName, MatcherValue]
    severity: Annotated[AlertSeverity, BeforeValidator(_route_severity)] = Field(
        default_factory=lambda: AlertSeverity(fixed=Severity.SEV3)
    )
    declare: Annotated[Literal["auto", "ask"], _choice("a way to declare", ("auto", "ask"))] = (
        "auto"
    )
    group_by: tuple[LabelName, ...] | None = None

    @field_validator("match", mode="after")
    @classmethod
    def _matches_something(cls, match: dict[str, str]) -> dict[str, str]:
        if not match:
            raise _fail("this route matches every alert", "add `match: {alertname: ...}`")
        return match

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with these labels takes this route (a missing label is "")."""
        for name, wanted in self.match.items():
            value = labels.get(name, "")
            if is_regex(wanted):
                if re.fullmatch(wanted, value) is None:
                    return False
            elif value != wanted:
                return False
        return True

    def claim(self) -> tuple[tuple[str, str], ...]:
        """The matchers, in a form two routes can be compared by."""
        return tuple(sorted(self.match.items()))


class Playbook(_Model):
    """One playbook file, validated."""

    name: Annotated[str, BeforeValidator(_playbook_name)]
    match: Match
    private: bool = False
    admins: SlackTargets = ()
    opsgenie: OpsgenieDefaults | None = None
    roles: Roles = Field(default_factory=dict)
    escalation: tuple[EscalationTier, ...] = ()
    reminders: Reminders = Field(default_factory=Reminders)
    checklist: tuple[Text, ...] = ()
    bookmarks: tuple[Bookmark, ...] = ()
    postmortem: PostmortemPolicy = Field(default_factory=PostmortemPolicy)
    followups: FollowUps | None = None
    alerts: tuple[AlertRoute, ...] = ()

    @field_validator("escalation", mode="wrap")
    @classmethod
    def _tiers_fit(
        cls, tiers: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> tuple[EscalationTier, ...]:
        # On the tiers as written, so that one tier's own mistake (a bad `after`, a bad key)
        # hides nothing about the others: each `after` that reads is compared with the last
        # one before it that reads, and every role a tier pages must be defined. Reported
        # together with the tiers' own errors.
        errors = _tier_errors(tiers, info)
        try:
            valid: tuple[EscalationTier, ...] = handler(tiers)
        except ValidationError as exc:
            errors = [*_init_errors(exc), *errors]
        if errors:
            raise ValidationError.from_exception_data("escalation", errors)
        return valid

    @property
    def is_default(self) -> bool:
        """Whether this is the directory's default playbook."""
        return self.match.default

    @property
    def tiers(self) -> tuple[EscalationTier, ...]:
        """The escalation tiers, in the order they are paged."""
        return self.escalation

    def roles_paged_at(self, tier_index: int) -> dict[str, Role]:
        """The roles a tier pages, by name, in the order written; IndexError past the last tier."""
        return {name: self.roles[name] for name in self.escalation[tier_index].page}

    def reminder_interval(self, severity: Severity) -> timedelta | None:
        """How often to remind about status updates at severity; None for no reminders."""
        return self.reminders.status_update_every.get(severity)

    def all_services(self) -> tuple[str, ...]:
        """The services this playbook is matched by, as written."""
        return self.match.services

    def opsgenie_key_env(self, target: OpsgenieTarget) -> str:
        """The variable holding the Opsgenie API key for a role's or tier's target."""
        if target.api_key_env is not None:
            return target.api_key_env
        if self.opsgenie is not None:
            return self.opsgenie.api_key_env
        return DEFAULT_OPSGENIE_KEY_ENV

    def slack_targets(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every Slack target in the playbook with where it is written (admins, roles)."""
        found: list[tuple[tuple[str | int, ...], str]] = [
            (("admins", index), target) for index, target in enumerate(self.admins)
        ]
        for name, role in self.roles.items():
            found += [(("roles", name, "slack", i), target) for i, target in enumerate(role.slack)]
        return found


def _tier_errors(tiers: object, info: ValidationInfo) -> list[InitErrorDetails]:
    """What is wrong between the tiers as written: their order, and the roles they page."""
    if not isinstance(tiers, list | tuple):
        return []
    roles = info.data.get("roles")  # None: roles are invalid, and reported already
    if ("roles",) in (info.context or {}).get(_TAKEN_OUT, ()):
        roles = None  # `roles:` is not a mapping at all: every name would look unknown
    written = _written_indices(info, ("escalation",), len(tiers))
    errors: list[InitErrorDetails] = []
    previous: tuple[int, timedelta] | None = None
    for index, tier in enumerate(tiers):
        after, page = _tier_as_written(tier)
        if after is not None and previous is not None and after <= previous[1]:
            errors.append(
                _error(
                    (index, "after"),
                    f"`after: {format_duration(after)}` is not later than "
                    f"escalation[{written[previous[0]]}] (`{format_duration(previous[1])}`)",
                    "tiers are paged in order and `after` counts from the start of "
                    "paging, so give each tier a later `after` than the one before",
                )
            )
        previous = (index, after) if after is not None else previous
        for position, role in enumerate(page):
            if roles is not None and _ROLE_RE.match(role) and role not in roles:
                errors.append(
                    _error(
                        (index, "page", position),
                        f"unknown role `{role}`",
                        _role_fix(role, roles),
                    )
                )
    return errors


def _tier_as_written(tier: object) -> tuple[timedelta | None, list[str]]:
    """A tier's `after` (None when it does not read) and the role names it pages, unvalidated."""
    if isinstance(tier, EscalationTier):
        return tier.after, list(tier.page)
    if not isinstance(tier, dict):
        return None, []
    try:
        after: timedelta | None = _offset(tier.get("after"))
    except PydanticCustomError:
        after = None
    page = _one_or_many(tier.get("page", ()))
    names = [role for role in page if isinstance(role, str)] if isinstance(page, list) else []
    return after, names


def _written_indices(info: ValidationInfo, loc: tuple[str | int, ...], count: int) -> list[int]:
    """The index each item of the list at loc has in the file (items may have been taken out
    to find every problem in one pass: see `_validate_in_passes`)."""
    kept = (info.context or {}).get(_KEPT_ITEMS, {}).get(loc)
    return list(kept) if kept is not None and len(kept) == count else list(range(count))


_PYDANTIC_ERROR_TYPES = frozenset(get_args(ErrorType))


def _init_errors(exc: ValidationError) -> list[InitErrorDetails]:
    """A validation error's errors as they were raised, to raise again with others."""
    found: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        details = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
        if error["type"] == "playbook":
            details["type"] = _fail(str(ctx["message"]), str(ctx.get("fix", "")))
        elif error["type"] not in _PYDANTIC_ERROR_TYPES:
            details["type"] = PydanticCustomError(error["type"], error["msg"])
        elif ctx:
            details["ctx"] = ctx
        found.append(details)
    return found


def _error(loc: tuple[str | int, ...], message: str, fix: str) -> InitErrorDetails:
    return InitErrorDetails(type=_fail(message, fix), loc=loc, input=None)


def _role_fix(role: str, roles: Iterable[str]) -> str:
    names = sorted(roles)
    if not names:
        return "define it under roles:"
    close = difflib.get_close_matches(role, names, n=1)
    hint = f"did you mean `{close[0]}`? Otherwise " if close else ""
    return f"{hint}define it under roles: or use one of {', '.join(names)}"


# --- matching ---------------------------------------------------------------------------------


def select_playbook(
    playbooks: Sequence[Playbook], *, service: str | None, severity: Severity
) -> Playbook | None:
    """The playbook for an incident: the most specific service match, else the default."""
    matches = [p for p in playbooks if p.match.covers(service=service, severity=severity)]
    if matches:
        return min(matches, key=lambda p: (_severity_rank(p.match.min_severity), p.name))
    defaults = sorted((p for p in playbooks if p.is_default), key=lambda p: p.name)
    return defaults[0] if defaults else None


def all_services(playbooks: Iterable[Playbook]) -> list[str]:
    """Every service any playbook names, once each (case-insensitively), sorted; for menus."""
    seen: dict[str, str] = {}
    for playbook in playbooks:
        for service in playbook.all_services():
            seen.setdefault(service.casefold(), service)
    return sorted(seen.values(), key=str.casefold)


# --- loading ----------------------------------------------------------------------------------

_ENV_FIELDS_OWNER = {
    "routing_key_env": "pagerduty",
    "api_key_env": "opsgenie",
    "url_env": "webhook",
    "secret_env": "webhook",
}
_SECRET_KEYS = {
    "routing_key": "routing_key_env",
    "integration_key": "routing_key_env",
    "service_key": "routing_key_env",
    "api_key": "api_key_env",
    "apikey": "api_key_env",
    "url": "url_env",
    "webhook_url": "url_env",
    "secret": "secret_env",
    "signing_secret": "secret_env",
    "token": "secret_env",
    "password": "secret_env",
    "key": "secret_env",
}
# Keys people reach for that are too far from ours for difflib to find.
_KEY_HINTS: dict[str, dict[str, str]] = {
    "Bookmark": {"url": "link", "href": "link", "name": "title"},
    "Match": {"service": "services", "severity": "min_severity"},
    "EscalationTier": {"delay": "after", "wait": "after", "roles": "page", "notify": "page"},
    "Playbook": {"tiers": "escalation", "admin": "admins", "bookmark": "bookmarks"},
    "Reminders": {"status_updates": "status_update_every", "every": "status_update_every"},
    "FollowUps": {"measure": "measures", "gh": "github"},
    "GitHubFollowUps": {"repository": "repo", "label": "labels", "assignees": "logins"},
    "JiraFollowUps": {"key": "project", "project_key": "project", "type": "issue_type"},
    "OnCallSource": {
        "schedule": "pagerduty_schedule",
        "schedule_id": "pagerduty_schedule",
        "escalation_policy": "pagerduty_escalation_policy",
        "policy": "pagerduty_escalation_policy",
    },
}
# Secrets people write inline in `followups:`, and the variable each should name instead.
_TRACKER_SECRET_KEYS: dict[str, dict[str, tuple[str, str]]] = {
    "GitHubFollowUps": {
        "token": ("token_env", "GITHUB_TOKEN"),
        "github_token": ("token_env", "GITHUB_TOKEN"),
    },
    "JiraFollowUps": {
        "token": ("token_env", "JIRA_API_TOKEN"),
        "api_token": ("token_env", "JIRA_API_TOKEN"),
        "password": ("token_env", "JIRA_API_TOKEN"),
        "email": ("email_env", "JIRA_EMAIL"),
        "user": ("email_env", "JIRA_EMAIL"),
    },
}
_MISSING_FIXES = {
    "match": "add `match: {services: [...]}`, or `match: {default: true}` for the default playbook",
    "routing_key_env": "add `routing_key_env: PD_DB_KEY`, the variable holding the routing key",
    "api_key_env": "add `api_key_env: OG_KEY`, the variable holding the Opsgenie API key",
    "url_env": "add `url_env: HOOK_URL`, the variable holding the webhook's URL",
    "after": "add `after: 5m`, when this tier is paged if nobody has acknowledged",
    "type": "add `type:` team, user, escalation or schedule",
    "title": "add `title: ...`, the bookmark's name in the channel",
    "link": 'add `link: "https://…"`',
    "repo": "add `repo: owner/name`, the repository the issues go to",
    "token_env": "add `token_env: GITHUB_TOKEN` (or `JIRA_API_TOKEN`), the variable holding "
    "the API token",
    "email_env": "add `email_env: JIRA_EMAIL`, the variable holding the Jira account's email",
    "url": 'add `url: "https://acme.atlassian.net"`, the Jira site',
    "project": "add `project: OPS`, the key of the Jira project",
}
_TYPE_ERRORS = {
    "model_type": ("expected a mapping", "write `key: value` pairs"),
    "dict_type": ("expected a mapping", "write `key: value` pairs"),
    "model_attributes_type": ("expected a mapping", "write `key: value` pairs"),
    "tuple_type": ("expected a list", "write `[a, b]`, or one `- item` per line"),
    "list_type": ("expected a list", "write `[a, b]`, or one `- item` per line"),
    "bool_type": ("expected true or false", "write `true` or `false`"),
    "bool_parsing": ("expected true or false", "write `true` or `false`"),
    "string_type": ("expected text", "write a string; quote it if it contains `:` or `#`"),
}


@dataclass(frozen=True)
class PlaybookFile:
    """A playbook that loaded, with its file and YAML nodes, to point at its lines.

    A file with problems is loaded too, as the part of it that is valid (`complete` is False),
    so that the checks across files and against Slack see all of it; it is never used for an
    incident. `pruned` is what was taken out of it (see `_validate_in_passes`).
    """

    file: str
    playbook: Playbook
    root: yaml.Node
    complete: bool = True
    pruned: _Pruned | None = None

    def problem(
        self, loc: Sequence[str | int], *, message: str, fix: str, at_key: bool = False
    ) -> PlaybookProblem:
        """A problem located at loc (a path like `("roles", "ops", "slack", 0)`) in this file."""
        if self.pruned is not None:  # loc counts the items of the valid part, not of the file
            loc = self.pruned.original(tuple(loc))
        line, column = _locate(self.root, loc, at_key=at_key)
        return PlaybookProblem(self.file, line, column, _format_path(loc), message, fix)


def load_playbook(text: str, *, filename: str) -> Playbook:
    """Validate one playbook file's text; raise PlaybookInvalid with every problem in it."""
    loaded, problems = _load_file(text, filename=filename)
    if loaded is None or problems:
        raise PlaybookInvalid(problems)
    return loaded.playbook


def check_playbook_files(
    files: Mapping[str, str],
) -> tuple[list[PlaybookFile], list[PlaybookProblem]]:
    """Validate several files (name → text) and the rules between them; never raises."""
    loaded: list[PlaybookFile] = []
    problems: list[PlaybookProblem] = []
    for filename, text in files.items():
        one, found = _load_file(text, filename=filename)
        problems += found
        if one is not None:
            loaded.append(one)
    problems += _cross_file_problems(loaded)
    order = {filename: index for index, filename in enumerate(files)}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line, p.column))
    return loaded, problems


def load_playbooks(files: Mapping[str, str]) -> list[Playbook]:
    """Validate several files (name → text); raise PlaybookInvalid listing every problem."""
    loaded, problems = check_playbook_files(files)
    if problems:
        raise PlaybookInvalid(problems)
    return [one.playbook for one in loaded]


def _cross_file_problems(loaded: Sequence[PlaybookFile]) -> list[PlaybookProblem]:
    problems: list[PlaybookProblem] = []
    names: dict[str, PlaybookFile] = {}
    default: PlaybookFile | None = None
    for one in loaded:
        if one.pruned is not None and one.pruned.has_replaced(("name",)):
            continue  # the name is wrong, and reported already
        first = names.setdefault(one.playbook.name.casefold(), one)
        if first is not one:
            problems.append(
                one.problem(
                    ("name",),
                    message=f"the playbook name `{one.playbook.name}` is already used by "
                    f"{first.file}",
                    fix="give each playbook its own `name:` (without `name:`, the file name "
                    "is the name)",
                )
            )
        if one.playbook.is_default:
            if default is None:
                default = one
            else:
                problems.append(
                    one.problem(
                        ("match", "default"),
                        message=f"a second default playbook ({default.file} is the default)",
                        fix="keep `default: true` in one playbook only",
                    )
                )
    problems += _claimed_twice(loaded)
    return problems


def _claimed_twice(loaded: Sequence[PlaybookFile]) -> list[PlaybookProblem]:
    """Alert routes with the same matchers in two places: which playbook gets the alert?"""
    problems: list[PlaybookProblem] = []
    claims: dict[tuple[tuple[str, str], ...], tuple[PlaybookFile, int]] = {}
    for one in loaded:
        for index, route in enumerate(one.playbook.alerts):
            first = claims.setdefault(route.claim(), (one, index))
            if first != (one, index):
                owner, at = first
                problems.append(
                    one.problem(
                        ("alerts", index, "match"),
                        message=f"this route's matchers are already claimed by "
                        f"{owner.file} (alerts[{at}])",
                        fix="keep the route in one playbook, or make the matchers differ",
                    )
                )
    return problems


def _load_file(text: str, *, filename: str) -> tuple[PlaybookFile | None, list[PlaybookProblem]]:
    root, data, problems = _parse_yaml(text, filename=filename)
    if problems:
        return None, problems
    if root is None:
        return None, [
            PlaybookProblem(
                filename,
                1,
                1,
                "",
                "the file is empty",
                "a playbook needs at least `match:`; start from playbooks/default.yaml",
            )
        ]
    if not isinstance(data, dict):
        return None, [
            PlaybookProblem(
                filename,
                root.start_mark.line + 1,
                root.start_mark.column + 1,
                "",
                "a playbook is a mapping of keys such as `name:`, `match:` and `roles:`",
                "write `key: value` lines at the top level; see playbooks/default.yaml",
            )
        ]
    problems = _duplicate_keys(root, filename=filename)
    fields = dict(data)
    fields.setdefault("name", PurePath(filename).stem)
    playbook, found, pruned = _validate_in_passes(fields, root=root, filename=filename)
    problems += found
    problems.sort(key=lambda p: (p.line, p.column))
    if playbook is None:
        return None, problems
    if not problems:
        return PlaybookFile(filename, playbook, root), []
    return PlaybookFile(filename, playbook, root, complete=False, pruned=pruned), problems


def _parse_yaml(
    text: str, *, filename: str
) -> tuple[yaml.Node | None, object, list[PlaybookProblem]]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        detail = exc.problem or exc.context or "not valid YAML"
        fix = _yaml_fix(detail)
        opened = exc.context_mark
        if exc.problem and exc.context and opened is not None and opened is not mark:
            detail += f" ({exc.context} on line {opened.line + 1})"
            if "flow mapping" in exc.context or "flow sequence" in exc.context:
                bracket = "{" if "mapping" in exc.context else "["
                fix = f"close the `{bracket}` opened on line {opened.line + 1}"
        problem = PlaybookProblem(filename, line, column, "", f"YAML syntax error: {detail}", fix)
        return None, None, [problem]
    except yaml.YAMLError as exc:
        return None, None, [PlaybookProblem(filename, 0, 0, "", f"not readable YAML: {exc}", "")]
    finally:
        loader.dispose()
    return root, data, []


def _yaml_fix(detail: str) -> str:
    if "'@'" in detail or "'`'" in detail:
        return 'quote values that start with `@`, e.g. `"@alice"`'
    if "'\\t'" in detail:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in detail:
        return "quote text that contains `: `, or fix the indentation of this line"
    if "expected a single document" in detail:
        return "keep one playbook per file and remove the `---` separators"
    return "check the indentation and quoting on this line and the line before it"


def _duplicate_keys(root: yaml.Node, *, filename: str) -> list[PlaybookProblem]:
    problems: list[PlaybookProblem] = []

    def walk(node: yaml.Node, loc: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is not None and name != "<<":
                    if name in seen:
                        problems.append(
                            PlaybookProblem(
                                filename,
                                key.start_mark.line + 1,
                                key.start_mark.column + 1,
                                _format_path((*loc, name)),
                                f"`{name}` is written twice here",
                                "merge the two: YAML silently keeps only the last one",
                            )
                        )
                    seen.add(name)
                walk(value, (*loc, name if name is not None else "?"))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    walk(root, ())
    return problems


def _translate(
    errors: Sequence[ErrorDetails], *, root: yaml.Node, data: Mapping[str, Any], filename: str
) -> list[PlaybookProblem]:
    problems: list[PlaybookProblem] = []
    # A key written under a wrong name (`url:` for `link:`, an inline `routing_key:`) also
    # makes the right one missing; saying so twice is noise.
    meant: set[tuple[str | int, ...]] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = tuple(error["loc"])
            meant.add((*loc[:-1], _unknown_key(loc, data)[2]))
    for error in errors:
        loc = tuple(error["loc"])
        kind = error["type"]
        ctx = error.get("ctx") or {}
        at_key = False
        if kind == "playbook":
            message, fix = str(ctx["message"]), str(ctx.get("fix", ""))
        elif kind == "extra_forbidden":
            message, fix, _ = _unknown_key(loc, data)
            at_key = True
        elif kind == "missing" and loc in meant:
            continue
        elif kind == "missing":
            key = str(loc[-1])
            message = f"`{key}` is missing"
            fix = _MISSING_FIXES.get(key, f"add `{key}:`")
        elif kind in _TYPE_ERRORS:
            message, fix = _TYPE_ERRORS[kind]
        else:
            message, fix = str(error["msg"]), ""
        line, column = _locate(root, loc, at_key=at_key)
        problems.append(PlaybookProblem(filename, line, column, _format_path(loc), message, fix))
    return problems


# --- every problem in one pass -----------------------------------------------------------------
#
# Pydantic reports every field's error at once, but a check over a whole model or a validated
# field (the tiers' order, "this tier pages no one", checks others add to new sections) runs only
# when all it covers is valid, and a file that does not validate used to skip the checks across
# files and against Slack: one bad duration hid an unknown `@handle`, so people fixed a file
# three times. A file with problems is therefore validated again without what was wrong, until
# it validates or nothing more can be taken out; every pass may add problems, and the last one
# leaves the valid part of the file for the later checks.
#
# Taking something out must not invent problems: what is reported inside it later (a required
# key now "missing") is its consequence, not news; nor is what the model right above it says
# (`page: [Ops]` taken down to `page: []` is not "a tier that pages no one"). A model's own
# complaint about a sibling of a wrong value is held back for the same reason, until it is fixed.

Loc = tuple[str | int, ...]
_MAX_PASSES = 12
# Required top-level keys have nothing above them to take out: a stand-in keeps the rest of the
# file checkable (the checks across files skip a stand-in name).
_TOP_LEVEL_STAND_INS: dict[str, object] = {"name": "unnamed", "match": {"services": ["-"]}}


class _Removed:
    """Marks a value taken out of a file (rather than replaced by a stand-in)."""


_REMOVED = _Removed()
# Validation context keys: which list items of the file a pass validates, and what it is
# validated without (for checks by name, to which a missing target is no news).
_KEPT_ITEMS = "kept_items"
_TAKEN_OUT = "taken_out"


@dataclass
class _Pruned:
    """What a file is validated without, located in the file as written."""

    replaced: dict[Loc, object] = field(default_factory=dict)  # loc -> stand-in or _REMOVED
    kept: dict[Loc, list[int]] = field(default_factory=dict)  # a list's loc -> items kept

    def has_replaced(self, loc: Loc) -> bool:
        return loc in self.replaced

    def replace(self, loc: Loc, value: object) -> bool:
        """Take loc out (or stand in for it); whether that is new."""
        if loc in self.replaced and self.replaced[loc] == value:
            return False
        self.replaced[loc] = value
        return True

    def apply(self, value: object, loc: Loc = ()) -> object:
        """A copy of the file's data without what was taken out; notes which list items stay."""
        if not loc:
            self.kept = {}
        if isinstance(value, dict):
            copy: dict[object, object] = {}
            for key, item in value.items():
                here = (*loc, key)
                if here not in self.replaced:
                    copy[key] = self.apply(item, here)
                elif self.replaced[here] is not _REMOVED:
                    copy[key] = self.replaced[here]
            for taken, stand_in in self.replaced.items():  # stand-ins for missing keys
                if taken[:-1] == loc and taken[-1] not in value and stand_in is not _REMOVED:
                    copy[taken[-1]] = stand_in
            return copy
        if isinstance(value, list):
            kept = [index for index in range(len(value)) if (*loc, index) not in self.replaced]
            self.kept[loc] = kept
            return [self.apply(value[index], (*loc, index)) for index in kept]
        return value

    def original(self, loc: Loc) -> Loc:
        """Where a loc in the pruned data is in the file: list items counted as written."""
        found: list[str | int] = []
        for element in loc:
            kept = self.kept.get(tuple(found))
            if isinstance(element, int) and kept is not None and 0 <= element < len(kept):
                element = kept[element]
            found.append(element)
        return tuple(found)

    def covering(self, loc: Loc) -> Loc | None:
        """What was taken out that loc is at or inside."""
        for taken in self.replaced:
            if loc[: len(taken)] == taken:
                return taken
        return None

    def just_below(self, loc: Loc) -> bool:
        """Whether something was taken out of the model at loc (a field, or a field's item)."""
        return any(
            len(loc) < len(taken) <= len(loc) + 2 and taken[: len(loc)] == loc
            for taken in self.replaced
        )

    def beyond(self, taken: Loc) -> tuple[Loc, object] | None:
        """What to take out when taking out `taken` was not enough (a stand-in fails, or a
        required key is now missing): the stand-in goes, else the model that holds it."""
        if self.replaced.get(taken) is not _REMOVED:
            return taken, _REMOVED
        return _what_to_take_out(taken[:-1]) if len(taken) > 1 else None


def _what_to_take_out(loc: Loc) -> tuple[Loc, object] | None:
    """The part of a file to validate without, for an error at loc, and what stands in."""
    if loc and loc[-1] == "[key]":
        return loc[:-1], _REMOVED  # a wrong key: its whole entry
    if not loc:
        return None  # the file itself
    if len(loc) == 1:
        return loc, _TOP_LEVEL_STAND_INS.get(str(loc[0]), _REMOVED)
    model = _model_at(loc)
    if (
        not isinstance(loc[-1], int)
        and _model_at(loc[:-1]) is None
        and model is not None
        and not any(info.is_required() for info in model.model_fields.values())
    ):
        # An entry of a mapping (a role): kept, empty, so what refers to it by name still can.
        return loc, {}
    return loc, _REMOVED


def _validate_in_passes(
    fields: Mapping[str, Any], *, root: yaml.Node, filename: str
) -> tuple[Playbook | None, list[PlaybookProblem], _Pruned]:
    """The playbook (or its valid part), and every problem found on the way, in file order."""
    pruned = _Pruned()
    problems: dict[PlaybookProblem, None] = {}  # in the order found, once each
    data: object = fields
    for _ in range(_MAX_PASSES):
        try:
            context = {_KEPT_ITEMS: pruned.kept, _TAKEN_OUT: frozenset(pruned.replaced)}
            playbook = Playbook.model_validate(data, context=context)
            return playbook, list(problems), pruned
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        shown: list[ErrorDetails] = []
        progress = False
        earlier = _Pruned(dict(pruned.replaced), pruned.kept)  # as this pass was validated
        for error in errors:
            loc = pruned.original(tuple(error["loc"]))
            taken = earlier.covering(loc)
            if taken is not None:
                target = earlier.beyond(taken)  # a consequence of taking it out
            else:
                target = _what_to_take_out(loc)
                if not earlier.just_below(loc):
                    shown.append({**error, "loc": loc})
            if target is not None and pruned.replace(*target):
                progress = True
        for problem in _translate(shown, root=root, data=fields, filename=filename):
            problems.setdefault(problem)
        if not progress:
            break
        data = pruned.apply(fields)
    return None, list(problems), pruned


def _unknown_key(loc: tuple[str | int, ...], data: Mapping[str, Any]) -> tuple[str, str, str]:
    """Message, fix, and the key that was probably meant ("" when none)."""
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    allowed = sorted(model.model_fields) if model is not None else []
    owner = model.__name__ if model is not None else ""
    inline = _TRACKER_SECRET_KEYS.get(owner, {}).get(key.lower())
    if inline is not None:
        field, variable = inline
        fix = f"secrets stay in the environment: write `{field}: {variable}` and set {variable}"
        return "a secret written inline", fix, field
    hint = _KEY_HINTS.get(owner, {}).get(key.lower())
    if hint is None and _is_secret_key(key):
        env_field = _secret_env_field(key, allowed)
        variable = _suggest_variable(env_field, data)
        block = _ENV_FIELDS_OWNER[env_field]
        written = f"{env_field}: {variable}"
        if env_field not in allowed:
            written = f"{block}: {{{written}}}"
        fix = f"secrets stay in the environment: write `{written}` and set {variable}"
        return "a secret written inline", fix, env_field
    if hint is None:
        close = difflib.get_close_matches(key.lower(), allowed, n=1, cutoff=0.6)
        hint = close[0] if close else None
    if hint is not None:
        return f"unknown key `{key}`", f"did you mean `{hint}`?", hint
    fix = "use one of " + ", ".join(allowed) if allowed else ""
    return f"unknown key `{key}`", fix, ""


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered.endswith("_env"):
        return False
    return lowered in _SECRET_KEYS or lowered.endswith(
        ("_key", "_token", "_secret", "_password", "_url")
    )


def _secret_env_field(key: str, allowed: Sequence[str]) -> str:
    lowered = key.lower()
    own = [name for name in allowed if name in _ENV_FIELDS_OWNER]
    if own == ["routing_key_env"] or own == ["api_key_env"]:
        return own[0]
    if own:  # a webhook: the URL or its signing secret
        return "url_env" if "url" in lowered else "secret_env"
    if lowered in _SECRET_KEYS:
        return _SECRET_KEYS[lowered]
    return "url_env" if lowered.endswith("_url") else "secret_env"


def _suggest_variable(env_field: str, data: Mapping[str, Any]) -> str:
    name = data.get("name")
    stem = re.sub(r"[^A-Z0-9]+", "_", str(name).upper()).strip("_") if name else ""
    stem = stem if stem and stem[0].isalpha() else "PLAYBOOK"
    return {
        "routing_key_env": f"PD_{stem}_KEY",
        "api_key_env": f"OG_{stem}_KEY",
        "url_env": f"{stem}_WEBHOOK_URL",
        "secret_env": f"{stem}_WEBHOOK_SECRET",
    }[env_field]


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    annotation: Any = Playbook
    for element in loc:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(element))
            if field is None:
                return None
            annotation = field.annotation
        elif origin in (tuple, list):
            annotation = get_args(annotation)[0]
        elif origin is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _locate(root: yaml.Node, loc: Sequence[str | int], *, at_key: bool) -> tuple[int, int]:
    node = root
    key_node: yaml.Node | None = None
    for index, element in enumerate(loc):
        if element == "[key]":
            node = key_node or node
            break
        if isinstance(node, yaml.MappingNode):
            found = [
                (key, value)
                for key, value in node.value
                if isinstance(key, yaml.ScalarNode) and key.value == str(element)
            ]
            if not found:
                break
            key_node, node = found[-1]  # YAML keeps the last of duplicate keys
            if at_key and index == len(loc) - 1:
                node = key_node
        elif isinstance(node, yaml.SequenceNode) and isinstance(element, int):
            if not 0 <= element < len(node.value):
                break
            node = node.value[element]
        else:
            break
    return node.start_mark.line + 1, node.start_mark.column + 1


def _format_path(loc: Sequence[str | int]) -> str:
    path = ""
    for element in loc:
        if element == "[key]":
            continue
        if isinstance(element, int):
            path += f"[{element}]"
        else:
            path += f".{element}" if path else str(element)
    return path
