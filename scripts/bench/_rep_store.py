"""The pool store of ``representations.py``: pool audio → the real pipeline → store, matched to truth,
and the four representations computed on it (two VAEs, PCA-32, the classical measures)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: the store's score columns that make the classical measures (usvpipe.measures.MEASURES, less the
#: amplitudes, which measure the rig and the distance to the microphone, not the call)
MEASURE_COLUMNS = ("duration_s", "mean_freq_hz", "min_freq_hz", "max_freq_hz", "bandwidth_hz")


def build_pool_store(n: int, seed: int, work: Path, log, world) -> tuple[Path, pd.DataFrame]:
    """Render the pool's recordings as WAVs and segment them with the product's defaults (cached in ``work``).

    ``world`` is the world module (``_rep_vocal`` or ``_rep_world``): its ``pool_world``,
    ``render_recordings`` and ``SAMPLE_RATE_HZ`` make the pool.
    """
    import soundfile as sf
    from usvpipe.segmentation import segment_recordings

    wav_dir, store_dir = work / "wav", work / "store"
    truth_path = work / "truth.csv"
    if not (store_dir / "syllables.csv").exists() or not truth_path.exists():
        t0 = time.perf_counter()
        wav_dir.mkdir(parents=True, exist_ok=True)
        truths = []
        for name, audio, truth in world.render_recordings(world.pool_world(n, seed), seed):
            sf.write(str(wav_dir / f"{name}.wav"), audio, world.SAMPLE_RATE_HZ, subtype="PCM_16")
            truths.append(truth.assign(recording=f"{name}.wav"))
        pd.concat(truths, ignore_index=True).to_csv(truth_path, index=False)
        log(f"rendered {n} pool calls in {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})")
        t0 = time.perf_counter()
        segment_recordings(wav_dir, store_dir, jobs=1, progress=False)
        log(f"segmented the pool with usvpipe's defaults in {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})")
    return store_dir, pd.read_csv(truth_path)


def match_truth(table: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Each truth call's best-overlapping detection (IoU ≥ 0.3): ``store_row`` plus the truth columns.

    Missed calls and detections with no call (clicks, split halves) leave the experiments'
    pool, as a lab's annotation would leave them; they stay in the store the VAE trains on.
    """
    rows = []
    tab = table.reset_index(drop=True)
    for rec, det in tab.groupby(tab["recording"].astype(str).map(lambda r: Path(r).name)):
        calls = truth[truth["recording"] == rec]
        on, off = det["onset_s"].to_numpy(), det["offset_s"].to_numpy()
        for call in calls.itertuples():
            inter = np.clip(np.minimum(off, call.offset_s) - np.maximum(on, call.onset_s), 0, None)
            union = np.maximum(off, call.offset_s) - np.minimum(on, call.onset_s)
            iou = inter / union
            j = int(np.argmax(iou)) if iou.size else -1
            if j >= 0 and iou[j] >= 0.3:
                rows.append((det.index[j], call.Index))
    pairs = pd.DataFrame(rows, columns=["store_row", "truth_row"]).drop_duplicates("store_row")
    matched = truth.loc[pairs["truth_row"].to_numpy()].reset_index(drop=True)
    matched.insert(0, "store_row", pairs["store_row"].to_numpy())
    return matched


def measures_matrix(table: pd.DataFrame) -> np.ndarray:
    """The classical measures of every store row, standardised (z-scores over the store)."""
    t = table.assign(bandwidth_hz=table["max_freq_hz"] - table["min_freq_hz"])
    x = t[list(MEASURE_COLUMNS)].to_numpy(np.float64)
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)


def pca_matrix(store, seed: int, k: int = 32) -> np.ndarray:
    """PCA-``k`` scores of the store's images (flattened, as the VAE sees them before pooling)."""
    from sklearn.decomposition import PCA

    flat = store.read_all(dtype=np.float32).reshape(len(store), -1)
    return PCA(n_components=k, svd_solver="randomized", random_state=seed).fit_transform(flat)


def vae_params(variant: str, steps: int, seed: int):
    """TrainParams of a variant: ``learnt`` (no axes: all 32 dimensions learnt) or ``default`` (the product's)."""
    from usvpipe.vae import TrainParams

    extra = {"latent_axes": "off"} if variant == "learnt" else {}
    # min_steps is the product's length rule; ``epochs=1`` lets min_steps alone set the length here
    return TrainParams(epochs=1, min_steps=steps, seed=seed, checkpoint_min_interval_s=600.0,
                       figure_every=0, figure_min_interval_s=1e9, **extra)


def vae_latents(store_dir: Path, out: Path, variant: str, steps: int, seed: int, device: str, log) -> np.ndarray:
    """Train one VAE variant on the (group-blind) store and encode it; cached in ``out``."""
    from usvpipe.vae import encode, train

    cache = out / "latents.npy"
    _wait_for_other_trainer(out, cache, log)
    if cache.exists():
        return np.load(cache)
    t0 = time.perf_counter()
    params = vae_params(variant, steps, seed)
    # resume: a run cut short continues from its last checkpoint, exactly (usvpipe.vae.train)
    result = train(store_dir, out, params, device=device, quiet=True, progress=False, resume=True)
    table = encode(result.model_path, store_dir, out / "latents.csv", device=device, readout=False)
    z = table.filter(regex=r"^z\d+$").to_numpy(np.float64)
    from usvpipe._io import atomic_path

    with atomic_path(cache) as tmp:
        np.save(tmp, z)
    log(f"VAE {variant} ({params.resolved_axis_encoder} axis encoder, latent_axes={params.latent_axes}): "
        f"{steps} steps on {len(z)} syllables in {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})")
    return z


def _wait_for_other_trainer(out: Path, cache: Path, log, quiet_s: float = 600.0) -> None:
    """Wait while another process is training into ``out`` (its loss.csv grew in the last ``quiet_s``)."""
    loss = out / "loss.csv"
    said = False
    while not cache.exists() and loss.exists() and time.time() - loss.stat().st_mtime < quiet_s:
        if not said:
            log(f"{out}: another process is training here; waiting for its latents")
            said = True
        time.sleep(15)


def write_substore(store, rows: np.ndarray, animals: np.ndarray, out: Path) -> Path:
    """A store holding only ``rows`` of ``store`` (one shard per animal), for re-training per experiment."""
    from usvpipe.store import write_shard

    table = store.table
    for animal in np.unique(animals):
        sel = rows[animals == animal]
        write_shard(out, f"{animal}.wav", store.read(sel, dtype=np.uint8), table["onset_s"].to_numpy()[sel],
                    table["offset_s"].to_numpy()[sel], animal=str(animal))
    return out
