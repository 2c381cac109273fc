"""The postmortem draft: the reference document's sections as Markdown, filled from the record.

Every piece of text people typed goes through `escape_text`, which turns Slack markup into plain
words and then backslash-escapes whatever CommonMark could read as structure, so a note can never
become a heading, a list item, a code block, a link, an image, raw HTML, a table row or emphasis.

Decisions the document follows:
- Joined/left entries are noise, and follow-ups already have their own sections, so the timeline
  leaves them out (`LEFT_OUT_KINDS`); everything else is listed in the order it happened.
- A timeline line ends with the author's name in parentheses, unless the text already mentions
  the author or no author was recorded.
- Times carry dates whenever the times shown span more than one day in the incident's zone.
- `impact` and `resolution` are shown whole. A `root_cause` written as several paragraphs gives
  its first paragraph to the summary and the rest to "Root Cause and Resolution" (the reference
  has a short cause in the summary and the long one below); a one-paragraph cause shows in both.
- Missing facts show an italic placeholder naming the command that records them; no section
  ever disappears, and nothing is written that the input does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.alerts import AlertEntry, storm_lines
from bot.core.clock import format_time, humanize_duration
from bot.core.enums import EntryKind, Severity, Status
from bot.core.lifecycle import order_timeline, severity_label, status_label

# Noise for a reader: people coming and going, and the summary fields (impact, cause,
# resolution), which have sections of their own.
LEFT_OUT_KINDS: frozenset[EntryKind] = frozenset(
    {EntryKind.JOINED, EntryKind.LEFT, EntryKind.FOLLOW_UP, EntryKind.SUMMARY}
)
MERMAID_EVENT_LIMIT = 50
MERMAID_TEXT_LIMIT = 80

DRAFT_LINE = "DRAFT — incident ongoing"
IMPACT_MISSING = "_Impact not recorded yet — /incident impact …_"
CAUSE_MISSING = "_Root cause not recorded yet — /incident cause …_"
RESOLUTION_MISSING = "_Resolution not recorded yet — /incident resolution …_"
TIMELINE_MISSING = "_No timeline entries recorded yet — /incident note …_"
MEASURES_MISSING = "_No measures recorded yet — /incident measure …_"
TASKS_MISSING = "_No tasks recorded yet — /incident task …_"
RESOLVED_AT_MISSING = "_resolution time not recorded_"
MEASURES_INTRO = (
    "To prevent similar issues in the future, we will implement the following improvements:"
)
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class PostmortemEntry:
    """One timeline entry as recorded; `text` is raw Slack text."""

    occurred_at: datetime
    kind: EntryKind
    text: str
    author: str | None = None
    group: str | None = None  # an alert's group, for counting a storm


@dataclass(frozen=True)
class TaskItem:
    """A specific follow-up task."""

    text: str
    owner: str | None = None
    due: date | None = None
    done: bool = False
    issue: str | None = None  # its tracker issue ("acme/infra#12") or why there is none yet
    issue_url: str | None = None
    issue_state: str | None = None  # "open", "closed", "closed as not planned"


@dataclass(frozen=True)
class PostmortemFacts:
    """What the record says about the incident; people are Slack user ids."""

    ref: str
    title: str
    severity: Severity
    status: Status
    declared_at: datetime
    started_at: datetime | None
    resolved_at: datetime | None
    impact: str | None
    root_cause: str | None
    resolution: str | None
    commander: str | None
    people: Sequence[str] = ()
    time_to_acknowledge: timedelta | None = None
    measures: Sequence[str] = ()
    tasks: Sequence[TaskItem] = ()


# --- Slack markup to plain text -------------------------------------------------------------

# Slack sends a typed `<`, `>` or `&` as an entity, so a bare `<…>` is always Slack's own markup.
_SLACK_TOKEN_RE = re.compile(r"<([^<>\n]*)>")
_SLACK_ENTITY_RE = re.compile(r"&(lt|gt|amp);")
_SLACK_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_BROADCASTS = frozenset({"channel", "here", "everyone"})
# Characters a URL keeps percent-encoded so it cannot close a parenthesis or open a tag.
_URL_UNSAFE_RE = re.compile(r"[\s<>()\[\]{}|\\^`\"']")


def _unescape_slack(text: str) -> str:
    return _SLACK_ENTITY_RE.sub(lambda match: _SLACK_ENTITIES[match.group(1)], text)


def _safe_url(url: str) -> str:
    return _URL_UNSAFE_RE.sub(
        lambda match: "".join(f"%{byte:02X}" for byte in match.group(0).encode()), url
    )


def _decode_token(body: str, names: Mapping[str, str]) -> str:
    target, _, raw_label = body.partition("|")
    label = _unescape_slack(raw_label)
    if target.startswith("@"):
        user = target[1:]
        return "@" + (names.get(user) or label.removeprefix("@") or user)
    if target.startswith("#"):
        channel = target[1:]
        return "#" + (names.get(channel) or label.removeprefix("#") or channel)
    if target.startswith("!"):
        keyword, _, argument = target[1:].partition("^")
        if keyword in _BROADCASTS:
            return "@" + keyword
        if label:  # user groups and dates carry the text Slack shows as the label
            return label
        return "@" + (names.get(argument) or argument or keyword)
    if _SCHEME_RE.match(target):
        url = _safe_url(_unescape_slack(target))
        if not label or label in (url, url.partition(":")[2].removeprefix("//")):
            return label or url
        return f"{label} ({url})"
    return "<" + _unescape_slack(body) + ">"  # not Slack markup: keep what was typed


def slack_to_plain(text: str, *, names: Mapping[str, str]) -> str:
    """Turn Slack markup into the words people saw: `<@U1>` → `@alice`, links, entities."""
    pieces: list[str] = []
    position = 0
    for match in _SLACK_TOKEN_RE.finditer(text):
        pieces.append(_unescape_slack(text[position : match.start()]))
        pieces.append(_decode_token(match.group(1), names))
        position = match.end()
    pieces.append(_unescape_slack(text[position:]))
    return "".join(pieces)


# --- Plain text to one safe line of Markdown ------------------------------------------------

_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
# Control characters go; line breaks become "\n", a tab a space. Bidi overrides and embeddings go
# too (they can make a line read backwards); surrogates cannot be written as UTF-8 at all.
_CLEAN_TABLE: dict[int, str | None] = {
    **dict.fromkeys((*range(0x20), *range(0x7F, 0xA0))),
    **dict.fromkeys((*range(0x202A, 0x202F), *range(0x2066, 0x206A))),
    **dict.fromkeys(range(0xD800, 0xE000)),
    **{ord(char): "\n" for char in _LINE_BREAKS},
    ord("\t"): " ",
}
# `$` is not CommonMark, but GitHub reads `$…$` as math.
_ALWAYS_ESCAPED = str.maketrans({char: "\\" + char for char in "\\`*[]<>|~$"})
# `_` inside a word (snake_case) can neither open nor close emphasis, so it stays readable.
_LOOSE_UNDERSCORE_RE = re.compile(r"_(?![^\W_])|(?<![^\W_])_")
_ENTITY_AMPERSAND_RE = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_ORDERED_MARKER_RE = re.compile(r"^[0-9]{1,9}(?=[.)])")
_CLOSING_HASHES_RE = re.compile(r"(?<=\s)#+$")
_PARAGRAPH_BREAK_RE = re.compile(r"\n\s*\n")
_TO_NEWLINE = str.maketrans(dict.fromkeys(_LINE_BREAKS.replace("\n", ""), "\n"))


def _clean_lines(text: str) -> list[str]:
    lines = text.translate(_CLEAN_TABLE).split("\n")
    return [flat for flat in (" ".join(line.split()) for line in lines) if flat]


def _escape_line(line: str) -> str:
    # The `in` checks skip a regex pass over the many lines that do not need it.
    escaped = line.translate(_ALWAYS_ESCAPED)
    if "_" in escaped:
        escaped = _LOOSE_UNDERSCORE_RE.sub(r"\\_", escaped)
    if "&" in escaped:
        escaped = _ENTITY_AMPERSAND_RE.sub(r"\\&", escaped)
    # A list marker, heading, thematic break or setext underline starts at the line's start.
    if escaped[:1] in ("#", "+", "=", "-"):
        escaped = "\\" + escaped
    elif escaped[:1].isdigit():
        escaped = _ORDERED_MARKER_RE.sub(r"\g<0>\\", escaped)
    if escaped.endswith("#"):  # a heading's closing sequence
        escaped = _CLOSING_HASHES_RE.sub(r"\\\g<0>", escaped)
    return escaped


def _escape_plain(text: str) -> str:
    return _escape_line(" / ".join(_clean_lines(text)))


def escape_text(text: str, *, names: Mapping[str, str]) -> str:
    """Slack text as one line of Markdown that shows what was typed and cannot form structure."""
    return _escape_plain(slack_to_plain(text, names=names))


def _paragraphs(text: str | None, names: Mapping[str, str]) -> list[str]:
    if text is None:
        return []
    normalized = text.translate(_TO_NEWLINE)
    escaped = (escape_text(part, names=names) for part in _PARAGRAPH_BREAK_RE.split(normalized))
    return [paragraph for paragraph in escaped if paragraph]


def _name(user: str, names: Mapping[str, str]) -> str:
    return _escape_plain(names.get(user, user))


def _person(value: str, names: Mapping[str, str]) -> str:
    if value.startswith("<"):
        return escape_text(value, names=names).removeprefix("@")
    return _name(value, names)


# --- Times ----------------------------------------------------------------------------------


def _zone(dt: datetime, tz: ZoneInfo) -> str:
    return format_time(dt, tz).rsplit(" ", 1)[1]


def _without_zone(shown: str) -> str:
    return shown.rsplit(" ", 1)[0]


def _elapsed(start: datetime, end: datetime) -> str:
    # Subtracting two times that share a tzinfo ignores a DST change between them; UTC does not.
    elapsed = end.astimezone(UTC) - start.astimezone(UTC)
    return humanize_duration(max(elapsed, timedelta(0)))


def _in_utc(entry: PostmortemEntry) -> PostmortemEntry:
    # Times sharing a tzinfo compare by wall clock, which misorders the hour clocks fall back.
    if entry.occurred_at.tzinfo is UTC:
        return entry
    return PostmortemEntry(entry.occurred_at.astimezone(UTC), entry.kind, entry.text, entry.author)


def _span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    with_date = start.astimezone(tz).date() != end.astimezone(tz).date()
    shown_start = format_time(start, tz, with_date=with_date)
    if _zone(start, tz) == _zone(end, tz):
        shown_start = _without_zone(shown_start)
    shown_end = format_time(end, tz, with_date=with_date)
    return f"{_elapsed(start, end)}, from {shown_start} to {shown_end}"


def _ongoing(start: datetime, now: datetime, tz: ZoneInfo) -> str:
    with_date = start.astimezone(tz).date() != now.astimezone(tz).date()
    return (
        f"ongoing since {format_time(start, tz, with_date=with_date)} "
        f"({_elapsed(start, now)} so far)"
    )


# --- Sections -------------------------------------------------------------------------------


def _duration_and_resolve_time(
    facts: PostmortemFacts,
    timeline: Sequence[PostmortemEntry],
    *,
    tz: ZoneInfo,
    now: datetime,
) -> tuple[str, str]:
    if facts.started_at is not None:
        start = facts.started_at
    elif timeline:
        start = timeline[0].occurred_at
    else:
        start = facts.declared_at
    if facts.status is not Status.RESOLVED:
        return _ongoing(start, now, tz), f"ongoing ({_elapsed(start, now)} so far)"
    if facts.resolved_at is None:
        return f"from {format_time(start, tz, with_date=True)}; {RESOLVED_AT_MISSING}", NOT_RECORDED
    return _span(start, facts.resolved_at, tz), _elapsed(start, facts.resolved_at)


def _facts_table(
    facts: PostmortemFacts, *, time_to_resolve: str, tz: ZoneInfo, names: Mapping[str, str]
) -> str:
    tta = facts.time_to_acknowledge
    people = ", ".join(_name(user, names) for user in dict.fromkeys(facts.people))
    rows = [
        ("Fact", "Value"),
        ("---", "---"),
        ("Severity", severity_label(facts.severity)),
        ("Status", status_label(facts.status)),
        ("Declared", format_time(facts.declared_at, tz, with_date=True)),
        ("Commander", _name(facts.commander, names) if facts.commander else "not assigned"),
        ("Time to acknowledge", humanize_duration(max(tta, timedelta(0))) if tta else NOT_RECORDED),
        ("Time to resolve", time_to_resolve),
        ("People involved", people or NOT_RECORDED),
    ]
    return "\n".join(f"| {fact} | {value} |" for fact, value in rows)


def _mentions(text: str, user: str) -> bool:
    return f"<@{user}>" in text or f"<@{user}|" in text


def _timeline_line(
    entry: PostmortemEntry,
    *,
    tz: ZoneInfo,
    names: Mapping[str, str],
    authors: Mapping[str, str],
    with_date: bool,
) -> str:
    text = escape_text(entry.text, names=names)
    if entry.author and not _mentions(entry.text, entry.author):
        text = f"{text} ({authors[entry.author]})".lstrip()
    return f"* {format_time(entry.occurred_at, tz, with_date=with_date)}: {text}".rstrip()


_MERMAID_REPLACEMENTS = str.maketrans(
    # `:` separates period from event, `#` and `%%` start comments, `;` ends a statement in
    # older Mermaid; look-alikes keep the words readable.
    {":": "∶", "#": "＃", ";": ",", "<": "‹", ">": "›", "`": "'"}
)

_MERMAID_COMMENT_RE = re.compile(r"%{2,}")


def _mermaid_text(text: str) -> str:
    flat = _MERMAID_COMMENT_RE.sub(
        "%", " / ".join(_clean_lines(text)).translate(_MERMAID_REPLACEMENTS)
    )
    if len(flat) > MERMAID_TEXT_LIMIT:
        flat = flat[: MERMAID_TEXT_LIMIT - 1].rstrip() + "…"
    return flat


def _mermaid(
    ref: str,
    timeline: Sequence[PostmortemEntry],
    *,
    tz: ZoneInfo,
    names: Mapping[str, str],
    with_date: bool,
) -> str:
    def period(entry: PostmortemEntry) -> str:
        return _mermaid_text(_without_zone(format_time(entry.occurred_at, tz, with_date=with_date)))

    shown = timeline
    if len(timeline) > MERMAID_EVENT_LIMIT:
        shown = timeline[: MERMAID_EVENT_LIMIT - 1]
    events = [
        (period(entry), _mermaid_text(slack_to_plain(entry.text, names=names)) or entry.kind.value)
        for entry in shown
    ]
    if len(timeline) > len(shown):
        more = len(timeline) - len(shown)
        events.append((period(timeline[-1]), f"… {more} more (see the list above)"))
    lines = ["```mermaid", "timeline", f"    title {_mermaid_text(ref) or 'Timeline'}"]
    for when, event in events:
        # Consecutive events at the same time share one period line.
        if lines[-1].startswith(f"    {when} : "):
            lines[-1] += f" : {event}"
        else:
            lines.append(f"    {when} : {event}")
    lines.append("```")
    return "\n".join(lines)


def _spans_days(timeline: Sequence[PostmortemEntry], tz: ZoneInfo) -> bool:
    if not timeline:
        return False
    first = timeline[0].occurred_at.astimezone(tz).date()
    return any(entry.occurred_at.astimezone(tz).date() != first for entry in timeline)


def _task_line(task: TaskItem, names: Mapping[str, str]) -> str:
    text = escape_text(task.text, names=names)
    if task.done:
        # An empty `~~~~` would open a code fence, so an empty done task shows only the mark.
        text = f"~~{text}~~ (done)" if text else "(done)"
    details = []
    if task.owner:
        details.append(f"owner {_person(task.owner, names)}")
    if task.due is not None:
        details.append(f"due {task.due.isoformat()}")
    if task.issue:
        issue = escape_text(task.issue, names=names)
        if task.issue_url and task.issue_url.startswith(("https://", "http://")):
            issue = f"[{issue}]({task.issue_url.replace(')', '%29').replace(' ', '%20')})"
        details.append(f"{issue} ({task.issue_state})" if task.issue_state else issue)
    parts = ["*", text, "—" if details and text else "", ", ".join(details)]
    return " ".join(part for part in parts if part)


def render_postmortem(
    facts: PostmortemFacts,
    entries: Iterable[PostmortemEntry],
    *,
    tz: ZoneInfo,
    names: Mapping[str, str],
    now: datetime,
) -> str:
    """The postmortem draft as Markdown, in the reference's sections, from the record alone."""
    timeline = order_timeline(
        _in_utc(entry) for entry in entries if entry.kind not in LEFT_OUT_KINDS
    )
    timeline = summarise_storms(timeline)
    title = escape_text(facts.title, names=names)
    heading = f"# Postmortem: {escape_text(facts.ref, names=names)}"
    blocks = [f"{heading} — {title}" if title else heading]
    if facts.status is not Status.RESOLVED:
        blocks.append(DRAFT_LINE)

    duration, time_to_resolve = _duration_and_resolve_time(facts, timeline, tz=tz, now=now)
    impact = _paragraphs(facts.impact, names) or [IMPACT_MISSING]
    causes = _paragraphs(facts.root_cause, names)
    blocks += ["## Issue Summary.", "### Duration:", duration, f"Impact: {impact[0]}", *impact[1:]]
    blocks.append(f"Root Cause: {causes[0] if causes else CAUSE_MISSING}")
    blocks.append(_facts_table(facts, time_to_resolve=time_to_resolve, tz=tz, names=names))

    blocks.append("### Timeline:")
    if timeline:
        with_date = _spans_days(timeline, tz)
        authors = {user: _name(user, names) for user in {e.author for e in timeline if e.author}}
        lines = (
            _timeline_line(entry, tz=tz, names=names, authors=authors, with_date=with_date)
            for entry in timeline
        )
        blocks.append("\n".join(lines))
        blocks.append(_mermaid(facts.ref, timeline, tz=tz, names=names, with_date=with_date))
    else:
        blocks.append(TIMELINE_MISSING)

    blocks.append("### Root Cause and Resolution:")
    blocks += (causes[1:] or causes) or [CAUSE_MISSING]
    blocks += _paragraphs(facts.resolution, names) or [RESOLUTION_MISSING]

    blocks.append("### Corrective and Preventative Measures:")
    measures = [shown for shown in (escape_text(m, names=names) for m in facts.measures) if shown]
    if measures:
        blocks += [MEASURES_INTRO, "\n".join(f"* {measure}" for measure in measures)]
    else:
        blocks.append(MEASURES_MISSING)

    blocks.append("### Specific tasks:")
    if facts.tasks:
        blocks.append("\n".join(_task_line(task, names) for task in facts.tasks))
    else:
        blocks.append(TASKS_MISSING)
    return "\n\n".join(blocks) + "\n"


def timeline_lines(
    entries: Iterable[PostmortemEntry], *, tz: ZoneInfo, names: Mapping[str, str]
) -> list[str]:
    """Every entry given, in the order it happened, as the draft's `* TIME: text` lines.

    The same lines as the postmortem's Timeline, but nothing is left out or summarised: for
    the whole record (`python -m bot timeline`).
    """
    timeline = order_timeline(_in_utc(entry) for entry in entries)
    with_date = _spans_days(timeline, tz)
    authors = {user: _name(user, names) for user in {e.author for e in timeline if e.author}}
    return [
        _timeline_line(entry, tz=tz, names=names, authors=authors, with_date=with_date)
        for entry in timeline
    ]


# --- alert storms -----------------------------------------------------------------------------

# From this many alert entries of one group in one minute, the postmortem counts them in one
# line instead of listing them; the timeline record (`python -m bot timeline`) keeps each one.
STORM_MIN_ALERTS = 5
_ALERT_TEXT_RE = re.compile(r"^(?P<name>.*?) (?P<what>fired|resolved)\b")


def _storm_key(entry: PostmortemEntry) -> tuple[str, datetime]:
    minute = entry.occurred_at.astimezone(UTC).replace(second=0, microsecond=0)
    return entry.group or "", minute


def summarise_storms(timeline: Sequence[PostmortemEntry]) -> list[PostmortemEntry]:
    """The timeline with each storm (per group and minute) as one counted line, in place."""
    alerts = [entry for entry in timeline if entry.kind is EntryKind.ALERT]
    buckets: dict[tuple[str, datetime], list[AlertEntry]] = {}
    for entry in alerts:
        found = _ALERT_TEXT_RE.match(entry.text)
        buckets.setdefault(_storm_key(entry), []).append(
            AlertEntry(
                occurred_at=entry.occurred_at,
                group=entry.group or "",
                name=found.group("name") if found else "alert",
                resolved=bool(found and found.group("what") == "resolved"),
            )
        )
    storms = {key: storm_lines(found)[0] for key, found in buckets.items()}
    storms = {key: line for key, line in storms.items() if len(buckets[key]) >= STORM_MIN_ALERTS}
    if not storms:
        return list(timeline)
    shown: list[PostmortemEntry] = []
    told: set[tuple[str, datetime]] = set()
    for entry in timeline:
        key = _storm_key(entry) if entry.kind is EntryKind.ALERT else None
        if key is None or key not in storms:
            shown.append(entry)
        elif key not in told:
            told.add(key)
            line = storms[key]
            shown.append(PostmortemEntry(line.at, EntryKind.ALERT, line.text(), group=entry.group))
    return shown
