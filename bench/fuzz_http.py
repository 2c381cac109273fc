"""A long hostile-input run: random and mutated requests at every HTTP entry point.

    python bench/fuzz_http.py [--examples 3000] [--seed 0]

Prints counts by entry point and status, ERROR lines logged and refused requests that changed
a timeline; asserts nothing. Uses the same entry points and strategies as
tests/test_hostile_input.py (a bounded run of which is part of the test suite), against the
real server on a real port, on SQLite, with the built-in Slack emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator
from tests.conftest import BOT_TOKEN, make_settings, start_bot, stop_bot
from tests.test_hostile_input import (
    PD_SECRET,
    PM_TOKEN,
    requests,
    send,
    timeline_size,
    with_an_incident,
)

T = TypeVar("T")


class ErrorCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines[f"{record.name}: {record.getMessage()[:100]}"] += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=120)

    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite+aiosqlite:///{tmp}/fuzz.db"
        run(upgrade(database))
        emulator = SlackEmulator(bot_token=BOT_TOKEN, team_id="T0001")
        run(emulator.start(host="127.0.0.1", port=0))
        config = make_settings(
            database_url=database,
            api_url=emulator.url,
            PAGERDUTY_WEBHOOK_SECRET=PD_SECRET,
            POSTMORTEM_TOKEN=PM_TOKEN,
        )
        bot, runner = run(start_bot(settings=config, emulator=emulator))
        run(with_an_incident(bot))
        statuses: Counter[tuple[str, bool, int]] = Counter()
        leaks = 0
        started = time.perf_counter()

        @seed(args.seed)
        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def one(data: st.DataObject) -> None:
            nonlocal leaks
            entry, body, headers, signed = data.draw(requests(bot))
            before = run(timeline_size(bot))
            answer = run(send(bot, entry.method, entry.path, body, headers))
            run(bot.settle())
            if answer.status >= 400 and run(timeline_size(bot)) != before:
                leaks += 1
            statuses[(entry.name, signed, answer.status)] += 1

        try:
            one()
        finally:
            run(stop_bot(bot, runner))
            run(emulator.stop())
        elapsed = time.perf_counter() - started

    print(f"{sum(statuses.values())} requests in {elapsed:.1f} s (seed {args.seed})")
    print(f"{'entry point':<22} {'signed':<7} {'status':>6} {'count':>6}")
    for (name, signed, status), count in sorted(statuses.items()):
        print(f"{name:<22} {signed!s:<7} {status:>6} {count:>6}")
    fives = sum(c for (_, _, status), c in statuses.items() if status >= 500)
    print(f"5xx answers: {fives}")
    print(f"ERROR log lines: {sum(errors.lines.values())}")
    for line, count in errors.lines.most_common(10):
        print(f"  {count:>5} × {line}")
    print(f"refused requests that changed a timeline: {leaks}")


if __name__ == "__main__":
    main()
