"""Training speed of the VAE: usvpipe's trainer vs a straightforward PyTorch loop, same model.

Measured in one run, on one device, same data, same architecture and batch size:

- ``usvpipe``: :func:`usvpipe.vae.train` on a syllable store with its fast paths (store kept
  on the device as uint8 and batches gathered there, channels-last, autocast bf16/fp16 on
  CUDA, fused Adam, no host synchronisation inside an epoch);
- ``usvpipe-stream``: the same trainer reading batches from the HDF5 shards with worker
  processes (the path for stores larger than memory);
- ``plain``: the loop most code uses: a float32 ``TensorDataset`` in host memory, a shuffling
  ``DataLoader``, ``.to(device)`` per batch, NCHW, fp32, ``loss.item()`` per step.

Prints syllables/second per epoch (median over the timed epochs; the first epoch of each run
is warm-up; variants run in turns, ``--rounds`` times),
the ratio to ``plain`` and, on CUDA, peak GPU memory. Example (the H100 target of
benchmarks/vae-trainer-speed.md:
an epoch over 100k 128×128 syllables in < 10 s, ≥ 3× the plain loop)::

    python scripts/bench/train.py --device cuda --n 100000 --size 128 --epochs 3
    python scripts/bench/train.py --device cpu --n 2000 --size 64 --epochs 2      # CPU smoke

``--contention``: the CPU thread count under load instead (issue 40). With 0 and then
``--busy`` spinning processes beside it, the usvpipe trainer runs with torch's default threads
(one per core), with the count :func:`usvpipe._threads.choose_threads` picks, and with one;
prints wall and CPU seconds per run and the load average before and after::

    python scripts/bench/train.py --contention --device cpu --n 1000 --size 32 --epochs 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def synthetic_images(n: int, size: int, *, kind: str = "synth", seed: int = 0) -> np.ndarray:
    """``(n, size, size)`` uint8 syllable images: rendered synthetic calls (a pool, tiled) or noise."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    from usvpipe.store import to_uint8
    from usvpipe.synth import render_call_image, sample_calls

    pool = min(n, 2000)  # rendering is ~ms per image; speed does not depend on image content
    calls = sample_calls(pool, seed=seed).to_dict("records")
    imgs = to_uint8(np.stack([render_call_image(c, (size, size), noise=0.05, seed=rng) for c in calls]))
    return imgs[rng.integers(0, pool, size=n)] if n > pool else imgs


def write_store(path: Path, images: np.ndarray, n_recordings: int = 8) -> None:
    from usvpipe.store import merge_store, write_shard

    for r, idx in enumerate(np.array_split(np.arange(len(images)), n_recordings)):
        onset = np.arange(len(idx), dtype=float)
        write_shard(path, f"bench{r:02d}", images[idx], onset, onset + 0.05, animal=f"m{r}", group="AB"[r % 2])
    merge_store(path)


def plain_loop(images: np.ndarray, params, device: str, epochs: int) -> tuple[list[float], int]:
    """A straightforward fp32 DataLoader loop with the same model; returns per-epoch syll/s and peak memory."""
    import torch

    from usvpipe.vae.model import VAE

    dev = torch.device(device)
    torch.manual_seed(0)
    model = VAE(**params.model_config(images.shape[1:])).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=params.lr)
    data = torch.utils.data.TensorDataset(torch.from_numpy(images).float().div_(255.0).unsqueeze(1))
    loader = torch.utils.data.DataLoader(data, batch_size=params.batch_size, shuffle=True, drop_last=True)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        n, total = 0, 0.0
        for (x,) in loader:
            x = x.to(dev)
            loss, _, _ = model(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            n += x.shape[0]
        rates.append(n / (time.perf_counter() - t0))
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else 0
    return rates, peak


def usvpipe_run(store: Path, out: Path, params, device: str) -> tuple[list[float], int, object]:
    import torch

    from usvpipe.vae import train

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    # the same threads as the plain loop (train() would otherwise choose its own)
    res = train(store, out, params, device=device, progress=False, threads=torch.get_num_threads())
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
    h = res.history
    return list(h["n_syllables"] / h["epoch_s"]), peak, res


def _spinner() -> "subprocess.Popen":
    """One process that keeps a core busy (the 'one busy process beside it' of issue 40)."""
    import subprocess

    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def contention(args, base: dict) -> None:
    """Wall and CPU seconds of one training run per thread setting, idle and beside busy processes."""
    import os

    import torch

    from usvpipe._threads import choose_threads
    from usvpipe.vae import TrainParams, train

    default = torch.get_num_threads()
    images = synthetic_images(args.n, args.size, kind=args.data)
    print(f"# contention: {args.n} syllables {args.size}x{args.size}, {args.epochs} epochs per run, torch default "
          f"{default} threads, {os.cpu_count()} CPUs; {args.rounds} round(s)")
    print("busy_processes,threads_setting,threads,wall_s,cpu_s,cpu_per_wall,load_before,load_after")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_store(tmp / "store", images)
        for busy in (0, args.busy):
            spinners = [_spinner() for _ in range(busy)]
            try:
                time.sleep(2.0 if busy else 0.0)  # let the spinners start
                for rnd in range(args.rounds):
                    for setting in ("torch-default", "chosen", "one"):
                        load0 = os.getloadavg()[0]
                        n = {"torch-default": default, "chosen": choose_threads(load=load0).threads, "one": 1}[setting]
                        w0, c0 = time.perf_counter(), time.process_time()
                        train(tmp / "store", tmp / f"{busy}-{setting}-{rnd}", TrainParams(**base), device="cpu",
                              progress=False, quiet=True, threads=n)
                        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                        print(f"{busy},{setting},{n},{wall:.1f},{cpu:.1f},{cpu / wall:.2f},{load0:.2f},"
                              f"{os.getloadavg()[0]:.2f}", flush=True)
            finally:
                for s in spinners:
                    s.kill()
                    s.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="syllables")
    ap.add_argument("--size", type=int, default=128, help="spectrogram side")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per variant, interleaved")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", choices=["synth", "random"], default="synth", help="image content")
    ap.add_argument("--variants", default="usvpipe,usvpipe-stream,plain", help="comma-separated subset")
    ap.add_argument("--num-workers", type=int, default=4, help="workers of the streaming variant")
    ap.add_argument("--compile", action="store_true", help="torch.compile in the usvpipe variant (CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--contention", action="store_true", help="thread settings idle and beside busy processes (CPU)")
    ap.add_argument("--busy", type=int, default=1, help="busy processes beside the run in --contention")
    args = ap.parse_args(argv)

    import torch

    from usvpipe.vae import TrainParams
    from usvpipe._device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    small = args.size <= 32
    base = dict(batch_size=args.batch_size, epochs=args.epochs, val_fraction=0.0, patience=0, figure_every=0,
                checkpoint_every=10**6, lr_schedule="constant",
                # same work in every variant: no step floor, no CPU pooling, a fixed likelihood scale, no jitter,
                # no second encoder pass for the pitch axis (the plain loop trains the bare ELBO)
                min_steps=0, profile="full", obs_precision=10.0, augment="off", latent_axes="off",
                channels=(8, 16) if small else (8, 16, 24, 32), hidden=(128,) if small else (1024, 256))
    if args.contention:
        return contention(args, base)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    t0 = time.perf_counter()
    images = synthetic_images(args.n, args.size, kind=args.data)
    print(f"# {args.n} syllables {args.size}x{args.size} ({images.nbytes / 2**20:.0f} MiB uint8), batch {args.batch_size}, "
          f"device {device} ({torch.cuda.get_device_name() if device.startswith('cuda') else 'torch ' + torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads), {args.rounds} interleaved runs x {args.epochs} epochs per variant, "
          f"first epoch of each run is warm-up; "
          f"data made in {time.perf_counter() - t0:.1f} s")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    peaks: dict[str, int] = {v: 0 for v in variants}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if any(v.startswith("usvpipe") for v in variants):
            write_store(tmp / "store", images)
        # Variants take turns, round after round: on a shared machine a load change then
        # hits every variant alike instead of biasing the one that happened to run during it.
        for rnd in range(args.rounds):
            for v in variants:
                if v == "usvpipe":
                    p = TrainParams(data_on_device=True, compile=args.compile, **base)
                    r, peak, res = usvpipe_run(tmp / "store", tmp / f"{v}-{rnd}", p, device)
                    notes[v] = f"amp {res.amp}, channels-last {res.channels_last}, data on device"
                elif v == "usvpipe-stream":
                    p = TrainParams(data_on_device=False, num_workers=args.num_workers, **base)
                    r, peak, res = usvpipe_run(tmp / "store", tmp / f"{v}-{rnd}", p, device)
                    notes[v] = f"amp {res.amp}, channels-last {res.channels_last}, HDF5 streaming, {args.num_workers} workers"
                elif v == "plain":
                    r, peak = plain_loop(images, TrainParams(**base), device, args.epochs)
                    notes[v] = "fp32, NCHW, DataLoader over a float32 host tensor, .item() per step"
                else:
                    raise SystemExit(f"unknown variant {v!r}")
                rates[v] += r[1:] or r  # the first epoch of each run is warm-up
                peaks[v] = max(peaks[v], peak)
    results = {v: (statistics.median(rates[v]), peaks[v], notes[v]) for v in variants}
    ref = results.get("plain", (None,))[0]
    print("variant,syllables_per_s,epoch_s_at_n,ratio_vs_plain,peak_gpu_mib,notes")
    for v, (rate, peak, note) in results.items():
        ratio = f"{rate / ref:.2f}" if ref else ""
        mem = f"{peak / 2**20:.0f}" if peak else ""
        print(f"{v},{rate:.0f},{args.n / rate:.2f},{ratio},{mem},{note}")


if __name__ == "__main__":
    main()
