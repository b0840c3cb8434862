"""Layering: the import-linter contracts hold, and the headless packages never load Textual."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import IN_CI

ROOT = Path(__file__).resolve().parent.parent
HEADLESS = [
    "tui_pacs.services.node",
    "tui_pacs.services.importer",
    "tui_pacs.services.ingest",
    "tui_pacs.store.index",
    "tui_pacs.net.scp",
    "tui_pacs.cli",
    # What the console calls: the services must stay usable without it.
    "tui_pacs.services.browse",
    "tui_pacs.services.status",
    "tui_pacs.services.demo",
    "tui_pacs.store.browse",
]


#: Ends a script run by :func:`_assert_no_textual`: prints the Textual modules loaded, if any.
_REPORT_TEXTUAL = (
    "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
    "print(loaded)\n"
    "sys.exit(1 if loaded else 0)\n"
)


def _assert_no_textual(code: str) -> None:
    """Run ``code`` (which imports ``sys``) in a fresh interpreter: no Textual module loads."""
    proc = subprocess.run(
        [sys.executable, "-c", code + _REPORT_TEXTUAL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"failed or loaded textual: {proc.stdout}{proc.stderr}"
    assert proc.stdout.strip() == "[]"


def _lint_imports() -> str | None:
    beside = Path(sys.executable).parent / "lint-imports"
    return str(beside) if beside.exists() else shutil.which("lint-imports")


def test_import_contracts_hold() -> None:
    """`lint-imports` (contracts in pyproject.toml) passes from the repository root."""
    tool = _lint_imports()
    if tool is None:
        if IN_CI:
            pytest.fail("lint-imports is missing: install the test extra (import-linter)")
        pytest.skip("lint-imports not installed (pip install -e '.[test]')")
    proc = subprocess.run([tool], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_headless_modules_never_load_textual() -> None:
    """Importing the node, importer, index, listener and CLI in a fresh process loads no Textual."""
    _assert_no_textual(
        "import importlib, sys\n"
        f"for name in {HEADLESS!r}:\n"
        "    importlib.import_module(name)\n"
    )


def test_every_headless_module_imports_without_textual() -> None:
    """Every module below services, store, net, imaging (and the base modules) stays headless."""
    _assert_no_textual(
        "import importlib, pkgutil, sys\n"
        "import tui_pacs\n"
        "names = ['tui_pacs.model', 'tui_pacs.config', 'tui_pacs.errors']\n"
        "for pkg in ('services', 'store', 'net', 'imaging'):\n"
        "    try:\n"
        "        mod = importlib.import_module('tui_pacs.' + pkg)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    names.append(mod.__name__)\n"
        "    names += [m.name for m in pkgutil.walk_packages(mod.__path__, mod.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
    )


def test_cli_help_of_headless_commands_loads_no_textual() -> None:
    """Running `tui-pacs import --help` and `config` goes through the CLI without Textual."""
    _assert_no_textual(
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tui_pacs.cli import main\n"
        "for args in (['import', '--help'], ['serve', '--help'], ['config']):\n"
        "    r = CliRunner().invoke(main, args)\n"
        "    assert r.exit_code == 0, r.output\n"
    )
