"""``tui-pacs view``: one image through the viewer's pipeline, to the terminal or to a PNG."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from tui_pacs.cli import _config, handle_errors, main
from tui_pacs.errors import PacsError

#: term-image render styles by --graphics value (auto: term-image probes kitty, iTerm2, blocks).
GRAPHICS = ("auto", "kitty", "iterm2", "block")
#: Cell size (pixels) assumed when the terminal does not report it.
_FALLBACK_CELL = (10, 20)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts if p.strip()]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise click.BadParameter(
            f"{text!r} is not WIDTHxHEIGHT or WIDTH in pixels", param_hint="--size"
        )
    return values[0], values[1]


@main.command("view")
@click.argument("image")
@click.option(
    "--frame",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Frame number of a multi-frame image (1 = first).",
)
@click.option(
    "--window",
    "window_text",
    metavar="C,W",
    help="Free window: center,width in modality units (HU for CT), e.g. 40,80.",
)
@click.option(
    "--preset",
    metavar="NAME",
    help="Window preset: brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone "
    "(CT), file1.. (the image's own), voi-lut1.., auto.",
)
@click.option(
    "--size",
    "size_text",
    metavar="WxH",
    help="Fit into this many pixels (keeping proportions); default: the terminal, or "
    "native resolution with --output.",
)
@click.option(
    "--graphics",
    type=click.Choice(GRAPHICS),
    default="auto",
    show_default=True,
    help="Terminal image protocol (term-image); auto probes the terminal.",
)
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the rendered 8-bit image to this PNG instead of the terminal.",
)
@click.option("--invert", is_flag=True, help="Invert the gray scale once more.")
@click.option("--no-overlays", is_flag=True, help="Do not draw overlay planes (60xx).")
@click.pass_context
@handle_errors
def view_cmd(
    ctx: click.Context,
    image: str,
    frame: int,
    window_text: str | None,
    preset: str | None,
    size_text: str | None,
    graphics: str,
    output: Path | None,
    invert: bool,
    no_overlays: bool,
) -> None:
    """Show IMAGE (a DICOM file or an archived SOP Instance UID) as the viewer renders it.

    Same pipeline and presets as the console: Modality LUT, window or VOI LUT, MONOCHROME1,
    palette and YBR colour, overlays, pixel aspect ratio. With --output, writes the 8-bit image
    (native resolution unless --size) as PNG: no terminal needed.
    """
    from tui_pacs.services.render import Renderer

    if window_text and preset:
        raise click.UsageError("give --window or --preset, not both")
    size = _parse_size(size_text)
    config = None if Path(image).is_file() else _config(ctx)
    renderer = Renderer(config, cache_bytes=64 * 2**20, max_datasets=2)
    frames = renderer.frame_count(image)
    if frame > frames:
        raise PacsError(f"frame {frame} does not exist: the image has {frames}", "No such frame")
    choice = window_text or preset
    if output is not None:
        result = renderer.render(
            image, frame - 1, window=choice, size=size, invert=invert, overlays=not no_overlays
        )
        try:
            result.image.save(output, format="PNG")
        except (OSError, ValueError) as exc:
            raise PacsError(f"cannot write {output}: {exc}", "Cannot write image") from None
        notes = [result.annotations.window, result.annotations.lossy]
        click.echo(
            f"{output}: {result.image.width}x{result.image.height} "
            + " ".join(n for n in notes if n),
            err=True,
        )
        return
    _draw(renderer, image, frame - 1, choice, size, graphics, invert, not no_overlays)


def _draw(
    renderer: object,
    image: str,
    frame: int,
    choice: str | None,
    size: tuple[int, int] | None,
    graphics: str,
    invert: bool,
    overlays: bool,
) -> None:
    """Print through term-image, sized to the terminal in cells."""
    import shutil
    import warnings

    # term-image warns on import when stdout is not a terminal (a pipe, a test): expected here.
    warnings.filterwarnings(
        "ignore",
        message="It seems this process is not running within a terminal",
        category=UserWarning,
    )
    from term_image.image import BlockImage, ITerm2Image, KittyImage, auto_image_class
    from term_image.utils import get_cell_size

    styles = {"kitty": KittyImage, "iterm2": ITerm2Image, "block": BlockImage}
    cls = auto_image_class() if graphics == "auto" else styles[graphics]
    columns, lines = shutil.get_terminal_size((80, 24))
    cell = get_cell_size() if sys.stdout.isatty() else None
    cell_w, cell_h = cell or _FALLBACK_CELL
    box = size or (columns * cell_w, max(1, lines - 2) * cell_h)
    result = renderer.render(  # type: ignore[attr-defined]
        image, frame, window=choice, size=box, invert=invert, overlays=overlays
    )
    picture = result.image.convert("RGB")
    shown = cls(picture)
    width = max(1, min(columns, math.ceil(picture.width / cell_w)))
    shown.set_size(width=width)
    click.echo(str(shown))
    corners = result.annotations.corners()
    info = [
        *corners["top_left"],
        *corners["top_right"],
        *corners["bottom_left"],
        *corners["bottom_right"],
    ]
    click.echo(" | ".join(info), err=True)
