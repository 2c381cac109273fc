"""Real `python -m bot …` processes for the tests that kill, restart or run several of them."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp


class BotProcess:
    """One `python -m bot serve` (or `worker`) process, its output in a file."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path, command: str = "serve") -> None:
        self.env, self.cwd, self.log, self.command = env, cwd, log, command
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", self.command,
                env=self.env, cwd=self.cwd, stdout=out, stderr=out,
            )  # fmt: skip

    async def healthy(self, port: int, seconds: float = 60) -> None:
        def alive() -> bool:
            return self.proc is not None and self.proc.returncode is None

        await wait_healthy(port, seconds, alive=alive, output=self.output)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: nothing runs on the way out."""
        assert self.proc is not None
        self.proc.kill()

    async def end(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def until(check: Any, seconds: float, what: str, *procs: BotProcess) -> None:
    """Poll `check` until it is true; on time-out, fail with the processes' output."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() >= deadline:
            logs = "\n".join(f"--- {p.log.name}\n{p.output()[-4000:]}" for p in procs)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.05)


async def wait_healthy(
    port: int,
    seconds: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Poll GET /healthz on the port until it answers 200 (while `alive` says the process is)."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while True:
            assert alive(), output()
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline, "serve did not become healthy\n" + output()
            await asyncio.sleep(0.05)
