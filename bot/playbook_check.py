"""Check a playbooks directory: read the files, validate them, and ask Slack about the people.

The pure rules live in `bot.core.playbooks`; this module adds what needs the outside world:
reading `*.yaml`/`*.yml` files and, when a lookup is given, asking the workspace whether each
`@handle`, email and user id exists. User-group ids (`S…`) are not looked up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.core.playbooks import (
    Playbook,
    PlaybookFile,
    PlaybookInvalid,
    PlaybookProblem,
    Role,
    SlackTargetKind,
    check_playbook_files,
    format_problem,
    slack_target_kind,
)

__all__ = [
    "LookupUser",
    "PlaybookInvalid",
    "PlaybookProblem",
    "SourceExists",
    "check_directory",
    "format_problem",
    "load_valid_directory",
    "read_playbook_files",
]

LookupUser = Callable[[str], Awaitable[bool]]
"""Whether a Slack target as written (`@alice`, `ann@example.com`, `U024BE7LH`) is a user."""

SourceExists = Callable[[Playbook, Role], Awaitable[bool | None]]
"""Whether a role's `oncall:` schedule or policy exists; None when that cannot be asked."""

_LOOKED_UP = (SlackTargetKind.HANDLE, SlackTargetKind.EMAIL, SlackTargetKind.USER_ID)


def read_playbook_files(path: Path) -> tuple[dict[str, str], list[PlaybookProblem]]:
    """Read the `*.yaml`/`*.yml` files in path, sorted; problems for what cannot be read."""
    where = str(path)
    if not path.exists():
        return {}, [
            PlaybookProblem(
                where,
                0,
                0,
                "",
                "no such directory",
                "create it with a playbook (see playbooks/default.yaml), or set PLAYBOOKS_DIR "
                "to the folder that holds your playbooks",
            )
        ]
    if not path.is_dir():
        return {}, [
            PlaybookProblem(
                where, 0, 0, "", "not a directory", "point PLAYBOOKS_DIR at the folder of playbooks"
            )
        ]
    files: dict[str, str] = {}
    problems: list[PlaybookProblem] = []
    found = sorted(
        (p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
        key=lambda p: p.name,
    )
    for file in found:
        try:
            files[str(file)] = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(
                PlaybookProblem(str(file), 0, 0, "", "not UTF-8 text", "save it as UTF-8")
            )
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            problems.append(PlaybookProblem(str(file), 0, 0, "", f"cannot be read: {reason}", ""))
    if not found:
        problems.append(
            PlaybookProblem(
                where,
                0,
                0,
                "",
                "no playbooks (*.yaml) in this directory",
                "copy playbooks/default.yaml here, or set PLAYBOOKS_DIR to the right folder",
            )
        )
    return files, problems


async def check_directory(
    path: Path, *, lookup_user: LookupUser | None, source_exists: SourceExists | None = None
) -> list[PlaybookProblem]:
    """Every problem in a playbooks directory; with lookup_user, also unknown Slack users;
    with source_exists, also on-call schedules and policies that do not exist."""
    files, problems = await asyncio.to_thread(read_playbook_files, path)
    # Files with problems are checked too (their valid part), so one run reports everything.
    loaded, found = check_playbook_files(files)
    problems += found
    if source_exists is not None:
        problems += await _missing_sources(loaded, source_exists)
    if lookup_user is None:
        return problems
    known: dict[str, bool] = {}
    for one in loaded:
        for loc, target in one.playbook.slack_targets():
            if slack_target_kind(target) not in _LOOKED_UP:
                continue
            key = target.casefold()
            if key not in known:
                # One at a time: Slack's lookup methods are rate limited per workspace.
                known[key] = await lookup_user(target)
            if not known[key]:
                problems.append(
                    one.problem(
                        loc,
                        message=f"no Slack user `{target}` in this workspace",
                        fix="check the spelling, or use the member id "
                        "(profile → ⋮ → Copy member ID)",
                    )
                )
    # In file and line order; what concerns no file (or one that could not be read) first.
    rank = {name: index for index, name in enumerate(files)}
    problems.sort(key=lambda p: (rank.get(p.file, -1), p.line, p.column))
    return problems


async def _missing_sources(
    loaded: list[PlaybookFile], source_exists: SourceExists
) -> list[PlaybookProblem]:
    problems: list[PlaybookProblem] = []
    for one in loaded:
        for name, role in one.playbook.roles.items():
            source = role.oncall
            if source is None or await source_exists(one.playbook, role) is not False:
                continue
            provider = "Opsgenie" if source.provider == "opsgenie" else "PagerDuty"
            what = source.key.removeprefix(source.provider + "_").replace("_", " ")
            path = "escalation_policies" if "policy" in what else "schedules"
            fix = (
                "write the schedule's name or id as Opsgenie shows it"
                if source.provider == "opsgenie"
                else f"copy the id from the {what}'s address in PagerDuty (…/{path}/PABC123)"
            )
            problems.append(
                one.problem(
                    ("roles", name, "oncall", source.key),
                    message=f"{provider} has no {what} `{source.identifier}`",
                    fix=fix,
                )
            )
    return problems


def load_valid_directory(path: Path) -> list[Playbook]:
    """The directory's playbooks; PlaybookInvalid listing every problem when any is wrong."""
    files, problems = read_playbook_files(path)
    loaded, found = check_playbook_files(files)
    problems += found
    if problems:
        raise PlaybookInvalid(problems)
    return [one.playbook for one in loaded]
