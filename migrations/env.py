"""Alembic environment.

`bot.db.migrate` hands over an open connection in `config.attributes["connection"]`
(it runs inside the bot's event loop, through `AsyncConnection.run_sync`). The `alembic`
command line gets no connection, so this module opens its own async engine.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import bot.db.models  # noqa: F401  (importing it registers the tables on SQLModel.metadata)
from bot.db.engine import make_engine
from bot.db.types import EnumString, UTCDateTime

config = context.config
target_metadata = SQLModel.metadata

if config.config_file_name is not None and config.get_section("loggers") is not None:
    fileConfig(config.config_file_name)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write our own column types so that a generated script imports nothing exotic."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import bot.db.types")
        return "bot.db.types.UTCDateTime()"
    if type_ == "type" and isinstance(obj, EnumString):
        # Stored as plain VARCHAR; the enum only exists in Python.
        return f"sa.String(length={obj.impl_instance.length})"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (or sqlalchemy.url) to the database to migrate")
    return url


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Print the SQL (`alembic upgrade head --sql`) instead of running it."""
    url = _url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on `connection`; the caller commits."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds SQLite tables; with foreign keys on, dropping the old copy of a
        # referenced table would cascade or fail. Checked again below, before the commit.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    _configure(connection=connection, render_as_batch=sqlite)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")


async def run_async_migrations() -> None:
    engine = make_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
