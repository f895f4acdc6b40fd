#!/usr/bin/env python
"""Four CPU overheads the trainer and the UMAP stage avoid, each against its old way, same run.

    OMP_NUM_THREADS=2 python scripts/bench/cpu_overheads.py

1. Adam step of the demo's (32x32) and the CPU profile's (64x64) VAE: fused vs torch's loop.
2. Writing checkpoint.pt + the unfinished model.pt of the demo's model (what every epoch cost
   before ``checkpoint_min_interval_s``).
3. UMAP fit of a demo-sized table (481 x 32 by default, or ``--latents latents.csv``) in a
   *fresh* process, with umap-learn's own neighbour search vs the exact scikit-learn
   neighbours that ``embed_array`` hands it, and the trustworthiness (k = 15) of both layouts.
4. Redrawing loss.png + reconstructions.png (what every ``figure_every`` epochs cost before
   ``figure_min_interval_s``), against one training epoch of the demo's model (16 steps of
   batch 25 at 32x32, its size).

Prints ratios beside the load average; absolute times on a shared machine mean little.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

_UMAP_CHILD = r"""
import sys, time, warnings, numpy as np
warnings.filterwarnings("ignore")
mode, n, d, latents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[5]
if latents:  # a latents.csv (e.g. the demo's): its z0, z1, ... columns
    import pandas as pd
    table = pd.read_csv(latents)
    z = table[[c for c in table.columns if c.startswith("z") and c[1:].isdigit()]].to_numpy(np.float32)
else:
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((n, d)) + 4 * np.eye(d)[rng.integers(0, 6, n)]).astype(np.float32)
t = time.perf_counter()
import umap
kw = {}
if mode == "exact":
    sys.path.insert(0, sys.argv[4])
    from usvpipe.viz._projection import exact_knn
    kw["precomputed_knn"] = exact_knn(z, 15, "euclidean")
emb = umap.UMAP(n_neighbors=15, random_state=0, **kw).fit_transform(z)
s = time.perf_counter() - t
from sklearn.manifold import trustworthiness
print(s, trustworthiness(z, emb, n_neighbors=15))
"""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def adam_ms(side: int, fused: bool, steps: int = 50) -> float:
    import torch

    from usvpipe.vae.model import VAE

    torch.manual_seed(0)
    model = VAE((side, side))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    model(torch.rand(25, 1, side, side))[0].backward()
    opt.step()
    t = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - t) / steps * 1e3


def checkpoint_s(repeats: int = 20) -> float:
    import torch

    from usvpipe.vae.model import VAE
    from usvpipe.vae.checkpoint import _cpu_state, save_checkpoint

    model = VAE((32, 32))
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(4, 1, 32, 32))[0].backward()
    opt.step()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for _ in range(repeats):
            save_checkpoint({"model_state": _cpu_state(model.state_dict()),
                             "optimizer_state": _cpu_state(opt.state_dict())}, Path(tmp) / "checkpoint.pt")
            save_checkpoint({"model_state": _cpu_state(model.state_dict())}, Path(tmp) / "model.pt")
        return (time.perf_counter() - t) / repeats


def figures_s(repeats: int = 5) -> float:
    import numpy as np
    import pandas as pd

    from usvpipe.vae.plots import plot_losses, plot_reconstructions

    epochs = 90  # the demo's run
    rng = np.random.default_rng(0)
    history = pd.DataFrame({f"{split}_{term}": rng.random(epochs) for split in ("train", "val")
                            for term in ("loss", "recon", "kl")})
    history["epoch"] = np.arange(1, epochs + 1)
    images, recons = rng.random((8, 32, 32)), rng.random((8, 32, 32))
    with tempfile.TemporaryDirectory() as tmp:
        plot_losses(history, Path(tmp) / "warm.png")  # matplotlib's first figure pays its font cache
        t = time.perf_counter()
        for _ in range(repeats):
            plot_losses(history, Path(tmp) / "loss.png")
            plot_reconstructions(images, recons, Path(tmp) / "reconstructions.png", title="epoch 90")
        return (time.perf_counter() - t) / repeats


def demo_epoch_s(steps: int = 16, batch: int = 25) -> float:
    import torch

    from usvpipe.vae.model import VAE
    from usvpipe.vae.runtime import _has_fused_adam

    torch.manual_seed(0)
    model = VAE((32, 32), obs_precision=1000.0)
    opt = torch.optim.Adam(model.parameters(), **({"fused": True} if _has_fused_adam(torch.device("cpu")) else {}))
    x = torch.rand(batch, 1, 32, 32)
    t = time.perf_counter()
    for _ in range(steps):
        loss = model(x)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def umap_fresh(mode: str, n: int, d: int, latents: str = "") -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", _UMAP_CHILD, mode, str(n), str(d), str(ROOT), latents],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of each comparison")
    ap.add_argument("--umap-n", type=int, default=481)
    ap.add_argument("--umap-d", type=int, default=32)
    ap.add_argument("--latents", default="", help="project this latents.csv (e.g. usvpipe_demo/latents.csv) "
                    "instead of a synthetic table of --umap-n x --umap-d")
    args = ap.parse_args()
    print(f"cores {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, load {load()}")
    for side in (32, 64):
        loop = min(adam_ms(side, False) for _ in range(args.rounds))
        fused = min(adam_ms(side, True) for _ in range(args.rounds))
        print(f"Adam step, {side}x{side} VAE: loop {loop:.2f} ms, fused {fused:.2f} ms, loop / fused = {loop / fused:.1f}")
    print(f"checkpoint.pt + model.pt of the demo's model: {checkpoint_s():.3f} s per epoch when written every epoch "
          f"(load {load()})")
    fig, epoch = figures_s(), min(demo_epoch_s() for _ in range(args.rounds))
    print(f"loss.png + reconstructions.png redrawn: {fig:.3f} s; one demo epoch: {epoch:.3f} s; redraw / epoch = "
          f"{fig / epoch:.2f} (load {load()})")
    plain, exact = [], []
    for _ in range(args.rounds):
        plain.append(umap_fresh("plain", args.umap_n, args.umap_d, args.latents))
        exact.append(umap_fresh("exact", args.umap_n, args.umap_d, args.latents))
    p, e = min(r[0] for r in plain), min(r[0] for r in exact)
    what = args.latents or f"{args.umap_n}x{args.umap_d}"
    print(f"UMAP fit of {what} in a fresh process (incl. import): umap-learn's search {p:.1f} s, "
          f"exact neighbours {e:.1f} s, ratio {p / e:.2f}; trustworthiness k=15 {plain[0][1]:.4f} vs {exact[0][1]:.4f} "
          f"(load {load()})")


if __name__ == "__main__":
    main()
