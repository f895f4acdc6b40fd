"""Parameters of the sensitivity analysis (``[power]`` in usvpipe.toml, ``usvpipe power`` options)."""
from __future__ import annotations

from dataclasses import dataclass

from ..constraints import Interval, OneOf, check_params, config_error

#: The kinds of difference a design's sensitivity is given for.
KINDS = ("pitch", "duration", "usage", "measures")


@dataclass(frozen=True)
class PowerParams:
    """How the minimum detectable effect (MDE) and the planning curve are estimated.

    Every number below is a count, not a time limit, so a seed gives the same answer on
    any machine; the time it takes is reported beside the result.

    Attributes
    ----------
    enabled : bool
        Run the sensitivity analysis in ``usvpipe run`` when the group test does not
        reject (default true; false skips it, e.g. for a quick re-run).
    kinds : tuple of str
        Kinds of difference to plant: ``pitch`` (every call of one pseudo-group moved up in
        frequency, whole image rows), ``duration`` (calls drawn longer), ``usage`` (one
        region of the latent space used more often), ``measures`` (the classical measures'
        own tests).
    power : float
        The power the MDE is quoted at (0.8: the convention of study planning).
    draws : int
        Monte Carlo draws (random pseudo-group splits) per effect size. 200 gives a
        standard error of at most 0.035 on a power, 0.028 at 0.8; one draw costs
        milliseconds because the kernel sums are computed once per effect size.
    bracket_steps : int
        Effect sizes tried while doubling from the smallest one until the power passes
        ``power`` (pitch: 1, 2, 4, … image rows; duration: 5, 10, 20, … %; usage: 2.5,
        5, 10, … percentage points; measures: 0.25, 0.5, 1, … between-animal SDs).
    bisection_steps : int
        Halvings of the bracket that holds the MDE after the doubling (each costs one
        encoding of the planted images for pitch and duration). The MDE is then
        interpolated linearly inside the last bracket.
    max_syllables_per_animal : int
        At most this many syllables per animal (a seeded random subset) enter the
        sensitivity analysis, which bounds its time for long recordings. With fewer
        syllables than the test used, the MDE is, if anything, a little too large
        (conservative).
    n_clusters : int
        Regions of the latent space for the ``usage`` kind: k-means clusters of the pooled
        latents (6: about the number of call types of the published mouse USV
        classifications). In each draw one cluster, chosen at random, gets the extra use.
    permutations : int
        Random splits of animals per test when there are more than ``max_exact_splits``
        (199 random splits decide p <= 0.05 with a Monte Carlo error of at most 0.015).
    max_exact_splits : int
        Every split of the animals is enumerated when there are at most this many (the
        planted tests are then exactly the report's test).
    animals : str
        Comma-separated animals per group for ``usvpipe power``'s planning curve
        (``"3,4,5,6,8,10,12,16"``).
    seed : int
        Seed of the pseudo-group splits, the syllable subsets and the clusters.
    """

    enabled: bool = True
    kinds: tuple[str, ...] = KINDS
    power: float = 0.8
    draws: int = 200
    bracket_steps: int = 6
    bisection_steps: int = 3
    max_syllables_per_animal: int = 300
    n_clusters: int = 6
    permutations: int = 199
    max_exact_splits: int = 20_000
    animals: str = "3,4,5,6,8,10,12,16"
    seed: int = 0

    _constraints = {
        "enabled": [OneOf(True, False)],
        "power": [Interval(float, 0, 1, closed="neither")],
        "draws": [Interval(int, 10, None)],
        "bracket_steps": [Interval(int, 1, 12)],
        "bisection_steps": [Interval(int, 0, 10)],
        "max_syllables_per_animal": [Interval(int, 5, None)],
        "n_clusters": [Interval(int, 2, 50)],
        "permutations": [Interval(int, 19, None)],
        "max_exact_splits": [Interval(int, 0, None)],
        "seed": [Interval(int, 0, None)],
    }

    def __post_init__(self):
        check_params(self, "power")
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise config_error("power", "kinds", f"{', '.join(unknown) or 'nothing'} is not a kind of difference",
                               f"use some of {', '.join(KINDS)}")
        object.__setattr__(self, "kinds", kinds)
        self.animal_counts()  # a bad list fails here, not after minutes of work

    def animal_counts(self) -> tuple[int, ...]:
        """``animals`` as sorted integers >= 2."""
        try:
            counts = sorted({int(x) for x in str(self.animals).split(",") if x.strip()})
        except ValueError:
            counts = []
        if not counts or counts[0] < 2:
            raise config_error("power", "animals", f"{self.animals!r} is not a list of animals per group >= 2",
                               "give numbers such as 4,6,8,12")
        return tuple(counts)
