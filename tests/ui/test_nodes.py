"""Pilot tests of the nodes screen: list, echo (a real peer), add/edit/remove through the form."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Button, Checkbox, Input, Select

from tests.ui.remote_peer import peer_fixture, settle  # noqa: F401
from tui_pacs.config import Config
from tui_pacs.model import DimseService, NodeSource, RemoteNode
from tui_pacs.services.nodes import NodeRegistry
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.error import ErrorDialog
from tui_pacs.ui.dialogs.node_form import NodeFormDialog
from tui_pacs.ui.screens.nodes import NodesScreen
from tui_pacs.ui.widgets.node_table import NodeTable

pytestmark = pytest.mark.asyncio

FROM_FILE = RemoteNode("hospital-pacs", "HOSP_PACS", "127.0.0.1", 1, description="Main PACS")


def with_nodes(config: Config) -> Config:
    """``config`` with one config-file node and one database node (``orthanc``)."""
    config = replace(config, nodes=(FROM_FILE,))
    NodeRegistry(config).add("orthanc", "ORTHANC", "127.0.0.1", 4242, retrieve_method="get")
    return config


def names(table: NodeTable) -> list[str]:
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def open_nodes(console) -> NodesScreen:  # type: ignore[no-untyped-def]
    console.app.animation_level = "none"  # no waiting for dialog and scroll animations
    await console.pilot.press("4")
    await settle(console)
    screen = console.app.screen
    assert isinstance(screen, NodesScreen)
    return screen


async def fill(console, **fields: str) -> None:  # type: ignore[no-untyped-def]
    """Set text fields of the open node form."""
    form = console.app.screen
    assert isinstance(form, NodeFormDialog)
    for field, value in fields.items():
        form.query_one(f"#field-{field}", Input).value = value


def errors(form: NodeFormDialog) -> dict[str, str]:
    """The error lines on show, by field."""
    shown = {}
    for box in form.query(".form-error.-shown"):
        shown[(box.id or "").removeprefix("error-")] = str(box.render())
    return shown


async def test_nodes_listed_with_source_and_detail(demo_config, console_factory) -> None:
    """Config file and database nodes are listed; the config one is marked read-only."""
    config = with_nodes(demo_config)
    async with console_factory(config) as console:
        screen = await open_nodes(console)
        table = screen.query_one(NodeTable)
        assert names(table) == ["hospital-pacs", "orthanc"]
        assert [str(table.get_row_at(i)[6]) for i in range(2)] == ["config", "db"]
        assert str(table.get_row_at(1)[5]) == "C-GET" and str(table.get_row_at(0)[1]) == "never"
        assert "1 from the config file, read-only" in str(screen.query_one("#nodes-title").render())
        detail = str(screen.query_one("#node-detail").render())
        assert "HOSP_PACS@127.0.0.1:1" in detail and "Main PACS" in detail
        assert "never echoed" in detail


async def test_add_node_validates_every_field(demo_config, console_factory) -> None:
    """Bad AE title, host and port are shown under their fields at once; fixed, the node saves."""
    async with console_factory(with_nodes(demo_config)) as console:
        screen = await open_nodes(console)
        await console.pilot.press("a")
        form = console.app.screen
        assert isinstance(form, NodeFormDialog) and form.query_one("#field-name").has_focus
        await console.type("ct-scanner")
        await fill(console, ae_title="CT_SCANNER_NUMBER_1", host="ct 1", port="70000")
        await console.pilot.press("ctrl+s")
        await settle(console)
        shown = errors(form)
        assert set(shown) == {"ae_title", "host", "port"}
        assert "longer than 16 characters" in shown["ae_title"]
        assert "1-65535" in shown["port"] and "no spaces" in shown["host"]
        assert console.posted(NodeFormDialog.Invalid)[-1].errors.keys() == shown.keys()
        assert form.query_one("#field-ae_title", Input).has_class("-invalid")
        await fill(console, ae_title="CT1", host="ct1.example", port="abc")
        await console.pilot.press("enter")
        await settle(console)
        assert set(errors(form)) == {"port"} and "not a port number" in errors(form)["port"]
        await fill(console, port="11112")
        form.query_one("#service-find", Checkbox).value = False
        form.query_one("#field-retrieve_method", Select).value = "get"
        await console.pilot.press("ctrl+s")
        await settle(console)
        assert isinstance(console.app.screen, NodesScreen)
        saved = console.posted(NodesScreen.Saved)[-1]
        assert saved.action == "added" and saved.name == "ct-scanner"
        node = NodeRegistry(console.app.context.config).get("ct-scanner")
        assert (node.ae_title, node.host, node.port, node.retrieve_method) == (
            "CT1",
            "ct1.example",
            11112,
            "get",
        )
        assert DimseService.FIND not in node.allowed_services
        table = screen.query_one(NodeTable)
        assert "ct-scanner" in names(table) and table.current is not None
        assert table.current.name == "ct-scanner"


async def test_duplicate_name_is_shown_under_the_name(demo_config, console_factory) -> None:
    """A name the registry already holds (config file or database) is refused under the field."""
    async with console_factory(with_nodes(demo_config)) as console:
        await open_nodes(console)
        for taken in ("orthanc", "hospital-pacs"):
            await console.pilot.press("a")
            form = console.app.screen
            assert isinstance(form, NodeFormDialog)
            await fill(console, name=taken, ae_title="OTHER", host="h", port="104")
            await console.pilot.press("ctrl+s")
            await settle(console)
            assert console.app.screen is form
            assert "already" in errors(form)["name"] or "config file" in errors(form)["name"]
            assert not form.query_one("#save", Button).disabled
            await console.pilot.press("escape")
        assert not console.posted(NodesScreen.Saved)


async def test_edit_node(demo_config, console_factory) -> None:
    """m opens the form filled in; a new port and name are saved; the cursor follows the node."""
    config = with_nodes(demo_config)
    async with console_factory(config) as console:
        screen = await open_nodes(console)
        await console.pilot.press("down", "m")
        form = console.app.screen
        assert isinstance(form, NodeFormDialog) and form.title_text == "Edit node orthanc"
        assert form.query_one("#field-port", Input).value == "4242"
        assert form.query_one("#field-retrieve_method", Select).value == "get"
        await fill(console, name="orthanc-2", port="4243")
        await console.pilot.press("ctrl+s")
        await settle(console)
        assert console.posted(NodesScreen.Saved)[-1].action == "edited"
        registry = NodeRegistry(config)
        assert registry.find("orthanc") is None
        assert registry.get("orthanc-2").port == 4243
        table = screen.query_one(NodeTable)
        assert table.current is not None and table.current.name == "orthanc-2"


async def test_config_node_is_read_only(demo_config, console_factory) -> None:
    """Enter on a config file node shows it read-only; removing it is refused with the reason."""
    async with console_factory(with_nodes(demo_config)) as console:
        await open_nodes(console)
        await console.pilot.press("enter")
        form = console.app.screen
        assert isinstance(form, NodeFormDialog) and form.read_only
        assert form.query_one("#field-name", Input).disabled
        assert not form.query("#save")
        await console.pilot.press("escape")
        await console.pilot.press("d")
        await settle(console)
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog) and dialog.error.title == "Read-only node"


async def test_remove_node_asks_first(demo_config, console_factory) -> None:
    """d asks; n keeps the node, y removes it from the registry."""
    config = with_nodes(demo_config)
    async with console_factory(config) as console:
        screen = await open_nodes(console)
        await console.pilot.press("down", "d")
        assert isinstance(console.app.screen, ConfirmDialog)
        await console.pilot.press("n")
        await settle(console)
        assert NodeRegistry(config).find("orthanc") is not None
        await console.pilot.press("delete")
        assert isinstance(console.app.screen, ConfirmDialog)
        await console.pilot.press("y")
        await settle(console)
        assert console.posted(NodesScreen.Saved)[-1].action == "removed"
        assert NodeRegistry(config).find("orthanc") is None
        assert names(screen.query_one(NodeTable)) == ["hospital-pacs"]


async def test_echo_one_and_all(demo_config, console_factory, peer) -> None:
    """e echoes the selected node (a real peer answers); E echoes all; results are recorded."""
    config = with_nodes(replace(demo_config))
    NodeRegistry(config).add("peer", "REMOTE_PACS", "127.0.0.1", peer.port)
    async with console_factory(config) as console:
        screen = await open_nodes(console)
        table = screen.query_one(NodeTable)
        await console.pilot.press("down", "down")
        assert table.current is not None and table.current.name == "peer"
        await console.pilot.press("e")
        await settle(console)
        (echoed,) = console.posted(NodesScreen.Echoed)
        assert echoed.result.node == "peer" and echoed.result.ok
        assert str(table.get_row(table.current.name)[1]).startswith("✓")
        assert "echo OK in" in str(screen.query_one("#node-detail").render())
        await console.pilot.press("E")
        await settle(console)
        results = {m.result.node: m.result for m in console.posted(NodesScreen.Echoed)[1:]}
        assert set(results) == {"hospital-pacs", "orthanc", "peer"}
        assert results["peer"].ok and not results["hospital-pacs"].ok
        assert str(table.get_row("hospital-pacs")[1]).startswith("✗")
        recorded = {n.name: n.last_echo for n in NodeRegistry(config).nodes()}
        assert recorded["peer"] is not None and recorded["peer"].ok
        assert recorded["hospital-pacs"] is not None and not recorded["hospital-pacs"].ok
        assert recorded["peer"].latency_ms is not None
        assert {n.source for n in NodeRegistry(config).nodes()} == {
            NodeSource.CONFIG,
            NodeSource.DATABASE,
        }
