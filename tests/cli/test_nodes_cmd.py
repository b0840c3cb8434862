"""`tui-pacs nodes`: the registry table and JSON, add / edit / remove, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from tests.cli.config_file import write_config_file
from tui_pacs.cli import main
from tui_pacs.config import Config

CONFIG_NODE = """
[[nodes]]
name = "hospital"
ae_title = "HOSP_PACS"
host = "127.0.0.1"
port = 104
allowed_services = ["echo", "find"]
"""


def _run(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(cfg), "nodes", *args])


def test_add_edit_remove_round_trip(sqlite_config: Config, tmp_path: Path) -> None:
    """A node added on the command line is listed (table and JSON), edited, then removed."""
    cfg = write_config_file(sqlite_config, tmp_path, CONFIG_NODE)
    added = _run(cfg, "add", "viewer", "--ae-title", "VIEWER", "--host", "127.0.0.1",
                 "--port", "11113", "--allow", "echo,store", "--retrieve", "get")
    assert added.exit_code == 0, added.output
    table = _run(cfg)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split() == ["NAME", "AE", "TITLE", "ADDRESS", "SOURCE", "ALLOWED", "RETRIEVE",
                                "LAST", "ECHO"]
    assert lines[1].split() == ["hospital", "HOSP_PACS", "127.0.0.1:104", "config", "echo,find",
                                "move", "never"]
    assert lines[2].split() == ["viewer", "VIEWER", "127.0.0.1:11113", "db", "echo,store", "get",
                                "never"]
    assert _run(cfg, "edit", "viewer", "--port", "11114", "--allow", "all").exit_code == 0
    listed = json.loads(_run(cfg, "list", "--json").output)
    assert listed[1] == {
        "name": "viewer", "ae_title": "VIEWER", "host": "127.0.0.1", "port": 11114,
        "description": "", "source": "db",
        "allowed_services": ["echo", "find", "move", "get", "store", "mwl", "mpps", "commit"],
        "retrieve_method": "get", "last_echo": None,
    }
    assert _run(cfg, "remove", "viewer").exit_code == 0
    assert [n["name"] for n in json.loads(_run(cfg, "--json").output)] == ["hospital"]


def test_errors_are_one_line_and_exit_1(sqlite_config: Config, tmp_path: Path) -> None:
    """Invalid values, duplicates, config nodes and unknown names fail with Title: message."""
    cfg = write_config_file(sqlite_config, tmp_path, CONFIG_NODE)
    cases = [
        (("add", "x", "--ae-title", "A" * 17, "--host", "h", "--port", "1"), "Invalid node:"),
        (("add", "x", "--ae-title", "X", "--host", "h", "--port", "0"), "port 1-65535"),
        (("add", "hospital", "--ae-title", "X", "--host", "h", "--port", "1"), "Duplicate node:"),
        (("edit", "hospital", "--port", "5"), "Read-only node:"),
        (("remove", "hospital"), "Read-only node:"),
        (("remove", "nobody"), "Unknown node:"),
    ]
    for args, message in cases:
        result = _run(cfg, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, result.output
