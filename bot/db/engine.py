"""The async engine and sessions; built once by the wiring, never at import time."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.db.gate import WRITING, WriteGate, gated_session_class
from bot.errors import ConfigError, DatabaseUnavailable

SUPPORTED = ("sqlite+aiosqlite", "postgresql+asyncpg")


def redacted(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable DATABASE_URL>"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL", "is not a database URL", "e.g. sqlite+aiosqlite:///incidents.db"
        ) from None
    if parsed.drivername not in SUPPORTED:
        raise ConfigError(
            "DATABASE_URL",
            f"uses driver '{parsed.drivername}'",
            "use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB",
        )
    if parsed.drivername.startswith("sqlite"):
        # Concurrent writers wait for the lock instead of failing at once.
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {"timeout": 5})
    try:
        engine = create_async_engine(parsed, **kwargs)
    except NoSuchModuleError:
        raise ConfigError(
            "DATABASE_URL", f"names an unknown driver '{parsed.drivername}'"
        ) from None
    if parsed.drivername.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when a transaction begins (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Readers do not wait for the writer, and a commit is one append to the log. NORMAL syncs
    # the log at checkpoints, not at every commit: a commit survives the process being killed
    # (kill -9), not the machine losing power; PostgreSQL is the database for that.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another writer got there first; taking the write lock up front makes
    # concurrent writers queue on busy_timeout instead. A read (a session used without
    # `begin()`) takes no lock: in WAL it never waits for the writer, nor the writer for it.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if WRITING.get() else "BEGIN")


def make_sessionmaker(
    engine: AsyncEngine, *, gate: WriteGate | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit; with a gate, their explicit
    transactions take turns at it (SQLite's one writer)."""
    if gate is None:
        return async_sessionmaker(engine, expire_on_commit=False)
    return async_sessionmaker(engine, expire_on_commit=False, class_=gated_session_class(gate))


# The timeout is part of what ping reports ("no answer within 3 s"), so it stays a parameter.
async def ping(engine: AsyncEngine, *, timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Run SELECT 1, or raise DatabaseUnavailable with the driver's reason."""
    url = redacted(engine.url.render_as_string(hide_password=False))
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except TimeoutError:
        raise DatabaseUnavailable(url, f"no answer within {timeout:g} s") from None
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseUnavailable(url, reason) from None
