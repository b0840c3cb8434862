"""ECG waveforms decoded to labelled channels in physical units."""

from __future__ import annotations

import numpy as np
import pytest

from tests.imaging.synthetic import read
from tui_pacs.imaging.errors import WaveformError
from tui_pacs.imaging.waveform import decode_waveforms, ecg_leads


def test_twelve_lead_rhythm_in_microvolts() -> None:
    """waveform_ecg: 12 channels of 10,000 samples at 1 kHz; value = stored * sensitivity."""
    ds = read("waveform_ecg.dcm")
    group = ds.WaveformSequence[0]
    stored = np.frombuffer(group.WaveformData, "<i2").reshape(10000, 12)
    ecg = ecg_leads(ds)
    assert ecg.label == "RHYTHM" and ecg.sampling_frequency == 1000 and ecg.duration == 10
    assert len(ecg.channels) == 12
    assert [c.label for c in ecg.channels[:3]] == ["Lead I (Einthoven)", "Lead II", "Lead III"]
    assert {c.units for c in ecg.channels} == {"uV"}
    for k, channel in enumerate(ecg.channels):
        item = group.ChannelDefinitionSequence[k]
        factor = float(item.ChannelSensitivity) * float(item.ChannelSensitivityCorrectionFactor)
        expected = stored[:, k] * factor + float(item.ChannelBaseline)
        np.testing.assert_allclose(channel.samples, expected)
    assert ecg.channels[0].samples[0] == 100.0  # 80 * 1.25 uV
    assert ecg.times()[-1] == pytest.approx(9.999)


def test_both_multiplex_groups_and_errors() -> None:
    """The median beat is the second, derived group; an image has no waveform."""
    groups = decode_waveforms(read("waveform_ecg.dcm"))
    assert [(g.label, g.originality, g.number_of_samples) for g in groups] == [
        ("RHYTHM", "ORIGINAL", 10000),
        ("MEDIAN BEAT", "DERIVED", 1200),
    ]
    with pytest.raises(WaveformError):
        ecg_leads(read("CT_small.dcm"))
