"""Schema version 2 (the tech desk): an index of version 1 is migrated once; registry nodes that
could use every service then keep every service, restricted ones stay restricted."""

from __future__ import annotations

from tui_pacs.config import Config
from tui_pacs.store.db import SCHEMA_VERSION, open_database
from tui_pacs.store.models import RemoteNodeRow, SchemaVersion


def test_version_1_nodes_keep_every_service(config: Config) -> None:
    """Old all-services rows gain mwl, mpps and commit; others are left alone; only once."""
    db = open_database(config.effective_database_url)
    assert SchemaVersion.select().get().version == SCHEMA_VERSION >= 2
    RemoteNodeRow.create(
        name="all", ae_title="ALL", host="h", port=1, allowed_services="echo,find,get,move,store"
    )
    RemoteNodeRow.create(
        name="some", ae_title="SOME", host="h", port=1, allowed_services="echo,store"
    )
    SchemaVersion.update(version=1).execute()
    db.close()
    open_database(config.effective_database_url)
    services = {r.name: r.allowed_services for r in RemoteNodeRow.select()}
    assert services == {"all": "echo,find,get,move,store,mwl,mpps,commit", "some": "echo,store"}
    assert SchemaVersion.select().get().version == SCHEMA_VERSION
    RemoteNodeRow.update(allowed_services="echo,find,move,get,store").where(
        RemoteNodeRow.name == "all"
    ).execute()
    open_database(config.effective_database_url)
    assert RemoteNodeRow.get(RemoteNodeRow.name == "all").allowed_services == (
        "echo,find,move,get,store"
    )
