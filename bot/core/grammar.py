"""The `/incident` command: its usage strings, and the parser from typed text to a Command."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from bot.core.clock import check_incident_date, looks_like_date, parse_date, take_time
from bot.core.enums import Severity, Status
from bot.errors import UserError

MAX_TITLE = 200
MAX_TEXT = 3000

# One line per subcommand, as the product contract (DESIGN.md) writes them.
USAGE: Mapping[str, str] = MappingProxyType(
    {
        "help": "/incident help",
        "declare": "/incident declare [sev1-sev4] [title]",
        "list": "/incident list",
        "status": "/incident status investigating|identified|monitoring|resolved [at TIME] [text]",
        "sev": "/incident sev sev1-sev4",
        "role": "/incident role ROLE @user",
        "page": "/incident page ROLE|@user [message]",
        "note": "/incident note [at TIME] text",
        "started": "/incident started TIME",
        "impact": "/incident impact text",
        "cause": "/incident cause text",
        "resolution": "/incident resolution text",
        "measure": "/incident measure text",
        "task": "/incident task text [@owner] [due YYYY-MM-DD]",
        "tasks": "/incident tasks",
        "update": "/incident update text",
        "resolve": "/incident resolve [at TIME] [text]",
        "timeline": "/incident timeline",
        "postmortem": "/incident postmortem",
        "oncall": "/incident oncall [ROLE]",
        "stats": "/incident stats [30d|90d]",
    }
)

DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "help": "this help",
        "declare": "opens an incident; with no title, opens the declare form",
        "list": "open incidents",
        "status": "status change",
        "sev": "severity change",
        "role": "assigns a playbook role (commander, scribe, comms, …)",
        "page": "pages now, outside the playbook's schedule",
        "note": "timeline entry, backdated when a time is given",
        "started": "when impact began, if before the declaration",
        "impact": "what users saw (postmortem summary)",
        "cause": "the root cause (postmortem summary)",
        "resolution": "how it was fixed (postmortem summary)",
        "measure": "a corrective or preventative measure",
        "task": "a specific follow-up task",
        "tasks": "the follow-up tasks so far",
        "update": "status update, posted here and to the incidents channel",
        "resolve": "resolves; asks for missing impact/cause",
        "timeline": "the timeline so far",
        "postmortem": "uploads the Markdown draft to the channel",
        "oncall": "who is on call now for each role (from PagerDuty or Opsgenie schedules)",
        "stats": "incidents by severity, time to acknowledge and resolve, open tasks",
    }
)

HELP_TEXT = "\n".join(
    [
        "*`/incident` commands*",
        *(f"• `{USAGE[name]}` — {DESCRIPTIONS[name]}" for name in USAGE),
        "Outside an incident's channel, name the incident first: `/incident INC-7 note …`.",
        "Times are `HH:MM` (24 h) or `H:MM AM/PM`, today unless a date `YYYY-MM-DD` comes first.",
    ]
)

_ALIASES: Mapping[str, str] = MappingProxyType({"severity": "sev", "?": "help"})

_INCIDENT_RE = re.compile(r"^inc-([0-9]{1,9})$", re.IGNORECASE)
_SEVERITY_RE = re.compile(r"^sev-?([0-9]+)$", re.IGNORECASE)
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_USER_MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|([^>]*))?>$")
_GROUP_MENTION_RE = re.compile(r"^<!subteam\^([A-Z0-9]+)(?:\|@?([^>]*))?>$")
_SPECIAL_MENTION_RE = re.compile(r"^<!(here|channel|everyone)(?:\|[^>]*)?>$")
# A word, where Slack's `<…>` markup counts as part of the word even when it holds spaces
# (`<@U123|Alice Smith>`); a stray `<` is an ordinary character.
_TOKEN_RE = re.compile(r"(?:<[^<>]*>|[^\s<]|<)+")
_HANDLE_RE = re.compile(r"^@([\w][\w.-]{0,79})$")


@dataclass(frozen=True)
class UserRef:
    """A person: a Slack user id from an escaped mention, or a raw `@handle` to look up later."""

    id: str | None = None
    handle: str | None = None


@dataclass(frozen=True)
class GroupRef:
    """A Slack user group (`<!subteam^S123|@oncall>`)."""

    id: str
    handle: str | None = None


@dataclass(frozen=True, kw_only=True)
class CommandBase:
    """What every command has: the incident named before it (`INC-7`), if any."""

    incident: int | None = None


@dataclass(frozen=True, kw_only=True)
class Help(CommandBase):
    """Show usage; `topic` is the subcommand asked about (`/incident help status`)."""

    topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class Declare(CommandBase):
    """Open an incident; no title means open the declare form."""

    severity: Severity | None = None
    title: str | None = None


@dataclass(frozen=True, kw_only=True)
class List(CommandBase):
    """List the open incidents."""


@dataclass(frozen=True, kw_only=True)
class StatusCmd(CommandBase):
    """Change the status, possibly backdated."""

    status: Status
    at: datetime | None = None
    text: str | None = None


@dataclass(frozen=True, kw_only=True)
class Sev(CommandBase):
    """Change the severity."""

    severity: Severity


@dataclass(frozen=True, kw_only=True)
class Role(CommandBase):
    """Assign a playbook role to a person."""

    role: str
    user: UserRef


@dataclass(frozen=True, kw_only=True)
class PageCmd(CommandBase):
    """Page a role, a person or a user group now."""

    target: str | UserRef | GroupRef
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class Note(CommandBase):
    """Add a timeline entry, backdated when `at` is given."""

    at: datetime | None = None
    text: str


@dataclass(frozen=True, kw_only=True)
class Started(CommandBase):
    """Say when impact began."""

    at: datetime


@dataclass(frozen=True, kw_only=True)
class Impact(CommandBase):
    """Set the impact summary."""

    text: str


@dataclass(frozen=True, kw_only=True)
class Cause(CommandBase):
    """Set the root cause summary."""

    text: str


@dataclass(frozen=True, kw_only=True)
class Resolution(CommandBase):
    """Set the resolution summary."""

    text: str


@dataclass(frozen=True, kw_only=True)
class Measure(CommandBase):
    """Add a corrective or preventative measure."""

    text: str


@dataclass(frozen=True, kw_only=True)
class Task(CommandBase):
    """Add a follow-up task, with an owner and a due date when given."""

    text: str
    owner: UserRef | None = None
    due: date | None = None


@dataclass(frozen=True, kw_only=True)
class Tasks(CommandBase):
    """List the follow-up tasks."""


@dataclass(frozen=True, kw_only=True)
class Update(CommandBase):
    """Post a status update."""

    text: str


@dataclass(frozen=True, kw_only=True)
class Resolve(CommandBase):
    """Resolve, at `at` or now."""

    at: datetime | None = None
    text: str | None = None


@dataclass(frozen=True, kw_only=True)
class Timeline(CommandBase):
    """Show the timeline."""


@dataclass(frozen=True, kw_only=True)
class Postmortem(CommandBase):
    """Upload the postmortem draft."""


@dataclass(frozen=True, kw_only=True)
class OnCallCmd(CommandBase):
    """Show who is on call now, for every role or the one named."""

    role: str | None = None


@dataclass(frozen=True, kw_only=True)
class Stats(CommandBase):
    """How the process is doing over the last `days` days."""

    days: int = 30


Command = (
    Help
    | Declare
    | List
    | StatusCmd
    | Sev
    | Role
    | PageCmd
    | Note
    | Started
    | Impact
    | Cause
    | Resolution
    | Measure
    | Task
    | Tasks
    | Update
    | Resolve
    | Timeline
    | Postmortem
    | OnCallCmd
    | Stats
)


def _quote(text: str, limit: int = 40) -> str:
    """Echo a person's input inside backticks, on one line and never too long."""
    flat = " ".join(text.replace("`", "'").split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat}`"


def _unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<` and `>` in typed text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_severity(word: str) -> Severity:
    """Read `sev1`..`sev4` (any case, `sev-1` too)."""
    match = _SEVERITY_RE.match(word)
    if match is not None:
        try:
            return Severity(f"sev{int(match.group(1))}")
        except ValueError:
            pass
    raise UserError(f"{_quote(word)} is not a severity: write sev1, sev2, sev3 or sev4.")


def parse_user(word: str) -> UserRef | None:
    """Read a person mention (`<@U123>`, `<@U123|alice>`, `@alice`); None if it is not one."""
    mention = _USER_MENTION_RE.match(word)
    if mention is not None:
        return UserRef(id=mention.group(1), handle=mention.group(2) or None)
    handle = _HANDLE_RE.match(word)
    if handle is not None:
        return UserRef(handle=handle.group(1))
    return None


def parse_group(word: str) -> GroupRef | None:
    """Read a user-group mention (`<!subteam^S123|@oncall>`); None if it is not one."""
    mention = _GROUP_MENTION_RE.match(word)
    if mention is None:
        return None
    return GroupRef(id=mention.group(1), handle=mention.group(2) or None)


def parse_incident_ref(word: str) -> int:
    """Read `INC-7` (any case) as the incident number 7."""
    match = _INCIDENT_RE.match(word)
    if match is None or int(match.group(1)) == 0:
        raise UserError(
            f"{_quote(word)} is not an incident: write `INC-` and its number, e.g. `INC-7`."
        )
    return int(match.group(1))


def _limit_text(name: str, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise UserError(
            f"`{name}` text can be at most {MAX_TEXT:,} characters and this one has "
            f"{len(text):,}: shorten it, or split it over several commands."
        )
    return text


@dataclass(frozen=True)
class _Token:
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class _Args:
    """The words after the subcommand, with the original text so free text keeps its spacing."""

    name: str
    source: str
    tokens: tuple[_Token, ...]
    incident: int | None
    now: datetime
    tz: ZoneInfo

    @property
    def words(self) -> list[str]:
        return [token.value for token in self.tokens]

    def text(self, start: int, stop: int | None = None) -> str:
        """The original text of tokens[start:stop], inner whitespace kept."""
        chosen = self.tokens[start:stop]
        if not chosen:
            return ""
        return _unescape(self.source[chosen[0].start : chosen[-1].end])

    def error(self, problem: str) -> UserError:
        return UserError(f"{problem}: write `{USAGE[self.name]}`.")

    def no_arguments(self) -> None:
        if self.tokens:
            raise self.error(f"`{self.name}` takes nothing after it")

    def optional_text(self, start: int) -> str | None:
        """Free text from tokens[start] on, or None when there is none."""
        return _limit_text(self.name, self.text(start).strip()) or None

    def required_text(self, start: int, *, what: str = "text") -> str:
        """Free text from tokens[start] on; refused when missing."""
        text = self.optional_text(start)
        if text is None:
            raise self.error(f"`{self.name}` needs {what}")
        return text

    def take_at(self, start: int) -> tuple[datetime | None, int]:
        """Take an `at TIME` at tokens[start]; return it and the index after it."""
        words = self.words[start:]
        at, rest = take_time(words, now=self.now, tz=self.tz)
        return at, start + len(words) - len(rest)


def _parse_help(args: _Args) -> Command:
    topic = args.words[0].lower() if args.words else None
    topic = _ALIASES.get(topic, topic) if topic is not None else None
    return Help(incident=args.incident, topic=topic if topic in USAGE else None)


def _parse_declare(args: _Args) -> Command:
    if args.incident is not None:
        raise args.error(f"`declare` opens a new incident, so leave out INC-{args.incident}")
    words = args.words
    severity: Severity | None = None
    start = 0
    if words and _SEVERITY_RE.match(words[0]):
        try:
            severity = parse_severity(words[0])
        except UserError:
            raise args.error(
                f"{_quote(words[0])} is not a severity (sev1, sev2, sev3 or sev4)"
            ) from None
        start = 1
    title = args.text(start).strip() or None
    if title is not None and len(title) > MAX_TITLE:
        raise UserError(
            f"A title can be at most {MAX_TITLE} characters and this one has {len(title):,}: "
            "shorten it, and put the details in a note."
        )
    return Declare(severity=severity, title=title)


def _parse_list(args: _Args) -> Command:
    if args.incident is not None:
        raise args.error(f"`list` shows every open incident, so leave out INC-{args.incident}")
    args.no_arguments()
    return List()


def _parse_status(args: _Args) -> Command:
    words = args.words
    if not words:
        raise args.error("`status` needs the new status")
    try:
        status = Status(words[0].lower())
    except ValueError:
        raise args.error(f"{_quote(words[0])} is not a status") from None
    at, after = args.take_at(1)
    return StatusCmd(incident=args.incident, status=status, at=at, text=args.optional_text(after))


def _parse_sev(args: _Args) -> Command:
    words = args.words
    if len(words) != 1:
        raise args.error("`sev` needs exactly one severity")
    try:
        severity = parse_severity(words[0])
    except UserError:
        raise args.error(f"{_quote(words[0])} is not a severity") from None
    return Sev(incident=args.incident, severity=severity)


def _parse_role_name(args: _Args, word: str) -> str:
    role = word.lower()
    if not _ROLE_RE.match(role):
        raise args.error(
            f"{_quote(word)} is not a role name (a word such as commander, scribe or comms)"
        )
    return role


def _parse_role(args: _Args) -> Command:
    words = args.words
    if not words:
        raise args.error("`role` needs a role and a person")
    if parse_user(words[0]) is not None or parse_group(words[0]) is not None:
        raise args.error("Name the role first, then the person")
    role = _parse_role_name(args, words[0])
    if len(words) == 1:
        raise args.error(f"Say who becomes {role}")
    if len(words) > 2:
        raise args.error("`role` takes one role and one person")
    user = parse_user(words[1])
    if user is None:
        raise args.error(f"{_quote(words[1])} is not a person; mention them with @")
    return Role(incident=args.incident, role=role, user=user)


def _parse_page(args: _Args) -> Command:
    words = args.words
    if not words:
        raise args.error("`page` needs a role or a person")
    first = words[0]
    target: str | UserRef | GroupRef
    if _SPECIAL_MENTION_RE.match(first):
        raise args.error(f"{_quote(first)} cannot be paged; page a role, a person or a user group")
    user = parse_user(first)
    group = parse_group(first)
    if user is not None:
        target = user
    elif group is not None:
        target = group
    else:
        target = _parse_role_name(args, first)
    message = args.optional_text(1)
    return PageCmd(incident=args.incident, target=target, message=message)


def _parse_note(args: _Args) -> Command:
    at, after = args.take_at(0)
    text = args.required_text(after, what="the text of the note")
    return Note(incident=args.incident, at=at, text=text)


def _parse_started(args: _Args) -> Command:
    words = args.words
    if words and words[0].lower() == "at":
        words = words[1:]
    if not words:
        raise args.error("`started` needs the time impact began")
    at, rest = take_time(words, now=args.now, tz=args.tz, keyword=None)
    if at is None or rest:
        raise args.error("`started` takes only a time")
    return Started(incident=args.incident, at=at)


_TextCommand = type[Impact] | type[Cause] | type[Resolution] | type[Measure] | type[Update]


def _summary(make: _TextCommand, what: str) -> Callable[[_Args], Command]:
    def parse_summary(args: _Args) -> Command:
        return make(incident=args.incident, text=args.required_text(0, what=what))

    return parse_summary


def _parse_task(args: _Args) -> Command:
    words = args.words
    end = len(words)
    owner: UserRef | None = None
    due: date | None = None
    # The owner and the due date may come last in either order.
    for _ in range(2):
        if due is None and end >= 2 and words[end - 2].lower() == "due":
            if looks_like_date(words[end - 1]):
                due = _parse_due(args, words[end - 1])
                end -= 2
                continue
        if owner is None and end >= 1:
            if parse_group(words[end - 1]) is not None:
                raise args.error("A task has one owner; mention a person, not a group")
            candidate = parse_user(words[end - 1])
            if candidate is not None:
                owner = candidate
                end -= 1
                continue
        break
    text = _limit_text(args.name, args.text(0, end).strip())
    if not text:
        raise args.error("`task` needs a description")
    return Task(incident=args.incident, text=text, owner=owner, due=due)


def _parse_due(args: _Args, word: str) -> date:
    try:
        due = parse_date(word)
    except UserError:
        raise args.error(f"{_quote(word)} is not a date on the calendar") from None
    check_incident_date(
        due, now=args.now, tz=args.tz, typed=word, forms="write the due date `YYYY-MM-DD`"
    )
    today = args.now.astimezone(args.tz).date()
    if due < today:
        raise args.error(f"The due date {due.isoformat()} has already passed")
    return due


def _parse_resolve(args: _Args) -> Command:
    at, after = args.take_at(0)
    return Resolve(incident=args.incident, at=at, text=args.optional_text(after))


def _no_arguments(
    make: type[Tasks] | type[Timeline] | type[Postmortem],
) -> Callable[[_Args], Command]:
    def parse_bare(args: _Args) -> Command:
        args.no_arguments()
        return make(incident=args.incident)

    return parse_bare


def _parse_oncall(args: _Args) -> Command:
    words = args.words
    if len(words) > 1:
        raise args.error("`oncall` takes at most one role")
    role = _parse_role_name(args, words[0]) if words else None
    return OnCallCmd(incident=args.incident, role=role)


_WINDOW_RE = re.compile(r"^([0-9]{1,4})d$", re.IGNORECASE)


def _parse_stats(args: _Args) -> Command:
    if args.incident is not None:
        raise args.error(f"`stats` covers every incident, so leave out INC-{args.incident}")
    words = args.words
    if not words:
        return Stats()
    window = _WINDOW_RE.match(words[0])
    if len(words) > 1 or window is None or not 1 <= int(window.group(1)) <= 365:
        raise args.error(f"{_quote(' '.join(words))} is not a window such as 30d or 90d")
    return Stats(days=int(window.group(1)))


_PARSERS: Mapping[str, Callable[[_Args], Command]] = MappingProxyType(
    {
        "help": _parse_help,
        "declare": _parse_declare,
        "list": _parse_list,
        "status": _parse_status,
        "sev": _parse_sev,
        "role": _parse_role,
        "page": _parse_page,
        "note": _parse_note,
        "started": _parse_started,
        "impact": _summary(Impact, "a description of the impact"),
        "cause": _summary(Cause, "a description of the cause"),
        "resolution": _summary(Resolution, "a description of the resolution"),
        "measure": _summary(Measure, "a description of the measure"),
        "task": _parse_task,
        "tasks": _no_arguments(Tasks),
        "update": _summary(Update, "the text of the update"),
        "resolve": _parse_resolve,
        "timeline": _no_arguments(Timeline),
        "postmortem": _no_arguments(Postmortem),
        "oncall": _parse_oncall,
        "stats": _parse_stats,
    }
)


def parse(text: str, *, now: datetime, tz: ZoneInfo) -> Command:
    """Turn the text after `/incident` into a Command, or raise UserError saying what is wrong."""
    tokens = tuple(_Token(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text))
    incident: int | None = None
    if tokens and tokens[0].value.lower().startswith("inc-"):
        incident = parse_incident_ref(tokens[0].value)
        tokens = tokens[1:]
    if not tokens:
        return Help(incident=incident)
    word = tokens[0].value.lower()
    name = _ALIASES.get(word, word)
    parser = _PARSERS.get(name)
    if parser is None:
        raise UserError(
            f"{_quote(tokens[0].value)} is not an `/incident` subcommand: "
            "see `/incident help` for the list."
        )
    args = _Args(name=name, source=text, tokens=tokens[1:], incident=incident, now=now, tz=tz)
    return parser(args)
