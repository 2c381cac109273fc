"""Cold start of `python -m bot serve` to a 200 from /healthz, and its idle memory (RSS).

    python bench/cold_start.py [--runs 5]

Runs the real command in a subprocess against the built-in Slack emulator and a migrated SQLite
database; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "xoxb-bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_run(db: str, emulator: SlackEmulator) -> tuple[float, float]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET="bench-signing-secret-0123456789",
        SLACK_API_URL=emulator.url,
        DATABASE_URL=db,
        PLAYBOOKS_DIR=str(ROOT / "playbooks"),
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONPATH=str(ROOT),
    )
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.01)
    ready = time.perf_counter() - started
    await asyncio.sleep(3)  # idle: the lease poll and the side-effect runner tick over
    rss = rss_mib(proc.pid)
    proc.send_signal(signal.SIGTERM)
    await proc.wait()
    return ready, rss


async def main(runs: int) -> None:
    emulator = SlackEmulator(bot_token=TOKEN)
    await emulator.start()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(db)
        results = [await one_run(db, emulator) for _ in range(runs)]
    await emulator.stop()
    ready = sorted(r[0] for r in results)
    rss = sorted(r[1] for r in results)
    print(
        f"`serve` to 200 /healthz over {runs} runs: median {statistics.median(ready):.2f} s, "
        f"min {ready[0]:.2f} s, max {ready[-1]:.2f} s"
    )
    print(f"idle RSS after 3 s: median {statistics.median(rss):.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
