"""Times people type and read, durations, and the clock the rest of the bot asks for `now`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.errors import UserError

TIME_FORMATS = "write `HH:MM` (24 h) or `H:MM AM/PM`, optionally after a date `YYYY-MM-DD`"
DURATION_FORMATS = "write durations like 30s, 5m, 2h, 1d or 1h30m"

_TIME_RE = re.compile(r"^([0-9]{1,2}):([0-9]{2})(?:\s*([ap])\.?m\.?)?$", re.IGNORECASE)
_MERIDIEM_RE = re.compile(r"^([ap])\.?m\.?$", re.IGNORECASE)
_DATE_RE = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$")
# Loose shapes: a token that looks like it *meant* to be a time or a date is an error when
# it is not a valid one, instead of silently becoming part of a note's text.
_TIMEISH_RE = re.compile(r"^[0-9]{1,2}:[0-9]{1,2}(?:[ap]\.?m\.?)?$", re.IGNORECASE)
_DATEISH_RE = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$")
_DURATION_RE = re.compile(r"^(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")


class Clock(Protocol):
    """Where the bot gets the current time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current time in UTC."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: datetime) -> None:
        self._now = _require_aware(start)

    def now(self) -> datetime:
        """Return the time the test set."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back, for a negative delta)."""
        self._now = self._now + delta

    def set(self, dt: datetime) -> None:
        """Jump to an exact time."""
        self._now = _require_aware(dt)


def _require_aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("FakeClock needs a timezone-aware datetime")
    return dt.astimezone(UTC)


def _quote(text: str, limit: int = 40) -> str:
    """Echo a person's input inside backticks, on one line and never too long."""
    flat = " ".join(text.replace("`", "'").split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat}`"


def looks_like_time(word: str) -> bool:
    """Whether a token looks like someone meant to write a time."""
    return bool(_TIMEISH_RE.match(word))


def looks_like_date(word: str) -> bool:
    """Whether a token looks like someone meant to write a date."""
    return bool(_DATEISH_RE.match(word))


def is_meridiem(word: str) -> bool:
    """Whether a token is `AM`/`PM` (any case, dots allowed)."""
    return bool(_MERIDIEM_RE.match(word))


def parse_date(text: str) -> date:
    """Read `YYYY-MM-DD` as a real calendar date."""
    match = _DATE_RE.match(text.strip())
    if match is None:
        raise UserError(f"{_quote(text)} is not a date: write `YYYY-MM-DD`, e.g. `2026-11-25`.")
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise UserError(
            f"{_quote(text)} is not a date on the calendar: write `YYYY-MM-DD`, e.g. `2026-11-25`."
        ) from None


EARLIEST_YEAR = 2000


def check_incident_date(
    day: date, *, now: datetime, tz: ZoneInfo, typed: str, forms: str = "write `YYYY-MM-DD`"
) -> None:
    """Refuse a date no incident can have: before 2000 or after the end of next year.

    Far dates are typos (`9999-12-31`), and converting them between time zones overflows.
    """
    latest = now.astimezone(tz).year + 1
    if not EARLIEST_YEAR <= day.year <= latest:
        raise UserError(
            f"{_quote(typed)} is not a date an incident can have: give one from "
            f"{EARLIEST_YEAR} to {latest} ({forms})."
        )


def _parse_clock_time(text: str) -> time:
    match = _TIME_RE.match(text.strip())
    if match is None:
        raise UserError(f"{_quote(text)} is not a time: {TIME_FORMATS}.")
    hour, minute = int(match.group(1)), int(match.group(2))
    meridiem = match.group(3)
    if minute > 59:
        raise UserError(f"{_quote(text)} is not a time: {TIME_FORMATS}.")
    if meridiem is None:
        if hour > 23:
            raise UserError(f"{_quote(text)} is not a time: {TIME_FORMATS}.")
        return time(hour, minute)
    if not 1 <= hour <= 12:
        raise UserError(
            f"{_quote(text)} is not a time: with AM/PM the hour is 1 to 12 "
            "(12:00 AM is midnight, 12:00 PM is noon)."
        )
    hour %= 12
    if meridiem.lower() == "p":
        hour += 12
    return time(hour, minute)


def _localize(day: date, clock_time: time, tz: ZoneInfo, typed: str) -> datetime:
    """Attach tz to a wall-clock time; refuse times a DST jump skips, take the earlier of two."""
    local = datetime.combine(day, clock_time, tzinfo=tz).replace(fold=0)
    # A wall time inside a spring-forward gap does not survive a round trip through UTC.
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise UserError(
            f"{_quote(typed)} does not exist on {day.isoformat()} in {tz.key}: the clocks "
            "skipped that hour for daylight saving time, so write a time just before or after."
        )
    return local.astimezone(UTC)


def parse_when(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """Read `[YYYY-MM-DD] HH:MM` or `H:MM AM/PM` in tz (today by default); return it in UTC."""
    words = text.split()
    if not words:
        raise UserError(f"A time is missing: {TIME_FORMATS}.")
    day: date | None = None
    if looks_like_date(words[0]):
        day = parse_date(words[0])
        words = words[1:]
    if not words:
        raise UserError(f"{_quote(text)} has a date but no time: {TIME_FORMATS}.")
    if len(words) == 2 and is_meridiem(words[1]):
        words = [words[0] + words[1]]
    if len(words) != 1:
        raise UserError(f"{_quote(text)} is not a time: {TIME_FORMATS}.")
    clock_time = _parse_clock_time(words[0])
    local_now = now.astimezone(tz)
    if day is not None:
        check_incident_date(day, now=now, tz=tz, typed=text, forms=TIME_FORMATS)
    when = _localize(day or local_now.date(), clock_time, tz, text.strip())
    if when > now:
        hint = ""
        if day is None:
            yesterday = (local_now.date() - timedelta(days=1)).isoformat()
            hint = f" (for yesterday, put the date first: `{yesterday} {words[0]}`)"
        raise UserError(
            f"{_quote(text)} is in the future: give a time that has already happened{hint}."
        )
    return when


def take_time(
    words: Sequence[str], *, now: datetime, tz: ZoneInfo, keyword: str | None = "at"
) -> tuple[datetime | None, list[str]]:
    """Take a leading `at [DATE] TIME [AM|PM]` off words; (None, words) when there is none."""
    rest = list(words)
    start = 0
    if keyword is not None:
        if not rest or rest[0].lower() != keyword:
            return None, rest
        if len(rest) == 1:
            raise UserError(f"`{keyword}` needs a time after it: {TIME_FORMATS}.")
        start = 1
    taken: list[str] = []
    index = start
    if index < len(rest) and looks_like_date(rest[index]):
        taken.append(rest[index])
        index += 1
    if index < len(rest) and looks_like_time(rest[index]):
        taken.append(rest[index])
        index += 1
        if index < len(rest) and is_meridiem(rest[index]):
            taken.append(rest[index])
            index += 1
    elif taken:
        raise UserError(f"{_quote(' '.join(taken))} has a date but no time: {TIME_FORMATS}.")
    if not taken:
        if keyword is None:
            if rest:
                raise UserError(f"{_quote(rest[0])} is not a time: {TIME_FORMATS}.")
            raise UserError(f"A time is missing: {TIME_FORMATS}.")
        # "at" followed by ordinary words ("note at least the cache is warm") is just text.
        return None, rest
    return parse_when(" ".join(taken), now=now, tz=tz), rest[index:]


def format_time(dt: datetime, tz: ZoneInfo, *, with_date: bool = False) -> str:
    """Show a time as people read it: `10:25 AM PST`, or `2026-11-25 10:25 AM PST`."""
    local = dt.astimezone(tz)
    hour = local.hour % 12 or 12
    meridiem = "AM" if local.hour < 12 else "PM"
    shown = f"{hour}:{local.minute:02d} {meridiem} {local.tzname() or tz.key}"
    if with_date:
        return f"{local.date().isoformat()} {shown}"
    return shown


def parse_duration(text: str) -> timedelta:
    """Read `30s`, `5m`, `2h`, `1d` or combinations such as `1h30m`."""
    cleaned = text.strip().lower()
    match = _DURATION_RE.match(cleaned)
    if not cleaned or match is None:
        raise UserError(f"{_quote(text)} is not a duration: {DURATION_FORMATS}.")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def humanize_duration(delta: timedelta) -> str:
    """Say a duration in words: `1 hour and 30 minutes`; seconds are dropped."""
    if delta < timedelta(0):
        raise ValueError("humanize_duration needs a duration that is not negative")
    total_minutes = int(delta.total_seconds()) // 60
    if total_minutes == 0:
        return "less than a minute"
    days, rest = divmod(total_minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        _plural(count, unit)
        for count, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if count
    ]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]
