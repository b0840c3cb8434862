"""Render archived images for the console and the CLI: one call per thing a viewer shows.

The viewer calls :meth:`Renderer.render` on every scroll, window drag or zoom; the renderer keeps
recently read data sets and decoded frames (bounded by memory), so only the first view of a frame
decodes and a window change costs one table lookup plus a resize. :meth:`Renderer.prefetch`
warms that cache from a thread worker ahead of the scroll. Everything here is headless and
thread-safe; failures are :class:`~tui_pacs.imaging.errors.ImagingError` (a PacsError) with a
message for the preview pane.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import peewee as pw
from PIL import Image
from pydicom.dataset import Dataset

from tui_pacs.config import Config
from tui_pacs.errors import StoreError
from tui_pacs.imaging.annotations import ImageAnnotations, describe
from tui_pacs.imaging.compression import lossy_description
from tui_pacs.imaging.decode import DecodedFrame, decode_frame, read_dataset
from tui_pacs.imaging.errors import ImagingError
from tui_pacs.imaging.frames import number_of_frames
from tui_pacs.imaging.geometry import (
    DEFAULT_MAX_FACTOR,
    Viewport,
    orientation_labels,
    scale_image,
    viewport,
)
from tui_pacs.imaging.pipeline import RenderedFrame, frame_presets, render_decoded
from tui_pacs.imaging.presets import Window, WindowPreset, find_preset, parse_window
from tui_pacs.imaging.waveform import Waveform, ecg_leads
from tui_pacs.model import InstanceSummary, SeriesSummary

#: What a caller may name an image by: a file, a SOP Instance UID, or a row of the instance list.
ImageSource = str | os.PathLike[str] | InstanceSummary
#: A window choice: a free window, a preset, ``"C,W"`` text or a preset name, or None (default).
WindowChoice = Window | WindowPreset | str | None

_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")
#: Default memory for decoded frames (a 512x512 CT frame takes 0.5 MB, a 1024x1024 one 2 MB).
DEFAULT_CACHE_BYTES = 256 * 2**20
#: Data sets kept open (their pixel data included).
DEFAULT_DATASETS = 64


@dataclass(frozen=True, slots=True, eq=False)
class RenderResult:
    """What a viewer draws for one frame.

    Attributes:
        image: The picture to draw: scaled into the requested box (or native without one),
            mode ``L`` or ``RGB``.
        frame: The native 8-bit frame and how it was made (window, presets, lossy, aspect).
        annotations: Corner and edge texts.
        viewport: The native rectangle shown and the zoom, for mouse mapping and panning.
    """

    image: Image.Image
    frame: RenderedFrame
    annotations: ImageAnnotations
    viewport: Viewport


@dataclass(frozen=True, slots=True)
class SeriesThumbnail:
    """A series' middle image, shrunk, or why there is none (``error``)."""

    series: SeriesSummary
    image: Image.Image | None
    error: str = ""


class _LRU:
    """A thread-safe least-recently-used map bounded by a cost (bytes or entries)."""

    def __init__(self, budget: int, cost: Callable[[object], int]) -> None:
        self._items: OrderedDict[object, object] = OrderedDict()
        self._budget = budget
        self._cost = cost
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: object) -> object | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: object, value: object) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= self._cost(old)
            self._items[key] = value
            self._used += self._cost(value)
            while self._used > self._budget and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._used -= self._cost(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used = 0

    def __len__(self) -> int:
        return len(self._items)


class Renderer:
    """Images of the archive (or of any file) as a viewer shows them.

    Args:
        config: Where the archive and index are; needed only to name images by SOP Instance UID
            or to list a series.
        cache_bytes: Memory for decoded frames.
        max_datasets: Data sets kept in memory.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        max_datasets: int = DEFAULT_DATASETS,
    ) -> None:
        self.config = config
        self._datasets = _LRU(max_datasets, lambda _v: 1)
        self._frames = _LRU(cache_bytes, lambda v: v.nbytes)  # type: ignore[attr-defined]
        self._db: pw.Database | None = None

    # -- naming images ----------------------------------------------------------------------

    def resolve(self, source: ImageSource) -> Path:
        """The file of an image named by path, SOP Instance UID or instance row.

        Raises:
            ImagingError: A UID that is not archived (or no archive configured) or a missing file.
        """
        if isinstance(source, InstanceSummary):
            return self._archived(source.sop_instance_uid)
        path = Path(source)
        if path.is_file():
            return path
        text = str(source)
        if _UID.match(text):
            return self._archived(text)
        raise ImagingError(f"{text}: no such file", "Not found")

    def _archived(self, sop_instance_uid: str) -> Path:
        if self.config is None:
            raise ImagingError(
                f"{sop_instance_uid}: naming an image by UID needs the archive's configuration",
                "Not found",
            )
        from tui_pacs.store import browse as store
        from tui_pacs.store.db import thread_connection

        with thread_connection(self._database()):
            rel = store.instance_path(sop_instance_uid)
        if rel is None:
            raise ImagingError(f"instance {sop_instance_uid} is not in the archive", "Not found")
        path = Path(self.config.storage_path) / rel
        if not path.is_file():
            raise ImagingError(
                f"the archived file of {sop_instance_uid} is missing: {path}", "Not found"
            )
        return path

    def _database(self) -> pw.Database:
        if self._db is None:
            from tui_pacs.store.db import use_database

            assert self.config is not None
            self._db = use_database(self.config.effective_database_url)
        return self._db

    # -- data sets and frames ---------------------------------------------------------------

    def dataset(self, source: ImageSource) -> Dataset:
        """The data set of an image (cached until its file changes)."""
        return self._dataset(source)[1]

    def _dataset(self, source: ImageSource) -> tuple[tuple[str, int, int], Dataset]:
        path = self.resolve(source)
        try:
            st = path.stat()
        except OSError as exc:
            raise ImagingError(f"{path}: {exc.strerror}", "Not found") from None
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        ds = self._datasets.get(key)
        if ds is None:
            ds = read_dataset(path)
            self._datasets.put(key, ds)
        return key, ds  # type: ignore[return-value]

    def frame_count(self, source: ImageSource) -> int:
        """Number of frames of an image (1 for single-frame images)."""
        return number_of_frames(self.dataset(source))

    def decoded(self, source: ImageSource, frame: int = 0) -> DecodedFrame:
        """Decoded frame ``frame`` (0-based) of an image, from the cache when possible."""
        ds_key, ds = self._dataset(source)
        key = (ds_key, frame)
        found = self._frames.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        decoded = decode_frame(ds, frame)
        self._frames.put(key, decoded)
        return decoded

    def presets(self, source: ImageSource, frame: int = 0) -> tuple[WindowPreset, ...]:
        """The window presets of a frame, in number-key order (empty for colour images)."""
        return frame_presets(self.decoded(source, frame))

    def prefetch(
        self,
        items: Iterable[tuple[ImageSource, int]],
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Read and decode frames ahead of a scroll (from a worker thread).

        Failures are skipped: the frame reports its error when it is shown.

        Returns:
            How many frames are now cached.
        """
        done = 0
        for source, frame in items:
            if should_stop is not None and should_stop():
                break
            try:
                self.decoded(source, frame)
            except ImagingError:
                continue
            done += 1
        return done

    def clear(self) -> None:
        """Forget every cached data set and frame."""
        self._datasets.clear()
        self._frames.clear()

    # -- rendering --------------------------------------------------------------------------

    def render(
        self,
        source: ImageSource,
        frame: int = 0,
        *,
        window: WindowChoice = None,
        size: tuple[int, int] | None = None,
        zoom: float = 1.0,
        center: tuple[float, float] | None = None,
        invert: bool = False,
        overlays: bool = True,
        max_factor: float = DEFAULT_MAX_FACTOR,
        smooth: bool = True,
        position: tuple[int, int] | None = None,
    ) -> RenderResult:
        """One frame as the viewer shows it.

        Args:
            source: A file, a SOP Instance UID or an instance row.
            frame: 0-based frame number.
            window: Free window, preset, ``"C,W"`` or preset name (``brain``, ``file1``,
                ``auto``), or None for the image's own default.
            size: (width, height) of the box to fit, in pixels; None keeps native resolution
                (with non-square pixels corrected).
            zoom: Magnification relative to the fitted size (1 = fit).
            center: Native (x, y) to centre a zoomed view on.
            invert: The viewer's invert toggle.
            overlays: Burn in overlay planes.
            max_factor: Do not enlarge a small image beyond this factor when fitting.
            smooth: Interpolate when enlarging (False repeats pixels).
            position: (k, N) of this image in its series, for the annotation.

        Raises:
            ImagingError: The image cannot be shown (message for the preview pane).
        """
        ds = self.dataset(source)
        decoded = self.decoded(source, frame)
        choice = self._window(decoded, window)
        rendered = render_decoded(decoded, ds, window=choice, invert=invert, overlays=overlays)
        native = rendered.to_pil()
        if size is None:
            box, factor = (1 << 30, 1 << 30), 1.0
        else:
            box, factor = (max(1, size[0]), max(1, size[1])), max_factor
        port = viewport(
            rendered.columns,
            rendered.rows,
            box,
            aspect=rendered.pixel_aspect,
            zoom=zoom,
            center=center,
            max_factor=factor,
        )
        image = scale_image(native, port, smooth=smooth)
        annotations = replace(
            describe(ds),
            image_position=position,
            frame=(frame + 1, rendered.number_of_frames),
            window=rendered.voi.label if rendered.voi else "",
            preset=choice.label if isinstance(choice, WindowPreset) else "",
            zoom=port.zoom,
            lossy=lossy_description(ds),
            orientation=orientation_labels(decoded.view),
            size=(rendered.columns, rendered.rows),
        )
        return RenderResult(image, rendered, annotations, port)

    @staticmethod
    def _window(decoded: DecodedFrame, window: WindowChoice) -> Window | WindowPreset | None:
        if not isinstance(window, str):
            return window
        if "," in window:
            return parse_window(window)
        return find_preset(frame_presets(decoded), window)

    def thumbnail(self, source: ImageSource, size: tuple[int, int] = (96, 96)) -> Image.Image:
        """An image's middle frame fitted into ``size`` with its default window."""
        middle = self.frame_count(source) // 2
        return self.render(source, middle, size=size, overlays=False).image

    # -- series -----------------------------------------------------------------------------

    def series_images(self, series_instance_uid: str) -> list[InstanceSummary]:
        """The instances of an archived series in viewing order (instance number, arrival)."""
        if self.config is None:
            raise ImagingError("listing a series needs the archive's configuration")
        from tui_pacs.store import browse as store
        from tui_pacs.store.db import thread_connection

        try:
            with thread_connection(self._database()):
                return store.instances_of(series_instance_uid)
        except StoreError as exc:
            raise ImagingError(str(exc)) from None

    def series_thumbnail(
        self, series: SeriesSummary, size: tuple[int, int] = (96, 96)
    ) -> SeriesThumbnail:
        """The middle image of a series, fitted into ``size``, or the reason there is none."""
        try:
            images = self.series_images(series.series_instance_uid)
            if not images:
                return SeriesThumbnail(series, None, "no instances")
            return SeriesThumbnail(series, self.thumbnail(images[len(images) // 2], size))
        except ImagingError as exc:
            return SeriesThumbnail(series, None, exc.message)

    def study_thumbnails(
        self, study_instance_uid: str, size: tuple[int, int] = (96, 96)
    ) -> list[SeriesThumbnail]:
        """One thumbnail per series of an archived study, in series order."""
        if self.config is None:
            raise ImagingError("listing a study needs the archive's configuration")
        from tui_pacs.store import browse as store
        from tui_pacs.store.db import thread_connection

        with thread_connection(self._database()):
            series = store.series_of(study_instance_uid)
        return [self.series_thumbnail(s, size) for s in series]

    # -- waveforms --------------------------------------------------------------------------

    def waveform(self, source: ImageSource) -> Waveform:
        """The ECG (or other) waveform of an instance, ready to plot."""
        return ecg_leads(self.dataset(source))
