"""Typed configuration loaded from TOML, with a documented lookup order.

Lookup order: ``--config PATH``, then ``$TUI_PACS_CONFIG``, then ``config.toml`` in the user config
folder, then the built-in defaults. Every key is validated; an error names the file, the key and
what is allowed.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from tui_pacs.errors import ConfigError
from tui_pacs.model import ALL_SERVICES, DimseService, DuplicatePolicy, RemoteNode

APP_NAME = "tui-pacs"
ENV_CONFIG = "TUI_PACS_CONFIG"
DEFAULT_AE_TITLE = "TUI_PACS"
DEFAULT_PORT = 11112
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Values of ``[query] combined_datetime``.
COMBINED_DATETIME_POLICIES = ("negotiated", "always", "never")
#: Values of ``[node] unknown_callers``.
UNKNOWN_CALLER_POLICIES = ("allow", "reject")


def user_config_dir() -> Path:
    """Folder holding the user's ``config.toml`` (honours ``XDG_CONFIG_HOME``)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_data_dir() -> Path:
    """Folder holding the default archive and SQLite index (honours ``XDG_DATA_HOME``)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def validate_ae_title(value: object, where: str = "AE title") -> str:
    """Check an AE title against PS3.5 (AE VR): 1-16 characters, no backslash or control codes.

    Returns:
        The title without leading and trailing spaces (they are not significant).
    """
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: expected a string of 1-16 printable ASCII characters (no backslash), "
            f"got {value!r}"
        )
    title = value.strip()
    if not title:
        raise ConfigError(f"{where}: an AE title cannot be empty or only spaces")
    if len(title) > 16:
        raise ConfigError(f"{where}: {title!r} is longer than 16 characters")
    if "\\" in title or any(ord(c) < 0x20 or ord(c) > 0x7E for c in title):
        raise ConfigError(
            f"{where}: {title!r} may hold only printable ASCII characters and no backslash"
        )
    return title


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration of a node, a console or a CLI command."""

    #: Our own AE title, used when we accept associations and when we call out.
    ae_title: str = DEFAULT_AE_TITLE
    #: Address the DICOM listener binds to ("0.0.0.0" for every interface).
    bind_address: str = "0.0.0.0"
    #: TCP port of the DICOM listener.
    port: int = DEFAULT_PORT
    #: Calling AE titles allowed to associate; empty means everyone.
    allowed_calling_ae_titles: tuple[str, ...] = ()
    #: Largest P-DATA PDU we accept (0 = no limit). Big PDUs mean fewer, cheaper reads.
    max_pdu_size: int = 0
    #: Seconds an idle association may stay open.
    network_timeout: int = 60
    #: Processes accepting associations on the port (SO_REUSEPORT), each with its own index
    #: writer: more than one lets C-STOREs from several associations use several CPU cores.
    listener_processes: int = 1
    #: Serve associations that only store, echo and query (C-FIND, worklist) with the node's
    #: own blocking receiver (net/store_acceptor.py); false: pynetdicom serves every association.
    fast_storage: bool = True
    #: What a calling AE title that is not in the node registry may do: "allow" (every service)
    #: or "reject" (Refused: Not Authorized, 0x0124, to every DIMSE request).
    unknown_callers: str = "allow"
    #: Folder holding the archived files (one per SOP instance).
    storage_path: Path = field(default_factory=lambda: user_data_dir() / "archive")
    #: Peewee database URL: sqlite:///PATH or postgresql://user:pass@host:port/db.
    database_url: str = ""
    #: What to do when an already archived SOP Instance UID arrives again.
    duplicate_policy: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST
    #: Log file of the node (also mirrored to stderr by ``serve``).
    log_file: Path = field(default_factory=lambda: user_data_dir() / "tui-pacs.log")
    log_level: str = "INFO"
    #: C-FIND SCP: most matches returned for one request (0 = no limit); past it the SCP stops
    #: with status Cancel (0xFE00) and logs a warning, as Orthanc does.
    query_max_results: int = 0
    #: C-FIND SCP: match person names case-sensitively (default: without regard to case).
    query_case_sensitive_names: bool = False
    #: C-FIND SCP: combined date-time range matching (PS3.4 C.2.2.2.5.1) of a date range with its
    #: time range: "negotiated" (when the SCU asks for it), "always" or "never".
    query_combined_datetime: str = "negotiated"
    #: C-FIND SCP: accept relational queries when the SCU negotiates them (PS3.4 C.4.1.2.2.1).
    query_relational: bool = True
    #: C-FIND SCP: refuse (0xA900) an identifier with keys below its Query/Retrieve Level; when
    #: false such keys are ignored, returned empty, and matches carry status 0xFF01.
    query_strict_hierarchy: bool = True
    #: Tech desk: seconds without a new image after which an order that has images but no MPPS
    #: is marked completed (0: only an MPPS completes an order).
    worklist_complete_after: int = 60
    #: Storage commitment: seconds before a report that could not be delivered is tried again
    #: (the wait then doubles after each undelivered attempt).
    commitment_retry_delay: float = 30
    #: Storage commitment: longest wait between two attempts, in seconds.
    commitment_max_retry_delay: float = 3600
    #: Storage commitment: attempts before a report is given up on (the request is then failed).
    commitment_max_attempts: int = 12
    #: Storage commitment: days delivered and failed requests are kept (0: forever).
    commitment_keep_days: int = 30
    #: Console: how images are drawn: "auto" (probe the terminal), "sixel", "kitty",
    #: "halfcell" or "none"; --graphics and $TUI_PACS_GRAPHICS override it.
    console_graphics: str = "auto"
    #: Remote nodes from the config file (the database may hold more).
    nodes: tuple[RemoteNode, ...] = ()
    #: The file these settings came from, or None for the built-in defaults.
    source: Path | None = None

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file in the user data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{user_data_dir() / 'index.sqlite3'}"

    def node(self, name: str) -> RemoteNode | None:
        """Find a configured remote node by name or AE title (names first)."""
        for node in self.nodes:
            if node.name == name:
                return node
        for node in self.nodes:
            if node.ae_title == name:
                return node
        return None


_SECTIONS: dict[str, dict[str, str]] = {
    "node": {
        "ae_title": "ae_title",
        "bind_address": "bind_address",
        "port": "port",
        "allowed_calling_ae_titles": "allowed_calling_ae_titles",
        "max_pdu_size": "max_pdu_size",
        "network_timeout": "network_timeout",
        "listener_processes": "listener_processes",
        "fast_storage": "fast_storage",
        "unknown_callers": "unknown_callers",
    },
    "storage": {
        "path": "storage_path",
        "database_url": "database_url",
        "duplicate_policy": "duplicate_policy",
    },
    "logging": {"file": "log_file", "level": "log_level"},
    "query": {
        "max_results": "query_max_results",
        "case_sensitive_names": "query_case_sensitive_names",
        "combined_datetime": "query_combined_datetime",
        "relational": "query_relational",
        "strict_hierarchy": "query_strict_hierarchy",
    },
    "worklist": {"complete_after": "worklist_complete_after"},
    "commitment": {
        "retry_delay": "commitment_retry_delay",
        "max_retry_delay": "commitment_max_retry_delay",
        "max_attempts": "commitment_max_attempts",
        "keep_days": "commitment_keep_days",
    },
    "console": {"graphics": "console_graphics"},
}
_NODE_KEYS = (
    "name",
    "ae_title",
    "host",
    "port",
    "description",
    "allowed_services",
    "retrieve_method",
)


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the config file to use, following the documented lookup order."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found (given with --config)")
        return path
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found (named by ${ENV_CONFIG})")
        return path
    path = user_config_dir() / "config.toml"
    return path if path.is_file() else None


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the configuration.

    Args:
        explicit: A path given on the command line (``--config``), if any.

    Raises:
        ConfigError: The file cannot be read or parsed, or a key is unknown or invalid.
    """
    path = find_config_file(explicit)
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    return parse_config(data, path)


def _did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean X?)`` for the choice closest to ``word`` (``[]`` aside), if one is close."""
    names = {choice.strip("[]"): choice for choice in choices}
    close = difflib.get_close_matches(word, list(names), n=1)
    return f" (did you mean {names[close[0]]}?)" if close else ""


def _key_hint(section: str, key: str) -> str:
    """Where an unknown ``key`` of ``[section]`` belongs, or the allowed key it resembles."""
    homes = [other for other, keys in _SECTIONS.items() if key in keys and other != section]
    if homes:
        return f" (it belongs in [{homes[0]}])"
    return _did_you_mean(key, list(_SECTIONS[section]))


def parse_config(data: dict[str, Any], path: Path | None) -> Config:
    """Validate a parsed TOML document into a :class:`Config`."""
    where = str(path) if path else "<config>"
    values: dict[str, Any] = {}
    for section, body in data.items():
        if section == "nodes":
            continue
        if section not in _SECTIONS:
            allowed = ", ".join([*(f"[{s}]" for s in _SECTIONS), "[[nodes]]"])
            hint = _did_you_mean(section, [*(f"[{s}]" for s in _SECTIONS), "[[nodes]]"])
            raise ConfigError(f"{where}: unknown section [{section}]{hint}; allowed: {allowed}")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        keys = _SECTIONS[section]
        for key, value in body.items():
            if key not in keys:
                raise ConfigError(
                    f"{where}: unknown key {section}.{key}{_key_hint(section, key)}; "
                    f"allowed: {', '.join(keys)}"
                )
            attr = keys[key]
            values[attr] = _convert(attr, value, f"{where}: {section}.{key}", path)
    nodes_raw = data.get("nodes", [])
    if not isinstance(nodes_raw, list):
        raise ConfigError(f"{where}: nodes must be written as [[nodes]] tables")
    nodes: list[RemoteNode] = []
    for index, raw in enumerate(nodes_raw):
        nodes.append(parse_node(raw, f"{where}: nodes[{index}]"))
    names = [n.name for n in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: nodes: duplicate node name(s): {', '.join(dupes)}")
    values["nodes"] = tuple(nodes)
    values["source"] = path
    return replace(Config(), **values)


def parse_node(raw: object, where: str) -> RemoteNode:
    """Validate one ``[[nodes]]`` table (also used by the node registry editor)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(raw) - set(_NODE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {sorted(unknown)[0]}; allowed: {', '.join(_NODE_KEYS)}"
        )
    for required in ("name", "ae_title", "host", "port"):
        if required not in raw:
            raise ConfigError(f"{where}.{required}: missing (name, ae_title, host, port needed)")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: expected a non-empty string")
    host = raw["host"]
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(f"{where}.host: expected a host name or address")
    services_raw = raw.get("allowed_services", sorted(ALL_SERVICES))
    if not isinstance(services_raw, list):
        raise ConfigError(f"{where}.allowed_services: expected a list")
    services: set[DimseService] = set()
    for item in services_raw:
        try:
            services.add(DimseService(item))
        except ValueError:
            allowed = ", ".join(s.value for s in DimseService)
            raise ConfigError(
                f"{where}.allowed_services: {item!r} is not a service; allowed: {allowed}"
            ) from None
    method = raw.get("retrieve_method", "move")
    if method not in ("move", "get"):
        raise ConfigError(f"{where}.retrieve_method: {method!r}; allowed: move, get")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}.description: expected a string")
    return RemoteNode(
        name=name.strip(),
        ae_title=validate_ae_title(raw["ae_title"], f"{where}.ae_title"),
        host=host.strip(),
        port=_port(raw["port"], f"{where}.port"),
        description=description,
        allowed_services=frozenset(services),
        retrieve_method=method,
    )


def _port(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"{where}: expected an integer port 1-65535, got {value!r}")
    return value


def _convert(attr: str, value: Any, where: str, path: Path | None) -> Any:
    base = path.parent if path else Path.cwd()
    match attr:
        case "ae_title":
            return validate_ae_title(value, where)
        case "bind_address":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: expected an address such as 0.0.0.0 or 127.0.0.1")
            return value
        case "port":
            return _port(value, where)
        case "allowed_calling_ae_titles":
            if not isinstance(value, list):
                raise ConfigError(f"{where}: expected a list of AE titles, e.g. [\"CT1\"]")
            return tuple(validate_ae_title(v, where) for v in value)
        case "max_pdu_size":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{where}: expected 0 (no limit) or a positive byte count")
            if 0 < value < 4096:
                raise ConfigError(f"{where}: {value} is too small; use 0 or at least 4096")
            return value
        case "unknown_callers":
            if value not in UNKNOWN_CALLER_POLICIES:
                allowed = ", ".join(UNKNOWN_CALLER_POLICIES)
                raise ConfigError(f"{where}: {value!r}; allowed: {allowed}")
            return value
        case "network_timeout":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{where}: expected a positive number of seconds")
            return value
        case "listener_processes":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
                raise ConfigError(f"{where}: expected a number of processes from 1 to 32")
            return value
        case "storage_path" | "log_file":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: expected a path")
            p = Path(value).expanduser()
            return p if p.is_absolute() else (base / p).resolve()
        case "database_url":
            if not isinstance(value, str):
                raise ConfigError(f"{where}: expected a URL string")
            if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
                raise ConfigError(
                    f"{where}: {value!r}; allowed: sqlite:///PATH or postgresql://USER@HOST/DB"
                )
            if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
                rel = value.removeprefix("sqlite:///")
                if rel and rel != ":memory:":
                    return f"sqlite:///{(base / rel).resolve()}"
            return value
        case "duplicate_policy":
            try:
                return DuplicatePolicy(value)
            except ValueError:
                allowed = ", ".join(p.value for p in DuplicatePolicy)
                raise ConfigError(f"{where}: {value!r}; allowed: {allowed}") from None
        case "console_graphics":
            modes = ("auto", "sixel", "kitty", "halfcell", "none")
            if not isinstance(value, str) or value.strip().lower() not in modes:
                raise ConfigError(f"{where}: expected one of {', '.join(modes)}")
            return value.strip().lower()
        case "worklist_complete_after":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{where}: expected 0 (never) or a number of seconds")
            return value
        case "commitment_retry_delay" | "commitment_max_retry_delay":
            top = 86400 if attr == "commitment_retry_delay" else 7 * 86400
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not 0 < value <= top:
                raise ConfigError(f"{where}: expected a number of seconds above 0, at most {top}")
            return value
        case "commitment_max_attempts":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise ConfigError(f"{where}: expected a number of attempts from 1 to 1000")
            return value
        case "commitment_keep_days":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36500:
                raise ConfigError(f"{where}: expected 0 (keep forever) or 1-36500 days")
            return value
        case "query_max_results":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{where}: expected 0 (no limit) or a positive number of matches")
            return value
        case (
            "query_case_sensitive_names"
            | "query_relational"
            | "query_strict_hierarchy"
            | "fast_storage"
        ):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false, got {value!r}")
            return value
        case "query_combined_datetime":
            if value not in COMBINED_DATETIME_POLICIES:
                allowed = ", ".join(COMBINED_DATETIME_POLICIES)
                raise ConfigError(f"{where}: {value!r}; allowed: {allowed}")
            return value
        case "log_level":
            if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
                raise ConfigError(f"{where}: {value!r}; allowed: {', '.join(LOG_LEVELS)}")
            return value.upper()
    raise AssertionError(attr)  # pragma: no cover


def describe(config: Config) -> list[tuple[str, str]]:
    """The effective configuration as (key, value) pairs for ``tui-pacs config``."""
    rows: list[tuple[str, str]] = []
    for f in fields(config):
        if f.name in ("nodes", "source"):
            continue
        value = getattr(config, f.name)
        if isinstance(value, tuple):
            value = ", ".join(value) or "(any)"
        rows.append((f.name, str(value)))
    rows.append(("effective_database_url", config.effective_database_url))
    return rows
