from usvpipe.power.words import sensitivity_lines


def _sens(**kw):
    d = {"groups": ["deaf", "hearing"], "n_animals": {"deaf": 6, "hearing": 6}, "alpha": 0.05, "target": 0.8,
         "latent": [{"kind": "pitch", "unit": "kHz", "mde": 3.1, "mde_se": 0.2, "mde_sd": 0.6},
                    {"kind": "usage", "unit": "percentage points", "mde": 9.0, "mde_se": 1.1, "mde_sd": None}],
         "measures": [{"kind": "measures", "measure": "mean_freq_khz", "unit": "mean frequency (kHz)", "mde": 2.5,
                       "mde_sd": 1.4}]}
    d.update(kw)
    return d


def test_the_sentence_names_the_design_each_mde_its_unit_and_what_cannot_be_ruled_out():
    first, classical = sensitivity_lines(_sens())
    assert "6 + 6 animals" in first and "α = 0.05" in first
    assert "pitch shift of ≥ 3.1 kHz (0.6 SD" in first and "a 9-point change in the use of one call cluster" in first
    assert "80 % of the time" in first and "smaller effects cannot be ruled out" in first
    assert "±0.2 kHz" in first
    assert "mean frequency (kHz) ≥ 2.5 (1.4 SD)" in classical


def test_an_effect_never_reached_is_said_so_and_nothing_is_said_without_a_result():
    sens = _sens(latent=[{"kind": "duration", "unit": "%", "mde": None, "largest_tried": {"effect": 160.0, "power": 0.4}}],
                 measures=[])
    (line,) = sensitivity_lines(sens)
    assert line.startswith("A duration change of 160 %, the largest tried, was detected only 40 % of the time")
    assert "cannot promise to detect a duration difference" in line
    assert sensitivity_lines(None) == [] and sensitivity_lines({"latent": [], "measures": []}) == []
