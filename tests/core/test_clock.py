"""Times people type and read: parsing, formatting, durations, the fake clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import (
    FakeClock,
    SystemClock,
    format_time,
    humanize_duration,
    parse_duration,
    parse_when,
    take_time,
)
from bot.errors import UserError

LA = ZoneInfo("America/Los_Angeles")
UTC_ZONE = ZoneInfo("UTC")
# 2026-11-25 12:00 PST (UTC-8).
NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


def la(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LA).astimezone(UTC)


def assert_user_error(excinfo: pytest.ExceptionInfo[UserError]) -> str:
    message = excinfo.value.message
    assert message and "\n" not in message
    return message


# --- parse_when -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10:25", la(2026, 11, 25, 10, 25)),
        ("0:00", la(2026, 11, 25, 0, 0)),
        ("00:00", la(2026, 11, 25, 0, 0)),
        ("11:59", la(2026, 11, 25, 11, 59)),
        ("12:00", la(2026, 11, 25, 12, 0)),
        ("10:25 AM", la(2026, 11, 25, 10, 25)),
        ("10:25 am", la(2026, 11, 25, 10, 25)),
        ("10:25AM", la(2026, 11, 25, 10, 25)),
        ("10:25am", la(2026, 11, 25, 10, 25)),
        ("10:25 a.m.", la(2026, 11, 25, 10, 25)),
        ("9:05 AM", la(2026, 11, 25, 9, 5)),
        ("12:00 AM", la(2026, 11, 25, 0, 0)),
        ("12:30 am", la(2026, 11, 25, 0, 30)),
        ("12:00 PM", la(2026, 11, 25, 12, 0)),
        ("2026-11-24 23:59", la(2026, 11, 24, 23, 59)),
        ("2026-11-24 11:59 PM", la(2026, 11, 24, 23, 59)),
        ("2026-11-24 12:30 PM", la(2026, 11, 24, 12, 30)),
        ("2025-01-01 00:00", la(2025, 1, 1, 0, 0)),
        ("  10:25  ", la(2026, 11, 25, 10, 25)),
    ],
)
def test_parse_when_reads_times_in_the_zone(text: str, expected: datetime) -> None:
    result = parse_when(text, now=NOW, tz=LA)
    assert result == expected
    assert result.tzinfo is UTC


def test_parse_when_returns_utc() -> None:
    assert parse_when("10:25", now=NOW, tz=LA) == datetime(2026, 11, 25, 18, 25, tzinfo=UTC)


def test_parse_when_in_utc_zone() -> None:
    assert parse_when("19:59", now=NOW, tz=UTC_ZONE) == datetime(2026, 11, 25, 19, 59, tzinfo=UTC)


def test_today_is_today_in_the_zone_not_in_utc() -> None:
    # 2026-11-26 02:00 UTC is still 2026-11-25 18:00 in Los Angeles.
    now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert parse_when("17:30", now=now, tz=LA) == la(2026, 11, 25, 17, 30)


def test_just_after_midnight_a_late_time_is_future_and_hints_yesterday() -> None:
    now = la(2026, 11, 25, 0, 10)
    with pytest.raises(UserError) as excinfo:
        parse_when("23:50", now=now, tz=LA)
    message = assert_user_error(excinfo)
    assert "future" in message
    assert "2026-11-24 23:50" in message
    assert parse_when("2026-11-24 23:50", now=now, tz=LA) == la(2026, 11, 24, 23, 50)


def test_midnight_itself_is_today() -> None:
    now = la(2026, 11, 25, 0, 0)
    assert parse_when("12:00 AM", now=now, tz=LA) == now


def test_the_current_minute_is_not_future() -> None:
    now = la(2026, 11, 25, 10, 25) + timedelta(seconds=30)
    assert parse_when("10:25", now=now, tz=LA) == la(2026, 11, 25, 10, 25)


@pytest.mark.parametrize(
    "text", ["12:01", "12:01 PM", "11:59 PM", "2026-11-26 00:00", "2027-01-01 9:00"]
)
def test_future_times_are_refused(text: str) -> None:
    with pytest.raises(UserError) as excinfo:
        parse_when(text, now=NOW, tz=LA)
    assert "future" in assert_user_error(excinfo)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "25:00",
        "24:00",
        "10:60",
        "10:5",
        "1025",
        "10.25",
        "noon",
        "13:00 PM",
        "0:30 AM",
        "00:30 am",
        "10:25 XM",
        "10:25 AM PM",
        "2026-13-01 10:00",
        "2026-02-30 10:00",
        "2026-11-25",
        "2026/11/25 10:00",
        "yesterday 10:00",
        "10:25 `rm -rf`",
    ],
)
def test_bad_times_are_refused_with_one_line(text: str) -> None:
    with pytest.raises(UserError) as excinfo:
        parse_when(text, now=NOW, tz=LA)
    assert_user_error(excinfo)


def test_bad_time_message_explains_the_format() -> None:
    with pytest.raises(UserError) as excinfo:
        parse_when("25:00", now=NOW, tz=LA)
    assert excinfo.value.message == (
        "`25:00` is not a time: write `HH:MM` (24 h) or `H:MM AM/PM`, "
        "optionally after a date `YYYY-MM-DD`."
    )


def test_dst_gap_time_is_refused() -> None:
    # 2026-03-08: Los Angeles clocks jump from 02:00 PST to 03:00 PDT.
    now = la(2026, 3, 8, 12, 0)
    with pytest.raises(UserError) as excinfo:
        parse_when("2:30", now=now, tz=LA)
    message = assert_user_error(excinfo)
    assert "daylight saving" in message
    assert parse_when("1:59", now=now, tz=LA) == datetime(2026, 3, 8, 9, 59, tzinfo=UTC)
    assert parse_when("3:00", now=now, tz=LA) == datetime(2026, 3, 8, 10, 0, tzinfo=UTC)


def test_dst_gap_with_date_and_am_is_refused() -> None:
    with pytest.raises(UserError):
        parse_when("2026-03-08 2:15 AM", now=NOW, tz=LA)


def test_dst_fold_takes_the_earlier_occurrence() -> None:
    # 2026-11-01: 01:00-02:00 happens twice, first in PDT (UTC-7) then in PST (UTC-8).
    now = datetime(2026, 11, 1, 20, 0, tzinfo=UTC)
    assert parse_when("1:30", now=now, tz=LA) == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


def test_dst_fold_earlier_occurrence_is_accepted_during_the_second() -> None:
    # Now is 01:40 PST (the second 01:40); 01:30 PDT happened an hour earlier.
    now = datetime(2026, 11, 1, 9, 40, tzinfo=UTC)
    assert parse_when("1:30", now=now, tz=LA) == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


def test_every_minute_of_a_day_round_trips_through_format() -> None:
    now = la(2026, 11, 25, 23, 59)
    for minute in range(0, 24 * 60, 7):
        expected = la(2026, 11, 25, minute // 60, minute % 60)
        typed = format_time(expected, LA).rsplit(" ", 1)[0]  # "10:25 AM"
        assert parse_when(typed, now=now, tz=LA) == expected
        assert parse_when(f"{minute // 60:02d}:{minute % 60:02d}", now=now, tz=LA) == expected


# --- take_time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected", "rest"),
    [
        (["at", "10:25", "db", "down"], la(2026, 11, 25, 10, 25), ["db", "down"]),
        (["at", "10:25", "AM", "db"], la(2026, 11, 25, 10, 25), ["db"]),
        (["AT", "10:25am"], la(2026, 11, 25, 10, 25), []),
        (["at", "2026-11-24", "9:00", "pm", "x"], la(2026, 11, 24, 21, 0), ["x"]),
        (["at", "2026-11-24", "21:00"], la(2026, 11, 24, 21, 0), []),
    ],
)
def test_take_time_takes_a_leading_at(
    words: list[str], expected: datetime, rest: list[str]
) -> None:
    assert take_time(words, now=NOW, tz=LA) == (expected, rest)


@pytest.mark.parametrize(
    "words",
    [[], ["db", "down"], ["at", "least", "it", "is", "up"], ["10:25", "db"], ["attic"]],
)
def test_take_time_leaves_words_without_a_time(words: list[str]) -> None:
    assert take_time(words, now=NOW, tz=LA) == (None, words)


@pytest.mark.parametrize(
    "words",
    [["at", "25:00", "x"], ["at", "2026-11-24", "x"], ["at", "2026-02-30", "10:00"], ["at"]],
)
def test_take_time_refuses_a_bad_time_after_at(words: list[str]) -> None:
    with pytest.raises(UserError) as excinfo:
        take_time(words, now=NOW, tz=LA)
    assert_user_error(excinfo)


def test_take_time_without_keyword() -> None:
    assert take_time(["10:25", "x"], now=NOW, tz=LA, keyword=None) == (
        la(2026, 11, 25, 10, 25),
        ["x"],
    )
    with pytest.raises(UserError, match="`soon` is not a time"):
        take_time(["soon"], now=NOW, tz=LA, keyword=None)
    with pytest.raises(UserError, match="A time is missing"):
        take_time([], now=NOW, tz=LA, keyword=None)


def test_take_time_does_not_mutate_its_input() -> None:
    words = ["at", "10:25", "x"]
    take_time(words, now=NOW, tz=LA)
    assert words == ["at", "10:25", "x"]


# --- format_time ------------------------------------------------------------------------


def test_format_time_winter_and_summer_abbreviations() -> None:
    assert format_time(la(2026, 11, 25, 10, 25), LA) == "10:25 AM PST"
    assert format_time(la(2026, 7, 4, 15, 5), LA) == "3:05 PM PDT"


def test_format_time_with_date() -> None:
    assert format_time(la(2026, 11, 25, 10, 25), LA, with_date=True) == "2026-11-25 10:25 AM PST"


def test_format_time_uses_the_local_date() -> None:
    dt = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert format_time(dt, LA, with_date=True) == "2026-11-25 6:00 PM PST"


def test_format_time_utc_midnight_and_noon() -> None:
    assert format_time(datetime(2026, 11, 25, 0, 0, tzinfo=UTC), UTC_ZONE) == "12:00 AM UTC"
    assert format_time(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), UTC_ZONE) == "12:00 PM UTC"


def test_format_time_in_the_fold_names_both_offsets() -> None:
    first = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    second = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert format_time(first, LA) == "1:30 AM PDT"
    assert format_time(second, LA) == "1:30 AM PST"


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("90m", timedelta(minutes=90)),
        ("0m", timedelta(0)),
        (" 5M ", timedelta(minutes=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "5", "5 minutes", "m", "1m1h", "-5m", "1.5h", "5mm", "1w", "h1", "5m 3s"]
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(UserError) as excinfo:
        parse_duration(text)
    message = assert_user_error(excinfo)
    assert "write durations like 30s, 5m, 2h, 1d or 1h30m" in message


def test_bad_duration_names_the_text() -> None:
    with pytest.raises(UserError) as excinfo:
        parse_duration("5 minutes")
    assert "`5 minutes`" in excinfo.value.message


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "less than a minute"),
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=1, seconds=59), "1 minute"),
        (timedelta(minutes=45), "45 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=1, minutes=30), "1 hour and 30 minutes"),
        (timedelta(hours=2), "2 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=1, minutes=5), "1 day and 5 minutes"),
        (timedelta(days=2, hours=3, minutes=5), "2 days, 3 hours and 5 minutes"),
        (timedelta(days=1, hours=1, minutes=1), "1 day, 1 hour and 1 minute"),
    ],
)
def test_humanize_duration(delta: timedelta, expected: str) -> None:
    assert humanize_duration(delta) == expected


def test_humanize_duration_refuses_negative() -> None:
    with pytest.raises(ValueError):
        humanize_duration(timedelta(minutes=-1))


def test_humanize_duration_says_exactly_the_whole_minutes() -> None:
    units = {"day": 24 * 60, "hour": 60, "minute": 1}
    for minutes in range(1, 3 * 24 * 60, 37):
        words = humanize_duration(parse_duration(f"{minutes}m15s"))
        said = re.findall(r"(\d+) (day|hour|minute)s?", words)
        assert all(int(count) > 0 for count, _ in said)
        assert sum(int(count) * units[unit] for count, unit in said) == minutes


# --- clocks -----------------------------------------------------------------------------


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(NOW)
    assert clock.now() == NOW
    clock.advance(timedelta(minutes=5))
    assert clock.now() == NOW + timedelta(minutes=5)
    clock.set(la(2026, 1, 1, 0, 0))
    assert clock.now() == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_fake_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 1, 1))  # deliberately naive
    clock = FakeClock(NOW)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
