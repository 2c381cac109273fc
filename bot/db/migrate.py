"""Schema migrations: Alembic driven from code, on the bot's own async engine.

No alembic.ini is needed: the configuration is built here. The migration runs inside the
caller's event loop: we open an async connection and hand its sync face to Alembic
through `AsyncConnection.run_sync` (migrations/env.py picks it up from
`config.attributes["connection"]`), so there is no second event loop and no thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import bot
from bot.db.engine import make_engine, ping, redacted
from bot.db.gate import WRITING
from bot.errors import DatabaseUnavailable

MIGRATIONS = Path(bot.__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version"
UPGRADE_HINT = "run `python -m bot db upgrade`"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for `url`, pointing at the repository's migrations/ folder."""
    config = Config()
    # Config is a configparser: a literal % (e.g. in a URL-encoded password) must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision the code expects the database to be at."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    await _run(url, command.upgrade, revision)


async def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` ("base" empties it)."""
    await _run(url, command.downgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


async def check_schema(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailable unless the database is reachable and at the head revision."""
    await ping(engine)
    url = redacted(engine.url.render_as_string(hide_password=False))
    needed = head_revision()
    async with engine.connect() as conn:
        current = await conn.run_sync(_current_revision)
        tables = await conn.run_sync(_table_names)
    if current == needed:
        return
    if current is None:
        if tables - {VERSION_TABLE}:
            reason = (
                f"its tables were not made by the migrations (no revision recorded), "
                f"the code needs {needed}: start from an empty database and {UPGRADE_HINT}"
            )
        else:
            reason = f"no tables yet: {UPGRADE_HINT}"
    elif current not in _known_revisions():
        reason = (
            f"schema is at revision {current}, which this code does not know "
            f"(newer code migrated it?); the code needs {needed}"
        )
    else:
        reason = f"schema is at revision {current}, the code needs {needed}: {UPGRADE_HINT}"
    raise DatabaseUnavailable(url, reason)


async def _run(url: str, step: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config(url)
    engine = make_engine(url)
    writing = WRITING.set(True)  # SQLite: take the write lock up front (bot/db/engine.py)
    try:
        await ping(engine)
        async with engine.connect() as conn:
            await conn.run_sync(_with_connection, config, step, revision)
            # env.py runs inside our transaction (PostgreSQL: all-or-nothing DDL).
            await conn.commit()
    finally:
        WRITING.reset(writing)
        await engine.dispose()


def _with_connection(
    connection: Connection, config: Config, step: Callable[[Config, str], None], revision: str
) -> None:
    config.attributes["connection"] = connection
    step(config, revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _table_names(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config(""))
    return {rev.revision for rev in script.walk_revisions()}
