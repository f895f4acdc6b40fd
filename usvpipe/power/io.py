"""Reading a pilot (a run folder, or a store and a model) and writing the sensitivity and the planning curve.

Everything written goes through :mod:`usvpipe._io` (temporary file + rename).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .. import _io
from ..errors import InputFileError, UsvpipeError
from ..mmd.params import MMDParams
from .pilot import Pilot, build_pilot

#: what a sensitivity run writes into its folder
SENSITIVITY_JSON, SENSITIVITY_CSV, SENSITIVITY_PNG = "sensitivity.json", "sensitivity.csv", "sensitivity.png"


def model_encoder(model_path, device: str = "cpu", batch_size: int = 512):
    """An encoder (images (n, H, W) in [0, 1] -> posterior means) from a trained VAE checkpoint."""
    import torch

    from ..vae.encoding import load_model

    model = load_model(model_path, device)

    def encode(images: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size], dtype=np.float32))[:, None]
                out.append(model.encode(x.to(next(model.parameters()).device))[0].float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, model.latent_dim), np.float32)

    encode.input_shape = tuple(model.input_shape)
    return encode


def _frequency_axis(store) -> tuple[Optional[float], bool]:
    """(image rows per kHz, time stretch) from the store's parameters (None when they are not recorded)."""
    from .planting import rows_per_khz

    params = store.params or {}
    syl, spec = params.get("syllables") or {}, params.get("spectrogram") or {}
    lo = syl.get("min_freq_hz") or spec.get("min_freq_hz")
    hi = syl.get("max_freq_hz") or spec.get("max_freq_hz")
    try:
        rpk = rows_per_khz(float(lo), float(hi), int(store.spec_shape[0]))
    except (TypeError, ValueError, IndexError):
        rpk = None
    return rpk, bool(syl.get("time_stretch", True))


def load_pilot(store_dir, model_path, *, a: Optional[str] = None, b: Optional[str] = None, group_col: str = "group",
               animal_col: str = "animal", mmd: MMDParams = MMDParams(), measures_csv=None, max_per_animal: int = 300,
               seed: int = 0, device: str = "cpu") -> Pilot:
    """A :class:`Pilot` from a syllable store and the model trained on it (groups ``a``/``b``: the two present)."""
    import pandas as pd

    from ..store import open_store

    store = open_store(store_dir)
    store.require_syllables()
    table = store.table
    for col in (group_col, animal_col):
        if col not in table.columns:
            raise InputFileError(store.path, f"the syllable table has no {col!r} column",
                                 "segment with animals and groups (folder layout group/animal/*.wav or a metadata CSV)")
    groups = table[group_col].fillna("").astype(str)
    present = sorted(groups.unique())
    if a is None or b is None:
        if len(present) != 2:
            raise InputFileError(store.path, f"{len(present)} groups ({', '.join(present[:6])})", "name two with --a and --b")
        a, b = present
    for g in (a, b):
        if g not in present:
            raise InputFileError(store.path, f"group {g!r} is not in the store (groups: {', '.join(present[:6])})",
                                 "pick --a/--b from the store's groups")
    encoder = model_encoder(model_path, device)
    if tuple(store.spec_shape) != tuple(encoder.input_shape):
        raise InputFileError(store.path, f"images are {tuple(store.spec_shape)} but the model expects "
                             f"{tuple(encoder.input_shape)}", "pass the model trained on this store")
    rpk, stretch = _frequency_axis(store)
    per_animal = _read_measures(measures_csv, animal_col) if measures_csv else None
    images = store.read_all(dtype=np.uint8)
    mean_freq = table["mean_freq_hz"].to_numpy(float) / 1e3 if "mean_freq_hz" in table.columns else None
    return build_pilot(images, table[animal_col].fillna("").astype(str).to_numpy(), groups.to_numpy(), encoder, a=a, b=b,
                       mmd=mmd, rows_per_khz=rpk, time_stretch=stretch, mean_freq_khz=mean_freq, measures=per_animal,
                       max_per_animal=max_per_animal, seed=seed, source=str(store.path))


def _read_measures(path, animal_col: str):
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={animal_col: str, "group": str})
    except (OSError, ValueError):
        return None
    return frame.rename(columns={animal_col: "animal"}) if animal_col in frame.columns else None


def load_run_pilot(run_dir, *, max_per_animal: int = 300, seed: int = 0, device: str = "cpu") -> Pilot:
    """A :class:`Pilot` from a ``usvpipe run`` folder: its store, model, the groups and test of its report."""
    from ..config import params_from_mapping

    run_dir = Path(run_dir)
    for need, fix in (("store", "run the segment stage"), ("model/model.pt", "run the train stage")):
        if not (run_dir / need).exists():
            raise InputFileError(run_dir, f"no {need} in this run folder", f"{fix} first, or pass a store with --model")
    report = {}
    try:
        report = _io.read_json(run_dir / "mmd" / "report.json")
    except (OSError, ValueError):
        pass
    params = report.get("params") or {}
    known = {k: v for k, v in params.items() if k in MMDParams.__dataclass_fields__}
    mmd = params_from_mapping(MMDParams, known, section="mmd") if known else MMDParams()
    groups = report.get("groups") or [None, None]
    return load_pilot(run_dir / "store", run_dir / "model" / "model.pt", a=groups[0], b=groups[1],
                      group_col=report.get("group_col", "group"), animal_col=mmd.animal_col, mmd=mmd,
                      measures_csv=run_dir / "measures" / "measures_per_animal.csv", max_per_animal=max_per_animal,
                      seed=seed, device=device)


def sensitivity_table(sens) -> "pd.DataFrame":
    """One row per (kind, effect size tried): the power and its Monte Carlo error; the MDE rows marked."""
    import pandas as pd

    rows = []
    for m in list(sens.latent) + list(sens.measures):
        for p in m.points:
            size = p.size * m.sd if m in sens.measures else p.size  # measures are searched in SDs
            rows.append({"kind": "measures" if m in sens.measures else m.kind, "measure": m.kind if m in sens.measures else "",
                         "unit": m.unit, "effect": size, "effect_sd": (size / m.sd) if m.sd else np.nan,
                         "power": p.power, "power_se": p.se, "draws": p.draws, "mde": m.value, "mde_se": m.se})
    return pd.DataFrame(rows)


def sensitivity_dict(sens) -> dict:
    def one(m, measure):
        return {"kind": "measures" if measure else m.kind, "measure": m.kind if measure else None, "unit": m.unit,
                "target": m.target, "mde": m.value, "mde_se": m.se, "sd": m.sd,
                "mde_sd": (m.value / m.sd) if (m.value is not None and m.sd) else None, "seconds": round(m.seconds, 3),
                "largest_tried": {"effect": m.largest_tried.size * (m.sd if measure else 1.0),
                                  "power": m.largest_tried.power}}

    return {"groups": list(sens.groups), "n_animals": sens.n_animals, "n_syllables": sens.n_syllables,
            "alpha": sens.alpha, "target": sens.target, "latent": [one(m, False) for m in sens.latent],
            "measures": [one(m, True) for m in sens.measures], "params": sens.params,
            "seconds": round(sens.seconds, 3), "notes": list(sens.notes)}


def write_sensitivity(sens, out_dir) -> dict:
    """``sensitivity.json``, ``sensitivity.csv`` and ``sensitivity.png`` (power against effect size) in ``out_dir``."""
    out = _io.ensure_output_dir(out_dir)
    paths = {"json": _io.write_json_atomic(out / SENSITIVITY_JSON, sensitivity_dict(sens)),
             "csv": _io.write_csv_atomic(out / SENSITIVITY_CSV, sensitivity_table(sens), index=False)}
    if sens.latent:
        from .figures import sensitivity_figure

        paths["figure"] = sensitivity_figure(sens, out / SENSITIVITY_PNG)
    return paths


def write_curve(curve, out_dir, *, stem: str = "power_curve") -> dict:
    """``<stem>.csv`` (animals per group, power, Monte Carlo s.e.) and ``<stem>.png`` in ``out_dir``."""
    import pandas as pd

    from .figures import curve_figure

    out = _io.ensure_output_dir(out_dir)
    table = pd.DataFrame([{"animals_per_group": int(p.size), "power": p.power, "power_se": p.se, "draws": p.draws,
                           "kind": curve.kind, "effect": curve.effect, "unit": curve.unit, "alpha": curve.alpha}
                          for p in curve.points])
    return {"csv": _io.write_csv_atomic(out / f"{stem}.csv", table, index=False),
            "figure": curve_figure(curve, out / f"{stem}.png")}


def read_sensitivity(run_dir) -> Optional[dict]:
    """``power/sensitivity.json`` of a run folder, or None."""
    try:
        return _io.read_json(Path(run_dir) / "power" / SENSITIVITY_JSON)
    except (OSError, ValueError):
        return None


def check_run_or_store(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UsvpipeError(path, "does not exist", "pass a run folder (usvpipe run's output) or a syllable store")
    return path
