"""Graphics choice: --graphics, $TUI_PACS_GRAPHICS, [console] graphics, then the probe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tui_pacs.config import parse_config
from tui_pacs.errors import ConfigError
from tui_pacs.ui import graphics
from tui_pacs.ui.graphics import ENV_GRAPHICS, GraphicsMode, resolve


@pytest.fixture(autouse=True)
def _keep_current(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no environment override and leaves the process default alone."""
    monkeypatch.delenv(ENV_GRAPHICS, raising=False)
    before = graphics.current()
    yield
    graphics.set_current(before)


def test_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line beats the environment, which beats the configuration."""
    assert resolve(None, "none").mode is GraphicsMode.NONE
    monkeypatch.setenv(ENV_GRAPHICS, "HalfCell")
    assert resolve(None, "none").mode is GraphicsMode.HALFCELL
    assert resolve("none", "halfcell").mode is GraphicsMode.NONE
    assert graphics.current().mode is GraphicsMode.NONE


def test_auto_outside_a_terminal_is_halfcell() -> None:
    """The probe does not talk to a pipe: half-blocks, and it says why."""
    chosen = resolve(None, "auto")
    assert chosen.mode is GraphicsMode.HALFCELL and "not a terminal" in chosen.reason


def test_forced_sixel_keeps_a_cell_size() -> None:
    """Forcing sixel without a terminal still gives a cell size to scale images to."""
    chosen = resolve("sixel")
    assert chosen.mode is GraphicsMode.SIXEL and chosen.cell_width > 0 and chosen.cell_height > 0


def test_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong environment value names the variable and the choices; the config key is validated."""
    monkeypatch.setenv(ENV_GRAPHICS, "ascii")
    with pytest.raises(ValueError, match="TUI_PACS_GRAPHICS.*allowed: auto, sixel, kitty"):
        resolve(None)
    assert parse_config({"console": {"graphics": "Kitty"}}, None).console_graphics == "kitty"
    with pytest.raises(ConfigError, match="console.graphics"):
        parse_config({"console": {"graphics": "vt100"}}, None)


def test_cli_option() -> None:
    """tui-pacs --graphics lists the five modes and refuses others."""
    from click.testing import CliRunner

    from tui_pacs.cli import main

    result = CliRunner().invoke(main, ["--graphics", "ascii"])
    assert result.exit_code == 2 and "auto" in result.output and "halfcell" in result.output
