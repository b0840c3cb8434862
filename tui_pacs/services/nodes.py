"""The node registry: the config file's ``[[nodes]]`` merged with the ``remote_node`` table.

Config nodes are read-only here (the file is their home); database nodes are added, edited and
removed by ``tui-pacs nodes`` and the console. Names are unique across both. The registry also
answers the two questions the listener asks on every request: may this calling AE use this
service (:meth:`NodeRegistry.authorize`), and where is this C-MOVE destination
(:meth:`NodeRegistry.destination`). Those read a snapshot refreshed every few seconds, so a
C-STORE burst does not query the database once per instance, and edits made by another process
still take effect within ``cache_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import replace

import peewee as pw

from tui_pacs.config import Config, parse_node
from tui_pacs.errors import ConfigError, PacsError, UnknownNodeError
from tui_pacs.model import (
    ALL_SERVICES,
    DimseService,
    EchoResult,
    NodeSource,
    RemoteNode,
)
from tui_pacs.store.db import thread_connection, use_database
from tui_pacs.store.models import Change, NodeEchoRow, RemoteNodeRow, utcnow

log = logging.getLogger(__name__)

#: Change feed kind of registry edits and echo results (uid: the node name).
CHANGE_KIND = "node"
RETRIEVE_METHODS = ("move", "get")
MAX_NAME = 64
MAX_HOST = 255
MAX_DESCRIPTION = 255
_MESSAGE_LIMIT = 255


class NodeRegistryError(PacsError):
    """The registry cannot make the requested change."""

    title = "Node registry"


class InvalidNodeError(NodeRegistryError):
    """A node's name, AE title, host, port, services or retrieve method is not valid."""

    title = "Invalid node"


class DuplicateNodeError(NodeRegistryError):
    """Another node already has this name."""

    title = "Duplicate node"


class ReadOnlyNodeError(NodeRegistryError):
    """A node from the config file cannot be edited or removed in the registry."""

    title = "Read-only node"


def services_text(services: Iterable[DimseService]) -> str:
    """Services in a stable order (the standard's: echo, find, move, get, store), comma-joined."""
    chosen = set(services)
    return ",".join(s.value for s in DimseService if s in chosen)


def parse_services(value: str | Iterable[str]) -> frozenset[DimseService]:
    """``"echo,find"`` or ``["echo", "find"]`` (also ``all`` / ``none``) as a set of services.

    Raises:
        InvalidNodeError: An item is not a service name.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(i).strip().lower() for i in items if str(i).strip()]
    if names == ["all"]:
        return ALL_SERVICES
    if names == ["none"]:
        return frozenset()
    services: set[DimseService] = set()
    for name in names:
        try:
            services.add(DimseService(name))
        except ValueError:
            allowed = ", ".join(s.value for s in DimseService)
            raise InvalidNodeError(
                f"{name!r} is not a service; allowed: {allowed} (or all, none)"
            ) from None
    return frozenset(services)


def validate_node(node: RemoteNode) -> RemoteNode:
    """Check a node with the config file's rules plus the table's limits.

    Returns:
        The node with its fields cleaned (AE title and host stripped).

    Raises:
        InvalidNodeError: What is wrong, naming the field and what is allowed.
    """
    name = node.name.strip() if isinstance(node.name, str) else node.name
    where = f"node {name!r}" if isinstance(name, str) and name else "node"
    raw = {
        "name": name,
        "ae_title": node.ae_title,
        "host": node.host,
        "port": node.port,
        "description": node.description,
        "allowed_services": [s.value if isinstance(s, DimseService) else s
                             for s in node.allowed_services],
        "retrieve_method": node.retrieve_method,
    }
    try:
        checked = parse_node(raw, where)
    except ConfigError as exc:
        raise InvalidNodeError(exc.message) from None
    if len(checked.name) > MAX_NAME:
        raise InvalidNodeError(f"{where}.name: longer than {MAX_NAME} characters")
    if any(ord(c) < 0x20 for c in checked.name):
        raise InvalidNodeError(f"{where}.name: control characters are not allowed")
    if len(checked.host) > MAX_HOST or any(c.isspace() for c in checked.host):
        raise InvalidNodeError(
            f"{where}.host: {checked.host!r} is not a host name or address (no spaces, "
            f"at most {MAX_HOST} characters)"
        )
    if len(checked.description) > MAX_DESCRIPTION:
        raise InvalidNodeError(f"{where}.description: longer than {MAX_DESCRIPTION} characters")
    return replace(checked, source=node.source, last_echo=node.last_echo)


#: A valid node; :func:`field_errors` checks one field at a time by putting it into this one.
_PROBE = RemoteNode(name="probe", ae_title="PROBE", host="localhost", port=104)


def field_errors(
    *,
    name: str,
    ae_title: str,
    host: str,
    port: str | int,
    description: str = "",
    allowed_services: Iterable[DimseService] = ALL_SERVICES,
    retrieve_method: str = "move",
) -> dict[str, str]:
    """Every invalid field of a node being edited in a form, with what is wrong with it.

    Each field is checked by :func:`validate_node` on its own (in an otherwise valid node), so
    a form can show all its errors at once, each beside its field.

    Returns:
        ``{field: message}``; empty when the node is valid.
    """
    errors: dict[str, str] = {}
    port_value: object = port
    if isinstance(port, str):
        try:
            port_value = int(port.strip())
        except ValueError:
            errors["port"] = f"{port.strip()!r} is not a port number (1-65535)"
    values: dict[str, object] = {
        "name": name,
        "ae_title": ae_title,
        "host": host,
        "description": description,
        "allowed_services": frozenset(allowed_services),
        "retrieve_method": retrieve_method,
    }
    if "port" not in errors:
        values["port"] = port_value
    for field, value in values.items():
        probe = replace(_PROBE, **{field: value})  # type: ignore[arg-type]
        try:
            validate_node(probe)
        except InvalidNodeError as exc:
            # Messages read "node 'NAME'.field: what is wrong": keep what is wrong.
            message, mark = exc.message, f".{field}: "
            at = message.find(mark)
            if message.startswith("node") and at >= 0:
                message = message[at + len(mark) :]
            errors[field] = message
    return errors


def _row_to_node(row: RemoteNodeRow) -> RemoteNode:
    services = frozenset(
        DimseService(s) for s in (row.allowed_services or "").split(",") if s in _SERVICE_VALUES
    )
    return RemoteNode(
        name=row.name,
        ae_title=row.ae_title,
        host=row.host,
        port=row.port,
        description=row.description,
        allowed_services=services,
        retrieve_method=row.retrieve_method,
        source=NodeSource.DATABASE,
    )


def _row_values(node: RemoteNode) -> dict[str, object]:
    """The columns of ``node``'s row (the inverse of :func:`_row_to_node`)."""
    return {
        "name": node.name,
        "ae_title": node.ae_title,
        "host": node.host,
        "port": node.port,
        "description": node.description,
        "allowed_services": services_text(node.allowed_services),
        "retrieve_method": node.retrieve_method,
    }


def _services(value: Iterable[DimseService] | str) -> frozenset[DimseService]:
    """Services given as text (``"echo,find"``, parsed) or as services."""
    return parse_services(value) if isinstance(value, str) else frozenset(value)


_SERVICE_VALUES = frozenset(s.value for s in DimseService)


class NodeRegistry:
    """Remote nodes from the config file and the database, as :class:`RemoteNode` values.

    Args:
        config: Its ``nodes`` are the read-only part; ``unknown_callers`` decides what an AE
            outside the registry may do.
        db: An open database (the node's, the CLI's); opened from the config otherwise.
        cache_seconds: How long :meth:`authorize` and :meth:`destination` reuse a snapshot.
    """

    def __init__(
        self, config: Config, db: pw.Database | None = None, cache_seconds: float = 2.0
    ) -> None:
        self.config = config
        self.db = db if db is not None else use_database(config.effective_database_url)
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._snapshot: tuple[RemoteNode, ...] | None = None
        self._snapshot_at = 0.0

    # -- reading ---------------------------------------------------------------------------

    def nodes(self, with_echo: bool = True) -> list[RemoteNode]:
        """Every node: config nodes in file order, then database nodes by name."""
        with thread_connection(self.db):
            rows = list(RemoteNodeRow.select().order_by(RemoteNodeRow.name))
            echoes = self._echoes() if with_echo else {}
        config_names = {n.name for n in self.config.nodes}
        nodes = [replace(n, source=NodeSource.CONFIG) for n in self.config.nodes]
        for row in rows:
            if row.name in config_names:
                log.warning(
                    "node %r is in the config file and the database; the config file wins",
                    row.name,
                )
                continue
            nodes.append(_row_to_node(row))
        if echoes:
            nodes = [replace(n, last_echo=echoes.get(n.name)) for n in nodes]
        return nodes

    def find(self, name: str) -> RemoteNode | None:
        """The node called ``name``, or None."""
        for node in self.nodes():
            if node.name == name:
                return node
        return None

    def get(self, name: str) -> RemoteNode:
        """The node called ``name``.

        Raises:
            UnknownNodeError: No node has this name.
        """
        node = self.find(name)
        if node is None:
            known = ", ".join(n.name for n in self.nodes(with_echo=False)) or "none registered"
            raise UnknownNodeError(f"{name!r} is not a registered node (known: {known})")
        return node

    def by_ae_title(self, ae_title: str) -> list[RemoteNode]:
        """Nodes with this AE title (several nodes may share one), config nodes first."""
        title = ae_title.strip()
        return [n for n in self.nodes() if n.ae_title == title]

    def lookup(self, spec: str) -> RemoteNode | None:
        """A node by name, else by AE title (the first one), else None."""
        node = self.find(spec)
        if node is not None:
            return node
        same = self.by_ae_title(spec)
        return same[0] if same else None

    # -- what the listener asks --------------------------------------------------------------

    def _cached(self) -> tuple[RemoteNode, ...]:
        now = time.monotonic()
        with self._lock:
            if self._snapshot is not None and now - self._snapshot_at < self.cache_seconds:
                return self._snapshot
            try:
                snapshot = tuple(self.nodes(with_echo=False))
            except (pw.PeeweeException, PacsError) as exc:
                # Keep answering with what we knew: refusing everyone because the database
                # blinked would be worse than a few seconds of stale permissions.
                log.error("node registry: cannot read the database: %s", exc)
                if self._snapshot is not None:
                    return self._snapshot
                snapshot = tuple(self.config.nodes)
            self._snapshot = snapshot
            self._snapshot_at = now
            return snapshot

    def invalidate(self) -> None:
        """Forget the snapshot (the next check reads the database)."""
        with self._lock:
            self._snapshot = None

    def authorize(self, calling_ae_title: str, service: DimseService | str) -> bool:
        """May ``calling_ae_title`` use ``service`` against us?

        A registered AE may use its ``allowed_services`` (the union, when several nodes share
        the title); an AE outside the registry follows ``[node] unknown_callers``.
        """
        title = calling_ae_title.strip()
        wanted = DimseService(service)
        same = [n for n in self._cached() if n.ae_title == title]
        if not same:
            return self.config.unknown_callers == "allow"
        return any(wanted in n.allowed_services for n in same)

    def destination(self, ae_title: str) -> RemoteNode | None:
        """Where a C-MOVE to ``ae_title`` goes: the first node with that AE title, or None."""
        title = ae_title.strip()
        for node in self._cached():
            if node.ae_title == title:
                return node
        return None

    # -- editing (database nodes only) -------------------------------------------------------

    def _config_node(self, name: str) -> RemoteNode | None:
        for node in self.config.nodes:
            if node.name == name:
                return node
        return None

    def _read_only(self, name: str) -> ReadOnlyNodeError:
        where = str(self.config.source) if self.config.source else "the config file"
        return ReadOnlyNodeError(
            f"node {name!r} is defined in {where}; edit it there (the registry only edits "
            "nodes added with `tui-pacs nodes add`)"
        )

    def add(
        self,
        name: str,
        ae_title: str,
        host: str,
        port: int,
        *,
        description: str = "",
        allowed_services: Iterable[DimseService] | str = ALL_SERVICES,
        retrieve_method: str = "move",
    ) -> RemoteNode:
        """Add a database node.

        Raises:
            InvalidNodeError: A field is not valid.
            DuplicateNodeError: A node (config or database) already has this name.
        """
        services = _services(allowed_services)
        node = validate_node(
            RemoteNode(
                name=name,
                ae_title=ae_title,
                host=host,
                port=port,
                description=description,
                allowed_services=services,
                retrieve_method=retrieve_method,
                source=NodeSource.DATABASE,
            )
        )
        if self._config_node(node.name) is not None:
            raise DuplicateNodeError(f"a node called {node.name!r} is in the config file")
        with thread_connection(self.db):
            try:
                with self.db.atomic():
                    if RemoteNodeRow.select().where(RemoteNodeRow.name == node.name).exists():
                        raise DuplicateNodeError(f"a node called {node.name!r} already exists")
                    RemoteNodeRow.create(**_row_values(node))
                    Change.create(kind=CHANGE_KIND, uid=node.name)
            except pw.IntegrityError:
                raise DuplicateNodeError(f"a node called {node.name!r} already exists") from None
        self.invalidate()
        log.info("node registry: added %s (%s@%s:%d)", node.name, node.ae_title, node.host,
                 node.port)
        return node

    def edit(
        self,
        name: str,
        *,
        new_name: str | None = None,
        ae_title: str | None = None,
        host: str | None = None,
        port: int | None = None,
        description: str | None = None,
        allowed_services: Iterable[DimseService] | str | None = None,
        retrieve_method: str | None = None,
    ) -> RemoteNode:
        """Change fields of a database node; fields left as None keep their value.

        Raises:
            UnknownNodeError: No node has this name.
            ReadOnlyNodeError: It comes from the config file.
            InvalidNodeError: A new value is not valid.
            DuplicateNodeError: ``new_name`` is taken.
        """
        if self._config_node(name) is not None:
            raise self._read_only(name)
        with thread_connection(self.db):
            row = RemoteNodeRow.get_or_none(RemoteNodeRow.name == name)
            if row is None:
                raise UnknownNodeError(f"{name!r} is not a node of the database registry")
            current = _row_to_node(row)
            changes: dict[str, object] = {}
            if new_name is not None:
                changes["name"] = new_name
            for field, value in (
                ("ae_title", ae_title),
                ("host", host),
                ("port", port),
                ("description", description),
                ("retrieve_method", retrieve_method),
            ):
                if value is not None:
                    changes[field] = value
            if allowed_services is not None:
                changes["allowed_services"] = _services(allowed_services)
            node = validate_node(replace(current, **changes))  # type: ignore[arg-type]
            renamed = node.name != name
            if renamed and self._config_node(node.name) is not None:
                raise DuplicateNodeError(f"a node called {node.name!r} is in the config file")
            try:
                with self.db.atomic():
                    if renamed and RemoteNodeRow.select().where(
                        RemoteNodeRow.name == node.name
                    ).exists():
                        raise DuplicateNodeError(f"a node called {node.name!r} already exists")
                    RemoteNodeRow.update(**_row_values(node), updated_at=utcnow()).where(
                        RemoteNodeRow.name == name
                    ).execute()
                    if renamed:
                        NodeEchoRow.delete().where(NodeEchoRow.node_name == node.name).execute()
                        NodeEchoRow.update(node_name=node.name).where(
                            NodeEchoRow.node_name == name
                        ).execute()
                        Change.create(kind=CHANGE_KIND, uid=name)
                    Change.create(kind=CHANGE_KIND, uid=node.name)
            except pw.IntegrityError:
                raise DuplicateNodeError(f"a node called {node.name!r} already exists") from None
        self.invalidate()
        log.info("node registry: edited %s", node.name)
        return node

    def remove(self, name: str) -> None:
        """Remove a database node (and its echo record).

        Raises:
            UnknownNodeError: No node has this name.
            ReadOnlyNodeError: It comes from the config file.
        """
        if self._config_node(name) is not None:
            raise self._read_only(name)
        with thread_connection(self.db), self.db.atomic():
            deleted = RemoteNodeRow.delete().where(RemoteNodeRow.name == name).execute()
            if not deleted:
                raise UnknownNodeError(f"{name!r} is not a node of the database registry")
            NodeEchoRow.delete().where(NodeEchoRow.node_name == name).execute()
            Change.create(kind=CHANGE_KIND, uid=name)
        self.invalidate()
        log.info("node registry: removed %s", name)

    # -- echo results ------------------------------------------------------------------------

    def record_echo(self, result: EchoResult) -> None:
        """Keep ``result`` as the node's last echo (for any registry node, config or database)."""
        values = {
            NodeEchoRow.at: result.at.replace(tzinfo=None) if result.at.tzinfo else result.at,
            NodeEchoRow.ok: result.ok,
            NodeEchoRow.latency_ms: result.latency_ms,
            NodeEchoRow.status: result.status,
            NodeEchoRow.message: (result.message or "")[:_MESSAGE_LIMIT],
        }
        name = result.node[:MAX_NAME]
        with thread_connection(self.db), self.db.atomic():
            (
                NodeEchoRow.insert({NodeEchoRow.node_name: name, **values})
                .on_conflict(conflict_target=[NodeEchoRow.node_name], update=values)
                .execute()
            )
            Change.create(kind=CHANGE_KIND, uid=name)

    def _echoes(self) -> dict[str, EchoResult]:
        return {
            row.node_name: EchoResult(
                node=row.node_name,
                ok=bool(row.ok),
                latency_ms=row.latency_ms,
                status=row.status,
                message=row.message,
                at=row.at,
            )
            for row in NodeEchoRow.select()
        }
