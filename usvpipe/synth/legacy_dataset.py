"""The sweep world's multi-group, multi-animal dataset writer (:func:`make_dataset`).

Split from :mod:`usvpipe.synth.legacy` (one concern each: calls and recordings there, the
animals, their assignment to groups and the files here). Outputs are unchanged.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .legacy import SHAPE_PARAMS, synth_recording

def _check_dataset_args(groups, animals_per_group: int, recordings_per_animal: int, **numbers) -> list[str]:
    """Validate :func:`make_dataset`'s arguments (a ConfigError naming the bad one); returns the group names."""
    import math

    for name, v in numbers.items():
        if v is not None and not math.isfinite(float(v)):
            raise ConfigError(f"{name} must be a finite number, got {v!r}")
    if not (numbers["duration_s"] > 0 and numbers["sample_rate_hz"] > 0 and numbers["call_rate_hz"] >= 0):
        raise ConfigError("duration_s and sample_rate_hz must be > 0 and call_rate_hz >= 0")
    groups = [str(g) for g in groups]
    if len(groups) < 1 or len(set(groups)) != len(groups) or any(not g or "/" in g for g in groups):
        raise ConfigError(f"groups must be distinct non-empty names without '/', got {groups}")
    if animals_per_group < 1 or recordings_per_animal < 1:
        raise ConfigError("animals_per_group and recordings_per_animal must be >= 1")
    if numbers["animal_sd"] < 0:
        raise ConfigError(f"animal_sd must be >= 0, got {numbers['animal_sd']}")
    balance = numbers.get("balance_se")
    if balance is not None and (balance <= 0 or len(groups) < 2):
        raise ConfigError(f"balance_se must be > 0 and needs at least two groups, got {balance} with {len(groups)} group(s)")
    return groups


#: How many random assignments :func:`balanced_assignment` tries before it gives up. At
#: ``max_se = 1`` with six shape parameters and two groups about one in ten is accepted.
MAX_BALANCE_TRIES = 10_000


def offset_imbalance_se(offsets: np.ndarray, n_groups: int, animal_sd: float) -> float:
    """Largest difference between two groups' mean animal offsets, over shape parameters, in standard errors.

    ``offsets`` has one row per animal, in group order (``n_groups`` equal blocks). Under the
    generator (offsets ~ N(0, animal_sd)) each group-pair difference of means has standard
    error ``animal_sd * sqrt(2 / animals_per_group)``, so the value is a |z| statistic.
    """
    per_group = offsets.shape[0] // n_groups
    if animal_sd <= 0 or per_group < 1:
        return 0.0
    means = offsets.reshape(n_groups, per_group, -1).mean(axis=1)
    diffs = np.abs(means[:, None, :] - means[None, :, :])
    return float(diffs.max() / (animal_sd * math.sqrt(2.0 / per_group)))


def balanced_assignment(offsets: np.ndarray, n_groups: int, animal_sd: float, max_se: float, rng) -> np.ndarray:
    """An order of the animals whose groups differ by at most ``max_se`` standard errors in every offset.

    Rerandomisation (Morgan & Rubin 2012, Ann. Stat. 40:1263): the identity order is kept when
    it is balanced already; otherwise random orders are drawn until one is. It makes a planted
    group shift the only systematic difference between the groups, and it makes a test over
    all splits of the animals conservative on such data, which is why it is an option.
    """
    order = np.arange(offsets.shape[0])
    for _ in range(MAX_BALANCE_TRIES):
        if offset_imbalance_se(offsets[order], n_groups, animal_sd) <= max_se:
            return order
        order = rng.permutation(offsets.shape[0])
    raise ConfigError("balance_se", f"no assignment of the animals to groups within {max_se} standard errors in "
                      f"{MAX_BALANCE_TRIES} tries", "use a larger balance_se (1.0 accepts about one in ten) or more animals")


def _draw_animals(seed: int, n_animals: int, n_groups: int, animal_sd: float, balance_se):
    """Each animal's random stream and offset, and the order in which they fill the groups' slots."""
    root = np.random.SeedSequence(int(seed))
    seqs = root.spawn(n_animals)
    offsets = np.array([np.random.default_rng(seq).normal(0.0, animal_sd, len(SHAPE_PARAMS)) if animal_sd > 0
                        else np.zeros(len(SHAPE_PARAMS)) for seq in seqs])
    order = np.arange(n_animals)
    if balance_se is not None:
        # spawned after the animals' streams, so each animal's calls stay what they were
        order = balanced_assignment(offsets, n_groups, animal_sd, balance_se, np.random.default_rng(root.spawn(1)[0]))
    return seqs, offsets, order


def _write_recording(wav: Path, audio: np.ndarray, truth: pd.DataFrame, sample_rate_hz: float) -> None:
    """A 16-bit WAV (peak-normalised to 0.9 only if it would clip) and its truth table, each atomically."""
    import soundfile as sf

    from .._io import atomic_path, write_csv_atomic

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.9:
        audio = audio * (0.9 / peak)
    with atomic_path(wav) as tmp:
        sf.write(tmp, audio, int(sample_rate_hz), subtype="PCM_16", format="WAV")
    write_csv_atomic(wav.with_suffix(".truth.csv"), truth)


def make_dataset(
    out_dir,
    *,
    groups: Sequence[str] = ("A", "B"),
    animals_per_group: int = 4,
    recordings_per_animal: int = 1,
    duration_s: float = 20.0,
    group_shift: float = 1.0,
    animal_sd: float = 0.3,
    snr_db: float = 20.0,
    sample_rate_hz: float = 250_000,
    seed: int = 0,
    call_rate_hz: float = 2.0,
    low_freq_noise_db: float | None = 10.0,
    balance_se: float | None = None,
) -> pd.DataFrame:
    """Write a synthetic multi-group, multi-animal dataset with ground truth.

    Group ``k`` (0-based, in the order given) has a latent shift of ``k * group_shift``
    SDs on every shape parameter; each animal adds its own fixed offset drawn from
    ``N(0, animal_sd)`` per shape parameter. With ``balance_se``, the drawn animals are
    assigned to groups by rerandomisation (:func:`balanced_assignment`): every shape
    parameter's group means of the offsets then differ by at most that many standard errors,
    so with ``group_shift = 0`` the groups have no difference to find and with a shift the
    shift is the only one. ``synth.json`` records the assignment and its imbalance.

    Layout::

        out_dir/metadata.csv                 path,animal,group (path relative to out_dir)
        out_dir/synth.json                   parameters, usvpipe version, animal offsets
        out_dir/<group>/<animal>/<animal>_rec<k>.wav         16-bit PCM
        out_dir/<group>/<animal>/<animal>_rec<k>.truth.csv   onset_s,offset_s + call params

    Animal ids are ``<group><nn>`` (e.g. ``A01``), unique across groups. Recordings are
    peak-normalised to 0.9 only if they would clip (SNR is unaffected). All files are
    written atomically; the output is deterministic given ``seed``.

    Returns
    -------
    pandas.DataFrame
        ``path`` (absolute), ``animal``, ``group`` — one row per WAV.
    """
    from .._io import ensure_output_dir, write_csv_atomic, write_json_atomic
    from .._version import __version__

    groups = _check_dataset_args(groups, animals_per_group, recordings_per_animal, duration_s=duration_s,
                                 group_shift=group_shift, animal_sd=animal_sd, snr_db=snr_db,
                                 sample_rate_hz=sample_rate_hz, call_rate_hz=call_rate_hz,
                                 low_freq_noise_db=low_freq_noise_db, balance_se=balance_se)
    out = ensure_output_dir(out_dir)
    animal_seqs, offsets, order = _draw_animals(seed, len(groups) * animals_per_group, len(groups), animal_sd, balance_se)
    rows, animals_meta = [], []
    for gi, group in enumerate(groups):
        for ai in range(animals_per_group):
            animal = f"{group}{ai + 1:02d}"
            drawn = int(order[gi * animals_per_group + ai])
            seq, offset = animal_seqs[drawn], offsets[drawn]
            animals_meta.append({"animal": animal, "group": group, "group_shift_sd": gi * group_shift,
                                 "offset_sd": dict(zip(SHAPE_PARAMS, offset.tolist()))})
            for ri, rec_seq in enumerate(seq.spawn(recordings_per_animal)):
                audio, truth = synth_recording(
                    duration_s, sample_rate_hz, snr_db=snr_db, call_rate_hz=call_rate_hz,
                    group_shift=gi * group_shift, animal_offset=offset,
                    seed=np.random.default_rng(rec_seq), low_freq_noise_db=low_freq_noise_db,
                )
                rel = Path(group) / animal / f"{animal}_rec{ri + 1}.wav"
                _write_recording(out / rel, audio, truth, sample_rate_hz)
                rows.append({"path": rel.as_posix(), "animal": animal, "group": group})
    meta = pd.DataFrame(rows, columns=["path", "animal", "group"])
    write_csv_atomic(out / "metadata.csv", meta)
    write_json_atomic(out / "synth.json", {
        "usvpipe_version": __version__,
        "generator": "usvpipe.synth.make_dataset",
        "params": {"groups": groups, "animals_per_group": animals_per_group,
                   "recordings_per_animal": recordings_per_animal, "duration_s": duration_s,
                   "group_shift": group_shift, "animal_sd": animal_sd, "snr_db": snr_db,
                   "sample_rate_hz": sample_rate_hz, "seed": seed, "call_rate_hz": call_rate_hz,
                   "low_freq_noise_db": low_freq_noise_db, "balance_se": balance_se},
        "offset_imbalance_se": offset_imbalance_se(offsets[order], len(groups), animal_sd),
        "assignment": "rerandomised (balance_se)" if balance_se is not None else "in drawing order",
        "snr_definition": "per call: call mean square over [onset, offset] / noise power in 30-110 kHz, "
                          "snr_db + 20 log10(amplitude)",
        "animals": animals_meta,
    })
    result = meta.copy()
    result["path"] = [str((out / p).resolve()) for p in meta["path"]]
    return result
