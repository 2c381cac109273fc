"""The `/incident` grammar: every subcommand, every refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.enums import Severity, Status
from bot.core.grammar import (
    HELP_TEXT,
    MAX_TEXT,
    MAX_TITLE,
    USAGE,
    Cause,
    Command,
    Declare,
    GroupRef,
    Help,
    Impact,
    List,
    Measure,
    Note,
    OnCallCmd,
    PageCmd,
    Postmortem,
    Resolution,
    Resolve,
    Role,
    Sev,
    Started,
    Stats,
    StatusCmd,
    Task,
    Tasks,
    Timeline,
    Update,
    UserRef,
    parse,
    parse_group,
    parse_user,
)
from bot.errors import UserError

LA = ZoneInfo("America/Los_Angeles")
# 2026-11-25 12:00 PST.
NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


def la(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LA).astimezone(UTC)


def p(text: str) -> Command:
    return parse(text, now=NOW, tz=LA)


def refused(text: str) -> str:
    with pytest.raises(UserError) as excinfo:
        p(text)
    message = excinfo.value.message
    assert message.strip() and "\n" not in message, message
    return message


# --- every subcommand -------------------------------------------------------------------

PARSED: list[tuple[str, Command]] = [
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("help status", Help(topic="status")),
    ("help severity", Help(topic="sev")),
    ("help nonsense", Help()),
    ("INC-7", Help(incident=7)),
    ("declare", Declare()),
    ("declare sev1", Declare(severity=Severity.SEV1)),
    (
        "declare SEV2 Checkout latency spike",
        Declare(severity=Severity.SEV2, title="Checkout latency spike"),
    ),
    ("declare sev-3 Checkout", Declare(severity=Severity.SEV3, title="Checkout")),
    ("declare Checkout down", Declare(title="Checkout down")),
    ("declare  severe   outage ", Declare(title="severe   outage")),
    ("declare Checkout &gt; 5s &amp; rising", Declare(title="Checkout > 5s & rising")),
    ("list", List()),
    ("status investigating", StatusCmd(status=Status.INVESTIGATING)),
    ("status Identified", StatusCmd(status=Status.IDENTIFIED)),
    ("status monitoring fix deployed", StatusCmd(status=Status.MONITORING, text="fix deployed")),
    ("status resolved", StatusCmd(status=Status.RESOLVED)),
    (
        "status identified at 10:25 bad deploy",
        StatusCmd(status=Status.IDENTIFIED, at=la(2026, 11, 25, 10, 25), text="bad deploy"),
    ),
    (
        "status identified at 10:25 AM",
        StatusCmd(status=Status.IDENTIFIED, at=la(2026, 11, 25, 10, 25)),
    ),
    (
        "status identified at least we know",
        StatusCmd(status=Status.IDENTIFIED, text="at least we know"),
    ),
    ("sev sev1", Sev(severity=Severity.SEV1)),
    ("sev SEV4", Sev(severity=Severity.SEV4)),
    ("severity sev2", Sev(severity=Severity.SEV2)),
    ("role commander <@U024BE7LH>", Role(role="commander", user=UserRef(id="U024BE7LH"))),
    (
        "role Scribe <@U024BE7LH|alice>",
        Role(role="scribe", user=UserRef(id="U024BE7LH", handle="alice")),
    ),
    (
        "role comms <@U1|Alice Smith>",
        Role(role="comms", user=UserRef(id="U1", handle="Alice Smith")),
    ),
    ("note a<b and <@U1> said hi", Note(text="a<b and <@U1> said hi")),
    ("role comms @bob.smith", Role(role="comms", user=UserRef(handle="bob.smith"))),
    ("page ops", PageCmd(target="ops")),
    ("page ops db is on fire", PageCmd(target="ops", message="db is on fire")),
    ("page <@U1> please look", PageCmd(target=UserRef(id="U1"), message="please look")),
    ("page @alice", PageCmd(target=UserRef(handle="alice"))),
    (
        "page <!subteam^S123|@oncall> wake up",
        PageCmd(target=GroupRef(id="S123", handle="oncall"), message="wake up"),
    ),
    ("page <!subteam^S123>", PageCmd(target=GroupRef(id="S123"))),
    ("note cache is cold", Note(text="cache is cold")),
    ("note at 10:25 cache is cold", Note(at=la(2026, 11, 25, 10, 25), text="cache is cold")),
    (
        "note at 2026-11-24 11:30 PM deploy started",
        Note(at=la(2026, 11, 24, 23, 30), text="deploy started"),
    ),
    ("note line one\nline two", Note(text="line one\nline two")),
    ("note  keep   inner  spacing  ", Note(text="keep   inner  spacing")),
    ("note 10:25 is when it broke", Note(text="10:25 is when it broke")),
    ("started 9:40", Started(at=la(2026, 11, 25, 9, 40))),
    ("started at 9:40 am", Started(at=la(2026, 11, 25, 9, 40))),
    ("started 2026-11-24 22:00", Started(at=la(2026, 11, 24, 22, 0))),
    ("impact Checkout failed for 12% of users", Impact(text="Checkout failed for 12% of users")),
    ("cause a bad index", Cause(text="a bad index")),
    ("resolution rolled back", Resolution(text="rolled back")),
    ("measure alert on p99", Measure(text="alert on p99")),
    ("task add an index", Task(text="add an index")),
    ("task add an index @bob", Task(text="add an index", owner=UserRef(handle="bob"))),
    (
        "task add an index <@U1> due 2026-12-01",
        Task(text="add an index", owner=UserRef(id="U1"), due=date(2026, 12, 1)),
    ),
    (
        "task add an index due 2026-12-01 <@U1|bob>",
        Task(text="add an index", owner=UserRef(id="U1", handle="bob"), due=date(2026, 12, 1)),
    ),
    ("task add an index due 2026-11-25", Task(text="add an index", due=date(2026, 11, 25))),
    ("task ask @bob about the index", Task(text="ask @bob about the index")),
    ("task check the due date", Task(text="check the due date")),
    ("tasks", Tasks()),
    ("update We are rolling back.", Update(text="We are rolling back.")),
    ("resolve", Resolve()),
    ("resolve rolled back", Resolve(text="rolled back")),
    ("resolve at 11:50", Resolve(at=la(2026, 11, 25, 11, 50))),
    ("resolve at 11:50 AM fixed", Resolve(at=la(2026, 11, 25, 11, 50), text="fixed")),
    ("timeline", Timeline()),
    ("postmortem", Postmortem()),
    ("INC-7 note from elsewhere", Note(incident=7, text="from elsewhere")),
    ("inc-12 status monitoring", StatusCmd(incident=12, status=Status.MONITORING)),
    ("Inc-007 timeline", Timeline(incident=7)),
    ("INC-3 sev sev2", Sev(incident=3, severity=Severity.SEV2)),
    ("INC-3 resolve", Resolve(incident=3)),
    ("oncall", OnCallCmd()),
    ("oncall OPS", OnCallCmd(role="ops")),
    ("INC-7 oncall dba", OnCallCmd(incident=7, role="dba")),
    ("stats", Stats()),
    ("stats 90d", Stats(days=90)),
    ("STATS 7D", Stats(days=7)),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse(text: str, expected: Command) -> None:
    assert p(text) == expected


def subcommand_of(text: str) -> str | None:
    words = text.split()
    if words and words[0].lower().startswith("inc-"):
        words = words[1:]
    return words[0].lower() if words else None


def test_every_subcommand_has_a_parse_case() -> None:
    assert set(USAGE) <= {subcommand_of(text) for text, _ in PARSED}


# --- refusals ---------------------------------------------------------------------------

REFUSED: list[tuple[str, str]] = [
    ("frobnicate", "`frobnicate` is not an `/incident` subcommand: see `/incident help`"),
    ("INC-7 frobnicate now", "/incident help"),
    ("INC-abc note x", "not an incident"),
    ("INC-0 note x", "not an incident"),
    ("inc- note x", "not an incident"),
    ("declare sev9 Checkout", USAGE["declare"]),
    ("declare sev0", USAGE["declare"]),
    ("declare " + "x" * (MAX_TITLE + 1), "at most 200 characters"),
    ("INC-7 declare sev1 dup", "leave out INC-7"),
    ("INC-7 list", "leave out INC-7"),
    ("list all", USAGE["list"]),
    ("status", USAGE["status"]),
    ("status fixed", USAGE["status"]),
    ("status identified at 25:00 x", "is not a time"),
    ("status identified at 11:00 PM", "future"),
    ("status identified at", "needs a time"),
    ("sev", USAGE["sev"]),
    ("sev sev9", USAGE["sev"]),
    ("sev high", USAGE["sev"]),
    ("sev sev1 sev2", USAGE["sev"]),
    ("role", USAGE["role"]),
    ("role commander", USAGE["role"]),
    ("role @bob commander", USAGE["role"]),
    ("role commander bob", USAGE["role"]),
    ("role commander <@U1> <@U2>", USAGE["role"]),
    ("role commander <!subteam^S1|@x>", USAGE["role"]),
    ("role 9lives <@U1>", USAGE["role"]),
    ("page", USAGE["page"]),
    ("page <!here> hi", USAGE["page"]),
    ("oncall ops dba", USAGE["oncall"]),
    ("oncall <@U1>", USAGE["oncall"]),
    ("page <!channel>", USAGE["page"]),
    ("page ../etc hi", USAGE["page"]),
    ("note", USAGE["note"]),
    ("note at 10:25", USAGE["note"]),
    ("note at 13:00 PM x", "1 to 12"),
    ("note at 2026-02-30 10:00 x", "not a date on the calendar"),
    ("note " + "x" * (MAX_TEXT + 1), "at most 3,000 characters"),
    ("started", USAGE["started"]),
    ("started at", USAGE["started"]),
    ("started soon", "`soon` is not a time"),
    ("started 9:40 yesterday", USAGE["started"]),
    ("started 13:00", "future"),
    ("impact", USAGE["impact"]),
    ("cause   ", USAGE["cause"]),
    ("resolution", USAGE["resolution"]),
    ("measure", USAGE["measure"]),
    ("update", USAGE["update"]),
    ("update " + "x" * (MAX_TEXT + 1), "at most 3,000 characters"),
    ("task", USAGE["task"]),
    ("task due 2026-12-01", USAGE["task"]),
    ("task <@U1> due 2026-12-01", "`task` needs a description"),
    ("task fix it due 2026-13-40", USAGE["task"]),
    ("task fix it due 2026-11-24", "already passed"),
    ("task " + "x" * (MAX_TEXT + 1), "at most 3,000 characters"),
    ("page ops " + "x" * (MAX_TEXT + 1), "at most 3,000 characters"),
    ("resolve " + "x" * (MAX_TEXT + 1), "at most 3,000 characters"),
    ("task fix it <!subteam^S1|@dba>", USAGE["task"]),
    ("tasks mine", USAGE["tasks"]),
    ("timeline please", USAGE["timeline"]),
    ("postmortem now", USAGE["postmortem"]),
    ("resolve at 23:00", "future"),
    ("resolve at 2026-11-24", "no time"),
    ("stats 90", "`90` is not a window such as 30d or 90d: write `/incident stats [30d|90d]`"),
    ("stats 0d", USAGE["stats"]),
    ("stats 400d", USAGE["stats"]),
    ("stats 30d 90d", USAGE["stats"]),
    ("stats last month", USAGE["stats"]),
    ("INC-7 stats", "`stats` covers every incident, so leave out INC-7"),
]


@pytest.mark.parametrize(("text", "expected"), REFUSED)
def test_refused(text: str, expected: str) -> None:
    assert expected in refused(text)


def test_unknown_subcommand_message() -> None:
    assert refused("frobnicate") == (
        "`frobnicate` is not an `/incident` subcommand: see `/incident help` for the list."
    )


def test_usage_error_message_shape() -> None:
    assert refused("status") == (
        "`status` needs the new status: write "
        "`/incident status investigating|identified|monitoring|resolved [at TIME] [text]`."
    )
    assert refused("sev sev9") == "`sev9` is not a severity: write `/incident sev sev1-sev4`."


@pytest.mark.parametrize(
    "text",
    [
        "`rm -rf /`",
        "status `\n`",
        "sev " + "9" * 500,
        "\u202eevil",
        "note at 99:99\nsecond line",
        "role `x`\n <@U1>",
        "INC-\u0661",
    ],
)
def test_echoed_input_never_breaks_the_single_line(text: str) -> None:
    message = refused(text)
    assert len(message) < 400


def test_title_at_the_limit_is_fine() -> None:
    assert p("declare " + "x" * MAX_TITLE) == Declare(title="x" * MAX_TITLE)


def test_text_at_the_limit_is_fine() -> None:
    assert p("note " + "x" * MAX_TEXT) == Note(text="x" * MAX_TEXT)


# --- mentions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("<@U024BE7LH>", UserRef(id="U024BE7LH")),
        ("<@U024BE7LH|alice>", UserRef(id="U024BE7LH", handle="alice")),
        ("<@W123ABC>", UserRef(id="W123ABC")),
        ("@alice", UserRef(handle="alice")),
        ("@a_l-i.ce", UserRef(handle="a_l-i.ce")),
        ("alice", None),
        ("@", None),
        ("<@>", None),
        ("<#C123|general>", None),
        ("<!subteam^S123|@oncall>", None),
    ],
)
def test_parse_user(word: str, expected: UserRef | None) -> None:
    assert parse_user(word) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("<!subteam^S123|@oncall>", GroupRef(id="S123", handle="oncall")),
        ("<!subteam^S123|oncall>", GroupRef(id="S123", handle="oncall")),
        ("<!subteam^S123>", GroupRef(id="S123")),
        ("<@U1>", None),
        ("<!here>", None),
    ],
)
def test_parse_group(word: str, expected: GroupRef | None) -> None:
    assert parse_group(word) == expected


# --- usage and help ---------------------------------------------------------------------


def test_usage_has_one_line_per_subcommand_in_the_design_table() -> None:
    assert set(USAGE) == {
        "help", "declare", "list", "status", "sev", "role", "page", "note", "started",
        "impact", "cause", "resolution", "measure", "task", "tasks", "update", "resolve",
        "timeline", "postmortem", "oncall",
        "stats",
    }  # fmt: skip
    for name, line in USAGE.items():
        assert line.startswith(f"/incident {name}")
        assert "\n" not in line
    assert USAGE["status"] == (
        "/incident status investigating|identified|monitoring|resolved [at TIME] [text]"
    )
    assert USAGE["task"] == "/incident task text [@owner] [due YYYY-MM-DD]"


def test_help_text_lists_every_usage_line() -> None:
    for line in USAGE.values():
        assert f"`{line}`" in HELP_TEXT
    assert "INC-7" in HELP_TEXT


def test_commands_are_frozen() -> None:
    note = Note(text="x")
    with pytest.raises(AttributeError):
        note.text = "y"  # type: ignore[misc]
