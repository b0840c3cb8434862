"""The config file the CLI tests pass with --config: a test config's archive and database."""

from __future__ import annotations

from pathlib import Path

from tui_pacs.config import Config


def write_config_file(config: Config, folder: Path, extra: str = "") -> Path:
    """Write ``folder/tui-pacs.toml`` naming ``config``'s storage path and database (+ ``extra``).

    Returns:
        The file's path.
    """
    path = folder / "tui-pacs.toml"
    path.write_text(
        f'[storage]\npath = "{config.storage_path}"\ndatabase_url = "{config.database_url}"\n'
        + extra,
        encoding="utf-8",
    )
    return path
