"""Waveforms (PS3.3 C.10.9 Waveform Module), e.g. the 12-lead ECG (A.34.3), as sample arrays.

pydicom's ``Dataset.waveform_array`` decodes a multiplex group and applies Channel Sensitivity,
its Correction Factor and Channel Baseline (C.10.9.1.4.3); the glue here labels each channel
(Channel Source Sequence, C.10.9.1.4.1) and gives its unit (Channel Sensitivity Units Sequence,
UCUM), so a plot needs nothing else.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from tui_pacs.imaging.errors import WaveformError


@dataclass(frozen=True, slots=True, eq=False)
class WaveformChannel:
    """One channel (e.g. ``Lead II``) of a multiplex group.

    Attributes:
        label: Channel Label (003A,0203), else the Channel Source code meaning.
        units: UCUM code of the sample values (``uV``, ``mV``), empty when not given.
        samples: float64 values in ``units`` (sensitivity and baseline applied).
    """

    label: str
    units: str
    samples: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class Waveform:
    """One multiplex group (C.10.9.1): channels sampled together.

    Attributes:
        label: Multiplex Group Label (003A,0020), e.g. ``RHYTHM``.
        sampling_frequency: Samples per second (003A,001A).
        channels: The channels in file order.
        originality: ``ORIGINAL`` or ``DERIVED`` (003A,0004), e.g. a median beat is derived.
    """

    label: str
    sampling_frequency: float
    channels: tuple[WaveformChannel, ...]
    originality: str = ""

    @property
    def number_of_samples(self) -> int:
        return int(self.channels[0].samples.size) if self.channels else 0

    @property
    def duration(self) -> float:
        """Seconds covered by the group."""
        if not self.sampling_frequency:
            return 0.0
        return self.number_of_samples / self.sampling_frequency

    def times(self) -> np.ndarray:
        """Sample times in seconds from the group's start."""
        return np.arange(self.number_of_samples, dtype=np.float64) / (
            self.sampling_frequency or 1.0
        )


def _channel_label(item: Dataset, number: int) -> str:
    label = str(item.get("ChannelLabel", "") or "").strip()
    if label:
        return label
    source = item.get("ChannelSourceSequence")
    if source:
        meaning = str(source[0].get("CodeMeaning", "") or "").strip()
        if meaning:
            return meaning
    return f"Channel {number}"


def _channel_units(item: Dataset) -> str:
    units = item.get("ChannelSensitivityUnitsSequence")
    if units:
        return str(units[0].get("CodeValue", "") or "").strip()
    return ""


def decode_waveforms(ds: Dataset) -> list[Waveform]:
    """Every multiplex group of the Waveform Sequence (5400,0100), decoded and labelled.

    Raises:
        WaveformError: No Waveform Sequence, or a group cannot be decoded.
    """
    groups = ds.get("WaveformSequence")
    if not groups:
        raise WaveformError("this instance holds no waveform (no Waveform Sequence)")
    found = []
    for index, group in enumerate(groups):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = ds.waveform_array(index)
        except Exception as exc:  # pydicom raises several types on malformed groups
            raise WaveformError(f"waveform group {index + 1} cannot be decoded: {exc}") from None
        items = list(group.get("ChannelDefinitionSequence") or [])
        channels = tuple(
            WaveformChannel(
                _channel_label(items[c], c + 1) if c < len(items) else f"Channel {c + 1}",
                _channel_units(items[c]) if c < len(items) else "",
                np.ascontiguousarray(data[:, c]),
            )
            for c in range(data.shape[1])
        )
        found.append(
            Waveform(
                label=str(group.get("MultiplexGroupLabel", "") or f"Group {index + 1}"),
                sampling_frequency=float(group.get("SamplingFrequency", 0) or 0),
                channels=channels,
                originality=str(group.get("WaveformOriginality", "") or ""),
            )
        )
    return found


def ecg_leads(ds: Dataset) -> Waveform:
    """The rhythm (ORIGINAL) group of an ECG: the one a 12-lead plot shows.

    Raises:
        WaveformError: The instance holds no waveform.
    """
    groups = decode_waveforms(ds)
    for group in groups:
        if group.originality.upper() == "ORIGINAL":
            return group
    return groups[0]
