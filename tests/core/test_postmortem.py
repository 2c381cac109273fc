"""The postmortem draft: the reference's sections and content, durations, and hostile text."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.core.clock import format_time
from bot.core.enums import EntryKind, Severity, Status
from bot.core.postmortem import (
    CAUSE_MISSING,
    DRAFT_LINE,
    IMPACT_MISSING,
    MEASURES_MISSING,
    MERMAID_EVENT_LIMIT,
    MERMAID_TEXT_LIMIT,
    RESOLUTION_MISSING,
    TASKS_MISSING,
    TIMELINE_MISSING,
    PostmortemEntry,
    PostmortemFacts,
    TaskItem,
    escape_text,
    render_postmortem,
    slack_to_plain,
)

PACIFIC = ZoneInfo("America/Los_Angeles")
NAMES = {"U1": "alice", "U2": "bob", "U123": "alice"}

# /work/shared/reference/postmortem-example.md, verbatim (two glitches kept: `###Duration:` and
# "platform.Root Cause:" with no line break; the comparison below repairs both on purpose).
REFERENCE = """\
# Postmortem

## Issue Summary.

###Duration:

1 hour and 30 minutes, from 10:15 AM to 11:45 AM PST
Impact: A significant degradation in website performance was experienced by approximately 70% of users. Users reported slow page load times, intermittent errors, and inability to complete transactions. The primary service affected was the e-commerce platform.Root Cause: A surge in traffic combined with inefficient caching mechanisms led to database overload and subsequent application slowdowns.

### Timeline:

* 10:15 AM PST: Increased error rates and slow response times detected by monitoring system.
* 10:25 AM PST: Initial investigation focused on application code and database queries.
* 10:40 AM PST: Database load spikes identified as the primary bottleneck. Caching infrastructure was examined.
* 10:55 AM PST: Decision made to implement temporary caching measures.
* 11:15 AM PST: Caching changes deployed. System stability begins to recover.
* 11:45 AM PST: System performance returns to normal levels.

### Root Cause and Resolution:

The root cause of the issue was a combination of unexpectedly high traffic and inefficient caching. A popular product launch generated a significant surge in website visitors, overwhelming the database. The existing caching mechanism was not designed to handle such a sudden increase in load, resulting in frequent cache misses and increased database queries.

To resolve the issue, we implemented temporary caching measures. This involved increasing cache expiration times for frequently accessed data and introducing additional cache layers to distribute the load. These changes effectively reduced the burden on the database and improved overall system performance.

### Corrective and Preventative Measures:

To prevent similar issues in the future, we will implement the following improvements:

* Enhance caching infrastructure: Expand cache capacity and implement more sophisticated caching strategies to handle traffic spikes.
* Implement load testing: Regularly conduct load tests to identify performance bottlenecks and evaluate system capacity.
* Improve monitoring: Enhance monitoring capabilities to detect performance issues earlier.
* Incident response plan: Develop a more detailed incident response plan outlining roles, responsibilities, and escalation procedures.
* Capacity planning: Conduct thorough capacity planning to anticipate future growth and resource requirements.

### Specific tasks:

* Increase cache server memory by 50%.
* Implement a distributed cache solution.
* Conduct load tests every two weeks.
* Add monitoring for database query latency.
* Create an incident response playbook.
* Update capacity planning models.
"""  # noqa: E501

HEADINGS = [
    (2, "Issue Summary."),
    (3, "Duration:"),
    (3, "Timeline:"),
    (3, "Root Cause and Resolution:"),
    (3, "Corrective and Preventative Measures:"),
    (3, "Specific tasks:"),
]


def at(hour: int, minute: int, day: int = 25, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PACIFIC)


def facts(**changes: object) -> PostmortemFacts:
    base = PostmortemFacts(
        ref="INC-1",
        title="Website performance degradation",
        severity=Severity.SEV1,
        status=Status.RESOLVED,
        declared_at=at(10, 20),
        started_at=None,
        resolved_at=at(11, 45),
        impact="Users saw errors.",
        root_cause="Cache misses.",
        resolution="Longer cache expiry.",
        commander="U1",
        people=("U1", "U2"),
        time_to_acknowledge=timedelta(minutes=4),
        measures=("Improve monitoring.",),
        tasks=(TaskItem("Add a latency alert."),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def render(
    the_facts: PostmortemFacts,
    entries: Sequence[PostmortemEntry] = (),
    *,
    now: datetime | None = None,
    names: dict[str, str] | None = None,
) -> str:
    return render_postmortem(
        the_facts,
        entries,
        tz=PACIFIC,
        names=NAMES if names is None else names,
        now=now or at(12, 0),
    )


def note(when: datetime, text: str, author: str | None = None) -> PostmortemEntry:
    return PostmortemEntry(occurred_at=when, kind=EntryKind.NOTE, text=text, author=author)


def sections(doc: str) -> list[tuple[int, str, list[str]]]:
    """Headings with their non-blank body lines; fenced blocks and table rows left out."""
    found: list[tuple[int, str, list[str]]] = []
    in_fence = False
    for line in doc.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        heading = re.match(r"^(#{1,6})\s*(.*?)\s*$", line)
        if in_fence or line.startswith("|"):
            continue
        if heading:
            found.append((len(heading.group(1)), heading.group(2), []))
        elif line.strip():
            found[-1][2].append(line.strip())
    return found


def body(doc: str, title: str) -> list[str]:
    return next(lines for _, heading, lines in sections(doc) if heading == title)


# --- The reference scenario -----------------------------------------------------------------

REFERENCE_SECTIONS = sections(REFERENCE.replace("platform.Root Cause:", "platform.\nRoot Cause:"))


def reference_paragraphs(title: str) -> list[str]:
    return next(lines for _, heading, lines in REFERENCE_SECTIONS if heading == title)


def reference_facts() -> tuple[PostmortemFacts, list[PostmortemEntry]]:
    timeline = [
        line.removeprefix("* ").split(": ", 1) for line in reference_paragraphs("Timeline:")
    ]
    entries = [
        note(
            datetime.strptime(f"2026-11-25 {when[:-4]}", "%Y-%m-%d %I:%M %p").replace(
                tzinfo=PACIFIC
            ),
            text,
        )
        for when, text in timeline
    ]
    # Noise in between: joins and leaves never reach the document.
    entries.insert(1, PostmortemEntry(at(10, 16), EntryKind.JOINED, "<@U2> joined", "U2"))
    entries.append(PostmortemEntry(at(11, 50), EntryKind.LEFT, "<@U2> left", "U2"))
    impact, cause = reference_paragraphs("Duration:")[1:3]
    detail, resolution = reference_paragraphs("Root Cause and Resolution:")
    the_facts = facts(
        impact=impact.removeprefix("Impact: "),
        # The summary's short cause first, then the long one for "Root Cause and Resolution".
        root_cause=cause.removeprefix("Root Cause: ") + "\n\n" + detail,
        resolution=resolution,
        measures=tuple(m.removeprefix("* ") for m in reference_paragraphs(HEADINGS[4][1])[1:]),
        tasks=tuple(TaskItem(t.removeprefix("* ")) for t in reference_paragraphs(HEADINGS[5][1])),
    )
    return the_facts, entries


def test_reference_scenario_has_the_reference_sections_and_content() -> None:
    the_facts, entries = reference_facts()
    doc = render(the_facts, entries)

    ours = sections(doc)
    assert ours[0][:2] == (1, "Postmortem: INC-1 — Website performance degradation")
    assert REFERENCE_SECTIONS[0][:2] == (1, "Postmortem")
    assert [(level, title) for level, title, _ in ours[1:]] == HEADINGS
    assert [(level, title) for level, title, _ in REFERENCE_SECTIONS[1:]] == HEADINGS
    for (_, title, lines), (_, _, expected) in zip(ours, REFERENCE_SECTIONS, strict=True):
        assert lines == expected, title


def test_reference_scenario_adds_the_facts_table_and_the_mermaid_timeline() -> None:
    the_facts, entries = reference_facts()
    doc = render(the_facts, entries)

    assert "### Duration:\n\n1 hour and 30 minutes, from 10:15 AM to 11:45 AM PST\n\n" in doc
    assert (
        "| Fact | Value |\n"
        "| --- | --- |\n"
        "| Severity | SEV1 |\n"
        "| Status | Resolved |\n"
        "| Declared | 2026-11-25 10:20 AM PST |\n"
        "| Commander | alice |\n"
        "| Time to acknowledge | 4 minutes |\n"
        "| Time to resolve | 1 hour and 30 minutes |\n"
        "| People involved | alice, bob |\n"
    ) in doc
    mermaid = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert mermaid.splitlines()[:3] == [
        "timeline",
        "    title INC-1",
        "    10∶15 AM : Increased error rates and slow response times detected by monitoring"
        " system.",
    ]
    assert len(mermaid.splitlines()) == 2 + 6
    assert "not recorded yet" not in doc
    assert DRAFT_LINE not in doc
    assert doc.index("### Timeline:") < doc.index("```mermaid") < doc.index("### Root Cause and")


# --- Durations and times --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (at(10, 0), at(10, 45), "45 minutes, from 10:00 AM to 10:45 AM PST"),
        (at(10, 15), at(11, 45), "1 hour and 30 minutes, from 10:15 AM to 11:45 AM PST"),
        (
            at(9, 0, day=23),
            at(12, 5),
            "2 days, 3 hours and 5 minutes, from 2026-11-23 9:00 AM to 2026-11-25 12:05 PM PST",
        ),
        (
            at(23, 15),
            at(0, 45, day=26),
            "1 hour and 30 minutes, from 2026-11-25 11:15 PM to 2026-11-26 12:45 AM PST",
        ),
        (
            at(10, 15, day=1, month=7),
            at(11, 45, day=1, month=7),
            "1 hour and 30 minutes, from 10:15 AM to 11:45 AM PDT",
        ),
        # Clocks fall back during the incident: 1:30 PDT to 1:15 PST is 45 minutes of real time.
        (
            datetime(2026, 11, 1, 1, 30, tzinfo=PACIFIC),
            datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=PACIFIC),
            "45 minutes, from 1:30 AM PDT to 1:15 AM PST",
        ),
    ],
)
def test_duration_in_words(start: datetime, end: datetime, expected: str) -> None:
    doc = render(facts(started_at=start, declared_at=start, resolved_at=end))

    assert body(doc, "Duration:")[0] == expected
    assert f"| Time to resolve | {expected.split(', from')[0]} |" in doc


def test_duration_starts_at_the_first_timeline_entry_without_a_start_time() -> None:
    entries = [note(at(10, 30), "later"), note(at(10, 5), "backdated detection")]

    doc = render(facts(declared_at=at(10, 20), resolved_at=at(11, 5)), entries)

    assert body(doc, "Duration:")[0] == "1 hour, from 10:05 AM to 11:05 AM PST"


def test_duration_starts_at_the_declaration_without_start_time_or_entries() -> None:
    doc = render(facts(declared_at=at(10, 20), resolved_at=at(11, 5)))

    assert body(doc, "Duration:")[0] == "45 minutes, from 10:20 AM to 11:05 AM PST"


def test_timeline_across_midnight_shows_dates() -> None:
    entries = [note(at(23, 50), "late"), note(at(0, 10, day=26), "early")]

    doc = render(facts(started_at=at(23, 50), resolved_at=at(0, 20, day=26)), entries)

    assert body(doc, "Timeline:") == [
        "* 2026-11-25 11:50 PM PST: late",
        "* 2026-11-26 12:10 AM PST: early",
    ]
    assert "    2026-11-25 11∶50 PM : late" in doc


def test_timeline_in_summer_shows_pdt() -> None:
    doc = render(
        facts(resolved_at=at(11, 0, day=2, month=7), declared_at=at(10, 0, day=2, month=7)),
        [note(at(10, 15, day=2, month=7), "summer")],
    )

    assert body(doc, "Timeline:") == ["* 10:15 AM PDT: summer"]


# --- Missing facts and ongoing incidents ----------------------------------------------------


def test_missing_facts_show_placeholders_and_no_section_vanishes() -> None:
    empty = facts(
        status=Status.INVESTIGATING,
        declared_at=at(10, 15),
        resolved_at=None,
        impact=None,
        root_cause="   ",
        resolution=None,
        commander=None,
        people=(),
        time_to_acknowledge=None,
        measures=(),
        tasks=(),
    )

    doc = render(empty, now=at(11, 45))

    lines = doc.splitlines()
    assert lines[0] == "# Postmortem: INC-1 — Website performance degradation"
    assert lines[2] == DRAFT_LINE
    assert [(level, title) for level, title, _ in sections(doc)[1:]] == HEADINGS
    assert body(doc, "Duration:") == [
        "ongoing since 10:15 AM PST (1 hour and 30 minutes so far)",
        f"Impact: {IMPACT_MISSING}",
        f"Root Cause: {CAUSE_MISSING}",
    ]
    assert body(doc, "Timeline:") == [TIMELINE_MISSING]
    assert "```mermaid" not in doc
    assert body(doc, "Root Cause and Resolution:") == [CAUSE_MISSING, RESOLUTION_MISSING]
    assert body(doc, "Corrective and Preventative Measures:") == [MEASURES_MISSING]
    assert body(doc, "Specific tasks:") == [TASKS_MISSING]
    assert "| Commander | not assigned |" in doc
    assert "| Time to acknowledge | not recorded |" in doc
    assert "| Time to resolve | ongoing (1 hour and 30 minutes so far) |" in doc
    assert "| People involved | not recorded |" in doc
    assert "| Status | Investigating |" in doc


def test_ongoing_since_yesterday_shows_the_date() -> None:
    doc = render(
        facts(status=Status.MONITORING, resolved_at=None, started_at=at(22, 0, day=24)),
        now=at(1, 0),
    )

    assert body(doc, "Duration:")[0] == ("ongoing since 2026-11-24 10:00 PM PST (3 hours so far)")


def test_resolved_without_a_resolution_time_says_so() -> None:
    doc = render(facts(resolved_at=None, started_at=at(10, 15)))

    assert body(doc, "Duration:")[0] == (
        "from 2026-11-25 10:15 AM PST; _resolution time not recorded_"
    )
    assert "| Time to resolve | not recorded |" in doc
    assert DRAFT_LINE not in doc


def test_one_paragraph_cause_shows_in_summary_and_section() -> None:
    doc = render(facts(root_cause="Cache misses.", resolution="First.\n\nSecond."))

    assert "Root Cause: Cache misses." in body(doc, "Duration:")
    assert body(doc, "Root Cause and Resolution:") == ["Cache misses.", "First.", "Second."]


def test_multi_paragraph_impact_keeps_every_paragraph() -> None:
    doc = render(facts(impact="Checkout failed.\r\n\r\nSearch was slow."))

    assert body(doc, "Duration:")[1:3] == ["Impact: Checkout failed.", "Search was slow."]


def test_tasks_show_owner_due_and_done() -> None:
    tasks = (
        TaskItem("Add alert", owner="U2", due=date(2026, 12, 1)),
        TaskItem("Fix cache", owner="<@U1>", done=True),
        TaskItem("Write doc", due=date(2026, 12, 2), done=True),
        TaskItem("Unowned"),
    )

    doc = render(facts(tasks=tasks))

    assert body(doc, "Specific tasks:") == [
        "* Add alert — owner bob, due 2026-12-01",
        "* ~~Fix cache~~ (done) — owner alice",
        "* ~~Write doc~~ (done) — due 2026-12-02",
        "* Unowned",
    ]


# --- The timeline ---------------------------------------------------------------------------


def test_noise_is_left_out_and_backdated_entries_are_sorted() -> None:
    entries = [
        PostmortemEntry(at(10, 20), EntryKind.DECLARED, "Declared by <@U1>", "U1"),
        PostmortemEntry(at(10, 21), EntryKind.JOINED, "<@U2> joined", "U2"),
        PostmortemEntry(at(10, 30), EntryKind.STATUS, "Status changed to Identified", "U1"),
        PostmortemEntry(at(10, 31), EntryKind.LEFT, "<@U2> left", "U2"),
        PostmortemEntry(at(10, 32), EntryKind.FOLLOW_UP, "Task added", "U2"),
        note(at(10, 5), "Alerts fired (backdated)", "U2"),
        PostmortemEntry(at(10, 30), EntryKind.PAGE, "Paged <@U2>"),
        PostmortemEntry(at(10, 40), EntryKind.ROLE, "<@U2> is now scribe", "U1"),
    ]

    doc = render(facts(), entries)

    assert body(doc, "Timeline:") == [
        "* 10:05 AM PST: Alerts fired (backdated) (bob)",
        "* 10:20 AM PST: Declared by @alice",
        "* 10:30 AM PST: Status changed to Identified (alice)",
        "* 10:30 AM PST: Paged @bob",
        "* 10:40 AM PST: @bob is now scribe (alice)",
    ]
    mermaid = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert "    10∶30 AM : Status changed to Identified : Paged @bob" in mermaid.splitlines()


def test_author_without_a_name_shows_the_id() -> None:
    doc = render(facts(), [note(at(10, 20), "checking", "U777")])

    assert body(doc, "Timeline:") == ["* 10:20 AM PST: checking (U777)"]


def test_mermaid_caps_events_and_sanitizes_text() -> None:
    entries = [
        note(at(10, 0) + timedelta(minutes=i), f"step {i}: see #ops; 100%% <b>`x`</b>\n" + "x" * 90)
        for i in range(120)
    ]

    doc = render(facts(), entries)

    mermaid = doc.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    events = mermaid[2:]
    assert len(events) == MERMAID_EVENT_LIMIT
    assert events[-1] == "    11∶59 AM : … 71 more (see the list above)"
    for line in events:
        period, event = line.removeprefix("    ").split(" : ")
        assert not re.search(r"[:#;\n<>`]|%%", period + event), line
        assert len(event) <= MERMAID_TEXT_LIMIT
    assert events[0].startswith("    10∶00 AM : step 0∶ see ＃ops, 100% ‹b›'x'‹/b› / xxx")
    assert events[0].endswith("…")


# --- escape_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<@U1> paged <@U9|carol> and <@U8>", "@alice paged @carol and @U8"),
        ("<@U1|someone-else>", "@alice"),
        ("see <#C1|ops> and <#C2>", "see #ops and #C2"),
        ("<!channel> <!here> <!everyone> <!here|here>", "@channel @here @everyone @here"),
        ("<!subteam^S1|@oncall> and <!subteam^S2>", "@oncall and @S2"),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("<https://x.example/a?b=1&amp;c=2|the graph>", "the graph (https://x.example/a?b=1&c=2)"),
        ("<https://x.example/)(evil|label>", "label (https://x.example/%29%28evil)"),
        ("<https://x.example/a_b_>", "https://x.example/a_b\\_"),
        ("<http://x.example|x.example>", "x.example"),
        ("<mailto:a@b.example|a@b.example>", "a@b.example"),
        ("&lt;b&gt; &amp;lt; &amp;copy;", "\\<b\\> \\&lt; \\&copy;"),
        ("raw <script> stays", "raw \\<script\\> stays"),
        ("snake_case_name __init__ _x_", "snake_case_name \\_\\_init\\_\\_ \\_x\\_"),
        ("1. first", "1\\. first"),
        ("12) twelve", "12\\) twelve"),
        ("1.5x faster", "1\\.5x faster"),
        ("# title ##", "\\# title \\##"),
        ("- a", "\\- a"),
        ("+ a", "\\+ a"),
        ("=== a", "\\=== a"),
        ("a - b + c = d # e", "a - b + c = d # e"),
        ("one\ntwo\r\n\r\nthree\u2028four", "one / two / three / four"),
        ("tab\there  and   spaces", "tab here and spaces"),
        ("nul\x00bell\x07esc\x1b del\x7f", "nulbellesc del"),
        ("\u202eevil\u202c ok", "evil ok"),
        ("emoji 🔥 👩‍💻 RTL עברית", "emoji 🔥 👩‍💻 RTL עברית"),
        ("back\\slash", "back\\\\slash"),
        ("costs $5 and $10 ($x$)", "costs \\$5 and \\$10 (\\$x\\$)"),
        ("`code` *em* [l](u) ![i](u) | ~", "\\`code\\` \\*em\\* \\[l\\](u) !\\[i\\](u) \\| \\~"),
        ("", ""),
        ("   \n\t  ", ""),
    ],
)
def test_escape_text(raw: str, expected: str) -> None:
    assert escape_text(raw, names={"U1": "alice", "C1": "ops"}) == expected


def test_slack_to_plain_keeps_unknown_angle_text() -> None:
    assert slack_to_plain("a <b> &amp;amp;", names={}) == "a <b> &amp;"


def test_names_are_escaped_too() -> None:
    names = {"U1": "*star* <b>\n# x", "U2": "bob"}

    doc = render(facts(commander="U1", people=("U1", "U2", "U1")), names=names)

    assert "| Commander | \\*star\\* \\<b\\> / # x |" in doc
    assert "| People involved | \\*star\\* \\<b\\> / # x, bob |" in doc


# --- Hostile text: the document's structure never changes ---------------------------------

HOSTILE = [
    "# heading",
    "## second heading",
    "###### six",
    "#hashtag",
    "* item",
    "- item",
    "+ item",
    "1. item",
    "2) item",
    "```python\nprint('x')\n```",
    "```code```",
    "~~~\nfenced\n~~~",
    "<script>alert('x')</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&lt;img src=x onerror=alert(1)&gt;",
    "[link](http://x)",
    "![img](x)",
    "[ref]: http://evil.example",
    "[x]: <y>",
    "<https://evil.example|label> and <https://a.example/x)y>",
    "<javascript:alert(1)|click me>",
    "<http://autolink.example>",
    "| a | b |\n| --- | --- |\n| c | d |",
    "**bold** and __bold__",
    "_em_ and *em*",
    "foo *bar*baz* _qux_",
    "~~strike~~",
    "<!channel> look",
    "<!here> and <!everyone>",
    "<@U123> and <@U999|mallory>",
    "<#C1|general> channel",
    "> quote",
    "---",
    "===",
    "***",
    "___",
    "- - -",
    "line one\n# injected",
    "line one\n\n* injected item",
    "CRLF\r\n# injected",
    "Setext\n---",
    "term\n===",
    "text\twith\ttabs",
    "    four-space indented code",
    "\t\tindented with tabs",
    "emoji 🔥🚒 👩‍💻 ok",
    "RTL עברית العربية mixed",
    "very long " + "word " * 2000,
    "back\\slash \\* \\_ \\\\ end\\",
    "\\# escaped already",
    "&amp;copy; &amp;#35; &amp;amp; entities",
    "NUL\x00char and \x07bell \x1b[31mansi",
    "`inline code`",
    "trailing spaces for hard break  \nnext",
    "www.example.com and http://bare.example",
    "a<b>c</b>d",
    "<div>\nblock\n</div>",
    "&lt;!-- comment --&gt;",
    "1.5x latency, 2.0 release",
    "\u202eevil override\u202c",
    "\u2028line separator\u2029para",
    "heading at end ##",
    "snake_case_name and __dunder__",
    "<mailto:a@b.example|a@b.example>",
    "*",
    "",
]
# Words the reader must still see where Slack markup turns into names or labels.
HOSTILE_WORDS = {
    "<!channel> look": ["@channel", "look"],
    "<@U123> and <@U999|mallory>": ["@alice", "and", "@mallory"],
    "<#C1|general> channel": ["#general", "channel"],
    "<mailto:a@b.example|a@b.example>": ["a@b.example"],
    "emoji 🔥🚒 👩‍💻 ok": ["emoji 🔥🚒 👩‍💻 ok"],
    "RTL עברית العربية mixed": ["RTL עברית العربية mixed"],
}
HOSTILE_NAMES = {"U123": "alice", "UEVIL": "**evil** <b>x</b>\n# name ` [l](u) | cell", "U2": "bob"}
AUTHORS = ["U123", "UEVIL", "U2", None]
FORBIDDEN_INLINE = {"html_inline", "link_open", "image", "em_open", "strong_open", "code_inline"}


def expected_words(raw: str) -> list[str]:
    if raw in HOSTILE_WORDS:
        return HOSTILE_WORDS[raw]
    plain = raw.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.findall(r"[^\W_]+", plain)


def hostile_incident() -> tuple[PostmortemFacts, list[PostmortemEntry]]:
    start = at(10, 0)
    entries = [
        note(start + timedelta(minutes=i), text, AUTHORS[i % len(AUTHORS)])
        for i, text in enumerate(HOSTILE)
    ]
    the_facts = facts(
        title="# Title *with* <b>html</b> [link](x) ##",
        started_at=start,
        resolved_at=start + timedelta(hours=2),
        commander="UEVIL",
        people=("UEVIL", "U2"),
        impact="# Impact heading\n\n* item\n> quote",
        root_cause="```\ncode\n```\n\n<script>x</script>\n\n1. one",
        resolution="| a | b |\n|---|---|\n| c | d |",
        measures=tuple(HOSTILE[:12]),
        tasks=tuple(
            TaskItem(text, owner="UEVIL", due=date(2026, 12, 1), done=i % 2 == 0)
            for i, text in enumerate(HOSTILE[12:24])
        ),
    )
    return the_facts, entries


def block_skeleton(tokens: Sequence[Token]) -> list[str]:
    return [f"{t.type}:{t.tag}" for t in tokens if t.type != "inline"]


def heading(level: int) -> list[str]:
    return [f"heading_open:h{level}", f"heading_close:h{level}"]


def paragraphs(count: int) -> list[str]:
    return ["paragraph_open:p", "paragraph_close:p"] * count


def bullets(count: int) -> list[str]:
    item = ["list_item_open:li", *paragraphs(1), "list_item_close:li"]
    return ["bullet_list_open:ul", *item * count, "bullet_list_close:ul"]


def expected_skeleton(*, entries: int, measures: int, tasks: int) -> list[str]:
    return [
        *heading(1),
        *heading(2),
        *heading(3),
        *paragraphs(1 + 2 + 1 + 1),  # duration, two impact paragraphs, cause, facts table
        *heading(3),
        *bullets(entries),
        "fence:code",
        *heading(3),
        *paragraphs(2 + 1),  # the cause's later paragraphs, the resolution
        *heading(3),
        *paragraphs(1),
        *bullets(measures),
        *heading(3),
        *bullets(tasks),
    ]


def visible(token: Token) -> str:
    assert token.children is not None
    return "".join("\n" if c.type == "softbreak" else c.content for c in token.children)


def test_hostile_text_cannot_change_the_document_structure() -> None:
    the_facts, entries = hostile_incident()

    doc = render(the_facts, entries, names=HOSTILE_NAMES)
    tokens = MarkdownIt("commonmark").parse(doc)

    assert len(HOSTILE) >= 40
    assert block_skeleton(tokens) == expected_skeleton(entries=len(HOSTILE), measures=12, tasks=12)
    inline_types = {c.type for t in tokens if t.type == "inline" for c in t.children or []}
    assert inline_types <= {"text", "softbreak"}
    assert not inline_types & FORBIDDEN_INLINE
    assert [t.info for t in tokens if t.type == "fence"] == ["mermaid"]
    headings = [visible(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == [
        "Postmortem: INC-1 — # Title *with* <b>html</b> [link](x) ##",
        *(title for _, title in HEADINGS),
    ]
    softbreaks = [
        t for t in tokens if t.type == "inline" for c in t.children or [] if c.type == "softbreak"
    ]
    assert len(softbreaks) == 8  # only between the facts table's nine lines


def test_hostile_entries_stay_one_item_each_with_their_words() -> None:
    the_facts, entries = hostile_incident()

    tokens = MarkdownIt("commonmark").parse(render(the_facts, entries, names=HOSTILE_NAMES))

    timeline_list = tokens.index(next(t for t in tokens if t.type == "bullet_list_open"))
    items = [
        visible(tokens[i + 2])
        for i in range(timeline_list, len(tokens))
        if tokens[i].type == "list_item_open" and tokens[i].level == 1
    ][: len(HOSTILE)]
    assert len(items) == len(HOSTILE)
    for entry, shown in zip(entries, items, strict=True):
        assert shown.startswith(format_time(entry.occurred_at, PACIFIC) + ":")
        assert "\n" not in shown
        for word in expected_words(entry.text):
            assert word in shown, (entry.text, shown)
    assert items[HOSTILE.index("# heading")].endswith("# heading (alice)")
    assert items[HOSTILE.index("## second heading")] == (
        "10:01 AM PST: ## second heading (**evil** <b>x</b> / # name ` [l](u) | cell)"
    )
    assert "line one / # injected (" in items[HOSTILE.index("line one\n# injected")]


def test_hostile_text_under_gfm_makes_only_our_table_and_strikethroughs() -> None:
    the_facts, entries = hostile_incident()

    doc = render(the_facts, entries, names=HOSTILE_NAMES)
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(doc)

    assert [t.type for t in tokens].count("table_open") == 1
    assert [t.type for t in tokens].count("tr_open") == 1 + 7
    assert [t.type for t in tokens].count("td_open") == 7 * 2
    strikes = [
        c for t in tokens if t.type == "inline" for c in t.children or [] if c.type == "s_open"
    ]
    assert len(strikes) == sum(task.done for task in the_facts.tasks)
    inline_types = {c.type for t in tokens if t.type == "inline" for c in t.children or []}
    assert inline_types <= {"text", "softbreak", "s_open", "s_close"}


def test_ongoing_hostile_incident_has_only_our_emphasis() -> None:
    the_facts, entries = hostile_incident()
    ongoing = replace(
        the_facts, status=Status.IDENTIFIED, resolved_at=None, impact=None, measures=(), tasks=()
    )

    tokens = MarkdownIt("commonmark").parse(render(ongoing, entries, names=HOSTILE_NAMES))

    emphasis: list[str] = []
    for token in tokens:
        inside: list[str] | None = None
        for child in token.children or []:
            if child.type == "em_open":
                inside = []
            elif child.type == "em_close" and inside is not None:
                emphasis.append("".join(inside))
                inside = None
            elif inside is not None:
                inside.append(child.content)
    assert emphasis == [
        IMPACT_MISSING.strip("_"),
        MEASURES_MISSING.strip("_"),
        TASKS_MISSING.strip("_"),
    ]
    assert not [t for t in tokens for c in t.children or [] if c.type == "strong_open"]
    assert tokens[4].content == DRAFT_LINE


def test_random_text_never_forms_structure_and_reads_back_exactly() -> None:
    rng = random.Random(20261125)
    alphabet = list("#*_-+=>`~[]()!<>|\\&;:./1 2aé$\t\n") + ["&amp;", "&#35;", "&copy;", "1. "]
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    for _ in range(1500):
        plain = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        # As Slack sends it: a typed `&`, `<` or `>` arrives as an entity.
        raw = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        expected = " / ".join(" ".join(line.split()) for line in plain.split("\n") if line.strip())
        escaped = escape_text(raw, names={})
        if not expected:
            assert escaped == ""
            continue
        tokens = md.parse(f"{escaped}\n\n* 10:00 AM PST: {escaped}\n* {escaped}\n\n# T {escaped}\n")

        assert block_skeleton(tokens) == [
            *paragraphs(1),
            *bullets(2),
            *heading(1),
        ], (plain, escaped)
        inlines = [t for t in tokens if t.type == "inline"]
        assert {c.type for t in inlines for c in t.children or []} == {"text"}, (plain, escaped)
        assert [visible(t) for t in inlines] == [
            expected,
            f"10:00 AM PST: {expected}",
            expected,
            f"T {expected}",
        ], (plain, escaped)


# --- Size -----------------------------------------------------------------------------------


def test_fifty_thousand_entries_render() -> None:
    start = at(10, 0, day=1)
    entries = [
        note(start + timedelta(seconds=30 * i), f"entry {i} *x* <@U1>", "U2") for i in range(50_000)
    ]

    doc = render(facts(started_at=start, resolved_at=start + timedelta(days=18)), entries)

    timeline = body(doc, "Timeline:")
    assert len(timeline) == 50_000
    assert timeline[0] == "* 2026-11-01 10:00 AM PST: entry 0 \\*x\\* @alice (bob)"
    assert timeline[-1].startswith("* 2026-11-18 ")
    mermaid = doc.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    assert sum(line.count(" : ") for line in mermaid[2:]) == MERMAID_EVENT_LIMIT
    assert mermaid[-1].endswith(
        f" : … {50_000 - MERMAID_EVENT_LIMIT + 1} more (see the list above)"
    )
    assert [(level, title) for level, title, _ in sections(doc)[1:]] == HEADINGS
