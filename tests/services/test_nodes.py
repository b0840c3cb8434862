"""The node registry on SQLite and PostgreSQL: merge, validation, edits, echoes, permissions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tui_pacs.config import Config, parse_config
from tui_pacs.errors import ConfigError, UnknownNodeError
from tui_pacs.model import ALL_SERVICES, DimseService, EchoResult, NodeSource, RemoteNode
from tui_pacs.services.nodes import (
    DuplicateNodeError,
    InvalidNodeError,
    NodeRegistry,
    ReadOnlyNodeError,
    parse_services,
)
from tui_pacs.store.db import open_database
from tui_pacs.store.models import Change, NodeEchoRow

CONFIG_NODES = (
    RemoteNode("hospital", "HOSP_PACS", "127.0.0.1", 104, "priors",
               frozenset({DimseService.ECHO, DimseService.FIND})),
    RemoteNode("ct", "CT1", "127.0.0.1", 4000, allowed_services=frozenset({DimseService.STORE})),
)


@pytest.fixture
def registry(config: Config) -> NodeRegistry:
    """A registry over the test database with two config nodes, reading the database every time."""
    cfg = replace(config, nodes=CONFIG_NODES)
    return NodeRegistry(cfg, open_database(cfg.effective_database_url), cache_seconds=0)


def test_config_and_database_nodes_are_merged(registry: NodeRegistry) -> None:
    """Config nodes come first (source config), database nodes after them by name (source db)."""
    registry.add("zeta", "ZETA", "127.0.0.1", 11113)
    registry.add("alpha", "ALPHA", "localhost", 11114, description="viewer",
                 allowed_services="echo,store", retrieve_method="get")
    nodes = registry.nodes()
    assert [n.name for n in nodes] == ["hospital", "ct", "alpha", "zeta"]
    assert [n.source for n in nodes] == [NodeSource.CONFIG] * 2 + [NodeSource.DATABASE] * 2
    alpha = registry.get("alpha")
    assert alpha == RemoteNode(
        "alpha", "ALPHA", "localhost", 11114, "viewer",
        frozenset({DimseService.ECHO, DimseService.STORE}), "get", NodeSource.DATABASE,
    )
    assert registry.get("zeta").allowed_services == ALL_SERVICES


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ae_title": "A" * 17}, "longer than 16 characters"),
        ({"ae_title": "   "}, "cannot be empty"),
        ({"ae_title": "BAD\\AE"}, "no backslash"),
        ({"port": 0}, "port 1-65535"),
        ({"port": 65536}, "port 1-65535"),
        ({"host": ""}, "host"),
        ({"host": "two words"}, "not a host name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "longer than 64"),
        ({"retrieve_method": "pull"}, "allowed: move, get"),
        ({"allowed_services": "echo,teleport"}, "'teleport' is not a service"),
    ],
)
def test_invalid_nodes_are_refused_with_the_reason(
    registry: NodeRegistry, fields: dict[str, object], message: str
) -> None:
    """Each invalid field is refused with an InvalidNodeError saying why; none is added."""
    args: dict[str, object] = {"name": "new", "ae_title": "NEW", "host": "127.0.0.1", "port": 104}
    args.update(fields)
    with pytest.raises(InvalidNodeError, match=message):
        registry.add(**args)  # type: ignore[arg-type]
    assert [n.name for n in registry.nodes()] == ["hospital", "ct"]


def test_names_are_unique_across_config_and_database(registry: NodeRegistry) -> None:
    """A name used by a config or a database node cannot be added again nor taken by a rename."""
    registry.add("viewer", "VIEWER", "127.0.0.1", 104)
    registry.add("other", "OTHER", "127.0.0.1", 105)
    with pytest.raises(DuplicateNodeError, match="config file"):
        registry.add("hospital", "X", "127.0.0.1", 104)
    with pytest.raises(DuplicateNodeError, match="already exists"):
        registry.add("viewer", "X", "127.0.0.1", 104)
    with pytest.raises(DuplicateNodeError):
        registry.edit("other", new_name="viewer")
    with pytest.raises(DuplicateNodeError):
        registry.edit("other", new_name="ct")
    assert registry.get("other").ae_title == "OTHER"


def test_config_nodes_are_read_only(registry: NodeRegistry) -> None:
    """Editing or removing a node of the config file says to edit the file instead."""
    with pytest.raises(ReadOnlyNodeError, match="edit it there"):
        registry.edit("hospital", port=11112)
    with pytest.raises(ReadOnlyNodeError):
        registry.remove("ct")
    assert registry.get("hospital").port == 104


def test_edit_changes_the_given_fields_and_rename_keeps_the_echo(registry: NodeRegistry) -> None:
    """edit() keeps fields it is not given; a rename carries the node's last echo along."""
    registry.add("viewer", "VIEWER", "127.0.0.1", 104, description="desk 3")
    registry.record_echo(EchoResult("viewer", True, 2.5, 0, "0x0000 Success", datetime.now(UTC)))
    edited = registry.edit("viewer", new_name="viewer-2", port=11112, allowed_services="echo")
    assert edited == RemoteNode(
        "viewer-2", "VIEWER", "127.0.0.1", 11112, "desk 3",
        frozenset({DimseService.ECHO}), "move", NodeSource.DATABASE,
    )
    assert registry.find("viewer") is None
    echo = registry.get("viewer-2").last_echo
    assert echo is not None and echo.ok and echo.latency_ms == 2.5
    with pytest.raises(InvalidNodeError):
        registry.edit("viewer-2", port=-1)
    with pytest.raises(UnknownNodeError):
        registry.edit("nobody", port=1)


def test_remove_deletes_the_node_and_its_echo(registry: NodeRegistry) -> None:
    """remove() deletes a database node and its echo record; removing it again is an error."""
    registry.add("viewer", "VIEWER", "127.0.0.1", 104)
    registry.record_echo(EchoResult("viewer", False, None, None, "unreachable", datetime.now(UTC)))
    registry.remove("viewer")
    assert registry.find("viewer") is None
    assert NodeEchoRow.select().count() == 0
    with pytest.raises(UnknownNodeError):
        registry.remove("viewer")


def test_echo_results_are_kept_for_config_and_database_nodes(registry: NodeRegistry) -> None:
    """record_echo() keeps the last result per node, whatever its source, and tells the feed."""
    registry.add("viewer", "VIEWER", "127.0.0.1", 104)
    first = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    registry.record_echo(EchoResult("hospital", False, None, None, "no association", first))
    registry.record_echo(EchoResult("viewer", True, 1.0, 0, "0x0000 Success", first))
    registry.record_echo(EchoResult("viewer", False, None, 0x0124, "refused", first))
    hospital = registry.get("hospital").last_echo
    viewer = registry.get("viewer").last_echo
    assert hospital is not None and not hospital.ok and hospital.message == "no association"
    assert hospital.at == first.replace(tzinfo=None)
    assert viewer is not None and (viewer.ok, viewer.status, viewer.message) == (
        False, 0x0124, "refused",
    )
    assert registry.get("ct").last_echo is None
    assert NodeEchoRow.select().count() == 2
    assert Change.select().where(Change.kind == "node").count() >= 4


def test_lookup_by_name_and_by_ae_title(registry: NodeRegistry) -> None:
    """Nodes are found by name, or by AE title (config node first when several share one)."""
    registry.add("hospital-backup", "HOSP_PACS", "127.0.0.2", 104)
    assert registry.lookup("ct").name == "ct"  # type: ignore[union-attr]
    assert registry.lookup("HOSP_PACS").name == "hospital"  # type: ignore[union-attr]
    assert [n.name for n in registry.by_ae_title("HOSP_PACS")] == ["hospital", "hospital-backup"]
    assert registry.lookup("NOBODY") is None
    with pytest.raises(UnknownNodeError, match="known: hospital, ct, hospital-backup"):
        registry.get("NOBODY")
    assert registry.destination("CT1") == registry.get("ct")
    assert registry.destination("NOBODY") is None


def test_authorize_follows_allowed_services(registry: NodeRegistry) -> None:
    """A registered AE may use its services only (the union when nodes share its AE title)."""
    registry.add("viewer", "VIEWER", "127.0.0.1", 104, allowed_services="echo,get")
    registry.add("ct-backup", "CT1", "127.0.0.1", 4001, allowed_services="echo")
    assert registry.authorize("VIEWER", DimseService.GET)
    assert not registry.authorize("VIEWER", DimseService.MOVE)
    assert registry.authorize("HOSP_PACS", "find")
    assert not registry.authorize("HOSP_PACS", DimseService.STORE)
    assert registry.authorize("CT1", DimseService.STORE)
    assert registry.authorize("CT1", DimseService.ECHO)
    assert not registry.authorize("CT1", DimseService.FIND)
    assert registry.authorize("  VIEWER ", DimseService.ECHO), "AE title padding is not significant"


def test_unknown_callers_policy(registry: NodeRegistry) -> None:
    """An AE outside the registry may do all by default, nothing if unknown_callers=reject."""
    assert all(registry.authorize("STRANGER", s) for s in DimseService)
    strict = NodeRegistry(replace(registry.config, unknown_callers="reject"), registry.db, 0)
    assert not any(strict.authorize("STRANGER", s) for s in DimseService)
    assert strict.authorize("HOSP_PACS", DimseService.ECHO)


def test_authorize_uses_a_snapshot_until_it_expires(registry: NodeRegistry) -> None:
    """Permission checks reuse a snapshot (no query per C-STORE); edits show after invalidate()."""
    cached = NodeRegistry(registry.config, registry.db, cache_seconds=3600)
    assert cached.authorize("VIEWER", DimseService.STORE)
    registry.add("viewer", "VIEWER", "127.0.0.1", 104, allowed_services="echo")
    assert cached.authorize("VIEWER", DimseService.STORE), "still the snapshot"
    cached.invalidate()
    assert not cached.authorize("VIEWER", DimseService.STORE)


def test_parse_services_words() -> None:
    """Services parse from comma lists and the words all / none."""
    assert parse_services("all") == ALL_SERVICES
    assert parse_services("none") == frozenset()
    assert parse_services(" Echo , find ") == {DimseService.ECHO, DimseService.FIND}
    with pytest.raises(InvalidNodeError):
        parse_services("echo,fax")


def test_unknown_callers_config_key() -> None:
    """[node] unknown_callers accepts allow and reject; anything else names the allowed values."""
    assert parse_config({"node": {"unknown_callers": "reject"}}, None).unknown_callers == "reject"
    assert parse_config({}, None).unknown_callers == "allow"
    with pytest.raises(ConfigError, match="allowed: allow, reject"):
        parse_config({"node": {"unknown_callers": "maybe"}}, None)
