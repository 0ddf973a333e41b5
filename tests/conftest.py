"""Shared fixtures: the same tests run against SQLite and PostgreSQL.

* ``store_url`` -- the URL of a database with the current schema and no rows, once per backend:
  ``sqlite`` (a file in ``tmp_path``) and ``postgresql`` (marked ``postgres``).
* ``store`` -- an open :class:`~itinera.store.Store` on ``store_url``, closed after the test.
* ``empty_store_url`` -- a database with no schema at all (for migration tests).

PostgreSQL: one throw-away database (``itinera_test_<hex>``) per test session on the server
at ``$ITINERA_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
used only to create and drop databases), dropped at the end; every test starts from truncated
tables. When the server is unreachable the PostgreSQL cases are skipped -- unless ``CI=true``,
where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from itinera.store import Store, open_store
from itinera.store.tables import ALL_TABLES

POSTGRES_ADMIN_URL = os.environ.get(
    "ITINERA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class PostgresServer:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, admin_url: str) -> None:
        url = sa.make_url(admin_url)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        self.url = url
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.created: list[str] = []

    def ping(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def create_database(self) -> str:
        """Create an empty database; return its URL."""
        name = f"itinera_test_{secrets.token_hex(6)}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = sa.make_url(url).database
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(str(name))

    def close(self) -> None:
        for name in list(self.created):
            self.drop_database(self.url.set(database=name).render_as_string(hide_password=False))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL test server (skips -- or, with ``CI=true``, fails -- when unreachable)."""
    server = PostgresServer(POSTGRES_ADMIN_URL)
    problem = None
    try:
        server.ping()
    except sa.exc.OperationalError as error:
        problem = str(error.orig).strip().splitlines()[0]
    if problem is not None:
        server.admin.dispose()
        reason = (
            f"PostgreSQL is unreachable at {server.url.render_as_string(hide_password=True)} ({problem}); "
            "set ITINERA_TEST_POSTGRES_URL to a server where this user may CREATE DATABASE"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Iterator[tuple[str, sa.Engine]]:
    """The session's migrated PostgreSQL database: its URL and an engine to clean it with."""
    url = postgres_server.create_database()
    open_store(url).close()
    cleaner = sa.create_engine(url, poolclass=NullPool)
    try:
        yield url, cleaner
    finally:
        cleaner.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file that each test copies (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "itinera.db"
    open_store(f"sqlite:///{path}").close()
    return path


def _truncate(engine: sa.Engine) -> None:
    names = ", ".join(table.name for table in ALL_TABLES)
    with engine.begin() as connection:
        # A store left open mid-transaction by an earlier test would block TRUNCATE forever.
        connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with the current schema and no rows, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "itinera.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url, cleaner = request.getfixturevalue("postgres_database")
    _truncate(cleaner)
    return str(url)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on ``store_url``."""
    opened = open_store(store_url, migrate=False)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(params=BACKENDS)
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without any Itinera schema, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)
