"""The archive screen's preview pane: the selected series' middle image and the study's thumbnails.

Loading runs in a thread worker (exclusive, group ``preview``): the middle image is rendered at
the pane's pixel box, then the thumbnails of every series of the study. A missing codec or a
broken file is written in the pane in place of the picture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label
from textual.worker import get_current_worker

from tui_pacs.ui.widgets.image_view import ImageView

if TYPE_CHECKING:
    from PIL import Image

#: Thumbnail box in cells (width, height).
THUMB_CELLS = (12, 5)


class PreviewPane(Vertical):
    """Middle image of the selected series, and a row of series thumbnails."""

    DEFAULT_CSS = """
    PreviewPane { height: 1fr; }
    PreviewPane #preview-image { height: 1fr; }
    PreviewPane #preview-caption { height: 1; width: 1fr; color: $text-muted; }
    PreviewPane #preview-thumbs { height: 6; }
    PreviewPane .thumb { width: 12; height: 6; }
    PreviewPane .thumb ImageView { height: 5; }
    PreviewPane .thumb Label { height: 1; width: 12; color: $text-muted; }
    PreviewPane .thumb.-current Label { color: $accent; text-style: bold; }
    """

    class Shown(Message):
        """The preview of a series is drawn (``error`` set when it could not be)."""

        def __init__(self, series_instance_uid: str, error: str) -> None:
            super().__init__()
            self.series_instance_uid = series_instance_uid
            self.error = error

    class _Loaded(Message):
        def __init__(
            self, series_uid: str, image: Image.Image | None, caption: str, error: str
        ) -> None:
            super().__init__()
            self.series_uid = series_uid
            self.image = image
            self.caption = caption
            self.error = error

    class _Thumbs(Message):
        def __init__(self, study_uid: str, thumbs: list[Any]) -> None:
            super().__init__()
            self.study_uid = study_uid
            self.thumbs = thumbs

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.series_uid: str | None = None
        self.study_uid: str | None = None
        self.error = ""
        #: The pixel box the current preview was (or is being) rendered at.
        self._box: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        yield ImageView(id="preview-image")
        yield Label("", id="preview-caption")
        yield Horizontal(id="preview-thumbs")

    def clear(self) -> None:
        """No series selected."""
        self.series_uid = None
        self.query_one(ImageView).show_message("No series selected")
        self.query_one("#preview-caption", Label).update("")

    def show_series(self, study_uid: str, series_uid: str) -> None:
        """Preview the middle image of a series (and the study's thumbnails when it changed)."""
        self.series_uid = series_uid
        view = self.query_one(ImageView)
        box = view.pixel_box()
        self._box = box
        self.load_preview(series_uid, box)
        if study_uid != self.study_uid:
            self.study_uid = study_uid
            self.query_one("#preview-thumbs").remove_children()
            thumb_box = view.pixel_box(_size(*THUMB_CELLS))
            self.load_thumbnails(study_uid, thumb_box)

    def on_resize(self) -> None:
        """Render the preview again when the pane changed size (first layout, terminal resize)."""
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self.series_uid is None or not self.is_mounted:
            return
        view = self.query_one(ImageView)
        if not view.content_size.area:
            return
        box = view.pixel_box()
        if box != self._box:
            self._box = box
            self.load_preview(self.series_uid, box)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def load_preview(self, series_uid: str, box: tuple[int, int]) -> None:
        """Render the series' middle image."""
        from tui_pacs.ui.screens.viewer import shared_renderer

        renderer = shared_renderer(self.app)
        image, caption, error = None, "", ""
        try:
            images = renderer.series_images(series_uid)
            if not images:
                error = "This series has no instances"
            else:
                middle = images[len(images) // 2]
                frame = renderer.frame_count(middle) // 2
                result = renderer.render(
                    middle, frame, size=box, position=(len(images) // 2 + 1, len(images))
                )
                image = result.image
                ann = result.annotations
                caption = " · ".join(
                    x
                    for x in (
                        f"Im {len(images) // 2 + 1}/{len(images)}",
                        ann.window,
                        ann.lossy,
                    )
                    if x
                )
        except Exception as exc:  # noqa: BLE001 - a broken file is a message, never a crash
            error = getattr(exc, "message", None) or f"cannot show this image: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self._Loaded(series_uid, image, caption, error))

    @work(thread=True, exclusive=True, group="thumbnails", exit_on_error=False)
    def load_thumbnails(self, study_uid: str, box: tuple[int, int]) -> None:
        """Render one thumbnail per series of the study."""
        from tui_pacs.ui.screens.viewer import shared_renderer

        try:
            thumbs = shared_renderer(self.app).study_thumbnails(study_uid, box)
        except Exception:  # noqa: BLE001 - thumbnails are a convenience
            thumbs = []
        if not get_current_worker().is_cancelled:
            self.post_message(self._Thumbs(study_uid, thumbs))

    @on(_Loaded)
    def _loaded(self, message: _Loaded) -> None:
        if message.series_uid != self.series_uid:
            return
        view = self.query_one(ImageView)
        self.error = message.error
        if message.image is None:
            view.show_message(message.error, error=True)
        else:
            view.show(message.image)
        self.query_one("#preview-caption", Label).update(message.caption)
        self._mark_current()
        self.post_message(self.Shown(message.series_uid, message.error))

    @on(_Thumbs)
    def _thumbs(self, message: _Thumbs) -> None:
        if message.study_uid != self.study_uid:
            return
        row = self.query_one("#preview-thumbs")
        row.remove_children()
        boxes = []
        for thumb in message.thumbs:
            view = ImageView()
            box = Vertical(
                view,
                Label(f"{thumb.series.series_number or ''} {thumb.series.modality}".strip()),
                classes="thumb",
            )
            box.thumb_uid = thumb.series.series_instance_uid  # type: ignore[attr-defined]
            boxes.append((box, view, thumb))
        row.mount_all([b for b, _, _ in boxes])
        for _, view, thumb in boxes:
            if thumb.image is not None:
                view.show(thumb.image)
            else:
                view.show_message(thumb.error or "-", error=True)
        self._mark_current()

    def on_click(self) -> None:
        """A click on the preview opens the series in the viewer (as ``v`` does)."""
        action = getattr(self.screen, "action_view", None)
        if action is not None:
            action()

    def _mark_current(self) -> None:
        for box in self.query(".thumb"):
            box.set_class(getattr(box, "thumb_uid", None) == self.series_uid, "-current")


def _size(width: int, height: int) -> Any:
    from textual.geometry import Size

    return Size(width, height)
