"""Corner annotations of a displayed image: who, when, which image, how it is displayed."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from tui_pacs.imaging.geometry import OrientationLabels


@dataclass(frozen=True, slots=True)
class ImageAnnotations:
    """Everything a viewer writes in the corners and at the edges of an image.

    Attributes:
        patient_name: Patient's Name (0010,0010), ``FAMILY, Given``.
        patient_id: Patient ID (0010,0020).
        study_date: Study Date (0008,0020) as ``YYYY-MM-DD``.
        study_description: Study Description (0008,1030).
        modality: Modality (0008,0060).
        series_number: Series Number (0020,0011), None when absent.
        series_description: Series Description (0008,103E).
        instance_number: Instance Number (0020,0013), None when absent.
        image_position: (k, N): the image's 1-based place in its series, when the caller knows it.
        frame: (k, N): 1-based frame of a multi-frame image.
        window: ``C 40 W 80`` or a VOI LUT's name; empty for colour.
        preset: The preset's label when one was chosen.
        zoom: Output pixels per native pixel.
        lossy: ``LOSSY 10:1 ISO_10918_1`` when the image was lossy compressed, else empty.
        orientation: Patient directions at the four edges.
        size: (columns, rows) native.
    """

    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    study_description: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    instance_number: int | None = None
    image_position: tuple[int, int] | None = None
    frame: tuple[int, int] = (1, 1)
    window: str = ""
    preset: str = ""
    zoom: float = 1.0
    lossy: str = ""
    orientation: OrientationLabels = field(default_factory=OrientationLabels)
    size: tuple[int, int] = (0, 0)

    def corners(self) -> dict[str, list[str]]:
        """The annotation lines per corner (``top_left`` ...), in reading order."""
        top_left = [x for x in (self.patient_name, self.patient_id) if x]
        top_right = [x for x in (self.study_date, self.study_description) if x]
        series = []
        if self.series_number is not None:
            series.append(f"Se {self.series_number}")
        if self.image_position:
            series.append(f"Im {self.image_position[0]}/{self.image_position[1]}")
        elif self.instance_number is not None:
            series.append(f"Im {self.instance_number}")
        if self.frame[1] > 1:
            series.append(f"Fr {self.frame[0]}/{self.frame[1]}")
        bottom_left = [" ".join(series)] if series else []
        if self.series_description:
            bottom_left.append(self.series_description)
        bottom_right = []
        if self.window:
            bottom_right.append(f"{self.window} ({self.preset})" if self.preset else self.window)
        bottom_right.append(f"Zoom {self.zoom:.2f}x")
        if self.lossy:
            bottom_right.append(self.lossy)
        return {
            "top_left": top_left,
            "top_right": top_right,
            "bottom_left": bottom_left,
            "bottom_right": bottom_right,
        }


def person_name(value: object) -> str:
    """A Person Name (PS3.5 6.2) as ``FAMILY, Given Middle``; other groups ignored."""
    if value is None or value == "":
        return ""
    pn = value if isinstance(value, PersonName) else PersonName(str(value))
    family = (pn.family_name or "").strip()
    rest = " ".join(p for p in (pn.given_name, pn.middle_name) if p).strip()
    if family and rest:
        return f"{family}, {rest}"
    return family or rest or str(pn).replace("^", " ").strip()


def dicom_date(value: object) -> str:
    """``YYYYMMDD`` as ``YYYY-MM-DD`` (anything else unchanged)."""
    text = str(value or "").strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def describe(ds: Dataset) -> ImageAnnotations:
    """The annotations that depend only on the data set (no window, zoom or geometry yet)."""
    return ImageAnnotations(
        patient_name=person_name(ds.get("PatientName")),
        patient_id=str(ds.get("PatientID", "") or ""),
        study_date=dicom_date(ds.get("StudyDate")),
        study_description=str(ds.get("StudyDescription", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        series_number=_int(ds.get("SeriesNumber")),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        instance_number=_int(ds.get("InstanceNumber")),
    )
