"""How soon a declared incident's channel is ready, at a given Slack latency.

    python bench/declare_latency.py [--runs 20] [--latency 0.0] [--playbooks playbooks]
                                    [--same-process]

From the declaring request (sent at t0) to: the channel ready (the declarer invited and the
summary card pinned: the later of conversations.invite and pins.add has reached Slack) and the
first message in the channel (the first chat.postMessage to it has reached Slack). The built-in
emulator adds `--latency` seconds to every Web API call. It runs in its own process, as Slack
does not run on the bot's CPU (`--same-process` puts it on the bot's event loop, as before).
Real server, real port, SQLite, shipped playbooks unless told otherwise. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from common import SECRET, TOKEN, command, signed, start_bot  # bench/, first on sys.path

from bot.config import Settings
from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator
from bot.emulator.server import RecordedCall
from bot.playbook_check import load_valid_directory
from bot.services import build_services


def returned(calls: list[RecordedCall], method: str, channel: str) -> float:
    """When the first such call to that channel reached the emulator."""
    return next(c.at for c in calls if c.method == method and c.args.get("channel") == channel)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Remote:
    """The emulator in another process, driven over a pipe (setup and reading calls only)."""

    def __init__(self, latency: float) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=_serve_emulator, args=(child, latency))
        self._process.start()
        self.url = str(self._conn.recv())

    def ask(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        return self._conn.recv()

    async def calls_since(self, index: int) -> list[RecordedCall]:
        """The calls after the first `index` (read in a thread: the bot's loop never waits)."""
        return list(await asyncio.to_thread(self.ask, "calls_since", index))

    def stop(self) -> None:
        self._conn.send(("stop", ()))
        self._process.join(10)


def _serve_emulator(conn: Connection, latency: float) -> None:
    async def serve() -> None:
        emulator = SlackEmulator(bot_token=TOKEN)
        await emulator.start()
        emulator.set_latency(latency)
        conn.send(emulator.url)
        loop = asyncio.get_running_loop()
        while True:
            name, args = await loop.run_in_executor(None, conn.recv)
            if name == "stop":
                await emulator.stop()
                return
            if name == "calls_since":
                conn.send(emulator.calls[args[0] :])
            else:
                conn.send(getattr(emulator, name)(*args))

    asyncio.run(serve())


async def main(runs: int, latency: float, playbooks: str, *, same_process: bool = False) -> None:
    local: SlackEmulator | None = None
    remote: Remote | None = None
    if same_process:
        local = SlackEmulator(bot_token=TOKEN)
        await local.start()
        local.set_latency(latency)
        emulator: Any = local
    else:
        remote = emulator = Remote(latency)

    def ask(name: str, *args: Any) -> Any:
        return getattr(local, name)(*args) if local is not None else emulator.ask(name, *args)

    async def calls_since(index: int) -> list[RecordedCall]:
        if local is not None:
            return local.calls[index:]
        return await emulator.calls_since(index)

    alice = ask("add_user", "alice")
    ready: list[float] = []
    first_message: list[float] = []
    calls: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(db)
        settings = Settings(
            _env_file=None,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=emulator.url,
            DATABASE_URL=db,
            INCIDENTS_CHANNEL=ask("add_channel", "incidents"),
        )
        services = build_services(settings, playbooks=load_valid_directory(Path(playbooks)))
        runner, base = await start_bot(services)  # as `serve` starts
        url = base + "/slack/events"
        try:
            async with aiohttp.ClientSession() as http:
                for i in range(runs + 1):
                    body = command(
                        f"declare sev2 Bench incident {i}",
                        user=alice,
                        channel="CBENCH",
                        response_url=ask("response_url"),
                    )
                    seen = len(await calls_since(0))
                    started = time.monotonic()
                    async with http.post(url, data=body.encode(), headers=signed(body)) as reply:
                        assert reply.status == 200
                    # As in production, the runner alone does the work: nothing else runs on
                    # the loop until it is surely done; settle() (which runs effects itself)
                    # only after that.
                    await asyncio.sleep(0.3 + 8 * latency)
                    await services.settle(120)
                    mine = await calls_since(seen)
                    created = next(c for c in mine if c.method == "conversations.create" and c.ok)
                    channel = created.response["channel"]["id"]

                    if i:  # the first run warms up (auth.test, caches)
                        invited = next(
                            c.at + latency - started
                            for c in mine
                            if c.method == "conversations.invite"
                            and alice in str(c.args.get("users"))
                        )
                        pinned = returned(mine, "pins.add", channel) + latency - started
                        posted = returned(mine, "chat.postMessage", channel) + latency - started
                        ready.append(max(invited, pinned))
                        first_message.append(posted)
                        calls.append(len(mine))
        finally:
            await runner.cleanup()
            await services.aclose()
    if local is not None:
        await local.stop()
    if remote is not None:
        remote.stop()
    print(f"emulated Web API latency: {latency * 1000:.0f} ms per call, {runs} declarations")
    print(
        f"channel ready (declarer in, card pinned): p50 {statistics.median(ready) * 1000:.1f} ms,"
        f" p90 {pct(ready, 0.9):.1f} ms"
    )
    print(
        f"first message in the channel: p50 {statistics.median(first_message) * 1000:.1f} ms,"
        f" p90 {pct(first_message, 0.9):.1f} ms"
    )
    print(f"Web API calls per declaration: {statistics.median(calls):.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--playbooks", default="playbooks")
    parser.add_argument("--same-process", action="store_true")
    options = parser.parse_args()
    asyncio.run(
        main(
            options.runs,
            options.latency,
            options.playbooks,
            same_process=options.same_process,
        )
    )
