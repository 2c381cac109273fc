"""Database fixtures for the whole suite: every test gets its own, freshly migrated database.

Load with `pytest_plugins = ["tests.db_fixtures"]` (or `-p tests.db_fixtures`).

PostgreSQL isolation: each test gets a throw-away login role `t_<random>` owning a schema of
the same name, with the role's search_path set to that schema. The URL handed to the test
logs in as that role, so any engine made from it — `make_engine(url)`, `upgrade(url)`, the
bot's own wiring — lands in the private schema with no extra connect arguments (asyncpg
cannot take a search_path through a SQLAlchemy URL). Role and schema are dropped afterwards.

PostgreSQL is `postgresql+asyncpg://postgres@127.0.0.1:5432/test` unless TEST_POSTGRES_URL
says otherwise (it must be allowed to create roles). If it cannot be reached the PostgreSQL
cases fail; set SKIP_POSTGRES=1 to skip them instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db.engine import make_engine, make_sessionmaker, ping
from bot.db.migrate import upgrade

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def sqlite_file_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@asynccontextmanager
async def postgres_scratch_url() -> AsyncIterator[str]:
    """A URL that logs in as a fresh role whose search_path is its own, empty schema."""
    if os.environ.get("SKIP_POSTGRES") == "1":
        pytest.skip("SKIP_POSTGRES=1")
    admin_url = make_url(postgres_admin_url())
    name = f"t_{secrets.token_hex(6)}"  # lower-case and unquoted-safe: no quoting surprises
    password = secrets.token_hex(12)  # unused under trust auth, needed under md5/scram
    admin = make_engine(admin_url.render_as_string(hide_password=False))
    try:
        await ping(admin)
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
            await conn.exec_driver_sql(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
            await conn.exec_driver_sql(f"ALTER ROLE {name} SET search_path = {name}")
        try:
            yield admin_url.set(username=name, password=password).render_as_string(
                hide_password=False
            )
        finally:
            async with admin.begin() as conn:
                # A connection the test forgot to close would block DROP SCHEMA.
                await conn.exec_driver_sql(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE usename = '{name}'"
                )
                await conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
                await conn.exec_driver_sql(f"DROP OWNED BY {name}")
                await conn.exec_driver_sql(f"DROP ROLE {name}")
    finally:
        await admin.dispose()


@asynccontextmanager
async def empty_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database on `backend` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        yield sqlite_file_url(tmp_path / "test.db")
    else:
        async with postgres_scratch_url() as url:
            yield url


@pytest.fixture(params=BACKENDS)
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A new database with no tables, on SQLite and on PostgreSQL."""
    async with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A new database migrated to head, on SQLite and on PostgreSQL."""
    async with empty_database(request.param, tmp_path) as url:
        await upgrade(url)
        yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite database migrated to head, for tests that need only one backend."""
    url = sqlite_file_url(tmp_path / "single.db")
    await upgrade(url)
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `db_url`, disposed after the test."""
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on `engine`; whatever the test did not commit is rolled back."""
    async with make_sessionmaker(engine)() as session:
        yield session
