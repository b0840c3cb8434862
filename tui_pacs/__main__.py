"""Allow ``python -m tui_pacs``."""

from __future__ import annotations

from tui_pacs.cli import main

main()
