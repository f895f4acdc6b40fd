"""What a design could have detected: the minimum detectable effect (MDE) and the planning curve.

A null result says "no difference found"; this package says how large a difference the
same design would have found 80 % of the time. Effects of known size are planted into the
user's own syllables — pitch and duration into the images (then encoded with the trained
model), usage by re-weighting each animal's syllables — in one of two random pseudo-groups
of the user's animals, and the report's animal-level MMD test is run on each such
experiment; the power is the share that rejects (Monte Carlo, seeded, with its standard
error). Nothing is computed from the observed p-value.

Layout
------
* ``params.py`` — :class:`PowerParams` (``[power]`` in usvpipe.toml);
* ``planting.py`` — pure planting functions (images -> images, shares -> shares);
* ``pilot.py`` — :class:`Pilot`, the validated syllables, animals and representation;
* ``animal_test.py`` — the report's test on cell sums of the kernel (one pass per size);
* ``designs.py`` — per kind: the cells of a planted size and an experiment's weights;
* ``search.py`` — power by Monte Carlo; the MDE by bracketing and bisection;
* ``sensitivity.py`` — :func:`minimum_detectable_effect`, :func:`sensitivity`;
* ``classical.py`` — the classical measures' own tests;
* ``curve.py`` — :func:`power_curve` (power against animals per group);
* ``io.py``, ``figures.py``, ``words.py`` — reading pilots, writing CSV/JSON/PNG, the report's words.
"""
from __future__ import annotations

from .curve import PowerCurve, power_curve
from .io import load_pilot, load_run_pilot, write_curve, write_sensitivity
from .params import KINDS, PowerParams
from .pilot import Pilot, build_pilot
from .search import MDE, PowerPoint
from .sensitivity import Sensitivity, minimum_detectable_effect, sensitivity
from .words import sensitivity_lines

__all__ = [
    "KINDS", "MDE", "Pilot", "PowerCurve", "PowerParams", "PowerPoint", "Sensitivity", "build_pilot", "load_pilot",
    "load_run_pilot", "minimum_detectable_effect", "power_curve", "sensitivity", "sensitivity_lines", "write_curve",
    "write_sensitivity",
]
