"""How soon a declared incident's channel is ready, at a given Slack latency.

    python bench/declare_latency.py [--runs 20] [--latency 0.0] [--playbooks playbooks]

From the declaring request (sent at t0) to: the channel ready (the declarer invited and the
summary card pinned: the later of conversations.invite and pins.add has returned) and the first
message in the channel (the first chat.postMessage to it has returned). The built-in emulator
adds `--latency` seconds to every Web API call. Real server, real port, SQLite, shipped
playbooks unless told otherwise. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.config import Settings
from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator
from bot.emulator.server import RecordedCall
from bot.playbook_check import load_valid_directory
from bot.services import build_services
from bot.wiring import build_web, settle_memory

TOKEN = "xoxb-bench-token"
SECRET = "bench-signing-secret-0123456789"


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={sig}",
    }


def returned(calls: list[RecordedCall], method: str, channel: str) -> float:
    """When the first such call to that channel reached the emulator."""
    return next(c.at for c in calls if c.method == method and c.args.get("channel") == channel)


def _ready(calls: list[RecordedCall], declarer: str) -> bool:
    methods = {c.method for c in calls}
    invited = any(
        c.method == "conversations.invite" and declarer in str(c.args.get("users")) for c in calls
    )
    return invited and {"pins.add", "chat.postMessage"} <= methods


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(runs: int, latency: float, playbooks: str) -> None:
    emulator = SlackEmulator(bot_token=TOKEN)
    await emulator.start()
    alice = emulator.add_user("alice")
    emulator.set_latency(latency)
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
            INCIDENTS_CHANNEL=emulator.add_channel("incidents"),
        )
        services = build_services(settings, playbooks=load_valid_directory(Path(playbooks)))
        app, _ = build_web(services)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        services.effects.start()
        settle_memory()  # as `serve` does once started
        try:
            async with aiohttp.ClientSession() as http:
                for i in range(runs + 1):
                    body = urlencode(
                        {
                            "command": "/incident",
                            "text": f"declare sev2 Bench incident {i}",
                            "user_id": alice,
                            "channel_id": "CBENCH",
                            "team_id": "T0001",
                            "response_url": emulator.response_url(),
                            "trigger_id": "1.2.3",
                        }
                    )
                    seen = len(emulator.calls)
                    started = time.monotonic()
                    async with http.post(url, data=body.encode(), headers=signed(body)) as reply:
                        assert reply.status == 200
                    # As in production, the runner alone does the work: settle() (which runs
                    # effects itself) only once the channel is ready and the first post made.
                    while not _ready(emulator.calls[seen:], alice):
                        await asyncio.sleep(0.001)
                    await services.settle(120)
                    mine = emulator.calls[seen:]
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
    await emulator.stop()
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
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.latency, options.playbooks))
