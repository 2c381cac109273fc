"""Ack latency of `help` and `note` against a bare Bolt app that only acks, in the same run.

    python bench/ack_latency.py [--requests 1000] [--concurrency 50]

Prints figures; asserts nothing. Runs the real aiohttp server on a real port, on SQLite, against
the built-in Slack emulator, with requests signed as Slack signs them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from common import SECRET, TOKEN, command, serve_app, signed, start_bot  # bench/, first on sys.path
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from bot.config import Settings
from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator
from bot.services import build_services


async def hammer(url: str, bodies: list[str], concurrency: int) -> list[float]:
    """Send the bodies, `concurrency` at a time; the latencies of all but a warm-up tenth."""
    warm_up = len(bodies) // 10
    await _send(url, bodies[:warm_up], concurrency)
    return await _send(url, bodies[warm_up:], concurrency)


async def _send(url: str, bodies: list[str], concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                async with http.post(url, data=body.encode(), headers=signed(body)) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def describe(name: str, latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    worst = ordered[-1] * 1000
    print(f"{name:<30} n={len(ordered)}  p50={p50:.2f} ms  p99={p99:.2f} ms  max={worst:.2f} ms")
    return p50, p99


async def bare_bolt(bodies: list[str], concurrency: int) -> tuple[float, float]:
    async def authorize() -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None, team_id="T0001", bot_token=TOKEN, bot_user_id="UBOT"
        )

    bolt = AsyncApp(signing_secret=SECRET, authorize=authorize)

    @bolt.command("/incident")
    async def only_ack(ack):  # type: ignore[no-untyped-def]
        await ack()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner, base = await serve_app(app)
    url = base + "/slack/events"
    try:
        return describe("bare Bolt (ack only)", await hammer(url, bodies, concurrency))
    finally:
        await runner.cleanup()


async def main(requests: int, concurrency: int) -> None:
    emulator = SlackEmulator(bot_token=TOKEN)
    await emulator.start()
    alice = emulator.add_user("alice")
    incidents = emulator.add_channel("incidents")
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(db)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=emulator.url,
            DATABASE_URL=db,
            INCIDENTS_CHANNEL=incidents,
        )
        services = build_services(settings)
        runner, base = await start_bot(services)  # as `serve` starts
        url = base + "/slack/events"
        try:
            # Web API calls per declaration.
            before = len(emulator.calls)
            body = command(
                "declare sev2 Checkout latency spike",
                user=alice,
                channel=incidents,
                response_url=emulator.response_url(),
            )
            async with aiohttp.ClientSession() as http:
                async with http.post(url, data=body.encode(), headers=signed(body)) as response:
                    assert response.status == 200
            await services.settle(120)
            calls = [c.method for c in emulator.calls[before:] if c.method != "auth.test"]
            print(f"Web API calls per declaration: {len(calls)} ({', '.join(calls)})")
            channel = emulator.calls_to("conversations.create")[-1].response["channel"]["id"]

            helps = [
                command("help", user=alice, channel=channel, response_url=emulator.response_url())
                for _ in range(requests)
            ]
            help_p50, help_p99 = describe(
                "incident bot (/incident help)", await hammer(url, helps, concurrency)
            )
            await services.settle(120)
            bodies = [
                command(
                    f"note bench note {i}",
                    user=alice,
                    channel=channel,
                    response_url=emulator.response_url(),
                )
                for i in range(requests)
            ]
            started = time.perf_counter()
            bot_p50, bot_p99 = describe(
                "incident bot (/incident note)", await hammer(url, bodies, concurrency)
            )
            acked = time.perf_counter() - started
            await services.settle(120)
            done = time.perf_counter() - started
            print(
                f"{requests} notes acked in {acked:.2f} s; all recorded and posted in {done:.2f} s"
            )
        finally:
            await runner.cleanup()
            await services.aclose()
    bare_p50, bare_p99 = await bare_bolt(
        [
            command("note x", user="U1", channel="C1", response_url="http://127.0.0.1:9/")
            for _ in range(requests)
        ],
        concurrency,
    )
    print(f"ratio help/bare: p50 x{help_p50 / bare_p50:.2f}, p99 x{help_p99 / bare_p99:.2f}")
    print(f"ratio note/bare: p50 x{bot_p50 / bare_p50:.2f}, p99 x{bot_p99 / bare_p99:.2f}")
    await emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.concurrency))
