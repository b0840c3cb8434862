"""Open the index database (SQLite in WAL mode by default, PostgreSQL by URL) and create tables."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee as pw
from playhouse.db_url import connect

from tui_pacs.errors import StoreError
from tui_pacs.store.models import ALL_MODELS, RemoteNodeRow, SchemaVersion, database_proxy

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
#: Age after which a pooled PostgreSQL connection is closed instead of reused.
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
            db: pw.Database = pw.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=60)
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
        raise StoreError(f"cannot open database {redact(url)}: {exc}", "Database unavailable") from exc
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


def create_schema(db: pw.Database) -> None:
    """Create tables and indexes that do not exist yet (idempotent, safe with several processes)."""
    with db.atomic():
        db.create_tables(ALL_MODELS, safe=True)
        if not is_sqlite(db):
            # Prefix matching (LIKE 'abc%', the C-FIND wildcard DOE*) uses these whatever the
            # collation; a plain b-tree serves LIKE only under the "C" collation.
            for name, table, column in _PATTERN_INDEXES:
                db.execute_sql(
                    f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} text_pattern_ops)"
                )
        if SchemaVersion.select().count() == 0:
            SchemaVersion.create(version=SCHEMA_VERSION)
        else:
            _migrate()


#: Services of schema version 1; a node allowed all of them is allowed the newer ones too.
_V1_SERVICES = frozenset({"echo", "find", "move", "get", "store"})


def _migrate() -> None:
    """Bring an older index up to :data:`SCHEMA_VERSION` (inside create_schema's transaction)."""
    version = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar() or 1
    if version < 2:
        # Version 2 added the tech desk services (mwl, mpps, commit): a registry node that could
        # use every service keeps being able to.
        for row in RemoteNodeRow.select(RemoteNodeRow.name, RemoteNodeRow.allowed_services):
            services = [s for s in row.allowed_services.split(",") if s]
            if set(services) >= _V1_SERVICES:
                extra = [s for s in ("mwl", "mpps", "commit") if s not in services]
                RemoteNodeRow.update(allowed_services=",".join([*services, *extra])).where(
                    RemoteNodeRow.name == row.name
                ).execute()
    if version < SCHEMA_VERSION:
        SchemaVersion.update(version=SCHEMA_VERSION).execute()


def redact(url: str) -> str:
    """Hide the password of a database URL for messages and logs."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
