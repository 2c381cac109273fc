"""Requests per second and ack latency with 1 and with 3 `serve` replicas on PostgreSQL.

    python bench/replicas.py [--requests 2000] [--concurrency 50] [--postgres URL]

Real processes (`python -m bot serve` ×N and one `python -m bot worker`) on a new PostgreSQL
database, the built-in Slack emulator in this process, `/incident note` requests signed as
Slack signs them and spread round-robin over the replicas. Prints, for each N: requests/s,
ack p50/p99/max, and how long until every note was recorded and posted. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from common import SECRET, TOKEN, command, signed  # bench/, first on sys.path
from sqlalchemy.engine import make_url

from bot.db.engine import make_engine
from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scratch_database(admin_url: str) -> tuple[str, str]:
    name = f"bench_{secrets.token_hex(4)}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, name


async def drop_database(admin_url: str, name: str) -> None:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    await admin.dispose()


async def healthy(port: int, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            assert proc.returncode is None, "a replica exited"
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError("a replica did not become healthy")


async def unfinished(url: str) -> int:
    engine = make_engine(url)
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM inbox WHERE done_at IS NULL)"
                " + (SELECT count(*) FROM side_effect WHERE done_at IS NULL AND due_at <= now())"
            )
        )
        left = int(result.scalar() or 0)
    await engine.dispose()
    return left


async def run(replicas: int, requests: int, concurrency: int, admin_url: str) -> None:
    emulator = SlackEmulator(bot_token=TOKEN)
    await emulator.start()
    alice = emulator.add_user("alice")
    url, name = await scratch_database(admin_url)
    procs: list[asyncio.subprocess.Process] = []
    logs = tempfile.TemporaryDirectory()
    try:
        await upgrade(url)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_"))},
            "PYTHONPATH": str(ROOT),
            "PLAYBOOKS_DIR": str(ROOT / "playbooks"),
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": emulator.url,
            "DATABASE_URL": url,
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
        ports = [free_port() for _ in range(replicas)]
        for n, port in enumerate([*ports, free_port()]):
            command_name = "serve" if n < replicas else "worker"
            with open(Path(logs.name) / f"{n}.log", "wb") as out:
                procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot",
                        command_name,
                        env={**env, "PORT": str(port)},
                        stdout=out,
                        stderr=out,
                    )  # fmt: skip
                )
        await asyncio.gather(*(healthy(p, proc) for p, proc in zip(ports, procs, strict=False)))
        urls = [f"http://127.0.0.1:{p}/slack/events" for p in ports]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            body = command(
                "declare sev2 Bench", user=alice, channel="CB", response_url=emulator.response_url()
            )
            async with http.post(urls[0], data=body.encode(), headers=signed(body)) as reply:
                assert reply.status == 200
            while not emulator.calls_to("conversations.create"):
                await asyncio.sleep(0.05)
            channel = emulator.calls_to("conversations.create")[0].response["channel"]["id"]
            while await unfinished(url):
                await asyncio.sleep(0.1)
            bodies = [
                command(
                    f"note n{i}", user=alice, channel=channel, response_url=emulator.response_url()
                )
                for i in range(requests)
            ]
            latencies: list[float] = []
            queue = list(enumerate(bodies))

            async def sender() -> None:
                while queue:
                    i, body = queue.pop()
                    started = time.perf_counter()
                    async with http.post(
                        urls[i % replicas], data=body.encode(), headers=signed(body)
                    ) as reply:
                        await reply.read()
                        assert reply.status == 200, reply.status
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            acked = time.perf_counter() - began
            while await unfinished(url):
                await asyncio.sleep(0.1)
            done = time.perf_counter() - began
        ordered = sorted(latencies)
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        print(
            f"{replicas} replica(s) + worker: {requests / acked:.0f} requests/s acked;"
            f" ack p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99:.1f} ms,"
            f" max {ordered[-1] * 1000:.1f} ms; all recorded and posted in {done:.1f} s"
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        await asyncio.gather(*(proc.wait() for proc in procs))
        await drop_database(admin_url, name)
        await emulator.stop()
        logs.cleanup()


async def main(requests: int, concurrency: int, admin_url: str) -> None:
    print(f"{requests} `/incident note` at {concurrency} concurrent, PostgreSQL, emulator at 0 ms")
    for replicas in (1, 3):
        await run(replicas, requests, concurrency, admin_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.concurrency, options.postgres))
