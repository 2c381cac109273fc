"""Properties of the `/incident` grammar over any text a person could type.

Whatever is typed, `parse` returns a command or raises UserError with a sentence for the
person; nothing else escapes, and every time or date it accepts is one an incident can have.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import grammar
from bot.errors import UserError

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True)

ZONES = st.sampled_from(
    [ZoneInfo(name) for name in ("UTC", "America/Los_Angeles", "Pacific/Kiritimati", "Etc/GMT+12")]
)
NOWS = st.datetimes(
    min_value=datetime(2001, 1, 2), max_value=datetime(2098, 12, 30), timezones=st.just(UTC)
)
WORDS = st.sampled_from(
    [
        "note",
        "status",
        "resolved",
        "monitoring",
        "resolve",
        "started",
        "task",
        "due",
        "at",
        "sev",
        "sev2",
        "declare",
        "role",
        "page",
        "update",
        "INC-7",
        "INC-0",
        "INC-99999999999",
        "<@U123|alice>",
        "@bob",
        "AM",
        "pm",
        "12:00",
        "23:59",
        "24:00",
        "9:60",
        "00:00",
    ]
)
DATES = st.builds(
    lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
)
TEXTS = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(WORDS, DATES, st.text(max_size=6)), max_size=8).map(" ".join),
)


def parse_or_refuse(text: str, now: datetime, tz: ZoneInfo) -> grammar.Command | UserError:
    try:
        return grammar.parse(text, now=now, tz=tz)
    except UserError as exc:
        return exc


def in_bounds(moment: datetime, now: datetime) -> bool:
    return datetime(2000, 1, 1, tzinfo=UTC) - timedelta(days=1) <= moment <= now


@BOUNDED
@given(text=TEXTS, now=NOWS, tz=ZONES)
def test_anything_typed_is_a_command_or_a_sentence(text: str, now: datetime, tz: ZoneInfo) -> None:
    result = parse_or_refuse(text, now, tz)
    if isinstance(result, UserError):
        assert result.message.strip() and "Traceback" not in result.message
        return
    at = getattr(result, "at", None)
    if at is not None:
        assert in_bounds(at, now), (text, at)
    due = getattr(result, "due", None)
    if due is not None:
        assert date(2000, 1, 1) <= due <= date(now.astimezone(tz).year + 1, 12, 31)


@BOUNDED
@given(
    command=st.sampled_from(
        ["note at {when} the cache was cold", "status resolved at {when}", "resolve at {when}"]
        + ["started {when}", "status monitoring at {when} warming up"]
    ),
    day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    clock=st.sampled_from(["00:00", "23:59", "12:00 AM", "11:59 PM"]),
    now=NOWS,
    tz=ZONES,
)
def test_backdated_times_are_within_what_an_incident_can_have(
    command: str, day: date, clock: str, now: datetime, tz: ZoneInfo
) -> None:
    text = command.format(when=f"{day.isoformat()} {clock}")
    result = parse_or_refuse(text, now, tz)
    latest = now.astimezone(tz).year + 1
    if isinstance(result, UserError):
        if not 2000 <= day.year <= latest:
            assert "not a date an incident can have" in result.message
            assert "YYYY-MM-DD" in result.message and "HH:MM" in result.message
        return
    assert 2000 <= day.year <= latest
    at = getattr(result, "at", None)
    assert at is not None and in_bounds(at, now)


@BOUNDED
@given(day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)), now=NOWS, tz=ZONES)
def test_due_dates_are_refused_outside_what_an_incident_can_have(
    day: date, now: datetime, tz: ZoneInfo
) -> None:
    result = parse_or_refuse(f"INC-3 task rotate the keys due {day.isoformat()}", now, tz)
    today = now.astimezone(tz).date()
    if isinstance(result, UserError):
        assert day < today or day.year > today.year + 1
        if day.year > today.year + 1:
            assert "not a date an incident can have" in result.message
        return
    assert isinstance(result, grammar.Task) and result.due == day
