"""Many rows or many keys in one statement, with one array parameter per column.

asyncpg runs an executemany as one statement per row, and `IN (...)` renders
one parameter per value, so every new count is a new statement to prepare.
Binding one array per column instead runs one statement per batch and keeps
one prepared form whatever the count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves this dialect's __init__ unannotated


def unnest_columns(table: sa.Table, names: Sequence[str]) -> str:
    """unnest(CAST(:a AS type[]), ...): one array parameter per column, typed as the column is."""
    return "unnest(" + ", ".join(f"CAST(:{name} AS {table.c[name].type.compile(_DIALECT)}[])" for name in names) + ")"


def insert_many(table: sa.Table, names: Sequence[str], suffix: str = "", *, in_order: bool = False) -> sa.TextClause:
    """INSERT of the rows given column by column (see `by_column`); `suffix` e.g. "ON CONFLICT DO NOTHING".

    in_order: the rows go in in the order given, so identity keys are drawn in that order too, and
    rows RETURNed sorted on their key come back in the order given.
    """
    columns = ", ".join(names)
    source = unnest_columns(table, names)
    if in_order:
        source = f"{source} WITH ORDINALITY AS u({columns}, row_number) ORDER BY row_number"
    return sa.text(
        f"INSERT INTO {table.schema}.{table.name} ({columns}) "
        f"SELECT {columns if in_order else '*'} FROM {source} {suffix}".rstrip()
    )


def update_many(table: sa.Table, names: Sequence[str], suffix: str = "", *, only: str = "") -> sa.TextClause:
    """UPDATE of the rows given column by column (see `by_column`), matched on the first name (the key).

    `suffix` adds assignments, e.g. ", updated_at = now()"; `only` narrows the rows, e.g. "t.settled_at IS NULL".
    """
    key, values = names[0], names[1:]
    narrowed = f" AND {only}" if only else ""
    return sa.text(
        f"UPDATE {table.schema}.{table.name} AS t SET {', '.join(f'{n} = u.{n}' for n in values)}{suffix}"
        f" FROM {unnest_columns(table, names)} AS u({', '.join(names)}) WHERE t.{key} = u.{key}{narrowed}"
    )


def by_column(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """The parameters of `insert_many`: one list per column."""
    return {name: [row[name] for row in rows] for name in names}


def array(column: sa.Column[Any], values: Iterable[Any]) -> sa.BindParameter[Sequence[Any]]:
    return sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))


def any_of(column: sa.Column[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """column = ANY(one array): the same statement whatever the count."""
    return column == sa.any_(array(column, values))
