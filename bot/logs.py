"""Logging set-up: secrets kept out of every line, each line about an incident naming it.

`LOG_FORMAT=json` writes one JSON object per line (`time`, `level`, `logger`, `message`, and
`incident` and `exc` when there are any), for log pipelines; `text` writes one readable line.
The incident a piece of work is about lives in a context variable: use cases set it once they
know the incident (`about_incident`), the outbox runner and the timers around each run
(`working_on`), so every line logged from there on, by any library, carries it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from bot.errors import ConfigError

# Slack tokens and signing-secret-like hex strings, wherever they appear in a message.
TOKEN_PATTERN = re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+)")
MASK = "***"
FORMATS = ("text", "json")

INCIDENT: ContextVar[str | None] = ContextVar("incident", default=None)


def about_incident(ref: str) -> None:
    """The rest of this task works on incident `ref` (INC-7): its log lines say so."""
    INCIDENT.set(ref)


@contextlib.contextmanager
def working_on(ref: str | None) -> Iterator[None]:
    """Log lines inside the block are about incident `ref` (nothing changes when None)."""
    if ref is None:
        yield
        return
    token = INCIDENT.set(ref)
    try:
        yield
    finally:
        INCIDENT.reset(token)


class RedactSecrets(logging.Filter):
    """Replaces known secret values and anything shaped like a Slack token with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return TOKEN_PATTERN.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.incident = INCIDENT.get()
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: [INC-7] message`, the incident shown when the line is about one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(about)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        incident = getattr(record, "incident", None)
        record.about = f"[{incident}] " if incident else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, incident, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        incident = getattr(record, "incident", None)
        if incident:
            line["incident"] = incident
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    *, level: str, secrets: Iterable[str], format: str = "text", stream: IO[str] | None = None
) -> None:
    """One stderr handler for the whole process, with secrets redacted; `format` text or json."""
    if format.lower() not in FORMATS:
        raise ConfigError("LOG_FORMAT", f"is `{format}`", "write text or json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if format.lower() == "json" else TextFormatter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO")
    # Alembic announces its plugins at INFO on import; operators only need its warnings.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # APScheduler logs every job it adds and removes at INFO: one line per timer is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
