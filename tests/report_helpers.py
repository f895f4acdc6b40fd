"""An MMD result as the report reads it (``report.json``'s fields), for the answer and report tests."""
from __future__ import annotations


def _mmd(**kw):
    d = {"statistic": 0.0123, "p_value": 0.002, "reject": True, "alpha": 0.05, "unit": "animal", "exact": True,
         "n_permutations": 924, "n_splits": 924, "min_attainable_p": 2 / 924, "groups": ["deaf", "hearing"],
         "n_animals": {"deaf": 6, "hearing": 6}, "n_syllables": {"deaf": 12034, "hearing": 11210}}
    d.update(kw)
    return d
