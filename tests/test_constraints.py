"""Declarative parameter constraints and the one error shape (usvpipe.constraints, usvpipe.errors)."""
from __future__ import annotations

import pytest

from usvpipe.config import params_from_mapping
from usvpipe.constraints import Interval, OneOf
from usvpipe.errors import ConfigError, InputFileError
from usvpipe.mmd import MMDParams
from usvpipe.pipeline import RunParams
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
