"""Many rows in one INSERT, with the ids the database gave them, in the order of the rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_returning_ids(
    session: AsyncSession, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert `rows` into `table` in one statement; their new ids, row by row.

    On SQLite, asking SQLAlchemy to keep the rows' order makes it one INSERT per row; its one
    writer numbers a statement's rows in order, so sorting the ids restores the order instead.
    """
    if session.get_bind().dialect.name == "sqlite":
        inserted = await session.execute(sa.insert(table).returning(table.c.id), rows)
        return sorted(int(i) for i in inserted.scalars())
    statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in (await session.execute(statement, rows)).scalars()]
