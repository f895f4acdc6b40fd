"""Declarative parameter constraints and the one error shape (usvpipe.constraints, usvpipe.errors)."""
from __future__ import annotations

import pytest

from usvpipe.config import params_from_mapping
from usvpipe.constraints import Interval, OneOf
from usvpipe.errors import ConfigError, InputFileError
from usvpipe.mmd import MMDParams
from usvpipe.pipeline import RunParams
from usvpipe.poise.params import PairsParams, PoiseParams
from usvpipe.segmentation import SegmentParams, SpectrogramParams, SyllableParams
from usvpipe.viz import UmapParams


def test_intervals_and_choices_accept_exactly_their_values():
    assert Interval(int, 1, None).accepts(1) and not Interval(int, 1, None).accepts(0)
    assert not Interval(int, 1, None).accepts(True) and not Interval(int, 1, None).accepts(2.5)
    unit = Interval(float, 0, 1, closed="neither")
    assert unit.accepts(0.5) and not unit.accepts(0) and not unit.accepts(1) and not unit.accepts(float("nan"))
    assert unit.describe() == "a number in (0, 1)" and Interval(int, 2, None).describe() == "an integer >= 2"
    assert OneOf("a", "b").accepts("a") and not OneOf("a", "b").accepts("c")


@pytest.mark.parametrize("make, path, reason", [
    (lambda: MMDParams(alpha=1.5), "[mmd].alpha", "1.5 is not a number in (0, 1)"),
    (lambda: MMDParams(unit="litter"), "[mmd].unit", "'litter' is not one of auto, animal, syllable"),
    (lambda: MMDParams(max_per_animal=1), "[mmd].max_per_animal", "1 is not an integer >= 2"),
    (lambda: UmapParams(n_neighbors=1), "[umap].n_neighbors", "1 is not an integer >= 2"),
    (lambda: RunParams(jobs=0), "[run].jobs", "0 is not an integer >= 1"),
    (lambda: params_from_mapping(MMDParams, {"permutations": 0}, section="mmd"), "[mmd].permutations", "0 is not"),
    (lambda: SegmentParams(threshold_mode="peak"), "[segment].threshold_mode", "'peak' is not one of noise, absolute"),
    (lambda: SegmentParams(high_threshold=10, low_threshold=12), "[segment].low_threshold", "12 is above high_threshold 10"),
    (lambda: SegmentParams(noise_max_frames=8), "[segment].noise_max_frames", "8 is not an integer >= 16"),
    (lambda: SyllableParams(shape=(128, 2)), "[syllables].shape", "(128, 2) is not two integers >= 4"),
    (lambda: SyllableParams(min_freq_hz=20_000.0).band(SpectrogramParams()), "[syllables].min_freq_hz",
     "the band 20000-110000 Hz is not inside the spectrogram band 30000-110000 Hz"),
    (lambda: SpectrogramParams(hop_s=0.004), "[spectrogram].hop_s", "0.004 is longer than window_s 0.002048"),
    (lambda: SpectrogramParams(window="nonsense"), "[spectrogram].window", "unknown window 'nonsense'"),
    (lambda: PoiseParams(gibbs_samples=1), "[poise].gibbs_samples", "1 is not an integer >= 2"),
    (lambda: PoiseParams(modality_dropout=0.5), "[poise].modality_dropout", "0.5 is not a number in [0, 0.5)"),
    (lambda: PairsParams(roi=(0, 0, 8)), "[poise_pairs].roi", "(0, 0, 8) is not (x, y, width, height)"),
])
def test_a_bad_parameter_names_its_section_and_field_with_a_fix(make, path, reason):
    with pytest.raises(ConfigError) as err:
        make()
    e = err.value
    assert e.path == path and e.reason.startswith(reason) and e.fix
    assert str(e) == f"{e.path}: {e.reason} (fix: {e.fix})"


def test_every_error_type_has_path_reason_fix():
    e = InputFileError("a.wav", "truncated WAV", "re-copy it")
    assert (e.path, e.reason, e.fix, str(e)) == ("a.wav", "truncated WAV", "re-copy it", "a.wav: truncated WAV (fix: re-copy it)")
    plain = ConfigError("one whole message")
    assert str(plain) == "one whole message" and plain.path is None and plain.reason == "one whole message"
    assert MMDParams(max_per_animal=None).max_per_animal is None  # None allowed where declared
