"""Render time, peak memory and size of a postmortem with a very long timeline.

    python bench/postmortem_render.py [--entries 50000]

Prints figures; asserts nothing. Entries mix plain notes, Slack markup and hostile Markdown.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.enums import EntryKind, Severity, Status
from bot.core.postmortem import PostmortemEntry, PostmortemFacts, TaskItem, render_postmortem

PACIFIC = ZoneInfo("America/Los_Angeles")
TEXTS = [
    "Error rates rising on checkout, p99 at 4.2s",
    "<@U1> is looking at the cache cluster; see <https://grafana.example/d/abc?x=1&amp;y=2|graph>",
    "# not a heading\n* not a list\n```not code```",
    "<!channel> rolling back deploy #4812 (snake_case_flag=off)",
    "**bold** _em_ [link](http://x) ![img](y) | a | b | &lt;script&gt;",
    "Backdated: alerts fired 🔥 before anyone noticed",
]
KINDS = [EntryKind.NOTE, EntryKind.UPDATE, EntryKind.PINNED, EntryKind.STATUS, EntryKind.JOINED]


def build(count: int) -> tuple[PostmortemFacts, list[PostmortemEntry], dict[str, str]]:
    start = datetime(2026, 11, 25, 10, 0, tzinfo=PACIFIC)
    entries = [
        PostmortemEntry(
            occurred_at=start + timedelta(seconds=20 * i),
            kind=KINDS[i % len(KINDS)],
            text=f"{TEXTS[i % len(TEXTS)]} ({i})",
            author=f"U{i % 40}",
        )
        for i in range(count)
    ]
    names = {f"U{i}": f"person_{i}" for i in range(40)}
    facts = PostmortemFacts(
        ref="INC-1",
        title="Checkout degraded",
        severity=Severity.SEV1,
        status=Status.RESOLVED,
        declared_at=start,
        started_at=start,
        resolved_at=entries[-1].occurred_at if entries else start,
        impact="70% of users saw slow pages.",
        root_cause="Traffic surge.\n\nCache misses overloaded the database.",
        resolution="Longer cache expiry and an extra cache layer.",
        commander="U1",
        people=tuple(names),
        time_to_acknowledge=timedelta(minutes=4),
        measures=("Load tests every two weeks.",) * 5,
        tasks=(TaskItem("Add query-latency alert", owner="U2", due=date(2026, 12, 1)),) * 6,
    )
    return facts, entries, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000)
    args = parser.parse_args()
    facts, entries, names = build(args.entries)
    now = datetime.now(PACIFIC)

    def render() -> str:
        return render_postmortem(facts, entries, tz=PACIFIC, names=names, now=now)

    timings = []
    for _ in range(3):
        began = time.perf_counter()
        doc = render()
        timings.append(time.perf_counter() - began)

    tracemalloc.start()
    render()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"entries:      {len(entries):,}")
    print(
        f"render time:  {min(timings):.3f} s (best of 3; all: "
        + ", ".join(f"{t:.3f}" for t in timings)
        + ")"
    )
    print(f"peak memory:  {peak / 2**20:.1f} MiB (tracemalloc, one render)")
    print(
        f"document:     {len(doc.encode()) / 2**20:.2f} MiB, {len(doc):,} characters, "
        f"{doc.count(chr(10)):,} lines"
    )


if __name__ == "__main__":
    main()
