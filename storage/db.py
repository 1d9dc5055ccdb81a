"""Database connection: one place that turns configuration into a
SQLAlchemy engine (here always `sql_engine`, never to be confused with the
BPMN engine) and hands out units of work."""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE_PATH = Path("instance") / "ocop.db"


def database_url() -> str:
    """OCOP_DATABASE_URL (any SQLAlchemy URL), else a SQLite file under instance/."""
    url = os.environ.get("OCOP_DATABASE_URL")
    if url:
        return url
    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_PATH.resolve()}"


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by
    # default in SQLite; busy_timeout makes a second writer wait instead of
    # failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Seconds to wait for a server connection: an unreachable host must answer
# the request (503) long before the web server's worker timeout.
CONNECT_TIMEOUT = 10


def _name_postgres_connection(_dialect, _record, _cargs, cparams: dict) -> None:
    # Which process holds a connection, in pg_stat_activity.application_name
    # (operators, and the fault tests that kill the worker serving a request).
    # Set at connect time, so a forked web worker names itself, not its parent.
    # A URL's own application_name or connect_timeout wins.
    cparams.setdefault("application_name", f"ocop-flow pid {os.getpid()}")
    cparams.setdefault("connect_timeout", CONNECT_TIMEOUT)


def make_sql_engine(url: str | None = None, **kwargs) -> Engine:
    url = url or database_url()
    if make_url(url).get_backend_name() != "sqlite":
        # A database server can restart or drop idle connections: test each
        # pooled connection before use (a cheap round trip) so a process
        # recovers by itself once the server is back, instead of failing the
        # first request on every stale connection. A SQLite file never goes away.
        kwargs.setdefault("pool_pre_ping", True)
    sql_engine = create_engine(url, future=True, **kwargs)
    if sql_engine.dialect.name == "sqlite":
        event.listen(sql_engine, "connect", _tune_sqlite)
    elif sql_engine.dialect.name == "postgresql" and sql_engine.dialect.driver in ("psycopg", "psycopg2"):
        event.listen(sql_engine, "do_connect", _name_postgres_connection)
    return sql_engine


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def connection_of(unit: Session | Connection) -> Connection:
    """The connection of a unit of work: an ORM session's, or the connection itself."""
    return unit.connection() if isinstance(unit, Session) else unit


class Database:
    """A SQLAlchemy engine plus its session factory. `transaction()` (an ORM
    session) and `statements()` (a Core connection) are the ways application
    code opens a unit of work that writes: commit on success, rollback on any
    exception. `reading()` is for reading only."""

    def __init__(self, url: str | None = None, **engine_kwargs) -> None:
        self.sql_engine = make_sql_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.sql_engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.sql_engine.url.render_as_string(hide_password=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work (pages, reports): an ORM session that is
        never committed, so nothing done through it is ever written. Objects
        read keep their loaded values after the block, as after
        `transaction()`."""
        session = self.sessions()
        try:
            yield session
        finally:
            session.close()  # the connection goes back to the pool rolled back

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """A unit of work of plain Core statements, without an ORM session:
        for what every request runs (authentication), where the session's
        own bookkeeping costs more than the statements. Commit on success,
        rollback on any exception, as `transaction()`."""
        with self.sql_engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.sql_engine.dispose()
