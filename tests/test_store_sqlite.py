"""What only the SQLite backend promises: WAL, synchronous=NORMAL, write lock taken at BEGIN."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from itinera.errors import ConfigurationError
from itinera.store import RunRecord, open_store
from itinera.store.sqlite import SqliteStore


def _run(run_id: str) -> RunRecord:
    return RunRecord(
        id=run_id, tenant="t", definition_hash="h", subject=None, status="pending", state=b"s",
        wake_at=None, ready=True, created_at=1.0, updated_at=1.0,
    )


def test_file_database_uses_wal_and_normal_sync(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with store.transaction() as tx:
            connection = tx.connection  # type: ignore[attr-defined]  # SqlTransaction internals
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1  # NORMAL
    finally:
        store.close()


def test_transaction_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqliteStore)
    outsider = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with store.transaction() as tx:
            tx.get_run("r1")  # only a read so far, yet no one else may write
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                outsider.execute("BEGIN IMMEDIATE")
            with store.read() as reader:  # a deferred reader does not wait for the writer
                assert reader.get_run("r1") is None
        outsider.execute("BEGIN IMMEDIATE")  # released at commit
        outsider.execute("ROLLBACK")
    finally:
        outsider.close()
        store.close()


def test_in_memory_store_serializes_threads() -> None:
    store = open_store("sqlite://")
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for i in range(50):
                with store.transaction() as tx:
                    tx.insert_runs([_run(f"{prefix}{i}")])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abc"]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with store.transaction() as tx:
            assert tx.count_runs() == {"pending": 150}
    finally:
        store.close()


def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not a directory"):
        open_store(f"sqlite:///{tmp_path / 'nope' / 'a.db'}")
