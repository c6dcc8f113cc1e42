"""SQLite: a statement in one trip to aiosqlite's thread, instead of one trip per step.

Through SQLAlchemy's aiosqlite adapter a statement costs four trips from the event loop to the
connection's thread and back (open a cursor, execute, fetch, close); on a busy machine each
trip costs more than the SQL, and while a transaction holds SQLite's one writer they add up.
Here a statement compiled by SQLAlchemy runs as one call on the connection's own thread, in
whatever transaction the connection is in. Values go in and come out through the columns' own
SQLAlchemy types, so they are exactly what the ORM writes and reads.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import aiosqlite
from sqlalchemy import bindparam, func, literal_column, select

from .base import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy import Column
    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncConnection


def available(connection: AsyncConnection) -> bool:
    """SQLite through aiosqlite (elsewhere the caller goes through SQLAlchemy as usual)."""
    return connection.dialect.name == "sqlite" and connection.dialect.driver == "aiosqlite"


class Prepared:
    """A statement compiled once, to run again with new values for its named parameters
    (``bindparam``): compiling a large one costs more than running it."""

    def __init__(self, dialect: Dialect, statement) -> None:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql = compiled.string
        self.names = compiled.positiontup
        self.given = compiled.construct_params()

    def params(self, dialect: Dialect, values: dict[str, Any]) -> list[Any]:
        # The parameters here are identifiers, counts and times: only times need converting.
        bind_time = _processors(dialect).bind_time
        return [
            bind_time(value) if isinstance(value, datetime) else value
            for value in (values.get(name, self.given.get(name)) for name in self.names)
        ]


def each_value(name: str):
    """``SELECT value FROM json_each(:name)``: a list of values in one parameter (a JSON
    array), for ``column.in_(...)``, so that a prepared statement fits any number of them."""
    return select(literal_column("value")).select_from(func.json_each(bindparam(name, "[]")))


async def fetch(
    connection: AsyncConnection,
    statement,
    columns: list[Column],
    values: dict[str, Any] | None = None,
) -> list[tuple]:
    """The rows of ``statement`` (a select, or a write with RETURNING; or one prepared, with
    ``values``), one value per column of ``columns`` (the statement's own, in order),
    converted as the ORM would."""
    dialect = connection.dialect
    prepared = statement if isinstance(statement, Prepared) else Prepared(dialect, statement)
    driver = await _driver(connection)
    rows = await driver.execute_fetchall(prepared.sql, prepared.params(dialect, values or {}))
    if rows and len(rows[0]) != len(columns):
        raise ValueError(f"{len(columns)} columns given for rows of {len(rows[0])}")
    converting = _converting(dialect, tuple(columns))
    if not converting:
        return [tuple(row) for row in rows]
    converted = []
    for row in rows:
        values = list(row)
        for index, process in converting:
            values[index] = process(values[index])
        converted.append(tuple(values))
    return converted


async def execute_many(
    connection: AsyncConnection, sql: str, columns: list[Column], rows: list[list[Any]]
) -> int:
    """Run ``sql`` (qmark placeholders, one per column of ``columns``) for each row of
    values; the number of rows it changed in all."""
    dialect = connection.dialect
    processors = [_bind_processor(dialect, column) for column in columns]
    params = [
        [
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=True)
        ]
        for row in rows
    ]
    driver = await _driver(connection)
    cursor = await driver.executemany(sql, params)
    return cursor.rowcount


async def _driver(connection: AsyncConnection) -> aiosqlite.Connection:
    raw = await connection.get_raw_connection()
    return raw.driver_connection


class _Processors:
    def __init__(self, dialect: Dialect) -> None:
        self.bind_time = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)


@lru_cache(maxsize=4)
def _processors(dialect: Dialect) -> _Processors:
    return _Processors(dialect)


def _bind_processor(dialect: Dialect, column: Column):
    return column.type.dialect_impl(dialect).bind_processor(dialect)


@lru_cache(maxsize=256)
def _converting(dialect: Dialect, columns: tuple[Column, ...]) -> tuple[tuple[int, Any], ...]:
    """The positions of ``columns`` whose values the ORM converts, each with its converter:
    made once per statement's columns (making them cost more than the rows' conversion)."""
    found = []
    for index, column in enumerate(columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            found.append((index, process))
    return tuple(found)
