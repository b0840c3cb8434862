"""Talk to remote nodes: resolve a node by name or address, echo it, send files to it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from tui_pacs.config import Config, validate_ae_title
from tui_pacs.errors import ConfigError, UnknownNodeError
from tui_pacs.model import EchoResult, RemoteNode, SendProgress
from tui_pacs.net import scu
from tui_pacs.services.nodes import NodeRegistry

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d{1,5})$")


def resolve_node(config: Config, spec: str) -> RemoteNode:
    """Find a node by name or AE title in the registry, or parse ``AE@HOST:PORT``.

    Raises:
        UnknownNodeError: Neither a known node nor an address.
    """
    node = config.node(spec)
    if node is not None:
        return node
    match = _ADDRESS.match(spec)
    if match:
        port = int(match["port"])
        if not 1 <= port <= 65535:
            raise UnknownNodeError(f"{spec}: port must be 1-65535")
        try:
            title = validate_ae_title(match["ae"], spec)
        except ConfigError as exc:
            raise UnknownNodeError(str(exc)) from exc
        return RemoteNode(name=spec, ae_title=title, host=match["host"], port=port)
    registry = _registry(config)
    node = registry.lookup(spec)
    if node is not None:
        return node
    known = ", ".join(n.name for n in registry.nodes(with_echo=False)) or "none registered"
    raise UnknownNodeError(f"{spec!r} is not a known node ({known}); or give AE@HOST:PORT")


def _registry(config: Config) -> NodeRegistry:
    return NodeRegistry(config)


def _record(config: Config, results: list[EchoResult]) -> None:
    """Keep echo results of registry nodes for the console (best effort: echo still answers)."""
    try:
        registry = _registry(config)
        names = {n.name for n in registry.nodes(with_echo=False)}
        for result in results:
            if result.node in names:
                registry.record_echo(result)
    except Exception as exc:
        log.warning("cannot record echo results in the node registry: %s", exc)


def echo(config: Config, node: RemoteNode) -> EchoResult:
    """C-ECHO one node (the result of a registry node is kept as its last echo)."""
    result = scu.echo(config.ae_title, node)
    _record(config, [result])
    return result


def echo_all(config: Config) -> list[EchoResult]:
    """C-ECHO every node of the registry (config file and database)."""
    results = [scu.echo(config.ae_title, node) for node in _registry(config).nodes()]
    _record(config, results)
    return results


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of files."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def send(
    config: Config,
    node: RemoteNode,
    files: list[Path],
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[SendProgress]:
    """C-STORE files to a node, yielding progress after each instance."""
    return scu.send_files(config.ae_title, node, files, should_stop)
