"""Syllables whose latents lie far outside the prior: unlike the rest of the store.

The KL term of the ELBO keeps the posterior means of a store's syllables spread roughly
like the prior, ``N(0, I)``. A syllable whose mean lies many prior standard deviations out
along some dimension is one the model could only describe by extrapolating: a call of
another species, a recording set-up seen nowhere else, a click or a burst of noise. Its
place in a UMAP picture and what a read-out predicts for it are extrapolations too. On the
real store (benchmarks/vae-readout-and-atypical.md) the syllables farthest out in every trained model were those of
the one deer-mouse recording among the laboratory-mouse ones.

Such syllables are flagged, never dropped: a new kind of call may be the finding.
"""
from __future__ import annotations

import numpy as np

#: A posterior mean beyond this many prior s.d. along any dimension flags the syllable. Under
#: the prior one dimension exceeds it with probability 5.7e-7, so among 32 dimensions and a
#: million syllables about 18 flags would be chance.
ATYPICAL_PRIOR_SD = 5.0

#: ``latents.csv`` column: 1 where the syllable's latents are atypical (see above).
ATYPICAL_COLUMN = "latent_atypical"


def atypical_latents(z: np.ndarray, threshold: float = ATYPICAL_PRIOR_SD) -> np.ndarray:
    """Boolean mask of the rows of ``z`` (``(n, k)`` posterior means) with some ``|z| > threshold``."""
    z = np.asarray(z, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"latents must be a 2-d array (syllables x dimensions), got shape {z.shape}")
    return (np.abs(z) > threshold).any(axis=1)


def describe_atypical(recordings, flagged: np.ndarray) -> str:
    """One sentence on the flagged syllables ("" when there are none).

    ``recordings``: each syllable's recording, in the order of ``flagged``. A recording most
    of whose syllables are flagged is named first: it is most likely unlike the others as a whole.
    """
    flagged = np.asarray(flagged, dtype=bool)
    n_flagged = int(flagged.sum())
    if not n_flagged:
        return ""
    names, which, total = np.unique(np.asarray(recordings).astype(str), return_inverse=True, return_counts=True)
    hit = np.bincount(which.ravel(), weights=flagged, minlength=len(names)).astype(int)
    first = min(np.flatnonzero(hit), key=lambda i: (-hit[i] / total[i], -hit[i], names[i]))
    share = f"{hit[first]} of its {total[first]}"
    return (f"{n_flagged} of {len(flagged)} syllables (in {np.count_nonzero(hit)} recording(s); most: {names[first]}, "
            f"{share}) have "
            f"latents more than {ATYPICAL_PRIOR_SD:g} prior s.d. out: unlike the rest of the store (another species, "
            f"set-up or noise?), so their UMAP positions and read-outs are extrapolations (column {ATYPICAL_COLUMN}; "
            "fix: listen to them, and leave them out or train on more like them if they are not what you study)")
