"""Shared fixtures: configs on temporary folders, SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import peewee as pw
import pytest

import tui_pacs.net.scp  # noqa: F401  (see below)
from tests.peers import IN_CI
from tui_pacs.config import Config
from tui_pacs.store.db import open_database
from tui_pacs.store.models import ALL_MODELS, database_proxy

PG_URL_ENV = "TUI_PACS_TEST_PG_URL"
# Importing tui_pacs.net.scp mends pynetdicom's reactor race (_hand_back_stolen_responses) in
# this process too: the pynetdicom SCUs and SCPs the tests play must not lose a response either.


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read or write the developer's own config or data folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("TUI_PACS_CONFIG", raising=False)


def pg_url() -> str | None:
    return os.environ.get(PG_URL_ENV) or None


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker its own PostgreSQL database (tests drop tables)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = pg_url()
    if not worker or not base or base.endswith(f"_{worker}"):
        return
    import psycopg2

    prefix, _, name = base.rpartition("/")
    name, _, query = name.partition("?")
    own = f"{name}_{worker}"
    conn = psycopg2.connect(base)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (own,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{own}"')
    finally:
        conn.close()
    os.environ[PG_URL_ENV] = f"{prefix}/{own}" + (f"?{query}" if query else "")


def _fresh_postgres(url: str) -> pw.Database:
    db = open_database(url, create=False)
    db.drop_tables(ALL_MODELS, safe=True, cascade=True)
    db.close()
    return open_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty index database URL: SQLite in tmp_path, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'index.sqlite3'}"
        return
    url = pg_url()
    if url is None:
        if IN_CI:
            pytest.fail(f"{PG_URL_ENV} is not set in CI")
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    _fresh_postgres(url).close()
    yield url


def _folder_config(folder: Path, database_url: str) -> Config:
    """A loopback config whose archive and log live in ``folder``."""
    return replace(
        Config(),
        ae_title="TEST_PACS",
        bind_address="127.0.0.1",
        port=0,
        storage_path=folder / "archive",
        database_url=database_url,
        log_file=folder / "tui-pacs.log",
    )


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    """A config whose archive and database live in tmp_path (or the test PostgreSQL)."""
    return _folder_config(tmp_path, db_url)


@pytest.fixture
def sqlite_config(tmp_path: Path) -> Config:
    """Like ``config`` but SQLite only (for tests that do not touch the index semantics)."""
    return _folder_config(tmp_path, f"sqlite:///{tmp_path / 'index.sqlite3'}")


@pytest.fixture(autouse=True)
def _close_database() -> Iterator[None]:
    yield
    db = database_proxy.obj
    if db is not None and not db.is_closed():
        db.close()
