"""VAE stage: model maths, trainer (split, resume, data paths), encode, CLI — CPU, tiny models."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usvpipe.errors import ConfigError, UsvpipeError  # noqa: E402
from usvpipe.store import merge_store, open_store, write_shard  # noqa: E402
from usvpipe.vae import TrainParams, decode, encode, load_model, read_latents, train  # noqa: E402

SHAPE = (32, 32)
# a tiny architecture: 32x32 -> 8x8 feature map, so every test trains in seconds
TINY = dict(latent_dim=8, channels=(4, 8), hidden=(32,), batch_size=32, figure_every=0, seed=3, min_steps=0)


pytestmark = pytest.mark.usefixtures("two_torch_threads")


def _make_store(path, *, n_recordings=4, per_recording=60, seed=0, noise=0.05):
    """Synthetic store: rendered calls split over recordings/animals; returns the call table (store order)."""
    import pandas as pd

    from usvpipe.synth import render_call_image, sample_calls

    calls = sample_calls(n_recordings * per_recording, seed=seed)
    rng = np.random.default_rng(seed)
    images = np.stack([render_call_image(c, SHAPE, noise=noise, seed=rng) for c in calls.to_dict("records")])
    frames = []
    for r in range(n_recordings):
        idx = np.arange(r * per_recording, (r + 1) * per_recording)
        onset = np.arange(per_recording) * 0.5
        write_shard(path, f"rec{r:02d}", images[idx], onset, onset + 0.05, animal=f"m{r // 2}", group="AB"[r // 2 % 2])
        frames.append(calls.iloc[idx].assign(recording=f"rec{r:02d}"))
    merge_store(path)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    _make_store(path)
    return path


# -- model maths ---------------------------------------------------------------------------
@pytest.mark.parametrize("rank", [1, 3])
def test_lowrank_kl_matches_torch_distributions(rank):
    from torch.distributions import LowRankMultivariateNormal, MultivariateNormal, kl_divergence

    from usvpipe.vae.model import kl_lowrank

    g = torch.Generator().manual_seed(rank)
    n, k = 5, 6
    mu = torch.randn(n, k, generator=g, dtype=torch.float64)
    log_d = torch.randn(n, k, generator=g, dtype=torch.float64) * 0.5
    u = torch.randn(n, k, rank, generator=g, dtype=torch.float64)
    ours = kl_lowrank(mu, log_d, u)
    q = LowRankMultivariateNormal(mu, u, torch.exp(log_d))
    p = MultivariateNormal(torch.zeros(k, dtype=torch.float64), torch.eye(k, dtype=torch.float64))
    assert torch.allclose(ours, kl_divergence(q, p), rtol=1e-10, atol=1e-10)


def test_diagonal_kl_and_gaussian_nll_match_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    from usvpipe.vae.model import gaussian_nll, kl_diagonal

    g = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * log_var)), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(kl_diagonal(mu, log_var), ref, atol=1e-5)
    x, x_hat = torch.rand(3, 1, 4, 4, generator=g), torch.rand(3, 1, 4, 4, generator=g)
    tau = 10.0
    ref = -Normal(x_hat, 1 / math.sqrt(tau)).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_nll(x, x_hat, tau), ref, atol=1e-4)


@pytest.mark.parametrize("posterior", ["lowrank", "diagonal"])
def test_model_shapes_and_sampling_covariance(posterior):
    from usvpipe.vae.model import VAE

    torch.manual_seed(0)
    m = VAE((32, 64), latent_dim=5, posterior=posterior, rank=2, channels=(4, 8), hidden=(16,))
    x = torch.rand(6, 1, 32, 64)
    loss, recon, kl = m(x)
    assert loss.shape == () and torch.isfinite(loss) and kl >= 0
    mu, log_d, u = m.encode(x)
    assert mu.shape == (6, 5) and m.decode(mu).shape == (6, 1, 32, 64)
    assert (u is None) == (posterior == "diagonal")
    # the sampler draws from the stated covariance U Uᵀ + diag(d)
    z = m.sample(mu[:1].expand(20000, -1), log_d[:1].expand(20000, -1), None if u is None else u[:1].expand(20000, -1, -1))
    cov = torch.cov(z.T.detach())
    want = torch.diag(torch.exp(log_d[0]))
    if u is not None:
        want = want + u[0] @ u[0].T
    want = want.detach()
    assert torch.allclose(cov, want, atol=0.08 * float(want.abs().max()))


def test_unsupported_shape_is_a_clear_error():
    from usvpipe.vae.model import VAE

    with pytest.raises(ConfigError, match="multiples of 4"):
        VAE((30, 32), channels=(4, 8))
    with pytest.raises(ConfigError, match="posterior"):
        TrainParams(posterior="full")
    with pytest.raises(ConfigError, match="batch_size"):
        TrainParams(batch_size=1)


# -- split and sharding -------------------------------------------------------------------------
def test_split_keeps_recordings_and_animals_whole(store_dir):
    from usvpipe.vae.data import split_rows

    table = open_store(store_dir).table
    for by in ("recording", "animal"):
        tr, va, info = split_rows(table, by=by, val_fraction=0.3, seed=1)
        assert len(tr) + len(va) == len(table) and len(va) > 0
        assert not set(table[by].iloc[tr]) & set(table[by].iloc[va])
        assert set(table[by].iloc[va]) == set(info["val_units"])


def test_epoch_sharding_covers_every_row_once_per_rank_set():
    from usvpipe.vae.data import epoch_batches

    rows = np.arange(100, 203)
    perm = np.random.default_rng(0).permutation(len(rows))
    shards = [epoch_batches(rows, perm, 8, rank=r, world_size=3) for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # same number of steps on every process
    seen = np.concatenate([np.concatenate(s) for s in shards])
    assert set(seen) == set(rows) and len(seen) - len(rows) < 3  # only the wrap-around padding repeats


# -- training ------------------------------------------------------------------------------------
def test_train_writes_outputs_and_loss_decreases(store_dir, tmp_path):
    res = train(store_dir, tmp_path, TrainParams(epochs=3, **TINY), device="cpu", progress=False)
    h = res.history
    assert list(h["epoch"]) == [1, 2, 3]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert h["val_loss"].notna().all()
    for name in ("model.pt", "checkpoint.pt", "loss.csv", "loss.png", "reconstructions.png", "train.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["n_train"] + summary["n_val"] == 240 and summary["split"]["unit"] == "recording"
    assert summary["params"]["latent_dim"] == 8 and "usvpipe_version" in summary
    # a second run into the same directory must not silently overwrite it
    with pytest.raises(UsvpipeError, match="--resume"):
        train(store_dir, tmp_path, TrainParams(epochs=3, **TINY), device="cpu", progress=False)


def test_progress_to_a_log_file_has_epoch_lines_and_no_redrawn_bars(store_dir, tmp_path, capfd):
    # stderr is a pipe here, as in a SLURM job's log: the per-batch bar, redrawn with carriage
    # returns, must stay off; the one-line summary of each epoch must not
    train(store_dir, tmp_path, TrainParams(epochs=2, **TINY), device="cpu", progress=True)
    captured = capfd.readouterr()
    assert "\r" not in captured.err + captured.out
    assert "epoch 2/2: train" in captured.out



def test_the_start_line_is_short_plain_words_and_the_details_go_to_train_json(store_dir, tmp_path, capfd):
    import json

    train(store_dir, tmp_path, TrainParams(epochs=1, **TINY), device="cpu", progress=True)
    out = capfd.readouterr().out
    start = [line for line in out.splitlines() if line.startswith("training the VAE")]
    # short: the words, without the output folder's path (which is as long as the user's)
    assert len(start) == 1 and len(start[0].replace(str(tmp_path / "train.json"), "")) < 150, start
    assert "learning from" in start[0] and "held out" in start[0] and "obs_precision" not in start[0]
    assert "1 epochs" not in out
    plan = json.loads((tmp_path / "train.json").read_text())["plan"]
    assert "obs_precision" in plan and "batch" in plan


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resume_reproduces_uninterrupted_run_exactly(store_dir, tmp_path):
    params = TrainParams(epochs=4, checkpoint_every=2, checkpoint_min_interval_s=0, **TINY)
    full = train(store_dir, tmp_path / "full", params, device="cpu", progress=False)

    class Killed(Exception):
        pass

    def kill_after_3(epoch, row):
        if epoch == 3:  # dies after epoch 3; the last checkpoint is from epoch 2
            raise Killed

    with pytest.raises(Killed):
        train(store_dir, tmp_path / "cut", params, device="cpu", progress=False, on_epoch_end=kill_after_3)
    assert _state(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 2
    resumed = train(store_dir, tmp_path / "cut", params, device="cpu", progress=False, resume=True)
    assert list(resumed.history["epoch"]) == [1, 2, 3, 4]
    for name in ("checkpoint.pt", "model.pt"):
        a, b = _state(tmp_path / "full" / name), _state(tmp_path / "cut" / name)
        assert a["epoch"] == b["epoch"]
        for key, tensor in a["model_state"].items():
            assert torch.equal(tensor, b["model_state"][key]), (name, key)
    assert np.array_equal(full.history["train_loss"].to_numpy(), resumed.history["train_loss"].to_numpy())


def test_a_run_from_before_the_contour_default_is_refused_with_the_setting_that_resumes_it(store_dir, tmp_path):
    """Runs made when the default axis encoder was the network's resume only with axis_encoder = "network"."""
    from usvpipe.errors import ConfigError

    old = dict(TINY, epochs=1, axis_encoder="network")
    train(store_dir, tmp_path / "run", TrainParams(**old), device="cpu", progress=False)
    with pytest.raises(ConfigError, match='resume with axis_encoder = "network"'):
        train(store_dir, tmp_path / "run", TrainParams(**dict(old, axis_encoder="auto", epochs=2)), device="cpu",
              progress=False, resume=True)
    resumed = train(store_dir, tmp_path / "run", TrainParams(**dict(old, epochs=2)), device="cpu", progress=False,
                    resume=True)
    assert list(resumed.history["epoch"]) == [1, 2]

def test_checkpoints_are_rate_limited_but_the_last_epoch_is_always_written(store_dir, tmp_path):
    params = TrainParams(epochs=3, checkpoint_min_interval_s=1e6, **TINY)
    seen = []

    def record(epoch, row):
        seen.append((tmp_path / "run" / "checkpoint.pt").exists())

    train(store_dir, tmp_path / "run", params, device="cpu", progress=False, on_epoch_end=record)
    assert seen == [False, False, True]  # nothing before the interval has passed, then the final state
    assert _state(tmp_path / "run" / "checkpoint.pt")["epoch"] == 3


@pytest.mark.parametrize("interval, expected", [(1e6, [False, False, True]), (0.0, [True, True, True])])
def test_figures_are_rate_limited_but_the_last_epoch_is_always_drawn(store_dir, tmp_path, interval, expected):
    params = TrainParams(epochs=3, **dict(TINY, figure_every=1), figure_min_interval_s=interval)
    seen = []

    def record(epoch, row):
        seen.append((tmp_path / "run" / "reconstructions.png").exists())

    train(store_dir, tmp_path / "run", params, device="cpu", progress=False, on_epoch_end=record)
    assert seen == expected


def test_streaming_path_gives_the_same_model_as_data_on_device(store_dir, tmp_path):
    kw = dict(epochs=1, val_fraction=0.25, **TINY)
    a = train(store_dir, tmp_path / "dev", TrainParams(data_on_device=True, **kw), device="cpu", progress=False)
    b = train(store_dir, tmp_path / "stream", TrainParams(data_on_device=False, num_workers=1, **kw), device="cpu",
              progress=False)
    assert a.data_on_device and not b.data_on_device
    sa, sb = _state(a.model_path)["model_state"], _state(b.model_path)["model_state"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_gpu_code_paths_run_on_cpu_autocast_channels_last_plateau(store_dir, tmp_path):
    # bf16 autocast and channels-last are the CUDA fast path; they must work on CPU too
    params = TrainParams(epochs=2, amp="bf16", channels_last=True, lr_schedule="plateau", posterior="diagonal",
                         data_on_device="auto", **TINY)
    res = train(store_dir, tmp_path, params, device="cpu", progress=False)
    assert res.amp == "bf16" and res.channels_last and res.data_on_device
    assert np.isfinite(res.history[["train_loss", "val_loss"]].to_numpy()).all()
    with pytest.raises(ConfigError, match="fp16"):
        train(store_dir, tmp_path / "fp16", TrainParams(amp="fp16", **TINY), device="cpu", progress=False)


# -- encode / decode -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(store_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    return train(store_dir, out, TrainParams(epochs=1, posterior="lowrank", rank=2, **TINY), device="cpu", progress=False)


def test_encode_rows_match_store_one_to_one(store_dir, trained, tmp_path):
    store = open_store(store_dir)
    lat = encode(trained.model_path, store_dir, tmp_path / "latents.csv", device="cpu", batch_size=50, variances=True)
    assert list(lat["id"]) == list(store.table["id"])
    assert [c for c in lat.columns if c.startswith("z")] == [f"z{i}" for i in range(8)]
    assert (lat.filter(like="var_z").to_numpy() > 0).all()
    # each row is the posterior mean of *that* syllable
    model = load_model(trained.model_path)
    rows = [7, 0, 191, 64]
    with torch.no_grad():
        mu = model.encode(torch.from_numpy(store.read(rows))[:, None])[0].numpy()
    assert np.allclose(lat.loc[rows, [f"z{i}" for i in range(8)]].to_numpy(), mu, atol=1e-5)
    on_disk = read_latents(tmp_path / "latents.csv")
    assert list(on_disk["id"]) == list(store.table["id"])
    assert json.loads((tmp_path / "latents.json").read_text())["latent_dim"] == 8
    h5 = read_latents(encode(trained.model_path, store_dir, tmp_path / "latents.h5", device="cpu").pipe(
        lambda _: tmp_path / "latents.h5"))
    assert list(h5["id"]) == list(store.table["id"])
    assert np.allclose(h5.filter(regex=r"^z\d").to_numpy(), lat.filter(regex=r"^z\d").to_numpy(), atol=1e-6)


def test_decode_returns_images_in_unit_range(trained):
    model = load_model(trained.model_path)
    imgs = decode(model, np.zeros((3, 8)))
    assert imgs.shape == (3, *SHAPE) and imgs.dtype == np.float32
    assert imgs.min() >= 0 and imgs.max() <= 1
    with pytest.raises(UsvpipeError, match="dimensions"):
        decode(model, np.zeros((2, 5)))


def test_encode_errors_are_clean(store_dir, trained, tmp_path):
    with pytest.raises(UsvpipeError, match="model file not found"):
        encode(tmp_path / "missing.pt", store_dir, tmp_path / "x.csv", device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(UsvpipeError, match="not a readable"):
        encode(tmp_path / "junk.pt", store_dir, tmp_path / "x.csv", device="cpu")
    with pytest.raises(UsvpipeError, match="not a syllable store"):
        encode(trained.model_path, tmp_path / "nostore", tmp_path / "x.csv", device="cpu")
    # a store whose every recording was silent: an error, as train gives, not a header-only file
    empty = tmp_path / "empty_store"
    write_shard(empty, "silent", np.zeros((0, *SHAPE), np.uint8), np.zeros(0), np.zeros(0), animal="m", group="A")
    merge_store(empty)
    with pytest.raises(UsvpipeError, match="the syllable store is empty"):
        encode(trained.model_path, empty, tmp_path / "x.csv", device="cpu")
    assert not (tmp_path / "x.csv").exists()


# -- latents carry the generating parameters --------------------------------------------------------
def _controlled_store(path, *, n_recordings=6, per_recording=400, seed=0):
    """Calls whose only varying factors are start/end frequency and duration, rendered at 32x32.

    The ridges are blurred by ~1.5 px along frequency: an idealised one-bin-wide ridge makes the images of
    different frequencies orthogonal, and the VAE then lays frequency out on a curve that a
    k-NN readout decodes (R² ≈ 0.99) but a linear one only partly; blurred ridges overlap,
    as real spectrogram ridges do, and give the smooth manifold a linear readout needs.
    """
    import pandas as pd
    from scipy.ndimage import gaussian_filter

    from usvpipe.synth import render_call_image

    n = n_recordings * per_recording
    rng = np.random.default_rng(seed)
    start = rng.uniform(40e3, 100e3, n)
    calls = pd.DataFrame({
        "start_freq_hz": start, "end_freq_hz": np.clip(start + rng.uniform(-15e3, 15e3, n), 35e3, 105e3),
        "duration_s": np.exp(rng.uniform(np.log(0.02), np.log(0.15), n)),
    })
    images = np.stack([gaussian_filter(render_call_image(c, SHAPE, noise=0.02, seed=rng), (1.5, 0.0))
                       for c in calls.to_dict("records")])
    images /= images.max(axis=(1, 2), keepdims=True)
    for r in range(n_recordings):
        idx = np.arange(r * per_recording, (r + 1) * per_recording)
        onset = np.arange(per_recording) * 0.5
        write_shard(path, f"rec{r:02d}", images[idx], onset, onset + calls["duration_s"].to_numpy()[idx], animal=f"m{r}")
    merge_store(path)
    return calls


def test_latents_linearly_recover_generating_parameters(tmp_path):
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    truth = _controlled_store(tmp_path / "store", seed=1)
    # the settings this benchmark was written for: AVA's fixed likelihood scale, 5 epochs, no step floor
    params = TrainParams(latent_dim=16, channels=(8, 16), hidden=(64,), batch_size=32, lr=3e-3, epochs=5,
                         val_fraction=0.2, patience=0, figure_every=0, seed=1, obs_precision=10.0, min_steps=0)
    res = train(tmp_path / "store", tmp_path / "vae", params, device="cpu", progress=False)
    lat = encode(res.model_path, tmp_path / "store", tmp_path / "latents.csv", device="cpu")
    z = lat.filter(regex=r"^z\d+$").to_numpy()
    held = lat["recording"].isin(res.split["val_units"]).to_numpy()  # recordings the VAE never saw
    assert 0 < held.sum() < len(held)
    r2 = {}
    for name in ("start_freq_hz", "end_freq_hz", "duration_s"):
        y = truth[name].to_numpy()
        reg = LinearRegression().fit(z[~held], y[~held])
        r2[name] = r2_score(y[held], reg.predict(z[held]))
    assert min(r2.values()) >= 0.8, r2
    # and a model that learned nothing would not pass: latents of an untrained encoder
    from usvpipe.vae.model import VAE

    torch.manual_seed(0)
    untrained = VAE(SHAPE, latent_dim=16, channels=(8, 16), hidden=(64,)).eval()
    with torch.no_grad():
        z0 = untrained.encode(torch.from_numpy(open_store(tmp_path / "store").read(np.arange(len(lat))))[:, None])[0].numpy()
    y = truth["start_freq_hz"].to_numpy()
    assert r2_score(y[held], LinearRegression().fit(z0[~held], y[~held]).predict(z0[held])) < min(r2.values())


def test_seconds_left_reads_the_recent_pace_without_the_first_epoch():
    from usvpipe.vae.schedule import PACE_EPOCHS, describe_seconds, seconds_left

    assert seconds_left([], 5) is None
    assert seconds_left([3.0], 4) == 12.0  # one epoch timed: it is all there is
    assert seconds_left([9.0, 1.0, 1.0], 10) == 10.0  # the first epoch's one-time costs are left out
    assert seconds_left([1.0, 2.0], 0) == 0.0
    # the machine got busy: the estimate follows the last PACE_EPOCHS epochs, and one slow epoch does not move it
    pace = [1.0] * 30 + [2.0] * PACE_EPOCHS
    assert seconds_left(pace, 5) == 10.0
    assert seconds_left(pace + [50.0], 5) == 10.0
    assert [describe_seconds(x) for x in (48.4, 119.0, 720.0, 7560.0)] == ["48 s", "119 s", "12 min", "2.1 h"]


# -- CLI ------------------------------------------------------------------------------------------------
def test_cli_train_then_encode(store_dir, tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text("[train]\nbatch_size = 48\nepochs = 5\nlatent_dim = 6\nmin_steps = 0\n")
    out = tmp_path / "vae"
    args = ["train", str(store_dir), str(out), "--config", str(cfg), "--epochs", "2", "--device", "cpu", "--no-progress",
            "--set", "channels=4,8", "--set", "hidden=16", "--seed", "2", "--axis-encoder", "contour"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    # each epoch line but the last says how long the rest should take
    lines = [ln for ln in r.output.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 2 and re.search(r"syll/s; ~\d+ s left\)$", lines[0]) and "left" not in lines[1], lines
    summary = json.loads((out / "train.json").read_text())
    assert summary["params"]["batch_size"] == 48  # from the config file
    assert summary["params"]["epochs"] == 2  # option overrides the config
    assert summary["params"]["latent_dim"] == 6 and summary["params"]["channels"] == [4, 8]
    assert summary["params"]["deterministic"] is False
    assert summary["params"]["axis_encoder"] == "contour"  # the option reaches the saved model
    assert load_model(out / "model.pt").pitch_locator == "contour"
    r = CliRunner().invoke(main, args)  # same OUT_DIR again without --resume
    assert r.exit_code == 2 and "--resume" in r.output
    r = CliRunner().invoke(main, args + ["--resume"])  # already complete: nothing more to do
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["encode", str(out), str(store_dir), str(tmp_path / "lat.csv"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    lat = read_latents(tmp_path / "lat.csv")
    assert len(lat) == 240 and "z5" in lat and "z6" not in lat


def test_cli_bad_inputs_give_one_line_errors(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    r = CliRunner().invoke(main, ["train", str(tmp_path / "nope"), str(tmp_path / "out"), "--device", "cpu"])
    assert r.exit_code == 2 and "not a syllable store" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["train", str(tmp_path), str(tmp_path / "out"), "--set", "wings=2"])
    assert r.exit_code == 2 and "unknown parameter" in r.output


def test_fused_adam_only_where_torch_has_it(monkeypatch):
    from usvpipe.vae.runtime import _has_fused_adam

    cpu = torch.device("cpu")
    assert _has_fused_adam(torch.device("cuda", 0))
    monkeypatch.setattr(torch, "__version__", "2.3.1+cpu")  # the project allows torch >= 2.1
    assert not _has_fused_adam(cpu)
    monkeypatch.setattr(torch, "__version__", "2.4.0")
    assert _has_fused_adam(cpu) and not _has_fused_adam(torch.device("mps"))
