"""DDP code path: `usvpipe train` as a torchrun entry point, 2 CPU processes, gloo backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover - exotic torch builds
    pytest.skip("torch.distributed is not available", allow_module_level=True)


def test_torchrun_two_processes_gloo(tmp_path):
    from usvpipe.store import merge_store, write_shard
    from usvpipe.vae import load_model

    rng = np.random.default_rng(0)
    for r in range(4):
        imgs = (rng.random((40, 16, 16)) * rng.random((40, 1, 1))).astype(np.float32)
        write_shard(tmp_path / "store", f"rec{r}", imgs, np.arange(40.0), np.arange(40.0) + 0.1, animal=f"m{r}", group="AB"[r % 2])
    merge_store(tmp_path / "store")
    out = tmp_path / "vae"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "usvpipe",
           "train", str(tmp_path / "store"), str(out), "--device", "cpu", "--epochs", "2", "--min-steps", "0", "--batch-size", "16",
           "--latent-dim", "4", "--set", "channels=4,4", "--set", "hidden=16", "--set", "figure_every=0",
           "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    summary = json.loads((out / "train.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_run"] == 2
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]["process"]) == 2  # every rank's RNG for exact resume
    # rank 0 alone printed the summary line
    assert proc.stdout.count("wrote ") == 1
    model = load_model(out / "model.pt")
    assert model.latent_dim == 4
    with torch.no_grad():
        assert torch.isfinite(model.encode(torch.rand(2, 1, 16, 16))[0]).all()
