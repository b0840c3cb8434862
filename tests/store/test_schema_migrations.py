"""Schema migrations: an index written by an older tui-pacs (built here with that version's
tables) is upgraded step by step when opened, on SQLite and PostgreSQL; a failing step leaves
its version untouched; an index from a newer tui-pacs is refused with both versions named."""

from __future__ import annotations

import threading

import pytest

from tui_pacs.errors import StoreError
from tui_pacs.store import db as store_db
from tui_pacs.store.db import (
    SCHEMA_VERSION,
    Migration,
    is_sqlite,
    open_database,
    thread_connection,
)
from tui_pacs.store.models import (
    ALL_MODELS,
    Change,
    CommitmentRequestRow,
    Instance,
    Job,
    NodeEchoRow,
    NodeHeartbeat,
    Patient,
    PerformedInstance,
    PerformedProcedureStep,
    PerformedProcedureStepOrder,
    RemoteNodeRow,
    SchemaVersion,
    Series,
    Study,
    WorklistItem,
)

#: Tables of schema version 1 (the archive node core); their columns have not changed since.
V1_MODELS = [
    Patient,
    Study,
    Series,
    Instance,
    Change,
    RemoteNodeRow,
    NodeEchoRow,
    Job,
    NodeHeartbeat,
    SchemaVersion,
]
#: Version 2 added the tech desk's tables.
V2_MODELS = [
    *V1_MODELS,
    WorklistItem,
    PerformedProcedureStep,
    PerformedProcedureStepOrder,
    PerformedInstance,
]


def _old_store(url: str, models: list, version: int) -> None:
    """An index as tui-pacs at ``version`` left it: its tables, its version row, a few nodes."""
    db = open_database(url, create=False)
    # The PostgreSQL fixture creates the current schema; SQLite starts from an empty file.
    db.drop_tables(ALL_MODELS, safe=True, cascade=not is_sqlite(db))
    assert db.get_tables() == []
    with db.atomic():
        db.create_tables(models)
        SchemaVersion.create(version=version)
        RemoteNodeRow.create(
            name="all",
            ae_title="ALL",
            host="h",
            port=1,
            allowed_services="echo,find,get,move,store",
        )
        RemoteNodeRow.create(
            name="some", ae_title="SOME", host="h", port=1, allowed_services="echo"
        )
    db.close()


def _tables(url: str) -> set[str]:
    db = open_database(url, create=False)
    return set(db.get_tables())


def test_version_1_index_upgrades_to_current(db_url: str) -> None:
    """A v1 index gains the tech desk tables (v2: all-services nodes keep every service) and
    the commitment table (v3), and records the current version; opening it again changes
    nothing."""
    _old_store(db_url, V1_MODELS, 1)
    assert "worklist_item" not in _tables(db_url)
    db = open_database(db_url)
    assert SchemaVersion.select().count() == 1
    assert SchemaVersion.get().version == SCHEMA_VERSION == 3
    tables = set(db.get_tables())
    assert {"worklist_item", "performed_procedure_step", "commitment_request"} <= tables
    services = {r.name: r.allowed_services for r in RemoteNodeRow.select()}
    assert services == {"all": "echo,find,get,move,store,mwl,mpps,commit", "some": "echo"}
    CommitmentRequestRow.create(transaction_uid="1.2.3", calling_ae_title="CT", items="[]")
    WorklistItem.create(study_instance_uid="1.2.4")
    db.close()
    db = open_database(db_url)
    assert SchemaVersion.get().version == SCHEMA_VERSION
    assert CommitmentRequestRow.select().count() == 1


def test_version_2_index_gains_the_commitment_table(db_url: str) -> None:
    """A v2 index gets only step 3: the commitment table; its nodes are left as they were."""
    _old_store(db_url, V2_MODELS, 2)
    assert "commitment_request" not in _tables(db_url)
    db = open_database(db_url)
    assert SchemaVersion.get().version == SCHEMA_VERSION
    assert "commitment_request" in db.get_tables()
    assert RemoteNodeRow.get(RemoteNodeRow.name == "all").allowed_services == (
        "echo,find,get,move,store"
    )


def test_index_from_a_newer_version_is_refused(db_url: str) -> None:
    """Opening an index whose version is above ours fails with a message naming both
    versions, and changes nothing."""
    open_database(db_url)
    SchemaVersion.update(version=SCHEMA_VERSION + 4).execute()
    with pytest.raises(StoreError) as info:
        open_database(db_url)
    message = str(info.value.message)
    assert f"schema version {SCHEMA_VERSION + 4}" in message
    assert f"versions up to {SCHEMA_VERSION}" in message
    assert info.value.title == "Index too new"
    assert SchemaVersion.get().version == SCHEMA_VERSION + 4


def test_failing_step_rolls_back_and_runs_again(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails half-way leaves neither its tables nor its version; once fixed, the
    next open runs it."""
    open_database(db_url).close()

    def broken(db: object) -> None:
        store_db.database_proxy.obj.execute_sql("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("step failed")

    def fixed(db: object) -> None:
        store_db.database_proxy.obj.execute_sql("CREATE TABLE IF NOT EXISTS half_done (id INTEGER)")

    next_version = SCHEMA_VERSION + 1
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", next_version)
    monkeypatch.setattr(
        store_db, "MIGRATIONS", (*store_db.MIGRATIONS, Migration(next_version, "test", broken))
    )
    with pytest.raises(RuntimeError, match="step failed"):
        open_database(db_url)
    assert SchemaVersion.get().version == SCHEMA_VERSION
    assert "half_done" not in _tables(db_url)
    monkeypatch.setattr(
        store_db, "MIGRATIONS", (*store_db.MIGRATIONS[:-1], Migration(next_version, "test", fixed))
    )
    db = open_database(db_url)
    assert SchemaVersion.get().version == next_version
    assert "half_done" in db.get_tables()
    db.execute_sql("DROP TABLE half_done")


def test_concurrent_openers_upgrade_once(db_url: str) -> None:
    """Two openers upgrading the same v1 index at once take turns: both succeed, each step runs
    once (one version row, nodes extended once)."""
    _old_store(db_url, V1_MODELS, 1)
    db = open_database(db_url, create=False)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def upgrade() -> None:
        try:
            with thread_connection(db):
                start.wait(10)
                store_db.create_schema(db)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [v.version for v in SchemaVersion.select()] == [SCHEMA_VERSION]
    assert RemoteNodeRow.get(RemoteNodeRow.name == "all").allowed_services == (
        "echo,find,get,move,store,mwl,mpps,commit"
    )
