"""Incident channel names stay inside Slack's rules whatever the title."""

from __future__ import annotations

import re
from datetime import date

import pytest

from bot.core.channel_name import channel_name, slugify

DAY = date(2026, 11, 25)
VALID = re.compile(r"^[a-z0-9_-]{1,80}$")

NASTY_TITLES = [
    "",
    " ",
    "Checkout latency spike",
    "🔥🔥🔥 everything is on fire 🔥🔥🔥",
    "🔥",
    "数据库故障",
    "数据库 down again",
    "שגיאה בתשלום",  # Hebrew, right to left
    "خطأ في الدفع",  # Arabic
    "\u202eevil\u202c override",
    "x" * 500,
    "word " * 200,
    "-" * 100,
    "!!!???...",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "DROP TABLE incident; --",
    "a--b__c  d",
    "___leading and trailing___",
    "Café Ünïcode",
    "ﬁnance ① Ｆｕｌｌｗｉｄｔｈ",
    "Straße Ærø Łódź",
    "Сбой оплаты",
    "Σφάλμα πληρωμών",
    "tab\tnew\nline\rreturn",
    "\x00\x01\x7f control",
    "Zalgo t̷̨͎̓ȩ̴̛x̵͚̓t̶̬͝",
    "日本語とEnglish mixed",
    "9" * 79,
    "-_-_-_-",
    "a" + "-" * 200 + "b",
]


@pytest.mark.parametrize("title", NASTY_TITLES)
@pytest.mark.parametrize("attempt", [0, 1, 2, 9, 99])
@pytest.mark.parametrize("number", [1, 7, 12345, 999_999_999])
def test_names_always_valid(title: str, attempt: int, number: int) -> None:
    name = channel_name(declared=DAY, number=number, title=title, attempt=attempt)
    assert VALID.match(name), name
    assert "--" not in name
    assert not name.endswith(("-", "_"))
    assert name.startswith(f"inc-20261125-{number}")
    if attempt:
        assert name.endswith(f"-{attempt + 1}")


def test_example() -> None:
    assert (
        channel_name(declared=DAY, number=7, title="Checkout latency spike")
        == "inc-20261125-7-checkout-latency-spike"
    )


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Café Ünïcode", "cafe-unicode"),
        ("Straße München", "strasse-munchen"),
        ("Ærø Łódź", "aero-lodz"),
        ("Сбой оплаты", "sboi-oplaty"),
        ("Объект", "obekt"),
        ("Σφάλμα", "sfalma"),
        ("ﬁnance Ｆｕｌｌ", "finance-full"),
        ("  Checkout -- API  ", "checkout-api"),
        ("db_primary failover", "db_primary-failover"),
        ("../../etc/passwd", "etc-passwd"),
        ("a - _ - b", "a-b"),
        ("数据库 down", "down"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


@pytest.mark.parametrize("title", ["", "🔥🔥", "数据库故障", "!!!", "-_-", "שגיאה"])
def test_nothing_usable_gives_the_bare_name(title: str) -> None:
    assert channel_name(declared=DAY, number=7, title=title) == "inc-20261125-7"
    assert channel_name(declared=DAY, number=7, title=title, attempt=1) == "inc-20261125-7-2"


def test_attempt_suffix() -> None:
    names = [
        channel_name(declared=DAY, number=7, title="db down", attempt=attempt)
        for attempt in range(4)
    ]
    assert names == [
        "inc-20261125-7-db-down",
        "inc-20261125-7-db-down-2",
        "inc-20261125-7-db-down-3",
        "inc-20261125-7-db-down-4",
    ]


def test_long_titles_truncate_the_slug_not_the_suffix() -> None:
    title = "x" * 500
    first = channel_name(declared=DAY, number=7, title=title)
    retry = channel_name(declared=DAY, number=7, title=title, attempt=11)
    assert len(first) == 80
    assert len(retry) == 80
    assert retry.endswith("x-12")
    assert first != retry


def test_long_titles_cut_at_a_word_boundary() -> None:
    name = channel_name(declared=DAY, number=7, title="checkout " * 20)
    assert len(name) <= 80
    assert name.endswith("-checkout")


def test_names_differ_for_every_attempt() -> None:
    for title in NASTY_TITLES:
        names = {
            channel_name(declared=DAY, number=7, title=title, attempt=attempt)
            for attempt in range(30)
        }
        assert len(names) == 30


@pytest.mark.parametrize(("number", "attempt"), [(0, 0), (-1, 0), (1, -1)])
def test_programming_errors_are_value_errors(number: int, attempt: int) -> None:
    with pytest.raises(ValueError):
        channel_name(declared=DAY, number=number, title="x", attempt=attempt)
