"""One image in the console: sixel, kitty graphics or half-blocks, or a message when there is none.

The caller renders the picture at :meth:`ImageView.pixel_box` (the widget's cells in pixels of
the chosen protocol; two square pixels per cell for half-blocks) with the aspect ratio kept, and
hands it to :meth:`ImageView.show`; the widget never scales it again. Sixel goes through our
numpy encoder (:mod:`tui_pacs.ui.sixel`) plugged into textual-image's sixel widget; kitty uses
textual-image's unicode-placeholder widget, sent our pixels as they are (PNG), padded with black
to whole cells so the terminal, which fits the picture into the placement's cells, shows them
one to one; half-blocks are drawn here (``▀`` with the upper pixel as foreground and the lower
as background, true colour where the terminal has it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Container
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tui_pacs.ui import graphics
from tui_pacs.ui.graphics import GraphicsMode

if TYPE_CHECKING:
    from PIL import Image

_UPPER = "\u2580"


class HalfcellCanvas(Widget):
    """An RGB image drawn with upper half blocks, one cell per two vertical pixels."""

    DEFAULT_CSS = "HalfcellCanvas { width: auto; height: auto; }"

    def __init__(self, image: Image.Image, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._strips = self._build(image)
        self._cells = Size(image.width, (image.height + 1) // 2)

    @staticmethod
    def _build(image: Image.Image) -> list[Strip]:
        import numpy as np

        arr = np.asarray(image.convert("RGB"))
        if arr.shape[0] % 2:
            arr = np.concatenate([arr, np.zeros((1, arr.shape[1], 3), np.uint8)])
        top, bottom = arr[0::2], arr[1::2]
        styles: dict[tuple[int, ...], Style] = {}
        strips = []
        for up_row, low_row in zip(top.tolist(), bottom.tolist(), strict=True):
            segments = []
            for up, low in zip(up_row, low_row, strict=True):
                key = (*up, *low)
                style = styles.get(key)
                if style is None:
                    style = Style.parse(
                        f"rgb({up[0]},{up[1]},{up[2]}) on rgb({low[0]},{low[1]},{low[2]})"
                    )
                    styles[key] = style
                segments.append(Segment(_UPPER, style))
            strips.append(Strip(Segment.simplify(segments), len(up_row)))
        return strips

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._cells.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._cells.height

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width)


_SIXEL_CLASS: type[Widget] | None = None


def _sixel_widget(image: Image.Image) -> Widget:
    """textual-image's sixel widget with our encoder and without its own scaling."""
    global _SIXEL_CLASS
    if _SIXEL_CLASS is None:
        from textual_image.widget.sixel import Image as SixelImage
        from textual_image.widget.sixel import _ImageSixelImpl, _NoopRenderable

        class _FastSixelImpl(_ImageSixelImpl):
            def _image_to_sixels(
                self, image: Image.Image, sixel_options: Any = None, background: Any = None
            ) -> str:
                from tui_pacs.ui.sixel import encode as sixel_encode

                view = next((a for a in self.ancestors if isinstance(a, ImageView)), None)
                return sixel_encode(image, fast=view is not None and view.fast)

            def _scale_image(self, image_data: Any, terminal_sizes: Any) -> Any:
                return image_data  # already rendered at the widget's pixel box

        class FastSixelImage(SixelImage, Renderable=_NoopRenderable):  # type: ignore[call-arg]
            def compose(self) -> ComposeResult:
                yield _FastSixelImpl(self.image, self._sixel_options)

        _SIXEL_CLASS = FastSixelImage
    return _SIXEL_CLASS(image)  # type: ignore[call-arg,arg-type]


_KITTY_CLASS: type[Widget] | None = None
#: Rows and columns a kitty placeholder image can span (the protocol's diacritics table).
KITTY_MAX_CELLS = 297


def _kitty_widget(image: Image.Image) -> Widget:
    """textual-image's kitty placeholder widget, sending ``image`` without scaling it.

    textual-image resizes the picture to the placement's cells times the cell size it probed
    (PIL's default filter, the aspect of whole cells): our pixels, already rendered for the box
    and padded to whole cells, would be resampled.
    """
    global _KITTY_CLASS
    if _KITTY_CLASS is None:
        from textual_image.renderable import tgp
        from textual_image.widget._base import Image as BaseImage

        class _ExactTGP(tgp.Image):
            def _send_image_to_terminal(self, width: int, height: int) -> None:
                self.terminal_image_id = next(tgp.Image._image_id_counter)
                data = self._image_data.to_base64()
                while data:
                    chunk, data = data[:4096], data[4096:]
                    tgp._send_tgp_message(
                        i=self.terminal_image_id, m=1 if data else 0, f=100, payload=chunk, q=2
                    )

        class KittyImage(BaseImage, Renderable=_ExactTGP):  # type: ignore[call-arg]
            pass

        _KITTY_CLASS = KittyImage
    return _KITTY_CLASS(image)  # type: ignore[call-arg,arg-type]


def pad_to_cells(image: Image.Image, cell: tuple[int, int]) -> Image.Image:
    """``image`` at the top-left of a black picture of whole cells (unchanged if it fits)."""
    from PIL import Image as PILImage

    width = -(-image.width // cell[0]) * cell[0]
    height = -(-image.height // cell[1]) * cell[1]
    if (width, height) == image.size:
        return image
    padded = PILImage.new(image.mode, (width, height), 0)
    padded.paste(image, (0, 0))
    return padded


class ImageView(Container):
    """Shows one rendered image, or a message (no image, an error) in its place."""

    DEFAULT_CSS = """
    ImageView { align: center middle; background: black; }
    ImageView > .image-message { width: auto; height: auto; color: $text-muted; background: black; }
    ImageView > .image-message.-error { color: $error; text-style: bold; }
    """

    def __init__(self, *, mode: GraphicsMode | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mode = mode
        self.image: Image.Image | None = None
        self.message: str = ""
        self.error = False
        #: Encode colour for speed rather than exactness (cine playback).
        self.fast = False

    @property
    def mode(self) -> GraphicsMode:
        """The protocol this widget draws with."""
        return self._mode or graphics.current().mode

    def cell_pixels(self) -> tuple[int, int]:
        """Pixels per cell of the protocol in use (half-blocks: 1 x 2)."""
        if self.mode in (GraphicsMode.SIXEL, GraphicsMode.KITTY):
            g = graphics.current()
            return g.cell_width, g.cell_height
        return 1, 2

    def pixel_box(self, cells: Size | None = None) -> tuple[int, int]:
        """The size in pixels to render an image at to fill the widget (aspect is the caller's).

        Kitty's unicode placeholders address at most :data:`KITTY_MAX_CELLS` rows and columns
        (textual-image refuses more): a wider or taller widget gets a box of that many cells.
        """
        size = cells or self.content_size
        columns, rows = size.width, size.height
        if self.mode is GraphicsMode.KITTY:
            columns, rows = min(columns, KITTY_MAX_CELLS), min(rows, KITTY_MAX_CELLS)
        width, height = self.cell_pixels()
        return max(1, columns * width), max(1, rows * height)

    def show(self, image: Image.Image, *, fast: bool = False) -> None:
        """Draw an image rendered at (at most) :meth:`pixel_box` (``fast``: cine playback)."""
        self.image, self.message, self.error, self.fast = image, "", False, fast
        self._redraw()

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show a message instead of an image (no selection, broken file, missing codec)."""
        self.image, self.message, self.error = None, text, error
        self._redraw()

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        with self.app.batch_update():
            self.remove_children()
            self.mount(self._content())

    def on_mount(self) -> None:
        if self.image is not None or self.message:
            self.mount(self._content())

    def _content(self) -> Widget:
        if self.image is None or self.mode is GraphicsMode.NONE:
            text = self.message
            if self.image is not None:
                text = f"{self.image.width}x{self.image.height} image (graphics off)"
            message = Static(text, classes="image-message")
            message.set_class(self.error, "-error")
            return message
        image = self.image
        if self.mode is GraphicsMode.HALFCELL:
            return HalfcellCanvas(image, classes="image")
        cw, ch = self.cell_pixels()
        cells_w, cells_h = -(-image.width // cw), -(-image.height // ch)
        widget: Widget
        if self.mode is GraphicsMode.SIXEL:
            widget = _sixel_widget(image)
        else:
            widget = _kitty_widget(pad_to_cells(image, (cw, ch)))
        widget.styles.width = cells_w
        widget.styles.height = cells_h
        widget.add_class("image")
        return widget
