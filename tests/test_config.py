"""Configuration: lookup order, the documented example, and errors that name file, key and rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tui_pacs import config as config_module
from tui_pacs.cli import main
from tui_pacs.config import (
    DEFAULT_AE_TITLE,
    DEFAULT_PORT,
    ENV_CONFIG,
    Config,
    find_config_file,
    load_config,
    user_config_dir,
    user_data_dir,
)
from tui_pacs.errors import ConfigError
from tui_pacs.model import DimseService, DuplicatePolicy

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "tui-pacs.example.toml"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _titled(path: Path, ae_title: str) -> Path:
    return _write(path, f'[node]\nae_title = "{ae_title}"\n')


# --- lookup order ---------------------------------------------------------------------------


def test_user_folders_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user config and data folders honour XDG_CONFIG_HOME and XDG_DATA_HOME."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_config_dir() == tmp_path / "cfg" / "tui-pacs"
    assert user_data_dir() == tmp_path / "data" / "tui-pacs"
    assert Config().storage_path == tmp_path / "data" / "tui-pacs" / "archive"
    assert (
        Config().effective_database_url == f"sqlite:///{tmp_path / 'data/tui-pacs/index.sqlite3'}"
    )


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config beats $TUI_PACS_CONFIG, which beats the user config folder, which beats defaults."""
    explicit = _titled(tmp_path / "explicit.toml", "EXPLICIT")
    env = _titled(tmp_path / "env.toml", "FROM_ENV")
    user = _titled(user_config_dir() / "config.toml", "FROM_USER")
    monkeypatch.setenv(ENV_CONFIG, str(env))

    cfg = load_config(explicit)
    assert (cfg.ae_title, cfg.source) == ("EXPLICIT", explicit)
    cfg = load_config(None)
    assert (cfg.ae_title, cfg.source) == ("FROM_ENV", env)
    monkeypatch.delenv(ENV_CONFIG)
    cfg = load_config(None)
    assert (cfg.ae_title, cfg.source) == ("FROM_USER", user)
    user.unlink()
    cfg = load_config(None)
    assert cfg.source is None
    assert cfg == Config()
    assert (cfg.ae_title, cfg.port) == (DEFAULT_AE_TITLE, DEFAULT_PORT)
    assert cfg.duplicate_policy is DuplicatePolicy.KEEP_FIRST


def test_missing_named_files_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file named by --config or $TUI_PACS_CONFIG that does not exist is an error."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=re.escape(str(missing)) + ".*--config"):
        find_config_file(missing)
    monkeypatch.setenv(ENV_CONFIG, str(missing))
    with pytest.raises(ConfigError, match=re.escape(str(missing)) + ".*" + ENV_CONFIG):
        load_config(None)


# --- the documented example ---------------------------------------------------------------


def test_example_parses_as_shipped() -> None:
    """The example config, as shipped, gives the built-in defaults."""
    cfg = load_config(EXAMPLE)
    defaults = Config()
    assert cfg.source == EXAMPLE
    for name in (
        "ae_title",
        "bind_address",
        "port",
        "allowed_calling_ae_titles",
        "max_pdu_size",
        "network_timeout",
        "database_url",
        "duplicate_policy",
        "log_level",
        "nodes",
    ):
        assert getattr(cfg, name) == getattr(defaults, name), name


def test_example_with_every_commented_key_enabled(tmp_path: Path) -> None:
    """Uncommenting every documented `# key = value` line and the [[nodes]] example parses."""
    lines = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^# (\[\[nodes\]\]|[a-z_]+ = .+)$", line)
        lines.append(m.group(1) if m else line)
    text = "\n".join(lines)
    assert "\n[[nodes]]\n" in text and '\npath = "' in text and '\nfile = "' in text
    cfg = load_config(_write(tmp_path / "full.toml", text))
    assert cfg.storage_path == Path("/srv/tui-pacs/archive")
    assert cfg.log_file == Path("/var/log/tui-pacs/tui-pacs.log")
    (node,) = cfg.nodes
    assert (node.name, node.ae_title, node.host, node.port) == (
        "hospital-pacs",
        "HOSP_PACS",
        "pacs.example.org",
        104,
    )
    assert node.retrieve_method == "move"
    assert node.allowed_services == {
        DimseService.ECHO,
        DimseService.FIND,
        DimseService.MOVE,
        DimseService.STORE,
    }
    assert cfg.node("hospital-pacs") == node and cfg.node("HOSP_PACS") == node


def test_example_documents_every_key() -> None:
    """Every key the parser accepts is written (maybe commented) in the example, in its section."""
    text = EXAMPLE.read_text(encoding="utf-8")
    sections = re.split(r"^\[+(\w+)\]+\s*$", text, flags=re.M)
    bodies = dict(zip(sections[1::2], sections[2::2], strict=True))
    for section, keys in config_module._SECTIONS.items():
        assert section in bodies, section
        for key in keys:
            assert re.search(rf"^#?\s*(\w+:\s+)?{key} = ", bodies[section], re.M), (
                f"{section}.{key}"
            )
    for key in config_module._NODE_KEYS:
        assert re.search(rf"^# {key} = ", text, re.M), f"no example value for nodes.{key}"
        assert re.search(rf"^# [\w, ]*\b{key}\b[\w, ]*:", text, re.M), f"nodes.{key} undocumented"


def test_every_key_parses(tmp_path: Path) -> None:
    """A file setting every key gives typed values; relative paths are relative to the file."""
    path = _write(
        tmp_path / "etc" / "tui.toml",
        """
[node]
ae_title = "  MY_PACS "
bind_address = "127.0.0.1"
port = 4242
allowed_calling_ae_titles = ["CT1", "MR_2"]
max_pdu_size = 65536
network_timeout = 30

[storage]
path = "archive"
database_url = "sqlite:///db/index.sqlite3"
duplicate_policy = "overwrite"

[logging]
file = "logs/tui.log"
level = "debug"

[[nodes]]
name = "orthanc"
ae_title = "ORTHANC"
host = "127.0.0.1"
port = 4243
description = "test peer"
allowed_services = ["echo", "get"]
retrieve_method = "get"

[[nodes]]
name = "other"
ae_title = "OTHER"
host = "localhost"
port = 104
""",
    )
    cfg = load_config(path)
    base = (tmp_path / "etc").resolve()
    assert cfg.ae_title == "MY_PACS"
    assert cfg.bind_address == "127.0.0.1"
    assert cfg.port == 4242
    assert cfg.allowed_calling_ae_titles == ("CT1", "MR_2")
    assert cfg.max_pdu_size == 65536
    assert cfg.network_timeout == 30
    assert cfg.storage_path == base / "archive"
    assert cfg.database_url == f"sqlite:///{base / 'db' / 'index.sqlite3'}"
    assert cfg.effective_database_url == cfg.database_url
    assert cfg.duplicate_policy is DuplicatePolicy.OVERWRITE
    assert cfg.log_file == base / "logs" / "tui.log"
    assert cfg.log_level == "DEBUG"
    assert [n.name for n in cfg.nodes] == ["orthanc", "other"]
    orthanc = cfg.nodes[0]
    assert orthanc.allowed_services == {DimseService.ECHO, DimseService.GET}
    assert orthanc.retrieve_method == "get" and orthanc.description == "test peer"
    assert cfg.nodes[1].allowed_services == frozenset(DimseService)
    assert cfg.nodes[1].retrieve_method == "move"


def test_postgresql_url_is_kept(tmp_path: Path) -> None:
    """A PostgreSQL URL is taken as written (postgres:// too)."""
    for url in ("postgresql://u:p@127.0.0.1:5432/db", "postgres://u@host/db"):
        cfg = load_config(_write(tmp_path / "pg.toml", f'[storage]\ndatabase_url = "{url}"\n'))
        assert cfg.database_url == url


# --- errors -------------------------------------------------------------------------------

NODE = 'name = "x"\nae_title = "X"\nhost = "h"\n'

#: (file body, the key the message must name, what the message must say is allowed)
BAD = [
    ("[node\nport = 1", "line 1", "TOML"),
    ("[nodez]\nport = 1", "[nodez]", "allowed: [node], [storage], [logging]"),
    ("[node]\nportt = 1", "node.portt", "ae_title, bind_address, port"),
    ("[storage]\nfolder = 'x'", "storage.folder", "path, database_url, duplicate_policy"),
    ("node = 5", "[node]", "table"),
    ("[node]\nae_title = 5", "node.ae_title", "1-16 printable ASCII"),
    ("[node]\nae_title = 'ABCDEFGHIJKLMNOPQ'", "node.ae_title", "16 characters"),
    ("[node]\nae_title = 'A\\\\B'", "node.ae_title", "no backslash"),
    ("[node]\nae_title = ''", "node.ae_title", "cannot be empty"),
    ("[node]\nae_title = '    '", "node.ae_title", "cannot be empty"),
    ("[node]\nae_title = 'ÄRZTE'", "node.ae_title", "printable ASCII"),
    ("[node]\nport = 0", "node.port", "1-65535"),
    ("[node]\nport = 70000", "node.port", "1-65535"),
    ("[node]\nport = '104'", "node.port", "1-65535"),
    ("[node]\nport = true", "node.port", "1-65535"),
    ("[node]\nport = 1.5", "node.port", "1-65535"),
    ("[node]\nbind_address = 5", "node.bind_address", "0.0.0.0 or 127.0.0.1"),
    ("[node]\nallowed_calling_ae_titles = 'CT1'", "node.allowed_calling_ae_titles", "list of AE"),
    (
        "[node]\nallowed_calling_ae_titles = ['CT1', 'A\\\\B']",
        "node.allowed_calling_ae_titles",
        "no backslash",
    ),
    ("[node]\nmax_pdu_size = 100", "node.max_pdu_size", "at least 4096"),
    ("[node]\nmax_pdu_size = -1", "node.max_pdu_size", "0 (no limit)"),
    ("[node]\nnetwork_timeout = 0", "node.network_timeout", "positive number of seconds"),
    ("[node]\nnetwork_timeout = '9'", "node.network_timeout", "positive number of seconds"),
    ("[node]\nfast_storage = 1", "node.fast_storage", "true or false"),
    ("[storage]\npath = 5", "storage.path", "a path"),
    ("[storage]\npath = ''", "storage.path", "a path"),
    (
        "[storage]\ndatabase_url = 'mysql://u@h/db'",
        "storage.database_url",
        "sqlite:///PATH or postgresql://",
    ),
    ("[storage]\ndatabase_url = 'sqlite://x.db'", "storage.database_url", "sqlite:///PATH"),
    ("[storage]\ndatabase_url = 5", "storage.database_url", "URL string"),
    (
        "[storage]\nduplicate_policy = 'newest'",
        "storage.duplicate_policy",
        "keep-first, overwrite, reject",
    ),
    (
        "[storage]\nduplicate_policy = 1",
        "storage.duplicate_policy",
        "keep-first, overwrite, reject",
    ),
    ("[logging]\nlevel = 'VERBOSE'", "logging.level", "DEBUG, INFO, WARNING, ERROR"),
    ("[logging]\nfile = 3", "logging.file", "a path"),
    ("[nodes]\nname = 'x'", "nodes", "[[nodes]]"),
    ("nodes = [1]", "nodes[0]", "table"),
    ("[[nodes]]\n" + NODE, "nodes[0].port", "name, ae_title, host, port"),
    (
        "[[nodes]]\nname = 'x'\nhost = 'h'\nport = 104",
        "nodes[0].ae_title",
        "name, ae_title, host, port",
    ),
    ("[[nodes]]\n" + NODE + "port = 0", "nodes[0].port", "1-65535"),
    ("[[nodes]]\n" + NODE + "port = '104'", "nodes[0].port", "1-65535"),
    (
        "[[nodes]]\nname = 'x'\nae_title = 'ABCDEFGHIJKLMNOPQ'\nhost = 'h'\nport = 104",
        "nodes[0].ae_title",
        "16 characters",
    ),
    ("[[nodes]]\nname = ''\nae_title = 'X'\nhost = 'h'\nport = 104", "nodes[0].name", "non-empty"),
    ("[[nodes]]\nname = 'x'\nae_title = 'X'\nhost = ''\nport = 104", "nodes[0].host", "host name"),
    (
        "[[nodes]]\n" + NODE + "port = 104\nallowed_services = ['echo', 'print']",
        "nodes[0].allowed_services",
        "echo, find, move, get, store",
    ),
    (
        "[[nodes]]\n" + NODE + "port = 104\nallowed_services = 'echo'",
        "nodes[0].allowed_services",
        "a list",
    ),
    (
        "[[nodes]]\n" + NODE + "port = 104\nretrieve_method = 'pull'",
        "nodes[0].retrieve_method",
        "move, get",
    ),
    (
        "[[nodes]]\n" + NODE + "port = 104\ncolour = 'red'",
        "nodes[0]",
        "name, ae_title, host, port, description, allowed_services, retrieve_method",
    ),
    ("[[nodes]]\n" + NODE + "port = 104\ndescription = 5", "nodes[0].description", "a string"),
    (
        "[[nodes]]\n" + NODE + "port = 104\n[[nodes]]\n" + NODE + "port = 105",
        "nodes",
        "duplicate node name",
    ),
    (
        "[[nodes]]\n" + NODE + "port = 104\n[[nodes]]\nname = 'y'\nae_title = 'Y'\nhost = 'h'\n"
        "port = 1e3",
        "nodes[1].port",
        "1-65535",
    ),
]


@pytest.mark.parametrize(
    ("body", "key", "allowed"), BAD, ids=[b[1] + ":" + b[0][-12:] for b in BAD]
)
def test_bad_config_names_file_key_and_rule(
    tmp_path: Path, body: str, key: str, allowed: str
) -> None:
    """Each bad file is refused with a message naming the file, the key and what is allowed."""
    path = _write(tmp_path / "bad.toml", body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert key in message, message
    assert allowed in message, message
    assert info.value.title == "Configuration error"


def test_unreadable_bytes_are_reported(tmp_path: Path) -> None:
    """A file that is not UTF-8 is reported with its path, not as a traceback."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[node]\nae_title = "\xc4RZTE"\n')
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ": cannot be read"):
        load_config(path)


# --- tui-pacs config ----------------------------------------------------------------------


def test_config_command_prints_effective_config_and_paths(tmp_path: Path) -> None:
    """`tui-pacs --config F config` prints the file used, the paths and every effective value."""
    path = _write(
        tmp_path / "tui.toml",
        """
[node]
ae_title = "CLI_PACS"
port = 4104
[storage]
path = "/srv/somewhere"
duplicate_policy = "reject"
[[nodes]]
name = "peer"
ae_title = "PEER"
host = "127.0.0.1"
port = 4105
retrieve_method = "get"
""",
    )
    result = CliRunner().invoke(main, ["--config", str(path), "config"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(rf"^config file\s+{re.escape(str(path))}$", out, re.M), out
    assert str(user_config_dir() / "config.toml") in out
    assert str(user_data_dir()) in out
    assert re.search(r"^ae_title\s+CLI_PACS$", out, re.M)
    assert re.search(r"^port\s+4104$", out, re.M)
    assert re.search(r"^storage_path\s+/srv/somewhere$", out, re.M)
    assert re.search(r"^duplicate_policy\s+reject$", out, re.M)
    assert re.search(r"^allowed_calling_ae_titles\s+\(any\)$", out, re.M)
    default_db = f"sqlite:///{user_data_dir() / 'index.sqlite3'}"
    assert re.search(rf"^effective_database_url\s+{re.escape(default_db)}$", out, re.M)
    assert re.search(rf"^log_file\s+{re.escape(str(user_data_dir() / 'tui-pacs.log'))}$", out, re.M)
    assert "peer: PEER@127.0.0.1:4105 (retrieve by get" in out


def test_config_command_follows_env_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --config the command reports $TUI_PACS_CONFIG, then the built-in defaults."""
    env = _titled(tmp_path / "env.toml", "ENV_PACS")
    monkeypatch.setenv(ENV_CONFIG, str(env))
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    assert re.search(rf"^config file\s+{re.escape(str(env))}$", result.stdout, re.M)
    assert re.search(r"^ae_title\s+ENV_PACS$", result.stdout, re.M)
    monkeypatch.delenv(ENV_CONFIG)
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    assert "(none: built-in defaults)" in result.stdout
    assert re.search(rf"^ae_title\s+{DEFAULT_AE_TITLE}$", result.stdout, re.M)
    assert "remote nodes of the config file: none" in result.stdout
    assert "`tui-pacs nodes` lists the whole registry" in result.stdout  # not the database


def test_config_command_reports_a_bad_file(tmp_path: Path) -> None:
    """A bad config file stops the command with exit 2 and the message on stderr."""
    path = _write(tmp_path / "bad.toml", "[node]\nport = 0\n")
    result = CliRunner().invoke(main, ["--config", str(path), "config"])
    assert result.exit_code == 2
    assert f"Configuration error: {path}: node.port" in result.stderr
    assert result.stdout == ""
