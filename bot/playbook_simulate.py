"""`python -m bot playbooks simulate`: read the playbooks, pick one, play it, print the run.

The run itself is pure (`bot.core.simulation`); this module reads the directory the way
`playbooks check` does (the same problems, word for word, when a file is wrong), picks the
playbook by name or as the live bot would for a service, and renders text or JSON. It needs no
Slack, no database, no secret and no network.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bot.core.clock import parse_duration
from bot.core.enums import Severity
from bot.core.playbooks import (
    Playbook,
    check_playbook_files,
    format_duration,
    format_problem,
)
from bot.core.simulation import (
    Ack,
    choose_playbook,
    render_json,
    render_no_playbook,
    render_text,
    simulate,
)
from bot.errors import UserError
from bot.playbook_check import read_playbook_files

EXIT_INVALID = 1
EXIT_USAGE = 2
LONGEST_RUN = timedelta(days=30)


@dataclass
class Outcome:
    """What to print and the exit status."""

    status: int = 0
    out: str = ""
    err: list[str] = field(default_factory=list)


def duration_argument(text: str) -> timedelta:
    """An argparse type: a duration above zero written as in playbooks."""
    try:
        delta = parse_duration(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if delta <= timedelta(0):
        raise argparse.ArgumentTypeError(f"`{text}` is not longer than zero: write e.g. 30m")
    return delta


def run_duration_argument(text: str) -> timedelta:
    """An argparse type for `--for`: above zero and at most 30 days."""
    delta = duration_argument(text)
    if delta > LONGEST_RUN:
        raise argparse.ArgumentTypeError(f"`{text}` is longer than {format_duration(LONGEST_RUN)}")
    return delta


def ack_argument(text: str) -> Ack:
    """An argparse type for `--ack ROLE@DURATION`."""
    role, at, when = text.partition("@")
    if not at or not role.strip() or not when.strip():
        raise argparse.ArgumentTypeError(
            f"`{text}` is not ROLE@DURATION: write e.g. `ops@10m` (ops acknowledges 10 "
            "minutes after the declaration)"
        )
    try:
        after = parse_duration(when)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return Ack(role=role.strip().lower(), after=after)


def severity_argument(text: str) -> Severity:
    """An argparse type for `--severity`."""
    try:
        return Severity(text.strip().lower())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"`{text}` is not a severity: use sev1, sev2, sev3 or sev4"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `playbooks simulate`."""
    parser.add_argument("directory", nargs="?", metavar="DIR", help="default: PLAYBOOKS_DIR")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--playbook", metavar="NAME", help="the playbook to play")
    which.add_argument(
        "--service", metavar="S", help="play the playbook the bot would pick for this service"
    )
    parser.add_argument(
        "--severity",
        type=severity_argument,
        default=Severity.SEV3,
        metavar="sevN",
        help="default: sev3, as `/incident declare` without one",
    )
    parser.add_argument(
        "--for",
        dest="duration",
        type=run_duration_argument,
        default=timedelta(hours=2),
        metavar="DURATION",
        help="how long the incident lasts before it is resolved (default 2h)",
    )
    parser.add_argument(
        "--ack",
        dest="acks",
        type=ack_argument,
        action="append",
        default=[],
        metavar="ROLE@DURATION",
        help="the role acknowledges this long after the declaration",
    )
    parser.add_argument(
        "--update-every",
        type=duration_argument,
        default=None,
        metavar="DURATION",
        help="a status update is posted at this interval from the declaration",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def simulate_directory(
    path: Path,
    *,
    playbook: str | None,
    service: str | None,
    severity: Severity,
    duration: timedelta,
    acks: list[Ack],
    update_every: timedelta | None,
    as_json: bool,
) -> Outcome:
    """Everything `playbooks simulate` prints, and its exit status."""
    files, problems = read_playbook_files(path)
    loaded, found = check_playbook_files(files)
    problems += found
    if problems:
        # Exactly what `playbooks check` says about the same files.
        return Outcome(
            EXIT_INVALID,
            "".join(format_problem(problem) + "\n" for problem in problems),
            [f"{len(problems)} problem(s) in the playbooks"],
        )
    playbooks = [one.playbook for one in loaded]
    chosen: Playbook | None
    if playbook is not None:
        chosen = next((p for p in playbooks if p.name == playbook.strip().lower()), None)
        if chosen is None:
            names = ", ".join(sorted(p.name for p in playbooks))
            return Outcome(EXIT_INVALID, err=[f"no playbook named `{playbook}` in {path}: {names}"])
        why = "named with --playbook"
    else:
        assert service is not None
        chosen, why = choose_playbook(playbooks, service=service, severity=severity)
        if chosen is None:
            return Outcome(out=render_no_playbook(why, as_json=as_json))
    unknown = sorted({ack.role for ack in acks if ack.role not in chosen.roles})
    if unknown:
        roles = ", ".join(chosen.roles) or "none"
        return Outcome(
            EXIT_USAGE,
            err=[
                f"--ack names {', '.join(unknown)}, not a role of playbook {chosen.name} "
                f"(its roles: {roles})"
            ],
        )
    run = simulate(
        chosen,
        severity=severity,
        duration=duration,
        acks=acks,
        update_every=update_every,
        selection=why,
    )
    return Outcome(out=render_json(run) if as_json else render_text(run))
