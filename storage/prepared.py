"""`Prepared`: a Core statement compiled once per database driver and run on the driver's cursor
of a SQLAlchemy connection, inside that connection's transaction.

For the statements every review request runs (the token check, the claim, the decision: ten to
fourteen per decision; PostgreSQL runs some writes together, review/queue.py).
`Connection.execute` spends 15-25 us per statement above the driver's own on its cache key,
parameters and result set-up, more than an indexed SQLite statement takes; that was about a
third of the review service's own CPU per decision. The statements stay SQLAlchemy Core (one
schema, both dialects); only the per-execution machinery is skipped:

- values go through the same bind processors SQLAlchemy would apply (JSON columns, casts), and
  result values through its result processors;
- a connection outside a transaction begins one first, as `Connection.execute` would, so the
  caller's commit or rollback covers the statement (on PostgreSQL the driver has opened one);
- driver errors come out as SQLAlchemy's exception types, as from `Connection.execute`, and a
  connection the database dropped is invalidated.

Not for statements SQLAlchemy must expand or complete per execution (IN lists, Python-side
column defaults), nor for RETURNING or bind names the driver would need escaped: `Prepared`
refuses them when it compiles them. SQLAlchemy's cursor events do not fire for these
statements (`Prepared.driver_call` shows what the driver is given).
"""

from __future__ import annotations

import sys
import threading
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import SelectBase


@dataclass
class _Form:
    """A statement as one dialect runs it."""

    sql: str
    order: tuple[str, ...] | None  # parameter names in order (positional drivers), else None
    fixed: dict[str, Any]  # values the statement carries itself (literals)
    bind: dict[str, Callable[[Any], Any]]  # bind processors by parameter name
    row: Any  # the row type (a named tuple of the selected columns), None for DML
    types: list[Any]  # the selected columns' types
    # result processors by column, from the driver's type codes of the first result (empty
    # when no column needs one; None until then)
    result: list[Callable[[Any], Any] | None] | None = None

    def driver_call(self, values: Mapping[str, Any] | None) -> tuple[str, Any]:
        """The SQL and the driver's parameters for `values`."""
        parameters = {**self.fixed, **values} if values else dict(self.fixed)
        for name, process in self.bind.items():
            if name in parameters:
                parameters[name] = process(parameters[name])
        if self.order is None:
            return self.sql, parameters
        return self.sql, tuple(parameters[name] for name in self.order)


class Result:
    """The rows of one execution, fetched at once (these statements read a row or a few)."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if not self.rows:
            raise NoResultFound("No row was found when one was required")
        if len(self.rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]

    def all(self) -> list[Any]:
        return self.rows


Statement = TypeVar("Statement", bound=ClauseElement)


class Prepared(Generic[Statement]):
    """A Core statement run on the driver's cursor (see the module docstring)."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._forms: dict[tuple[str, str, str], _Form] = {}
        self._compiling = threading.Lock()

    def run(self, connection: Connection, values: Mapping[str, Any] | None = None) -> Result:
        """Execute on `connection` with `values` (by bind parameter name)."""
        dialect = connection.dialect
        form = self._form(dialect)
        sql, parameters = form.driver_call(values)
        if not connection.in_transaction():
            connection.begin()  # as Connection.execute would: the caller's commit covers it
        driver = connection.connection.driver_connection
        cursor = None
        try:
            cursor = driver.cursor()  # type: ignore[union-attr]
            cursor.execute(sql, parameters)
            rows = cursor.fetchall() if form.row is not None else []
            rowcount = cursor.rowcount
            if form.result is None and form.row is not None:
                form.result = _result_processors(dialect, form.types, cursor)
        except Exception as error:
            # As Connection.execute reports it: SQLAlchemy's exception types, and a connection
            # the database dropped is invalidated (the pool replaces it).
            driver_error = dialect.loaded_dbapi.Error
            lost = isinstance(error, driver_error) and dialect.is_disconnect(error, driver, cursor)
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(
                sql, parameters, error, driver_error, connection_invalidated=lost
            ) from error
        finally:
            if cursor is not None:
                cursor.close()
        if form.row is None:
            return Result([], rowcount)
        if form.result:  # some column needs converting
            rows = [
                [
                    value if p is None else p(value)
                    for p, value in zip(form.result, row, strict=True)
                ]
                for row in rows
            ]
        return Result([form.row._make(row) for row in rows], rowcount)

    def run_between(
        self,
        connection: Connection,
        before: str,
        after: str,
        values: Mapping[str, Any] | None = None,
    ) -> Result:
        """`run`, between two statements of the driver's that return nothing (a setting for
        this statement alone: `SET LOCAL ...` and its reset). On PostgreSQL (psycopg) the three
        go in pipeline mode: the transaction's BEGIN, the setting and the statement in one
        round trip, the reset in a second, where each alone takes one (the setting's two were a
        sixth of the time a `next` waited on the server); elsewhere one after another."""
        if not connection.in_transaction():
            connection.begin()
        driver = connection.connection.driver_connection
        if connection.dialect.name != "postgresql" or not _has_pipeline(driver):
            connection.exec_driver_sql(before)
            result = self.run(connection, values)
            connection.exec_driver_sql(after)
            return result
        driver_error = connection.dialect.loaded_dbapi.Error
        try:
            with driver.pipeline():  # type: ignore[union-attr]
                _send(driver, before)
                result = self.run(connection, values)  # its fetch sends all three
                _send(driver, after)
        except driver_error as error:  # the reset's answer, read as the pipeline ends
            # as `run` reports its own: a connection the database dropped is invalidated
            lost = connection.dialect.is_disconnect(error, driver, None)
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(
                after, None, error, driver_error, connection_invalidated=lost
            ) from error
        return result

    def driver_call(
        self, dialect: Dialect, values: Mapping[str, Any] | None = None
    ) -> tuple[str, Any]:
        """The SQL and parameters the driver is given for `values` (as `run` gives them)."""
        return self._form(dialect).driver_call(values)

    def _form(self, dialect: Dialect) -> _Form:
        return self._forms.get(_dialect_key(dialect)) or self._compile(dialect)

    def _compile(self, dialect: Dialect) -> _Form:
        key = _dialect_key(dialect)
        with self._compiling:
            if key in self._forms:
                return self._forms[key]
            statement: Any = self.statement
            if isinstance(statement, Insert):
                statement = statement.inline()  # no implicit RETURNING of the new row's key
            compiled: Any = statement.compile(dialect=dialect)
            refused = _refused(compiled)
            if refused:
                raise TypeError(f"Prepared: {refused}; run this statement with execute()")
            bind = {}
            fixed = {}
            for name in set(compiled.bind_names.values()):  # the names the SQL uses
                parameter = compiled.binds[name]
                process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:
                    bind[name] = process
                if not parameter.required:
                    fixed[name] = parameter.effective_value
            row: Any = None  # a named tuple type of the selected columns
            types = []
            if isinstance(statement, SelectBase):
                columns = statement.selected_columns
                row = _row_type(list(columns.keys()))
                types = [column.type for column in columns]
            order = tuple(compiled.positiontup) if dialect.positional else None
            form = _Form(compiled.string, order, fixed, bind, row, types)
            self._forms[key] = form
            return form


def _has_pipeline(driver: Any) -> bool:
    """Whether the driver connection has pipeline mode: psycopg's does where its libpq is 14
    or later (`psycopg.capabilities`; a system libpq 13 raises on entering it)."""
    module = sys.modules.get(type(driver).__module__.partition(".")[0])
    capabilities = getattr(module, "capabilities", None)
    return capabilities is not None and bool(capabilities.has_pipeline())


def _send(driver: Any, sql: str) -> None:
    """Queue `sql`, which returns nothing, in the driver's pipeline (its answer comes with the
    next fetch, or as the pipeline ends; an error is raised then)."""
    cursor = driver.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _dialect_key(dialect: Dialect) -> tuple[str, str, str]:
    """One compiled form per database, driver and parameter style."""
    return dialect.name, dialect.driver, dialect.paramstyle


def _refused(compiled: Any) -> str | None:
    """Why a compiled statement cannot run as it stands, or None."""
    if "__[POSTCOMPILE" in compiled.string:
        return "an IN list is expanded per execution"
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        return "its table has Python-side column defaults, filled in per execution"
    if getattr(compiled, "escaped_bind_names", None):
        return "bind parameter names the driver cannot take as they are"
    if "RETURNING" in compiled.string.upper() and not isinstance(compiled.statement, SelectBase):
        return "RETURNING rows are not fetched"
    return None


def _row_type(names: list[str]) -> Any:
    """A named tuple type whose fields are the selected columns' keys (SQLAlchemy's Row's)."""
    return namedtuple("Row", names, rename=True)  # type: ignore[misc]


def _result_processors(
    dialect: Dialect, types: list[Any], cursor: Any
) -> list[Callable[[Any], Any] | None]:
    """What SQLAlchemy applies to each column of a result (it may depend on the driver's type
    code, as PostgreSQL's numbers do)."""
    description = cursor.description
    if description is None or len(description) != len(types):
        raise TypeError(f"Prepared: the result has not the {len(types)} columns selected")
    processors = [
        kind.dialect_impl(dialect).result_processor(dialect, column[1])
        for kind, column in zip(types, description, strict=True)
    ]
    return processors if any(processors) else []
