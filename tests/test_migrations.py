"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, make_url
from sqlmodel import SQLModel

import bot.db.models  # noqa: F401  (registers the tables)
from bot.db.engine import make_engine
from bot.db.migrate import (
    alembic_config,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from bot.errors import DatabaseUnavailable
from tests.db_fixtures import postgres_admin_url, postgres_scratch_url

TABLES = {
    "incident",
    "timeline_entry",
    "role_assignment",
    "page",
    "follow_up",
    "processed_event",
    "side_effect",
    "person",
    "lease",
    "apscheduler_jobs",
    "counter",
    "inbox",
    "pin_holder",
    "alert_group",
    "alert",
}


def _drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names()) - {"alembic_version"}


async def _inspect(url: str) -> tuple[list[Any], set[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_drift), await conn.run_sync(_tables)
    finally:
        await engine.dispose()


def test_head_is_the_newest_file_in_versions() -> None:
    from bot.db.migrate import MIGRATIONS

    newest = max(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    assert head_revision() == newest


def test_config_escapes_percent_signs() -> None:
    url = "postgresql+asyncpg://bot:p%40ss%25@db/incidents"
    assert alembic_config(url).get_main_option("sqlalchemy.url") == url


async def test_upgrade_builds_the_models_schema(empty_db_url: str) -> None:
    await upgrade(empty_db_url)

    drift, tables = await _inspect(empty_db_url)
    assert drift == []
    assert tables == TABLES


async def test_downgrade_to_base_then_upgrade_again(empty_db_url: str) -> None:
    await upgrade(empty_db_url)
    await downgrade(empty_db_url, "base")

    _, tables = await _inspect(empty_db_url)
    assert tables == set()

    await upgrade(empty_db_url)
    drift, tables = await _inspect(empty_db_url)
    assert drift == []
    assert tables == TABLES


async def test_revision_and_check_schema_follow_the_upgrade(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        assert await current_revision(engine) is None
        with pytest.raises(DatabaseUnavailable, match="no tables yet: run `python -m bot db"):
            await check_schema(engine)

        await upgrade(empty_db_url)

        assert await current_revision(engine) == head_revision()
        await check_schema(engine)
    finally:
        await engine.dispose()


async def test_check_schema_refuses_tables_made_without_migrations(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        with pytest.raises(DatabaseUnavailable, match="no revision recorded"):
            await check_schema(engine)
    finally:
        await engine.dispose()


async def test_check_schema_refuses_an_unknown_revision(empty_db_url: str) -> None:
    await upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
        with pytest.raises(DatabaseUnavailable, match="revision ffff, which this code does not"):
            await check_schema(engine)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_scratch_database_is_private_and_cleaned_up() -> None:
    async with postgres_scratch_url() as url:
        await upgrade(url)
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                schema = await conn.scalar(sa.text("SELECT current_schema()"))
                tables = await conn.run_sync(_tables)
                homes = await conn.scalars(
                    sa.text("SELECT DISTINCT schemaname FROM pg_tables WHERE tableowner = user")
                )
                table_schemas = set(homes)
        finally:
            await engine.dispose()
        assert schema == make_url(url).username
        assert tables == TABLES
        assert table_schemas == {schema}

    admin = make_engine(postgres_admin_url())
    try:
        async with admin.connect() as conn:
            leftovers = await conn.scalar(
                sa.text(
                    "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = :name)"
                    " + (SELECT count(*) FROM pg_roles WHERE rolname = :name)"
                ),
                {"name": schema},
            )
    finally:
        await admin.dispose()
    assert leftovers == 0
