"""Answers about who is on call, kept for a minute on the bot's (injectable) clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.oncall.base import OnCallPerson

CACHE_FOR = timedelta(minutes=1)
CACHE_SIZE = 1000

# (provider, source key, identifier, credential variable)
CacheKey = tuple[str, str, str, str]


@dataclass
class OnCallCache:
    """People on call per source, each answer kept for CACHE_FOR; bounded, oldest out first."""

    keep_for: timedelta = CACHE_FOR
    _entries: dict[CacheKey, tuple[datetime, tuple[OnCallPerson, ...]]] = field(
        default_factory=dict
    )

    def get(self, key: CacheKey, *, now: datetime) -> tuple[OnCallPerson, ...] | None:
        """The answer stored less than a minute ago, or None."""
        found = self._entries.get(key)
        if found is None or now - found[0] >= self.keep_for or now < found[0]:
            return None
        return found[1]

    def put(self, key: CacheKey, people: tuple[OnCallPerson, ...], *, now: datetime) -> None:
        """Remember an answer as of now."""
        self._entries.pop(key, None)
        if len(self._entries) >= CACHE_SIZE:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (now, people)
