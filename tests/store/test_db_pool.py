"""PostgreSQL connections are pooled: a new thread (an association) reuses a closed one."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import pg_url
from tui_pacs.store.db import open_database, thread_connection

pytestmark = pytest.mark.postgres


def _backend_pid_in_new_thread(db: object) -> int:
    """The server process serving a fresh thread's connection (opened and closed again)."""
    out: list[int] = []

    def work() -> None:
        with thread_connection(db):  # type: ignore[arg-type]
            out.append(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[attr-defined]

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return out[0]


def test_threads_reuse_pooled_postgresql_connections() -> None:
    """Two threads one after the other get the same server connection, and both saw it closed."""
    url = pg_url()
    if url is None:
        pytest.skip("PostgreSQL tests need TUI_PACS_TEST_PG_URL")
    db = open_database(url)
    try:
        first = _backend_pid_in_new_thread(db)
        second = _backend_pid_in_new_thread(db)
        assert first == second
    finally:
        db.close()


def test_pooled_connection_comes_back_out_of_a_failed_transaction() -> None:
    """A connection returned inside a failed transaction is not handed out broken."""
    url = pg_url()
    if url is None:
        pytest.skip("PostgreSQL tests need TUI_PACS_TEST_PG_URL")
    db = open_database(url)
    errors: list[Exception] = []

    def fail() -> None:
        with thread_connection(db):
            conn = db.connection()
            cur = conn.cursor()
            cur.execute("BEGIN")
            try:
                cur.execute("SELECT 1/0")
            except Exception as exc:  # psycopg2.errors.DivisionByZero
                errors.append(exc)

    thread = threading.Thread(target=fail)
    thread.start()
    thread.join()
    try:
        assert errors
        assert _backend_pid_in_new_thread(db) > 0  # a usable connection, whichever it is
    finally:
        db.close()
