"""Hot-path SQL: Core statements compiled once per dialect, run on a raw DB-API connection.

SQLAlchemy's per-execute machinery (cache key, execution context, result wrapping) costs
about 100 µs a statement here, more than SQLite takes to run one; a chat call runs nine. The
statements stay SQLAlchemy constructs (one definition for SQLite and Postgres, each column
type's own bind and result conversion); only their execution skips the layers in between.
Driver errors come out as SQLAlchemy's DBAPIError subclasses, like everywhere else, and a
connection the database dropped is invalidated so the pool does not hand it out again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # (bind name, the type's conversion or None): in placeholder order for positional
    # paramstyles (a name may repeat), once per name for named ones
    binds: tuple[tuple[str, _Processor | None], ...]
    positional: bool
    columns: tuple[_Processor | None, ...]  # result conversion per selected column

    def bind(self, params: Params) -> Any:
        if self.positional:
            return [params[name] if convert is None else convert(params[name])
                    for name, convert in self.binds]
        return {name: params[name] if convert is None else convert(params[name])
                for name, convert in self.binds}


_cache: dict[tuple[int, str, tuple[str, ...]], _Compiled] = {}


def _compile(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
    cache_key = (id(statement), dialect.name, keys)
    found = _cache.get(cache_key)
    if found is not None:
        return found
    # column_keys: an INSERT names exactly the columns given (every one, defaults included).
    compiled = cast(SQLCompiler, statement.compile(
        dialect=dialect, column_keys=list(keys) if keys else None))
    convert = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
               for name, bind in compiled.binds.items()}
    order = compiled.positiontup if dialect.positional else list(compiled.binds)
    columns: tuple[_Processor | None, ...] = ()
    if isinstance(statement, Select):
        columns = tuple(col.type.dialect_impl(dialect).result_processor(dialect, None)
                        for col in statement.selected_columns)
    found = _Compiled(compiled.string, tuple((name, convert[name]) for name in order or ()),
                      dialect.positional, columns)
    _cache[cache_key] = found
    return found


class RawTransaction:
    """One transaction on one pooled DB-API connection (see `transaction`)."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self._cursor = connection.cursor()
        self._dialect = dialect
        self.driver_error: type[Exception] = dialect.loaded_dbapi.Error

    def execute(self, statement: ClauseElement, params: Params | Sequence[Params]) -> int:
        """Run a statement (a list of parameter sets: executemany); the rows it matched."""
        if isinstance(params, Mapping):
            compiled = _compile(statement, self._dialect, _insert_keys(statement, params))
            self._run(compiled.sql, compiled.bind(params), many=False)
        else:
            compiled = _compile(statement, self._dialect, _insert_keys(statement, params[0]))
            self._run(compiled.sql, [compiled.bind(p) for p in params], many=True)
        return int(self._cursor.rowcount)

    def first(self, statement: Select[Any], params: Params) -> tuple[Any, ...] | None:
        """The first row of a SELECT, its columns converted by their types, or None."""
        compiled = _compile(statement, self._dialect, ())
        self._run(compiled.sql, compiled.bind(params), many=False)
        row = self._cursor.fetchone()
        if row is None:
            return None
        return tuple(convert(value) if convert is not None else value
                     for convert, value in zip(compiled.columns, row, strict=True))

    def control(self, sql: str) -> None:
        """A statement without parameters (BEGIN, SAVEPOINT…); driver errors as they are."""
        self._cursor.execute(sql)

    def _run(self, sql: str, params: Any, *, many: bool) -> None:
        try:
            if many:
                self._cursor.executemany(sql, params)
            else:
                self._cursor.execute(sql, params)
        except self._dialect.loaded_dbapi.Error as exc:
            raise translated(exc, sql, params, self._connection, self._cursor,
                              self._dialect) from exc


def _insert_keys(statement: ClauseElement, params: Params) -> tuple[str, ...]:
    return tuple(params) if getattr(statement, "is_insert", False) else ()


def translated(exc: Any, sql: str | None, params: Any, connection: Any, cursor: Any,
                dialect: Dialect) -> DBAPIError:
    """The driver error as SQLAlchemy's; a dropped connection (if there is one) is invalidated."""
    disconnected = dialect.is_disconnect(exc, connection, cursor)
    if disconnected and connection is not None:
        connection.invalidate(exc)
    return cast(DBAPIError, DBAPIError.instance(
        sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=disconnected,
        dialect=dialect))


def connect(engine: Engine) -> Any:
    """A pooled DB-API connection (close() gives it back); a database that cannot be reached
    raises SQLAlchemy's error, as everywhere else."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:  # the pool could not connect
        raise translated(exc, None, None, None, None, engine.dialect) from exc


@contextmanager
def transaction(engine: Engine) -> Iterator[RawTransaction]:
    """Commit on success, roll back on any exception, and return the connection to the pool."""
    dialect = engine.dialect
    connection = connect(engine)
    try:
        tx = RawTransaction(connection, dialect)
        yield tx
        try:
            connection.commit()
        except dialect.loaded_dbapi.Error as exc:
            raise translated(exc, "COMMIT", None, connection, None, dialect) from exc
    except BaseException:
        if connection.is_valid:
            try:
                connection.rollback()
            except dialect.loaded_dbapi.Error:
                connection.invalidate()  # unusable; the pool opens a fresh one
        raise
    finally:
        connection.close()
