"""Time from the declaring request to the first pager request leaving the bot.

    python bench/first_page.py [--runs 20] [--latency 0.1] [--oncall SECONDS]

The built-in Slack emulator adds `--latency` seconds to every Web API call; a local HTTP server
stands in for PagerDuty's Events API and notes when each page arrives. Prints figures only.
With `--oncall`, the paged role is also filled from a PagerDuty schedule whose REST API (on the
same local server) takes that many seconds to answer `GET /oncalls`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from common import SECRET, TOKEN, command, signed, start_bot  # bench/, first on sys.path

from bot.config import Settings
from bot.core.playbooks import load_playbook
from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator
from bot.services import build_services

ROUTING_KEY = "R" * 32
PLAYBOOK = """
name: bench
match: {default: true}
roles:
  commander: {slack: ["@alice"]}
  ops: {pagerduty: {routing_key_env: PD_BENCH_KEY}}
  comms: {slack: ["@carol"]}
reminders: {status_update_every: {sev1: 15m}}
checklist: ["Post a status update"]
bookmarks: [{title: Dashboard, link: "https://grafana.example.com/d/x"}]
"""


ONCALL = (
    "  ops: {pagerduty: {routing_key_env: PD_BENCH_KEY}, oncall: {pagerduty_schedule: PBENCH1}}"
)


async def main(runs: int, latency: float, oncall: float | None = None) -> None:
    arrivals: list[float] = []
    arrived = asyncio.Event()
    lookups: list[float] = []

    async def oncalls(request: web.Request) -> web.Response:
        await asyncio.sleep(oncall or 0.0)
        lookups.append(time.perf_counter())
        user = {"id": "PUBOB01", "type": "user", "name": "Bob", "email": "bob@example.com"}
        entry = {"escalation_level": 1, "user": user}
        return web.json_response({"oncalls": [entry], "limit": 100, "offset": 0, "more": False})

    async def enqueue(request: web.Request) -> web.Response:
        arrivals.append(time.perf_counter())
        arrived.set()
        await request.read()
        return web.json_response({"status": "success", "message": "Event processed"}, status=202)

    pd = web.Application()
    pd.router.add_post("/v2/enqueue", enqueue)
    pd.router.add_get("/oncalls", oncalls)
    pd_runner = web.AppRunner(pd, access_log=None)
    await pd_runner.setup()
    pd_site = web.TCPSite(pd_runner, "127.0.0.1", 0)
    await pd_site.start()
    pd_port = pd_runner.addresses[0][1]

    emulator = SlackEmulator(bot_token=TOKEN)
    await emulator.start()
    alice = emulator.add_user("alice")
    emulator.add_user("carol")
    emulator.add_user("bob", email="bob@example.com")
    emulator.set_latency(latency)
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(db)
        settings = Settings(
            _env_file=None,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=emulator.url,
            DATABASE_URL=db,
            PAGERDUTY_EVENTS_URL=f"http://127.0.0.1:{pd_port}/v2/enqueue",
            PAGERDUTY_API_URL=f"http://127.0.0.1:{pd_port}",
        )
        text = PLAYBOOK
        if oncall is not None:
            text = PLAYBOOK.replace("  ops: {pagerduty: {routing_key_env: PD_BENCH_KEY}}", ONCALL)
        services = build_services(settings, playbooks=[load_playbook(text, filename="bench.yaml")])
        services.environ = {"PD_BENCH_KEY": ROUTING_KEY, "PAGERDUTY_API_TOKEN": "bench-token"}
        services.oncall_cache.keep_for = timedelta(0)  # every declaration asks PagerDuty
        runner, base = await start_bot(services)  # as `serve` starts
        url = base + "/slack/events"
        calls_per_declaration = 0
        try:
            async with aiohttp.ClientSession() as http:
                for i in range(runs + 1):
                    body = command(
                        f"declare sev1 Bench incident {i}",
                        user=alice,
                        channel="CBENCH",
                        response_url=emulator.response_url(),
                    )
                    seen = len(arrivals)
                    arrived.clear()
                    before_calls = len(emulator.calls)
                    started = time.perf_counter()
                    async with http.post(url, data=body.encode(), headers=signed(body)) as reply:
                        assert reply.status == 200
                    await asyncio.wait_for(arrived.wait(), 30)
                    if i:  # the first run warms up (auth.test, caches)
                        delays.append(arrivals[seen] - started)
                    await services.settle(120)
                    calls_per_declaration = len(emulator.calls) - before_calls
        finally:
            await runner.cleanup()
            await services.aclose()
    await emulator.stop()
    await pd_runner.cleanup()
    ordered = sorted(delays)
    print(f"emulated Web API latency: {latency * 1000:.0f} ms per call, {runs} declarations")
    print(
        f"declaring request -> first PagerDuty request: "
        f"p50 {statistics.median(ordered) * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms, min {ordered[0] * 1000:.0f} ms"
    )
    print(f"Web API calls per declaration with this playbook: {calls_per_declaration}")
    if oncall is not None:
        print(f"on-call lookups answered ({oncall * 1000:.0f} ms each): {len(lookups)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--oncall", type=float, default=None)
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.latency, options.oncall))
