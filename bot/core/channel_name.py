"""Incident channel names: `inc-YYYYMMDD-N-slug`, within Slack's rules for channel names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

MAX_LENGTH = 80  # Slack's limit for a channel name

# Letters NFKD leaves whole: a few Latin ones, and basic Cyrillic and Greek.
_TRANSLITERATION: Mapping[str, str] = MappingProxyType(
    {
        "ß": "ss",
        "æ": "ae",
        "ø": "o",
        "œ": "oe",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ł": "l",
        "ı": "i",
        "ъ": "",
        "ь": "",
        **dict(
            zip(
                "абвгдеёжзийклмнопрстуфхцчшщыэюяєіїґ",
                "a b v g d e e zh z i i k l m n o p r s t u f kh ts ch sh shch y e yu ya "
                "ye i yi g".split(),
                strict=True,
            )
        ),
        **dict(
            zip(
                "αβγδεζηθικλμνξοπρσςτυφχψω",
                "a v g d e z i th i k l m n x o p r s s t y f ch ps o".split(),
                strict=True,
            )
        ),
    }
)
_UNSAFE_RE = re.compile(r"[^a-z0-9_]+")
_DASH_RUN_RE = re.compile(r"[-_]*-[-_]*")


def slugify(title: str) -> str:
    """Lowercase ASCII words joined by dashes; empty when nothing in the title is usable."""
    decomposed = unicodedata.normalize("NFKD", title.lower())
    letters = "".join(
        _TRANSLITERATION.get(char, char) for char in decomposed if not unicodedata.combining(char)
    )
    dashed = _UNSAFE_RE.sub("-", letters)
    # An underscore next to a dash adds nothing but noise ("a-_-b" → "a-b").
    return _DASH_RUN_RE.sub("-", dashed).strip("-_")


def channel_name(*, declared: date, number: int, title: str, attempt: int = 0) -> str:
    """Name the channel of incident `number`; attempt ≥ 1 adds `-2`, `-3`, … after a clash."""
    if number < 1 or attempt < 0:
        raise ValueError("channel_name needs number ≥ 1 and attempt ≥ 0")
    prefix = f"inc-{declared:%Y%m%d}-{number}"
    suffix = f"-{attempt + 1}" if attempt else ""
    room = MAX_LENGTH - len(prefix) - len(suffix) - 1  # 1 for the dash before the slug
    if room < 0:
        raise ValueError(f"incident number {number} is too long for a channel name")
    slug = slugify(title)
    if len(slug) > room:
        cut = slug[:room]
        # Prefer ending on a whole word when that does not throw most of the slug away.
        boundary = cut.rfind("-")
        if boundary > room // 2 and slug[room] not in "-_":
            cut = cut[:boundary]
        slug = cut.strip("-_")
    return f"{prefix}-{slug}{suffix}" if slug else f"{prefix}{suffix}"
