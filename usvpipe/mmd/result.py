"""What the MMD stage returns and writes: :class:`MMDResult` (report.json, CSV tables, figures)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np


@dataclass
class MMDResult:
    """Result of :func:`mmd_test`; ``save(out_dir)`` writes the report and figures.

    Attributes
    ----------
    statistic : float
        Observed MMD² (float64) at the primary bandwidth (the median one for ``agg``).
    p_value : float
        Permutation p-value for the chosen unit of exchangeability (aggregated over
        bandwidths for ``agg``).
    unit, weighting : str
        Unit of exchangeability and within-group weighting actually used.
    exact : bool
        Whether every split of animals was enumerated (then ``n_permutations`` is the
        number of splits and the p-value has no Monte Carlo error).
    min_attainable_p : float
        Smallest p-value this design can produce.
    null : ndarray
        Null MMD² values at the primary bandwidth (the observed split excluded for
        Monte Carlo draws; all splits for exact enumeration).
    pairwise : pandas.DataFrame
        Unbiased (or biased) MMD² between every pair of animals (square, labelled).
    per_animal : pandas.DataFrame
        Per animal: group, syllables, mean MMD² to the other animals of its own group
        and to the animals of the other group.
    syllable_view : dict or None
        The syllable-unit test (secondary view; anticonservative with animal effects).
    latent_health : dict or None
        The training health of the model that made the latents (``train.json["health"]``),
        ``None`` when unknown.
    interpretable : bool
        False when the latents failed the health check: then ``do_not_interpret`` says why
        and how to fix it, and no difference may be stated from this test.
    second_opinion : list of dict
        The same test on other representations (classical measures, PCA of the images),
        see :mod:`usvpipe.mmd.trust`.
    latent_readout : list of dict
        How well the latents carry the syllables' duration and frequencies against a PCA of
        the same images, as ``usvpipe encode`` measured it (:mod:`usvpipe.vae.readout`);
        empty when unknown.
    """

    statistic: float
    p_value: float
    reject: bool
    alpha: float
    unit: str
    weighting: str
    statistic_kind: str
    kernel: str
    bandwidths: list
    primary_bandwidth: float
    bandwidth_rule: str
    statistics_per_bandwidth: list
    p_values_per_bandwidth: list
    exact: bool
    n_permutations: int
    n_splits: Optional[int]
    min_attainable_p: float
    p_value_mc_se: float
    p_value_ci95: tuple
    z_score: float
    null: np.ndarray
    groups: tuple
    group_col: str
    n_syllables: dict
    n_animals: dict
    features: list
    pairwise: Any
    per_animal: Any
    syllable_view: Optional[dict]
    params: dict
    source: str
    backend: str
    version: str = ""
    notes: list = field(default_factory=list)
    latent_health: Optional[dict] = None
    interpretable: bool = True
    do_not_interpret: str = ""
    second_opinion: list = field(default_factory=list)
    latent_readout: list = field(default_factory=list)

    @property
    def aggregated(self) -> bool:
        """Whether the p-value aggregates several bandwidths (MMDAgg) rather than being the MMD²'s alone."""
        return len(self.bandwidths) > 1

    def to_dict(self) -> dict:
        """JSON-ready report (without the large arrays)."""
        keys = ["statistic", "p_value", "reject", "alpha", "unit", "weighting", "statistic_kind", "kernel",
                "bandwidths", "primary_bandwidth", "bandwidth_rule", "statistics_per_bandwidth",
                "p_values_per_bandwidth", "exact", "n_permutations", "n_splits", "min_attainable_p",
                "p_value_mc_se", "p_value_ci95", "z_score", "groups", "group_col", "n_syllables", "n_animals",
                "features", "syllable_view", "params", "source", "backend", "version", "notes",
                "latent_health", "interpretable", "do_not_interpret", "second_opinion", "latent_readout"]
        out = {k: getattr(self, k) for k in keys}
        out["groups"] = list(self.groups)
        out["p_value_ci95"] = list(self.p_value_ci95)
        if self.pairwise is not None:
            out["pairwise_mmd2"] = {str(r): {str(c): (None if not np.isfinite(v) else float(v)) for c, v in row.items()}
                                    for r, row in self.pairwise.iterrows()}
        return out

    def save(self, out_dir, *, figures: bool = True) -> dict:
        """Write report.json, null_distribution.csv, pairwise_mmd2.csv, per_animal.csv and figures.

        Returns a dict name -> path of the files written (all written atomically).
        """
        import pandas as pd

        from .._io import ensure_output_dir, write_csv_atomic, write_json_atomic

        out = ensure_output_dir(out_dir)
        paths = {}
        paths["report"] = write_json_atomic(out / "report.json", self.to_dict())
        paths["null"] = write_csv_atomic(out / "null_distribution.csv",
                                         pd.DataFrame({"draw": np.arange(len(self.null)), "mmd2": self.null}))
        if self.pairwise is not None:
            label = self.params.get("animal_col", "animal") if self.per_animal is not None else self.group_col
            paths["pairwise"] = write_csv_atomic(out / "pairwise_mmd2.csv", self.pairwise, index=True,
                                                 index_label=label)
        if self.per_animal is not None:
            paths["per_animal"] = write_csv_atomic(out / "per_animal.csv", self.per_animal)
        if figures:
            from .figures import _save_figures

            paths.update(_save_figures(self, out))
        return {k: Path(v) for k, v in paths.items()}
