"""Statements compiled once per dialect and run on the driver's own connection.

The statements of the hot requests (a token lookup, an object by id, a name check, the
insert of an upload) cost a few tens of microseconds in SQLite itself, and about ten times
that in SQLAlchemy around them: a connection checkout, a transaction object, an execution
context, a result object per call (py-spy: half of a 4 KiB Djinn GET). Here such a
statement, still written with SQLAlchemy Core beside the others, is compiled to its SQL
string once, and each call runs that string on the DBAPI connection and maps the row's
tuple by position. Bind and result processors are SQLAlchemy's own for each column type,
and driver errors are wrapped as SQLAlchemy wraps them (``IntegrityError`` with ``orig``),
so callers handle both paths alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


class Row:
    """A result row read as SQLAlchemy's ``Row`` is: ``row.column`` and ``row._mapping``."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # parameter names in order; None: named (pyformat)
    defaults: dict[str, Any]  # the statement's own literal values (a LIMIT, a constant)
    binds: tuple[tuple[str, Processor], ...]
    columns: tuple[str, ...]
    results: tuple[tuple[int, Processor], ...]
    error: type[Exception]  # the driver's base error class


class Prepared:
    """One statement, compiled the first time it runs on each dialect."""

    def __init__(self, statement: ClauseElement, *, values_from_params: bool = False) -> None:
        """``values_from_params``: an INSERT given no values takes its columns from each
        call's parameters, and is compiled once per set of names."""
        self.statement = statement
        self._values_from_params = values_from_params
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _for(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        columns = tuple(params) if self._values_from_params else ()
        found = self._compiled.get((dialect.name, columns))
        if found is None:
            found = self._compiled[dialect.name, columns] = self._compile(dialect, columns)
        return found

    def _compile(self, dialect: Dialect, columns: tuple[str, ...]) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=list(columns) or None)
        assert isinstance(compiled, SQLCompiler)
        binds = []
        for name, bind in compiled.binds.items():
            processor = bind.type._cached_bind_processor(dialect)
            if processor is not None:
                binds.append((name, processor))
        names, results = [], []
        for i, (key, _name, _objects, type_) in enumerate(compiled._result_columns or ()):
            names.append(key)
            processor = type_._cached_result_processor(dialect, None)
            if processor is not None:
                results.append((i, processor))
        positions = compiled.positiontup
        return _Compiled(
            compiled.string,
            tuple(positions) if positions is not None else None,
            {k: v for k, v in compiled.params.items() if v is not None},
            tuple(binds),
            tuple(names),
            tuple(results),
            dialect.loaded_dbapi.Error,
        )

    def rows(self, conn: Any, dialect: Dialect, params: Mapping[str, Any]) -> list[Row]:
        """Run on ``conn``: a SQLAlchemy connection (in its transaction) or a raw one."""
        c = self._for(dialect, params)
        raw: Any = conn.connection.dbapi_connection if isinstance(conn, Connection) else conn
        values: Mapping[str, Any] = params  # most hot statements need no copy
        if c.defaults or c.binds:
            bound = {**c.defaults, **params}
            for name, processor in c.binds:
                if name in bound:
                    bound[name] = processor(bound[name])
            values = bound
        args: Any = values if c.positions is None else [values[n] for n in c.positions]
        cursor = raw.cursor()
        try:
            cursor.execute(c.sql, args)
            fetched = cursor.fetchall() if cursor.description is not None else []
        except c.error as exc:
            raise DBAPIError.instance(c.sql, args, exc, c.error) from exc
        finally:
            cursor.close()
        out = []
        for tup in fetched:
            if c.results:
                tup = list(tup)
                for i, processor in c.results:
                    tup[i] = processor(tup[i])
            out.append(Row(dict(zip(c.columns, tup, strict=True))))
        return out

    def first(self, conn: Any, dialect: Dialect, params: Mapping[str, Any]) -> Row | None:
        found = self.rows(conn, dialect, params)
        return found[0] if found else None

    def one(self, conn: Any, dialect: Dialect, params: Mapping[str, Any]) -> Row:
        """The one row a statement returns (an INSERT ... RETURNING)."""
        (row,) = self.rows(conn, dialect, params)
        return row
