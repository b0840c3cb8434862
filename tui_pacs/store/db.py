"""Open the index database (SQLite in WAL mode by default, PostgreSQL by URL) and create tables."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee as pw
from playhouse.db_url import connect
from playhouse.pool import PooledSqliteDatabase

from tui_pacs.errors import StoreError
from tui_pacs.store.models import (
    ALL_MODELS,
    CommitmentRequestRow,
    Patient,
    PerformedInstance,
    PerformedProcedureStep,
    PerformedProcedureStepOrder,
    RemoteNodeRow,
    SchemaVersion,
    WorklistItem,
    database_proxy,
)

log = logging.getLogger(__name__)

#: Age after which a pooled connection is closed instead of reused.
STALE_SECONDS = 300
#: URL of the database the models are bound to (set by open_database).
_bound_url: str | None = None

#: SQLite pragmas: WAL lets readers run beside the writer; FULL sync makes every commit durable
#: against power loss, which group commit keeps affordable; a generous busy timeout lets several
#: processes (node, console, CLI import) share one file without "database is locked".
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 60_000,
    "cache_size": -32_000,
}


def is_sqlite(db: pw.Database) -> bool:
    return isinstance(db, pw.SqliteDatabase)


def open_database(url: str, create: bool = True) -> pw.Database:
    """Open the database at ``url``, bind the models to it and create missing tables.

    Args:
        url: ``sqlite:///PATH`` or ``postgresql://USER:PASSWORD@HOST:PORT/DB``.
        create: Create the schema when it is missing.

    Raises:
        StoreError: The URL is not supported or the server cannot be reached.
    """
    try:
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            if path == ":memory:":
                db: pw.Database = pw.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=60)
            else:
                # Pooled too (see below): opening a connection, setting its pragmas and parsing
                # the schema on its first statement cost ~1 ms, a third of a selective C-FIND
                # association's time in the node.
                db = PooledSqliteDatabase(
                    path,
                    pragmas=SQLITE_PRAGMAS,
                    timeout=60,
                    max_connections=None,
                    stale_timeout=STALE_SECONDS,
                    check_same_thread=False,  # a pooled connection serves one thread at a time
                )
        elif url.startswith(("postgresql://", "postgres://")):
            # Pooled: a thread's connection goes back to the pool when it closes it. pynetdicom
            # runs every association in a new thread, and a new PostgreSQL connection costs
            # ~15 ms (plus ~2-3 ms for the server to cache the catalog on its first query): most
            # of a selective C-FIND. No limit on connections (as before); one is recycled when
            # checked out or in after STALE_SECONDS.
            pooled = url.replace("postgres://", "postgresql://", 1).replace(
                "postgresql://", "postgresql+pool://", 1
            )
            db = connect(
                pooled, autorollback=True, max_connections=None, stale_timeout=STALE_SECONDS
            )
        else:
            raise StoreError(f"unsupported database URL {url!r} (use sqlite:/// or postgresql://)")
        db.connect(reuse_if_open=True)
    except pw.OperationalError as exc:
        raise StoreError(
            f"cannot open database {redact(url)}: {exc}", "Database unavailable"
        ) from exc
    database_proxy.initialize(db)
    global _bound_url
    _bound_url = url
    if create:
        create_schema(db)
    return db


def use_database(url: str) -> pw.Database:
    """The database the models are bound to when it was opened from ``url``; else open it.

    Services call this so a process (the CLI, an in-process node) shares one database object
    instead of rebinding the models to a second one for the same URL.
    """
    db = database_proxy.obj
    if db is not None and _bound_url == url:
        return db
    return open_database(url)


@contextmanager
def thread_connection(db: pw.Database) -> Iterator[pw.Database]:
    """Use this thread's connection, opening (and afterwards closing) one only if it had none.

    Peewee connections are per thread. Code called from threads it does not own (pynetdicom's
    association threads) must not leave a connection behind each, nor close one its caller is
    using, which ``connection_context()`` would.
    """
    opened = db.is_closed()
    if opened:
        db.connect()
    try:
        yield db
    finally:
        if opened:
            db.close()


#: PostgreSQL indexes for prefix wildcard matching: (name, table, column).
_PATTERN_INDEXES = (
    ("patient_name_norm_pattern", "patient", "patient_name_norm"),
    ("patient_id_pattern", "patient", "patient_id"),
    ("study_accession_number_pattern", "study", "accession_number"),
)


def _schema_transaction(db: pw.Database) -> Any:
    """A transaction that changes the schema, one process at a time.

    SQLite: BEGIN IMMEDIATE takes the write lock at once (a second process waits under the
    busy timeout). PostgreSQL: a transaction-scoped advisory lock, since two concurrent
    ``CREATE TABLE IF NOT EXISTS`` of one table can still collide in the catalog.
    """
    if is_sqlite(db):
        return db.atomic("IMMEDIATE")
    return _PgSchemaLock(db)


class _PgSchemaLock:
    """``db.atomic()`` plus ``pg_advisory_xact_lock`` (released with the transaction)."""

    def __init__(self, db: pw.Database) -> None:
        self._atomic = db.atomic()
        self._db = db

    def __enter__(self) -> Any:
        txn = self._atomic.__enter__()
        self._db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        return txn

    def __exit__(self, *exc: Any) -> Any:
        return self._atomic.__exit__(*exc)


#: Key of the PostgreSQL advisory lock that serialises schema changes ("tuipacs" in ASCII).
_SCHEMA_LOCK_KEY = 0x7475697061637300


def _stored_version(db: pw.Database) -> int | None:
    """The index's schema version; None for an empty database (nothing created yet).

    An index with tables but no version row counts as version 1 (the first schema).
    """
    tables = set(db.get_tables())
    if SchemaVersion._meta.table_name in tables:
        version = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar()
        if version is not None:
            return int(version)
    return 1 if Patient._meta.table_name in tables else None


def _set_version(version: int) -> None:
    if not SchemaVersion.update(version=version).execute():
        SchemaVersion.create(version=version)


def create_schema(db: pw.Database) -> None:
    """Create a new index, or bring an older one up to :data:`SCHEMA_VERSION`.

    Each step of :data:`MIGRATIONS` the index lacks runs in its own transaction, which also
    records the new version, so an interrupted upgrade resumes at the step that did not
    finish. Steps are idempotent (they check what exists), and several processes opening the
    same index at once take turns. Tables and indexes that are simply missing are created
    last (idempotent, like every other step).

    Raises:
        StoreError: The index was written by a newer tui-pacs (a higher schema version).
    """
    with _schema_transaction(db):
        version = _stored_version(db)
        if version is None:
            db.create_tables(ALL_MODELS, safe=True)
            _set_version(SCHEMA_VERSION)
            version = SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the index {redact(_bound_url or '')} has schema version {version}, but this "
            f"tui-pacs knows versions up to {SCHEMA_VERSION}: it was written by a newer "
            "tui-pacs. Upgrade tui-pacs (the index is left untouched).",
            "Index too new",
        )
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        with _schema_transaction(db):
            # Another process may have run this step while we waited for the lock.
            if (_stored_version(db) or 0) >= migration.version:
                continue
            log.info(
                "index schema: upgrading to version %d (%s)",
                migration.version,
                migration.description,
            )
            migration.apply(db)
            _set_version(migration.version)
    with _schema_transaction(db):
        db.create_tables(ALL_MODELS, safe=True)
        if not is_sqlite(db):
            # Prefix matching (LIKE 'abc%', the C-FIND wildcard DOE*) uses these whatever the
            # collation; a plain b-tree serves LIKE only under the "C" collation.
            for name, table, column in _PATTERN_INDEXES:
                db.execute_sql(
                    f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} text_pattern_ops)"
                )


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: what version it makes and how (idempotent, in a transaction)."""

    version: int
    description: str
    apply: Callable[[pw.Database], None]


def create_missing(db: pw.Database, models: Sequence[type[pw.Model]]) -> None:
    """Create these tables and their indexes where they do not exist (for migration steps)."""
    db.create_tables(list(models), safe=True)


#: Services of schema version 1; a node allowed all of them is allowed the newer ones too.
_V1_SERVICES = frozenset({"echo", "find", "move", "get", "store"})


def _v2_tech_desk(db: pw.Database) -> None:
    """Orders, MPPS; registry nodes that could use every service keep being able to."""
    create_missing(
        db, [WorklistItem, PerformedProcedureStep, PerformedProcedureStepOrder, PerformedInstance]
    )
    if RemoteNodeRow._meta.table_name not in db.get_tables():
        return
    for row in RemoteNodeRow.select(RemoteNodeRow.name, RemoteNodeRow.allowed_services):
        services = [s for s in row.allowed_services.split(",") if s]
        if set(services) >= _V1_SERVICES:
            extra = [s for s in ("mwl", "mpps", "commit") if s not in services]
            if extra:
                RemoteNodeRow.update(allowed_services=",".join([*services, *extra])).where(
                    RemoteNodeRow.name == row.name
                ).execute()


def _v3_commitment_requests(db: pw.Database) -> None:
    """Storage commitment requests are kept until reported (they survive a restart)."""
    create_missing(db, [CommitmentRequestRow])


#: The schema's history, oldest first; version 1 is the archive node core.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "tech desk: orders, MPPS, mwl/mpps/commit permissions", _v2_tech_desk),
    Migration(3, "storage commitment requests kept until reported", _v3_commitment_requests),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def redact(url: str) -> str:
    """Hide the password of a database URL for messages and logs."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
