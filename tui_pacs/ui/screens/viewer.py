"""The viewer: one series image by image, window/level, presets, invert, zoom and pan, cine, ECG.

Every frame is rendered in a thread worker (exclusive, group ``render``) by the shared
:class:`~tui_pacs.services.render.Renderer` at the image widget's pixel box, so a slow decode
never holds the keyboard; a second worker (group ``prefetch``) decodes the next images of the
scroll direction ahead. Failures (missing codec, broken file) are shown in place of the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import MouseDown, MouseMove, MouseScrollDown, MouseScrollUp, MouseUp, Resize
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Label
from textual.worker import get_current_worker

from tui_pacs.model import InstanceSummary
from tui_pacs.ui.screens.base import ConsoleScreen
from tui_pacs.ui.widgets.image_view import ImageView

if TYPE_CHECKING:
    from PIL import Image

    from tui_pacs.imaging.presets import Window, WindowPreset
    from tui_pacs.services.render import Renderer, RenderResult

#: Cine rates offered by f / F (frames per second).
FPS_STEPS = (1, 2, 5, 10, 15, 20, 25, 30, 60)
#: Images decoded ahead of the scroll.
PREFETCH = 4
#: ECG waveform SOP classes (PS3.4 Table B.5-1): 12-lead, general, ambulatory, hemodynamic.
WAVEFORM_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.9.1.1",
        "1.2.840.10008.5.1.4.1.1.9.1.2",
        "1.2.840.10008.5.1.4.1.1.9.1.3",
        "1.2.840.10008.5.1.4.1.1.9.2.1",
        "1.2.840.10008.5.1.4.1.1.9.3.1",
    }
)


def shared_renderer(app: Any) -> Renderer:
    """The console's one renderer (its caches serve the preview pane and the viewer)."""
    renderer = getattr(app, "_tui_pacs_renderer", None)
    if renderer is None:
        from tui_pacs.services.render import Renderer

        renderer = Renderer(app.context.config)
        app._tui_pacs_renderer = renderer
    return renderer


def plot_waveform(waveform: Any, size: tuple[int, int]) -> Image.Image:
    """The leads of a waveform stacked one above the other, drawn into an RGB image of ``size``."""
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = max(40, size[0]), max(24, size[1])
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    channels = waveform.channels or ()
    if not channels:
        return image
    band = height / len(channels)
    for i, channel in enumerate(channels):
        top = i * band
        samples = np.asarray(channel.samples, dtype=np.float64)
        if samples.size == 0:
            continue
        span = float(np.ptp(samples)) or 1.0
        xs = np.linspace(0, width - 1, samples.size)
        # One point per output column (min/max would be nicer; this keeps spikes via max abs).
        cols = np.minimum((xs).astype(int), width - 1)
        ys = top + band - 1 - (samples - samples.min()) / span * (band - 2)
        points = list(zip(cols.tolist(), ys.tolist(), strict=True))
        draw.line([(0, top + band - 1), (width, top + band - 1)], fill=(40, 40, 40))
        draw.line(points, fill=(80, 255, 120), width=1)
        if band >= 10:
            draw.text((2, top), channel.label, fill=(255, 255, 255))
    return image


@dataclass(frozen=True, slots=True)
class ViewState:
    """What the viewer shows: which image and frame, and how."""

    index: int = 0
    frame: int = 0
    window: Window | WindowPreset | None = None
    invert: bool = False
    zoom: float = 1.0
    center: tuple[float, float] | None = None


class ViewerScreen(ConsoleScreen):
    """One series (or one multi-frame instance), image by image."""

    CSS_PATH = "viewer.tcss"

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("down,j", "step(1)", "Next image"),
        Binding("up,k", "step(-1)", "Prev image"),
        Binding("pagedown", "step(10)", "+10", show=False),
        Binding("pageup", "step(-10)", "-10", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("right,l", "frame(1)", "Next frame", show=False),
        Binding("left,h", "frame(-1)", "Prev frame", show=False),
        Binding("w", "window(0, -0.2)", "Narrower", show=False),
        Binding("W", "window(0, 0.25)", "Wider", show=False),
        Binding("c", "window(-0.05, 0)", "Level down", show=False),
        Binding("C", "window(0.05, 0)", "Level up", show=False),
        *(Binding(str(n), f"preset({n})", f"Preset {n}", show=False) for n in range(1, 10)),
        Binding("0", "preset(0)", "Default window", show=False),
        Binding("i", "invert", "Invert"),
        Binding("plus,equals_sign", "zoom(1.25)", "Zoom in"),
        Binding("minus", "zoom(0.8)", "Zoom out"),
        Binding("shift+left", "pan(-1, 0)", "Pan left", show=False),
        Binding("shift+right", "pan(1, 0)", "Pan right", show=False),
        Binding("shift+up", "pan(0, -1)", "Pan up", show=False),
        Binding("shift+down", "pan(0, 1)", "Pan down", show=False),
        Binding("r", "reset", "Reset"),
        Binding("space", "play", "Cine"),
        Binding("f", "fps(1)", "Faster", show=False),
        Binding("F", "fps(-1)", "Slower", show=False),
    ]

    class Rendered(Message):
        """A frame is on screen (or its error is): tests and the bench wait for it."""

        def __init__(
            self, state: ViewState, result: RenderResult | None, error: str, plotted: bool = False
        ) -> None:
            super().__init__()
            self.state = state
            self.result = result
            self.error = error
            self.plotted = plotted

    class _Plotted(Message):
        def __init__(self, state: ViewState, image: Image.Image | None, error: str) -> None:
            super().__init__()
            self.state = state
            self.image = image
            self.error = error

    def __init__(self, instances: list[InstanceSummary], index: int = 0, title: str = "") -> None:
        super().__init__()
        self.instances = instances
        self.state = ViewState(index=max(0, min(index, len(instances) - 1)))
        self.title_text = title
        self.frames = 1
        self.fps = 15
        self.playing = False
        self.last: RenderResult | None = None
        self.error = ""
        self._cine: Timer | None = None
        self._drag: tuple[int, int, Window] | None = None
        self._rendering = False
        self._pending = False
        self._prefetch_generation = 0

    # -- layout --------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Vertical(id="viewer"):
            with Horizontal(id="viewer-top", classes="annotation-row"):
                yield Label("", id="ann-top-left", classes="ann-left")
                yield Label("", id="ann-top", classes="ann-mid")
                yield Label("", id="ann-top-right", classes="ann-right")
            with Horizontal(id="viewer-middle"):
                yield Label("", id="ann-left", classes="ann-side")
                yield ImageView(id="viewer-image")
                yield Label("", id="ann-right", classes="ann-side")
            with Horizontal(id="viewer-bottom", classes="annotation-row"):
                yield Label("", id="ann-bottom-left", classes="ann-left")
                yield Label("", id="ann-bottom", classes="ann-mid")
                yield Label("", id="ann-bottom-right", classes="ann-right")

    @property
    def image_view(self) -> ImageView:
        """The image widget."""
        return self.query_one("#viewer-image", ImageView)

    @property
    def renderer(self) -> Renderer:
        """The console's renderer."""
        return shared_renderer(self.app)

    def on_mount(self) -> None:
        super().on_mount()
        if not self.instances:
            self.image_view.show_message("No images in this series")
            return
        self.call_after_refresh(self.refresh_image)

    def on_resize(self, event: Resize) -> None:
        if self.is_mounted and self.instances:
            self.call_after_refresh(self.refresh_image)

    @property
    def current(self) -> InstanceSummary | None:
        """The instance on screen."""
        return self.instances[self.state.index] if self.instances else None

    # -- rendering -----------------------------------------------------------------------------

    def refresh_image(self) -> None:
        """Render the current state (coalesced: one render at a time, the latest state wins)."""
        if not self.instances:
            return
        if self._rendering:
            self._pending = True
            return
        self._rendering = True
        self._pending = False
        box = self.image_view.pixel_box()
        current = self.current
        assert current is not None
        if current.sop_class_uid in WAVEFORM_CLASSES:
            self.plot(self.state, current, box)
        else:
            self.render_frame(self.state, current, box)

    @work(thread=True, group="render", exit_on_error=False)
    def render_frame(
        self, state: ViewState, instance: InstanceSummary, box: tuple[int, int]
    ) -> None:
        """Render one frame in a thread."""
        from tui_pacs.errors import PacsError

        try:
            result = self.renderer.render(
                instance,
                state.frame,
                window=state.window,
                size=box,
                zoom=state.zoom,
                center=state.center,
                invert=state.invert,
                position=(state.index + 1, len(self.instances)),
            )
            message = self.Rendered(state, result, "")
        except PacsError as exc:
            message = self.Rendered(state, None, exc.message)
        except Exception as exc:  # noqa: BLE001 - a broken file must not end the console
            message = self.Rendered(state, None, f"cannot show this image: {exc}")
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, group="render", exit_on_error=False)
    def plot(self, state: ViewState, instance: InstanceSummary, box: tuple[int, int]) -> None:
        """Plot a waveform in a thread."""
        try:
            image = plot_waveform(self.renderer.waveform(instance), box)
            message = self._Plotted(state, image, "")
        except Exception as exc:  # noqa: BLE001 - shown in place of the plot
            message = self._Plotted(state, None, getattr(exc, "message", str(exc)))
        self.post_message(message)

    @on(_Plotted)
    def _plotted(self, message: _Plotted) -> None:
        self._done()
        if message.image is None:
            self.error = message.error
            self.image_view.show_message(message.error, error=True)
        else:
            self.error = ""
            self.image_view.show(message.image)
            self.query_one("#ann-top-left", Label).update(self.title_text or "Waveform")
        self.post_message(self.Rendered(message.state, None, message.error, plotted=True))

    @on(Rendered)
    def _rendered(self, message: Rendered) -> None:
        if message.plotted:
            return  # a waveform, drawn by _plotted
        self._done()
        if message.result is None:
            self.error = message.error
            self.last = None
            self.image_view.show_message(message.error, error=True)
            self._annotate(None)
            return
        self.error = ""
        self.last = message.result
        self.frames = message.result.frame.number_of_frames
        self.image_view.show(message.result.image, fast=self.playing)
        self._annotate(message.result)
        self.prefetch_ahead()

    def _done(self) -> None:
        self._rendering = False
        if self._pending:
            self.refresh_image()

    def _annotate(self, result: RenderResult | None) -> None:
        def put(widget_id: str, lines: list[str]) -> None:
            self.query_one(f"#{widget_id}", Label).update(" · ".join(x for x in lines if x))

        if result is None:
            for name in ("top-left", "top-right", "bottom-left", "bottom-right"):
                put(f"ann-{name}", [])
            put("ann-bottom-left", [f"Im {self.state.index + 1}/{len(self.instances)}"])
            return
        corners = result.annotations.corners()
        put("ann-top-left", corners["top_left"])
        put("ann-top-right", corners["top_right"])
        bottom_right = list(corners["bottom_right"])
        if self.frames > 1:
            bottom_right.append(f"{'▶' if self.playing else '⏸'} {self.fps} fps")
        if self.state.invert:
            bottom_right.append("INV")
        put("ann-bottom-left", corners["bottom_left"])
        put("ann-bottom-right", bottom_right)
        labels = result.annotations.orientation
        put("ann-top", [labels.top])
        put("ann-bottom", [labels.bottom])
        put("ann-left", [labels.left])
        put("ann-right", [labels.right])

    @work(thread=True, group="prefetch", exit_on_error=False)
    def prefetch_ahead(self) -> None:
        """Decode the next images (and frames) ahead of the scroll.

        A newer prefetch makes an older one stop (a generation count rather than Textual's
        exclusive workers, whose cancellation the tests' settling would report as a failure).
        """
        self._prefetch_generation += 1
        generation = self._prefetch_generation
        index, frame = self.state.index, self.state.frame
        items: list[tuple[Any, int]] = []
        if self.frames > 1:
            items = [
                (self.instances[index], (frame + k) % self.frames) for k in range(1, PREFETCH + 1)
            ]
        else:
            for k in range(1, PREFETCH + 1):
                for j in (index + k, index - k):
                    if 0 <= j < len(self.instances):
                        items.append((self.instances[j], 0))
        self.renderer.prefetch(
            items,
            should_stop=lambda: generation != self._prefetch_generation or not self.is_attached,
        )

    def _set(self, **changes: Any) -> None:
        from dataclasses import replace

        self.state = replace(self.state, **changes)
        self.refresh_image()

    # -- actions -------------------------------------------------------------------------------

    def action_close(self) -> None:
        """Back to the archive."""
        self.playing = False
        self._stop_cine()
        self.dismiss()

    def action_step(self, delta: int) -> None:
        """Next or previous image of the series."""
        if not self.instances:
            return
        index = max(0, min(len(self.instances) - 1, self.state.index + delta))
        if index != self.state.index:
            self._set(index=index, frame=0)

    def action_first(self) -> None:
        """First image."""
        self.action_step(-len(self.instances))

    def action_last(self) -> None:
        """Last image."""
        self.action_step(len(self.instances))

    def action_frame(self, delta: int) -> None:
        """Next or previous frame of a multi-frame image (wraps)."""
        if self.frames > 1:
            self._set(frame=(self.state.frame + delta) % self.frames)

    def _window_now(self) -> Window | None:
        if self.last is None or self.last.frame.voi is None:
            return None
        return self.last.frame.voi.window

    def action_window(self, d_center: float, d_width: float) -> None:
        """Move the level or change the width, relative to the current width."""
        window = self._window_now()
        if window is None:
            return
        width = window.window_width
        self._set(window=window.shifted(d_center * width, d_width * width))

    def action_preset(self, number: int) -> None:
        """Window preset ``number`` (1-9) of the image; 0 the image's default."""
        if number == 0:
            self._set(window=None)
            return
        presets = self.last.frame.presets if self.last is not None else ()
        if 1 <= number <= len(presets):
            self._set(window=presets[number - 1])
        else:
            self.notify(f"No preset {number} for this image", severity="warning")

    def action_invert(self) -> None:
        """Invert the grey scale."""
        self._set(invert=not self.state.invert)

    def action_zoom(self, factor: float) -> None:
        """Zoom in or out around the centre of the view."""
        zoom = max(1.0, min(16.0, self.state.zoom * factor))
        center = self.last.viewport.center if self.last is not None else None
        self._set(zoom=zoom, center=center if zoom > 1.0 else None)

    def action_pan(self, dx: int, dy: int) -> None:
        """Move a zoomed view by a tenth of what is shown."""
        if self.last is None or self.state.zoom <= 1.0:
            return
        left, top, right, bottom = self.last.viewport.source
        cx, cy = self.last.viewport.center
        self._set(center=(cx + dx * (right - left) / 10, cy + dy * (bottom - top) / 10))

    def action_reset(self) -> None:
        """Default window, no invert, fit to the pane."""
        self._set(window=None, invert=False, zoom=1.0, center=None)

    def action_play(self) -> None:
        """Play or pause the cine loop of a multi-frame image."""
        if self.frames <= 1:
            self.notify("Cine needs a multi-frame image", severity="warning")
            return
        if self.playing:
            self._stop_cine()
        else:
            self.playing = True
            self._cine = self.set_interval(1 / self.fps, self._next_cine_frame)
        self._annotate(self.last) if self.last is not None else None

    def action_fps(self, direction: int) -> None:
        """Faster or slower cine."""
        steps = FPS_STEPS
        i = min(range(len(steps)), key=lambda k: abs(steps[k] - self.fps))
        self.fps = steps[max(0, min(len(steps) - 1, i + direction))]
        if self.playing:
            self._stop_cine()
            self.action_play()
        elif self.last is not None:
            self._annotate(self.last)

    def _next_cine_frame(self) -> None:
        if self._rendering:
            return  # drop a frame rather than queue behind a slow one
        self._set(frame=(self.state.frame + 1) % self.frames)

    def _stop_cine(self) -> None:
        was_playing = self.playing
        self.playing = False
        if self._cine is not None:
            self._cine.stop()
            self._cine = None
        if was_playing and self.is_attached:
            self.refresh_image()  # the paused frame in exact colour

    # -- mouse ---------------------------------------------------------------------------------

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        self.action_step(1)

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self.action_step(-1)

    def on_mouse_down(self, event: MouseDown) -> None:
        window = self._window_now()
        if window is not None:
            self._drag = (event.screen_x, event.screen_y, window)
            self.capture_mouse()

    def on_mouse_move(self, event: MouseMove) -> None:
        if self._drag is None:
            return
        x0, y0, window = self._drag
        width = window.window_width
        # Right widens, up raises the level; a full pane width doubles the window.
        d_width = (event.screen_x - x0) * width / max(10, self.size.width)
        d_center = (y0 - event.screen_y) * width / max(10, self.size.height)
        self._set(window=window.shifted(d_center, d_width))

    def on_mouse_up(self, event: MouseUp) -> None:
        if self._drag is not None:
            self._drag = None
            self.release_mouse()
