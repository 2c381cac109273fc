"""The command line, `python -m bot …`: each error becomes one line and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from bot.config import Settings, load_settings
from bot.core.playbooks import PlaybookInvalid
from bot.errors import BotError, ConfigError, DatabaseUnavailable
from bot.logs import configure_logging
from bot.playbook_simulate import add_arguments as add_simulate_arguments
from bot.playbook_simulate import simulate_directory

log = logging.getLogger("bot")

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Incident bot for Slack.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a whole incident against the built-in Slack emulator")
    demo.add_argument("--out", default="demo-out", metavar="DIR", help="where the draft goes")
    sub.add_parser("serve", help="HTTP mode: Slack posts to /slack/events; also /healthz, /metrics")
    sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN): no public URL needed")
    sub.add_parser("worker", help="background work alone, when several `serve` share a database")
    postmortem = sub.add_parser("postmortem", help="print or write an incident's postmortem draft")
    postmortem.add_argument("incident", metavar="INC-N", help="the incident, e.g. INC-7")
    postmortem.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    timeline = sub.add_parser("timeline", help="print an incident's whole timeline record")
    timeline.add_argument("incident", metavar="INC-N", help="the incident, e.g. INC-7")
    timeline.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json"
    )
    playbooks = sub.add_parser("playbooks", help="playbook tools")
    playbooks_sub = playbooks.add_subparsers(
        dest="playbooks_command", required=True, metavar="ACTION"
    )
    check = playbooks_sub.add_parser("check", help="validate playbooks; exit 1 on any problem")
    check.add_argument("directory", nargs="?", metavar="DIR", help="default: PLAYBOOKS_DIR")
    simulate = playbooks_sub.add_parser(
        "simulate", help="play a playbook on a virtual clock: who is paged, when, reminders"
    )
    add_simulate_arguments(simulate)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="apply the alembic migrations to DATABASE_URL")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and `python -m bot`."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(
            level=settings.LOG_LEVEL,
            secrets=_secret_values(settings),
            format=settings.LOG_FORMAT,
        )
        return asyncio.run(_run(args, settings))
    except ConfigError as exc:
        _say(f"configuration error: {exc}")
        return EXIT_CONFIG
    except PlaybookInvalid as exc:
        _say(str(exc))
        return EXIT_CONFIG
    except DatabaseUnavailable as exc:
        _say(f"error: {exc}")
        return EXIT_UNAVAILABLE
    except BotError as exc:
        _say(f"error: {exc}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        from bot.demo import run_demo

        started = time.perf_counter()
        path = await run_demo(Path(args.out))
        _say(f"demo finished in {time.perf_counter() - started:.1f} s; postmortem: {path}")
    elif args.command == "serve":
        from bot.wiring import serve

        await serve(settings)
    elif args.command == "socket":
        from bot.wiring import socket_mode

        await socket_mode(settings)
    elif args.command == "worker":
        from bot.wiring import worker

        await worker(settings)
    elif args.command == "postmortem":
        from bot.wiring import write_postmortem

        document = await write_postmortem(settings, args.incident)
        data = document.encode("utf-8")  # the same bytes as the upload, whatever the locale
        if args.output:
            # A few megabytes at most, written once at the end: no need for a thread.
            try:
                Path(args.output).write_bytes(data)  # noqa: ASYNC240
            except OSError as exc:
                _say(f"error: cannot write {args.output}: {exc.strerror or exc}")
                return EXIT_UNAVAILABLE
            _say(f"wrote {args.output}")
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    elif args.command == "playbooks" and args.playbooks_command == "simulate":
        return _simulate(args, settings)
    elif args.command == "timeline":
        from bot.wiring import write_timeline

        document = await write_timeline(settings, args.incident, format=args.format)
        sys.stdout.buffer.write(document.encode("utf-8"))
        sys.stdout.flush()
    elif args.command == "playbooks":
        from bot.wiring import check_playbooks

        problems = await check_playbooks(settings, args.directory)
        for line in problems:
            sys.stdout.write(line + "\n")
        if problems:
            _say(f"{len(problems)} problem(s) in the playbooks")
            return EXIT_UNAVAILABLE
        _say("playbooks OK")
    elif args.command == "db" and args.db_command == "upgrade":
        from bot.db.engine import redacted
        from bot.db.migrate import upgrade

        await upgrade(settings.DATABASE_URL)
        log.info("database %s is at the latest migration", redacted(settings.DATABASE_URL))
        _say(f"database {redacted(settings.DATABASE_URL)} is up to date")
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    """`playbooks simulate`: no Slack, database, secret or network; the same bytes anywhere."""
    outcome = simulate_directory(
        Path(args.directory or settings.PLAYBOOKS_DIR),
        playbook=args.playbook,
        service=args.service,
        severity=args.severity,
        duration=args.duration,
        acks=args.acks,
        update_every=args.update_every,
        as_json=args.format == "json",
    )
    sys.stdout.buffer.write(outcome.out.encode("utf-8"))
    sys.stdout.flush()
    for line in outcome.err:
        _say(line)
    return outcome.status


def _secret_values(settings: Settings) -> list[str]:
    # Every secret setting (Slack, webhooks, pager and tracker keys), whatever its name.
    values = [
        value.get_secret_value()
        for value in (getattr(settings, name) for name in type(settings).model_fields)
        if isinstance(value, SecretStr)
    ]
    from sqlalchemy.engine import make_url

    try:
        password = make_url(settings.DATABASE_URL).password
    except Exception:  # an unparseable URL is reported later, with a clear message
        password = None
    return values + ([str(password)] if password else [])


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
