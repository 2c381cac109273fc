"""How long `python -m bot playbooks simulate` takes: the run itself and the whole command.

    python bench/simulate_playbooks.py [DIR]

Plays every playbook in DIR (default `playbooks/`) at every severity for 2 hours and for 30 days
(the longest `--for`), in process, then times the command as a team's CI runs it. Prints figures
only.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bot.core.enums import Severity
from bot.core.simulation import render_text, simulate
from bot.playbook_check import load_valid_directory


def main(directory: Path) -> None:
    playbooks = load_valid_directory(directory)
    for duration in (timedelta(hours=2), timedelta(days=30)):
        events = 0
        started = time.perf_counter()
        for playbook in playbooks:
            for severity in Severity:
                run = simulate(playbook, severity=severity, duration=duration)
                render_text(run)
                events += len(run.events)
        took = time.perf_counter() - started
        runs = len(playbooks) * len(Severity)
        print(
            f"--for {duration}: {runs} runs, {events} events in {took * 1000:.1f} ms "
            f"({took / runs * 1000:.2f} ms per run)"
        )
    name = playbooks[0].name
    command = [sys.executable, "-m", "bot", "playbooks", "simulate", str(directory)]
    command += ["--playbook", name]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    print(f"the whole command (`{' '.join(command[1:])}`): {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("playbooks"))
