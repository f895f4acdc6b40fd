"""Training health and the defaults that learn on small stores (the latents issue) — CPU, small images."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usvpipe.errors import ConfigError  # noqa: E402
from usvpipe.store import merge_store, write_shard  # noqa: E402
from usvpipe.vae import TrainParams, encode, train  # noqa: E402

SHAPE = (32, 32)


pytestmark = pytest.mark.usefixtures("two_torch_threads")


def _random_call_store(path, *, n_recordings=6, per_recording=50, seed=0, group_shift=0.0):
    """A store of rendered random calls (frequency, duration and shape vary as in ``usvpipe.synth``).

    Recordings alternate between groups A and B (one animal each); ``group_shift`` moves B's calls.
    Returns the generating parameters in store order.
    """
    import pandas as pd

    from scipy.ndimage import gaussian_filter

    from usvpipe.synth import render_call_image, sample_calls

    rng = np.random.default_rng(seed)
    frames = []
    for r in range(n_recordings):
        group = "AB"[r % 2]
        calls = sample_calls(per_recording, seed=rng, group_shift=group_shift if group == "B" else 0.0)
        # ridges ~1.5 px wide along frequency, as real spectrogram ridges are (see test_vae's controlled store)
        images = np.stack([gaussian_filter(render_call_image(c, SHAPE, noise=0.02, seed=rng), (1.5, 0.0))
                           for c in calls.to_dict("records")])
        images /= images.max(axis=(1, 2), keepdims=True)
        onset = np.arange(per_recording) * 0.5
        dur = calls["duration_s"].to_numpy()
        f_mean = 0.5 * (calls["start_freq_hz"].to_numpy() + calls["end_freq_hz"].to_numpy())
        write_shard(path, f"rec{r:02d}", images, onset, onset + dur, animal=f"m{r}", group=group,
                    columns={"duration_s": dur, "mean_freq_hz": f_mean,
                            "max_freq_hz": np.maximum(calls["start_freq_hz"], calls["end_freq_hz"]).to_numpy(),
                            "min_freq_hz": np.minimum(calls["start_freq_hz"], calls["end_freq_hz"]).to_numpy()})
        frames.append(calls.assign(recording=f"rec{r:02d}"))
    merge_store(path)
    return pd.concat(frames, ignore_index=True)


def _cv_ridge_r2(x, y):
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pred = cross_val_predict(make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))), x, y,
                             cv=KFold(5, shuffle=True, random_state=0))
    return 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()


# -- parameters resolve from the store ------------------------------------------------------------
def test_auto_batch_size_gives_small_stores_enough_steps_and_large_ones_avas_batch():
    p = TrainParams()
    assert p.resolved_batch_size(150) == 16  # 10 steps per epoch, never below 16
    assert p.resolved_batch_size(1000) == 62
    assert p.resolved_batch_size(10**6) == 128
    assert TrainParams(batch_size=40).resolved_batch_size(150) == 40


def test_step_floor_raises_the_epochs_of_a_small_store():
    from usvpipe.vae.schedule import planned_epochs

    assert planned_epochs(TrainParams(epochs=100, min_steps=2000), steps_per_epoch=10) == 200
    assert planned_epochs(TrainParams(epochs=100, min_steps=2000), steps_per_epoch=7800) == 100
    assert planned_epochs(TrainParams(epochs=3, min_steps=0), steps_per_epoch=1) == 3


def test_cpu_profile_pools_large_images_and_is_never_silent():
    p = TrainParams()
    assert p.resolved_pool("cpu", (128, 128)) == 2
    assert p.resolved_pool("cuda", (128, 128)) == 1
    assert p.resolved_pool("cpu", (64, 64)) == 1
    assert TrainParams(profile="full").resolved_pool("cpu", (128, 128)) == 1


def test_auto_observation_precision_scales_with_the_pixel_variance():
    from usvpipe.vae.samples import auto_obs_precision

    rng = np.random.default_rng(0)
    bright = rng.uniform(0, 1, (50, 8, 8))
    dark = 0.1 * bright
    # 100x less variance -> 100x the precision: the reconstruction/KL balance does not depend on brightness
    assert auto_obs_precision(dark, 0.1) == pytest.approx(100 * auto_obs_precision(bright, 0.1), rel=1e-9)
    assert auto_obs_precision(np.zeros((5, 8, 8)), 0.1) == 10.0  # a constant store gets AVA's value, not inf


def test_every_syllable_is_in_a_batch_and_no_batch_has_one():
    from usvpipe.vae.data import epoch_batches

    rows = np.arange(224)
    batches = epoch_batches(rows, np.arange(224), 128)
    assert [len(b) for b in batches] == [128, 96]  # the 96 that a dropped last batch never showed
    batches = epoch_batches(np.arange(129), np.arange(129), 128)
    assert [len(b) for b in batches] == [129]  # one left over joins the previous batch (batch norm)


# -- the health check -----------------------------------------------------------------------------
def test_jitter_moves_a_call_by_whole_rows_and_stretches_it_in_time_only():
    from usvpipe.vae.augment import Jitter, jitter_batch

    x = torch.zeros(64, 1, 32, 32)
    x[:, 0, 14:18, 12:20] = 1.0  # a call: rows 14-17 (frequency), columns 12-19 (time)
    before = x.clone()
    gen = torch.Generator().manual_seed(0)
    out = jitter_batch(x, Jitter(shift_fraction=0.1, stretch_fraction=0.2), generator=gen)
    assert torch.equal(x, before) and out.shape == x.shape and out.dtype == x.dtype
    rows_on = out[:, 0].amax(2) > 0.99  # (n, H): rows the call occupies, at full intensity
    # shifted by whole rows (no blur along frequency): still exactly 4 full rows, within +-3 rows (10 % of 32)
    assert (rows_on.sum(1) == 4).all()
    first_row = rows_on.float().argmax(1)
    assert (first_row - 14).abs().max() <= 3 and len(torch.unique(first_row)) >= 4
    cols = torch.arange(32.0)
    col_centre = (out.sum(2)[:, 0] * cols).sum(1) / out.sum((1, 2, 3))
    assert (col_centre - 15.5).abs().max() < 0.05  # stretched around the centre, never shifted in time
    width = (out[:, 0].amax(1) > 0.5).sum(1).float()
    # the time axis stretched by 1/1.2 .. 1.2: 8 columns become 6.7 .. 9.6
    assert width.min() >= 6 and width.max() <= 10 and width.max() - width.min() >= 2
    assert torch.equal(jitter_batch(x, Jitter(0.0, 0.0)), x)  # no jitter: the images as they are
    again = jitter_batch(x, Jitter(shift_fraction=0.1, stretch_fraction=0.2), generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, out)  # reproducible from the generator (resume replays the RNG state)


def test_whole_row_moves_are_exact_and_widening_keeps_the_centre():
    from usvpipe.vae.augment import move_calls, shift_rows

    x = torch.zeros(3, 1, 8, 16)
    x[:, 0, 3, 6:10] = 1.0
    out = move_calls(x, torch.tensor([2.0, -3.0, 0.0]), torch.ones(3))
    assert out[:, 0].amax(2).argmax(1).tolist() == [5, 0, 3]  # the ridge row, moved exactly
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # nothing blurred or lost inside the image
    assert move_calls(x, torch.tensor([5.0, 0, 0]), torch.ones(3))[0].sum() == 0  # moved out: zeros came in
    noise = torch.rand(3, 1, 8, 16)
    # the gather the latent axes use is the same move (grid_sample's columns are off by rounding only)
    assert torch.allclose(shift_rows(noise, torch.tensor([2, -3, 0])),
                          move_calls(noise, torch.tensor([2.0, -3.0, 0.0]), torch.ones(3)), atol=1e-5)
    wide = move_calls(x, torch.zeros(3), torch.tensor([2.0, 1.0, 0.5]))[:, 0, 3]
    assert (wide > 0.5).sum(1).tolist() == [8, 4, 2]  # 4 columns drawn 2x, 1x, 0.5x as wide ...
    cols = torch.arange(16.0)
    assert torch.allclose((wide * cols).sum(1) / wide.sum(1), torch.full((3,), 7.5))  # ... around the centre


def test_axis_penalty_vanishes_only_when_a_move_changes_the_latents_by_the_target():
    from usvpipe.vae.model import axis_penalty

    mu, log_d, u = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3, 1)
    target = torch.zeros(4, 3)
    target[:, 0] = torch.tensor([2.0, -1.0, 0.0, 3.0]) * 0.25
    assert torch.allclose(axis_penalty((mu, log_d, u), (mu + target, log_d, u), target, 0.1), torch.zeros(4))
    wrong_axis = mu + target[:, [1, 0, 2]]  # the move landed on z1 instead of z0
    # a 0.5-unit error (row 0: 2 rows x 0.25) in each of two dimensions at sd 0.1: 0.5 * 2 * 0.5**2 / 0.01
    assert axis_penalty((mu, log_d, u), (wrong_axis, log_d, u), target, 0.1)[0].item() == pytest.approx(25.0)
    # the spread counts too: the shape must not ride on an image-dependent covariance instead of the mean
    assert axis_penalty((mu, log_d, u), (mu + target, log_d, u + 0.5), target, 0.1)[0].item() == pytest.approx(37.5)
    assert axis_penalty((mu, log_d, None), (mu + target, log_d + 1.0, None), target, 0.1).min() > 0


def test_a_variance_pushed_past_its_bound_is_clamped_but_still_has_a_gradient_back():
    """A plain clamp left one dimension's log variance at its ceiling for a whole run (1 500 nats of KL)."""
    from usvpipe.vae.model import LOG_VARIANCE_BOUNDS, _bounded, kl_diagonal

    raw = torch.tensor([[LOG_VARIANCE_BOUNDS[1] + 3.0, 0.5, LOG_VARIANCE_BOUNDS[0] - 1.0]], requires_grad=True)
    log_d = _bounded(raw, LOG_VARIANCE_BOUNDS)
    assert log_d.tolist()[0] == pytest.approx([LOG_VARIANCE_BOUNDS[1], 0.5, LOG_VARIANCE_BOUNDS[0]])
    kl_diagonal(torch.zeros(1, 3), log_d).sum().backward()
    # d KL / d log_d = (exp(log_d) - 1) / 2 at the clamped value: down from the ceiling, up from the floor
    expected = (torch.exp(log_d.detach()) - 1.0) / 2.0
    assert torch.allclose(raw.grad, expected) and raw.grad[0, 0] > 1000 and raw.grad[0, 2] < 0


def test_a_moving_decoder_draws_the_call_where_the_latent_axes_put_it():
    """``axis_decoder = "move"``: z0 moves the decoded image by H/8 rows per unit, z1 doubles its width per unit."""
    from usvpipe.vae.augment import move_calls
    from usvpipe.vae.model import VAE, build_model

    torch.manual_seed(0)
    # (training mode: batch normalisation of the batch itself, so an untrained network draws varied images)
    model = VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), moved_axes=("pitch", "duration"))
    z = torch.randn(5, 6)
    z[:, :2] = 0.0
    with torch.no_grad():
        drawn = model.decode(z)
        up_one = model.decode(z + torch.tensor([1.0, 0, 0, 0, 0, 0]))
        wider = model.decode(z + torch.tensor([0, 1.0, 0, 0, 0, 0]))
        other = model.decode(z + torch.tensor([0, 0, 1.0, 0, 0, 0]))
    rows = SHAPE[0] // 8
    assert drawn.std() > 0.1
    assert torch.allclose(up_one[:, :, rows:], drawn[:, :, :-rows], atol=1e-5)  # the same image, 4 rows higher
    assert torch.allclose(wider, move_calls(drawn, torch.zeros(5), torch.full((5,), 2.0)), atol=1e-5)
    assert (other - drawn).abs().max() > 0.1  # the other dimensions still change what is drawn
    assert build_model(model.config).moved_axes == ("pitch", "duration")
    # the origin of the moved axes is the batch's average call: an offset shared by all costs, spread does not
    from usvpipe.vae.model import centring_penalty

    spread = torch.tensor([[-1.0, 0.5], [1.0, -0.5]])
    assert centring_penalty(spread, 0.1).item() == pytest.approx(0.0)
    assert centring_penalty(spread + torch.tensor([0.2, 0.0]), 0.1).item() == pytest.approx(0.5 * 0.04 / 0.01)
    # a checkpoint written before the option decodes as it did: every dimension goes through the network
    legacy = {key: value for key, value in model.config.items() if key != "moved_axes"}
    assert build_model(legacy).moved_axes == ()
    assert TrainParams().model_config(SHAPE, obs_precision=1.0)["moved_axes"] == []
    assert TrainParams(axis_decoder="move").model_config(SHAPE, obs_precision=1.0)["moved_axes"] == ["pitch"]
    assert TrainParams(axis_decoder="move", latent_axes="off").model_config(SHAPE, obs_precision=1.0)["moved_axes"] == []
    with pytest.raises(ConfigError, match="moved_axes"):
        VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), moved_axes=("duration",))


def test_a_locating_encoder_moves_z0_by_exactly_the_move_of_the_call():
    """``axis_encoder = "locate"``: z0's mean is a soft arg-max over rows, so it moves with the call by construction."""
    from usvpipe.vae.augment import intended_axis_change, shift_rows
    from usvpipe.vae.model import VAE, build_model

    torch.manual_seed(0)
    model = VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), located_axes=("pitch",)).eval()
    # a sharp detector (what training makes of it): the map is 300 x the image's own pixel values
    with torch.no_grad():
        for conv in model.locator[:3:2]:
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
        model.locator[4].weight.zero_()
        model.locator[4].weight[0, 0] = 300.0
        model.locator[4].bias.zero_()
    images = torch.zeros(6, 1, *SHAPE)
    for i in range(6):  # calls of different lengths and heights, away from the edges
        images[i, 0, 8 + 2 * i:10 + 2 * i, 4:4 + 3 * (i + 3)] = 0.8
    rows = torch.tensor([3, -2, 5, 0, -4, 1])
    with torch.no_grad():
        z0 = model.encode(images)[0][:, 0]
        z0_moved = model.encode(shift_rows(images, rows))[0][:, 0]
        other = model.encode(images + 0.01 * torch.rand_like(images))[0]
    assert torch.allclose(z0_moved - z0, intended_axis_change("pitch", rows.float(), SHAPE[0]), atol=1e-4)
    # z0's value is where the call lies: two rows higher in the image is 2 rows' worth of z0
    assert (z0[1:] - z0[:-1]).numpy() == pytest.approx(float(intended_axis_change("pitch", 2.0, SHAPE[0])), abs=1e-3)
    assert other.shape == (6, 6)
    assert build_model(model.config).located_axes == ("pitch",)
    legacy = {key: value for key, value in model.config.items() if key != "located_axes"}
    assert build_model(legacy).located_axes == ()  # checkpoints from before the option encode as they did
    assert TrainParams(axis_encoder="locate").model_config(SHAPE, obs_precision=1.0)["located_axes"] == ["pitch"]
    assert TrainParams(axis_encoder="locate", latent_axes="off").model_config(SHAPE, obs_precision=1.0)["located_axes"] == []
    with pytest.raises(ConfigError, match="located_axes"):
        VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), located_axes=("duration",))


def test_a_contour_encoder_puts_z0_at_the_calls_loudest_rows_whatever_its_shape():
    """``axis_encoder = "contour"``: z0's mean is the mean of each call column's loudest row, a fixed rule."""
    from usvpipe.vae.augment import intended_axis_change, shift_rows
    from usvpipe.vae.model import CONTOUR_ON_LEVEL, VAE, build_model, contour_row

    images = torch.zeros(4, 1, *SHAPE)
    images[0, 0, 10, 2:12] = 0.9  # a flat call on row 10
    for col in range(4, 20):  # an upsweep from row 6 to row 21: its mean row is 13.5
        images[1, 0, col + 2, col] = 0.6
    images[1] += 0.2 * torch.rand(1, *SHAPE) * (torch.rand(1, *SHAPE) > 0.9)  # speckle below the level
    images[2, 0, 20, 5:9] = 0.9
    images[2, 0, 12:30, 25] = CONTOUR_ON_LEVEL / 2  # a faint broadband click: not a call column
    images[3] = 0.1  # nothing above the level: the middle row
    assert contour_row(images).tolist() == pytest.approx([10.0, 13.5, 20.0, (SHAPE[0] - 1) / 2])
    torch.manual_seed(0)
    model = VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), located_axes=("pitch",),
                pitch_locator="contour").eval()
    rows = torch.tensor([3, -2, 5, 0])
    with torch.no_grad():
        z0 = model.encode(images[:3])[0][:, 0]
        z0_moved = model.encode(shift_rows(images[:3], rows[:3]))[0][:, 0]
    assert torch.allclose(z0_moved - z0, intended_axis_change("pitch", rows[:3].float(), SHAPE[0]), atol=1e-5)
    assert float(z0[2] - z0[0]) == pytest.approx(float(intended_axis_change("pitch", 10.0, SHAPE[0])), abs=1e-5)
    assert not hasattr(model, "locator")  # nothing to learn but the offset
    assert build_model(model.config).pitch_locator == "contour"
    assert "pitch_locator" not in VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,)).config
    assert TrainParams(axis_encoder="contour").model_config(SHAPE, obs_precision=1.0)["pitch_locator"] == "contour"
    with pytest.raises(ConfigError, match="pitch_locator"):
        VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), pitch_locator="centroid")


def test_contour_plus_width_reads_z1_as_the_share_of_columns_the_call_spans():
    """``axis_encoder = "contour+width"``: z1's mean is linear in the call's width, whatever its pitch."""
    from usvpipe.vae.augment import shift_rows
    from usvpipe.vae.model import CONTOUR_ON_LEVEL, VAE, WIDTH_UNITS_PER_IMAGE_WIDTH, build_model, contour_width

    images = torch.zeros(4, 1, *SHAPE)
    images[0, 0, 10, 2:10] = 0.9  # 8 columns
    images[1, 0, 20, 4:20] = 0.6  # 16 columns, higher
    images[1, 0, 5:25, 28] = CONTOUR_ON_LEVEL / 2  # a faint click: not a call column
    images[2, 0, 12, 0:SHAPE[1]] = 0.9  # the whole width
    images[3] = 0.1  # no call column
    assert contour_width(images).tolist() == pytest.approx([8 / SHAPE[1], 16 / SHAPE[1], 1.0, 0.0])
    torch.manual_seed(0)
    model = build_model(TrainParams(axis_encoder="contour+width", latent_dim=6, channels=(8, 16), hidden=(32,))
                        .model_config(SHAPE, obs_precision=1.0)).eval()
    assert model.read_width and model.pitch_locator == "contour" and model.located_axes == ("pitch",)
    with torch.no_grad():
        mu = model.encode(images)[0]
        mu_moved = model.encode(shift_rows(images, torch.tensor([3, -4, 2, 0])))[0]
    assert float(mu[1, 1] - mu[0, 1]) == pytest.approx(WIDTH_UNITS_PER_IMAGE_WIDTH * 8 / SHAPE[1], abs=1e-5)
    assert float(mu[2, 1] - mu[3, 1]) == pytest.approx(WIDTH_UNITS_PER_IMAGE_WIDTH, abs=1e-5)
    assert torch.allclose(mu_moved[:, 1], mu[:, 1])  # a pitch move leaves the width where it was
    assert not torch.allclose(mu_moved[:3, 0], mu[:3, 0])  # ... and moves z0
    assert build_model(model.config).read_width
    assert model.rule_read_dims == (0, 1)  # what the benchmark leaves out to score the network's own dimensions
    assert VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), located_axes=("pitch",),
               pitch_locator="contour").rule_read_dims == (0,)
    assert VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), located_axes=("pitch",)).rule_read_dims == ()
    assert "read_width" not in TrainParams(axis_encoder="contour").model_config(SHAPE, obs_precision=1.0)
    for bad in ({"latent_axes": "pitch+duration"}, {"latent_axes": "off"}, {"axis_decoder": "move"}):
        with pytest.raises(ConfigError, match="contour\\+width"):
            TrainParams(axis_encoder="contour+width", **bad)
    with pytest.raises(ConfigError, match="read_width"):
        VAE(input_shape=SHAPE, latent_dim=6, channels=(8, 16), hidden=(32,), read_width=True)


@pytest.mark.parametrize("params, resolved", [
    ({}, "contour+width"), ({"latent_axes": "pitch+duration"}, "network"), ({"axis_decoder": "move"}, "network"),
    ({"latent_dim": 2}, "network"), ({"latent_axes": "off"}, "network"),
    ({"axis_encoder": "contour", "latent_axes": "off"}, "network"),  # no pitch axis: nothing to read off the image
    ({"axis_encoder": "locate"}, "locate"), ({"axis_encoder": "network"}, "network")])
def test_the_default_axis_encoder_reads_the_rules_only_where_they_apply(params, resolved):
    p = TrainParams(**params)
    assert p.resolved_axis_encoder == resolved
    config = p.model_config(SHAPE, obs_precision=1.0)
    assert config.get("read_width", False) == (resolved == "contour+width")
    assert (config.get("pitch_locator") == "contour") == resolved.startswith("contour")

def test_with_a_pitch_axis_the_first_latent_tracks_a_calls_frequency_shift(tmp_path):
    """Train a small model briefly with ``latent_axes = "pitch"`` (both decoders) and without; encode images moved by known rows."""
    from usvpipe.store import open_store
    from usvpipe.vae import load_model
    from usvpipe.vae.augment import move_calls
    from usvpipe.pipeline.info import describe_directory
    from usvpipe.vae.axis_check import axis_checks_from_dicts, measure_axes
    from usvpipe.vae.augment import PITCH_AXIS_UNITS_PER_HEIGHT

    _random_call_store(tmp_path / "store", n_recordings=4, per_recording=40)
    images = torch.from_numpy(open_store(tmp_path / "store").read(np.arange(40))).float()[:, None]
    rows = torch.arange(-3, 4)
    moved = move_calls(images.repeat(len(rows), 1, 1, 1), rows.repeat_interleave(len(images)).float(),
                       torch.ones(len(rows) * len(images)))
    step = PITCH_AXIS_UNITS_PER_HEIGHT / SHAPE[0]
    found = {}  # variant -> (z0's change per row / the set amount, R² of the shift from z0's change)
    for axes, decoder, encoder in (("pitch", "network", "network"), ("pitch", "move", "network"),
                                   ("pitch", "network", "locate"), ("off", "network", "network")):
        name = f"{axes} {decoder}" + (" locate" if encoder == "locate" else "")
        params = TrainParams(min_steps=300, figure_every=0, latent_dim=8, channels=(8, 16), hidden=(128,),
                             latent_axes=axes, axis_decoder=decoder, axis_encoder=encoder)
        res = train(tmp_path / "store", tmp_path / name.replace(" ", "_"), params, device="cpu", progress=False)
        assert res.health.passed, (name, res.health)
        logged = res.history["train_axis"]
        assert (logged > 0).all() if axes == "pitch" else (logged == 0).all()
        with torch.no_grad():
            mu = load_model(res.model_path).encode(moved)[0].view(len(rows), len(images), -1)
        unmoved = mu[rows == 0][0]
        # the shapes stay in the other dimensions' means (not passed through the posterior's spread)
        found[name + " shape"] = unmoved[:, 1:].std(0).max().item()
        change = mu[..., 0] - unmoved[:, 0]  # z0 against the unmoved images
        moved_by = rows[:, None].expand_as(change).float()
        slope = (change * moved_by).sum().item() / (moved_by * moved_by).sum().item()
        r2 = np.corrcoef(change.flatten().numpy(), moved_by.flatten().numpy())[0, 1] ** 2
        found[name] = (slope / step, r2)
        # the run's own check (held-out recordings, whole-row moves) measures the same response
        if axes == "off":
            assert res.axis_checks == [] and json.loads((res.out_dir / "train.json").read_text())["latent_axes_check"] == []
            check = measure_axes(load_model(res.model_path), [images], ("pitch",), axis_shift=0.1, axis_stretch=0.3)[0]
        else:
            (check,) = res.axis_checks
            stored = json.loads((res.out_dir / "train.json").read_text())["latent_axes_check"]
            assert axis_checks_from_dicts(stored) == [check] and stored[0]["holds"] == check.holds
            assert check.summary() in "\n".join(describe_directory(res.out_dir))  # usvpipe info repeats it
        found[name + " check"] = (check.slope, check.r2, check.holds)
    # with the axis: z0 moves by the set amount per row, the same for every image; within 30 %, and
    # 40 % for the moving decoder, which is further from converged after 300 steps (0.96 and 0.76
    # here). The locating encoder moves z0 in step with every call (R² 0.99 here, 0.78 for the
    # network) but by less than the set amount until its soft arg-max is sharp: 0.53 here after
    # 300 steps, 0.56-0.91 on the real store's held-out recordings after 2 000.
    for name, (low, high), straight in (("pitch network", (0.7, 1.3), 0.6), ("pitch move", (0.6, 1.4), 0.6),
                                        ("pitch network locate", (0.4, 1.3), 0.95)):
        assert low < found[name][0] < high and found[name][1] > straight, found
        assert found["off network"][1] < found[name][1] - 0.3, found  # without it, nothing ties z0 to the shift
        assert found[name + " shape"] > 0.3, found
        assert found[name + " check"][2] and abs(found[name + " check"][0] - found[name][0]) < 0.25, found
    assert not found["off network check"][2], found  # the check tells a model without the axis


def test_with_a_duration_axis_the_second_latent_tracks_a_calls_widening(tmp_path):
    """``latent_axes = "pitch+duration"`` (moving decoder): z1 follows widenings, z0 does not, and the run's check says so."""
    from usvpipe.store import open_store
    from usvpipe.vae import load_model
    from usvpipe.vae.augment import intended_axis_change, move_calls

    _random_call_store(tmp_path / "store", n_recordings=6, per_recording=30)
    # two recordings held out, so the run's check also fits each held-out recording on its own
    params = TrainParams(min_steps=300, figure_every=0, latent_dim=8, channels=(8, 16), hidden=(128,),
                         latent_axes="pitch+duration", axis_decoder="move", val_fraction=0.3)
    res = train(tmp_path / "store", tmp_path / "run", params, device="cpu", progress=False)
    assert res.health.passed, res.health
    assert [c.axis for c in res.axis_checks] == ["pitch", "duration"] and [c.dimension for c in res.axis_checks] == [0, 1]
    assert all(c.holds and not c.needs_warning for c in res.axis_checks), [c.summary() for c in res.axis_checks]
    held_out = sorted(json.loads((res.out_dir / "train.json").read_text())["split"]["val_units"])
    for check, stored in zip(res.axis_checks, json.loads((res.out_dir / "train.json").read_text())["latent_axes_check"]):
        assert sorted(fit.recording for fit in check.by_recording) == held_out and len(held_out) == 2
        assert all(fit.n_syllables == 30 for fit in check.by_recording)
        assert [fit["recording"] for fit in stored["by_recording"]] == [fit.recording for fit in check.by_recording]
    assert load_model(res.model_path).moved_axes == ("pitch", "duration")

    images = torch.from_numpy(open_store(tmp_path / "store").read(np.arange(40))).float()[:, None]
    log_widen = torch.tensor([-0.26, -0.13, 0.0, 0.13, 0.26])  # up to 30 % wider or narrower
    widened = move_calls(images.repeat(len(log_widen), 1, 1, 1), torch.zeros(len(log_widen) * len(images)),
                         torch.exp(log_widen).repeat_interleave(len(images)))
    with torch.no_grad():
        mu = load_model(res.model_path).encode(widened)[0].view(len(log_widen), len(images), -1)
    change = mu - mu[2]  # against the images as they are
    intended = intended_axis_change("duration", log_widen, SHAPE[0])[:, None].expand(len(log_widen), len(images))

    def slope(dimension):
        return ((change[..., dimension] * intended).sum() / (intended * intended).sum()).item()

    r2 = np.corrcoef(change[..., 1].flatten().numpy(), intended.flatten().numpy())[0, 1] ** 2
    # measured 0.91 (R² 0.89) for z1 and 0.00 for z0 (800 steps)
    assert abs(slope(1) - 1.0) < 0.4 and r2 > 0.6, (slope(1), r2)
    assert abs(slope(0)) < 0.3, slope(0)  # a wider call is not a higher one


def test_the_axis_fit_reads_scale_scatter_and_leak_of_a_latent_axis():
    from usvpipe.vae.axis_check import MIN_AXIS_R2, AxisCheck, axis_fit

    rng = np.random.default_rng(0)
    intended = np.repeat([-1.0, -0.5, 0.5, 1.0], 50)
    still = np.zeros((len(intended), 3))
    assert axis_fit(intended, intended, still) == pytest.approx((1.0, 1.0, 0.0))
    slope, r2, leak = axis_fit(1.7 * intended + rng.normal(0, 0.3, len(intended)), intended, 0.2 * intended[:, None] * [1, 0, 0])
    assert slope == pytest.approx(1.7, abs=0.05) and 0.9 < r2 < 1.0 and leak == pytest.approx(0.2)
    unrelated = rng.normal(0, 1, len(intended))
    slope, r2, _ = axis_fit(unrelated, intended, still)
    assert abs(slope) < 0.3 and r2 < 0.1
    assert np.isnan(axis_fit(unrelated, np.zeros_like(intended), still)[0])
    common = dict(axis="pitch", dimension=0, leak=0.1, largest_move="6 rows", n_syllables=10)
    assert AxisCheck(slope=1.1, r2=0.8, **common).holds
    assert not AxisCheck(slope=2.5, r2=0.8, **common).holds and not AxisCheck(slope=0.4, r2=0.8, **common).holds
    bad = AxisCheck(slope=1.0, r2=MIN_AXIS_R2 - 0.01, **common)
    assert not bad.holds and "does NOT hold" in bad.summary() and "encode's read-out" in bad.summary()
    assert not AxisCheck(slope=float("nan"), r2=float("nan"), **common).holds


class _RowReadingEncoder(torch.nn.Module):
    """A stand-in VAE for :func:`measure_axes`: z0 is the loudest row in z0 units, times 1 for images whose
    brightest pixel is 1 and times 0.1 for dimmer ones (a recording on which the axis has flattened)."""

    output_shape = SHAPE

    def prepare(self, x):
        return x

    def encode(self, x):
        from usvpipe.vae.augment import PITCH_AXIS_UNITS_PER_HEIGHT

        row = x[:, 0].sum(-1).argmax(-1).float() * (PITCH_AXIS_UNITS_PER_HEIGHT / SHAPE[0])
        gain = torch.where(x.flatten(1).amax(1) > 0.9, 1.0, 0.1)
        mu = torch.zeros(x.shape[0], 3)
        mu[:, 0] = row * gain
        return mu, None, None


def test_the_axis_check_names_a_held_out_recording_on_which_the_axis_fails():
    from usvpipe.vae.axis_check import MIN_RECORDING_SYLLABLES, axis_checks_from_dicts, measure_axes

    rng = np.random.default_rng(0)
    images = np.zeros((30, 1, *SHAPE), np.float32)
    for i, row in enumerate(rng.integers(10, 22, len(images))):
        images[i, 0, row, 8:24] = 1.0 if i < 20 else 0.5  # recordings a and b: the axis holds; c: it has flattened
    recordings = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    batches = [torch.from_numpy(images[:16]), torch.from_numpy(images[16:])]
    (check,) = measure_axes(_RowReadingEncoder(), batches, ("pitch",), axis_shift=0.1, axis_stretch=0.3,
                            recordings=recordings)
    fits = {fit.recording: fit for fit in check.by_recording}
    assert fits["a"].slope == pytest.approx(1.0) and fits["a"].holds and fits["b"].holds
    assert fits["c"].slope == pytest.approx(0.1) and not fits["c"].holds and fits["c"].n_syllables == 10
    assert check.holds and check.needs_warning  # the pooled fit (slope 0.7) hides it; the per-recording fit does not
    assert [fit.recording for fit in check.failing_recordings] == ["c"]
    assert "holds on 2 of 3 held-out recordings with 5+ syllables, not on c (slope 0.10" in check.summary()
    assert "not a reliable pitch read-out for that recording" in check.summary()
    assert axis_checks_from_dicts(json.loads(json.dumps([check.to_dict()]))) == [check]
    # a recording with too few syllables gets no fit of its own (but one that does is named even when it is
    # the only one: the pooled fit mixes in the others), and one recording alone is the pooled fit
    few = ["a"] * 20 + ["c"] * (MIN_RECORDING_SYLLABLES - 1) + ["d"] * (11 - MIN_RECORDING_SYLLABLES)
    (check,) = measure_axes(_RowReadingEncoder(), batches, ("pitch",), axis_shift=0.1, axis_stretch=0.3, recordings=few)
    assert [fit.recording for fit in check.by_recording] == ["a", "d"]
    one_named = ["a"] * 26 + ["b"] * (MIN_RECORDING_SYLLABLES - 1)
    (check,) = measure_axes(_RowReadingEncoder(), batches, ("pitch",), axis_shift=0.1, axis_stretch=0.3,
                            recordings=one_named)
    assert [fit.recording for fit in check.by_recording] == ["a"] and "holds on 1 of 1 held-out" in check.summary()
    (check,) = measure_axes(_RowReadingEncoder(), batches, ("pitch",), axis_shift=0.1, axis_stretch=0.3,
                            recordings=["a"] * 30)
    assert check.by_recording == () and "held-out recordings" not in check.summary()
    with pytest.raises(ValueError, match="29 recording labels for 30 images"):
        measure_axes(_RowReadingEncoder(), batches, ("pitch",), axis_shift=0.1, axis_stretch=0.3, recordings=["a"] * 29)
    # train.json files written before the per-recording fits still read
    legacy = {key: value for key, value in check.to_dict().items() if key != "by_recording"}
    assert axis_checks_from_dicts([legacy]) == [check]


def test_augmentation_is_automatic_for_small_stores_only_and_can_be_forced():
    from usvpipe.vae.params import AUGMENT_BELOW_SYLLABLES

    assert TrainParams().resolved_augment(300) and not TrainParams().resolved_augment(AUGMENT_BELOW_SYLLABLES)
    assert not TrainParams(augment="off").resolved_augment(300) and TrainParams(augment="on").resolved_augment(10**6)


def test_health_counts_active_units_from_the_per_dimension_kl():
    from usvpipe.vae.health import assess, per_dimension_kl

    rng = np.random.default_rng(0)
    mu = np.zeros((200, 4))
    mu[:, 0] = rng.normal(0, 2, 200)  # one dimension carries information
    var = np.ones((200, 4))
    var[:, 0] = 0.1
    kl = per_dimension_kl(mu, var)
    assert kl[0] > 1 and np.allclose(kl[1:], 0)
    images = rng.uniform(0, 1, (200, 4, 4))
    h = assess(mu=mu, var=var, test_images=images, reconstructions=images * 0.9 + 0.05, train_images=images,
               held_out=True, n_store=200, steps=100)
    assert h.active_units == 1 and not h.collapsed and h.passed
    dead = assess(mu=np.zeros((200, 4)), var=np.ones((200, 4)), test_images=images,
                  reconstructions=np.broadcast_to(images.mean(0), images.shape), train_images=images,
                  held_out=True, n_store=50, steps=12)
    assert dead.collapsed and not dead.passed and dead.recon_r2 == pytest.approx(0, abs=1e-9)
    assert "more syllables" in dead.fix and "12" in dead.fix and "FAILED" in dead.summary()


@pytest.mark.parametrize("side, advice", [(128, "pools them by 2"), (96, "set the syllables shape to [64, 64]"),
                                          (64, "[32, 32]"), (32, None)])
def test_the_fix_for_uninformative_latents_suggests_smaller_images_only_when_they_can_shrink(side, advice):
    from usvpipe.vae.health import assess

    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (20, side, side))
    h = assess(mu=np.zeros((20, 4)), var=np.ones((20, 4)), test_images=images,
               reconstructions=np.broadcast_to(images.mean(0), images.shape), train_images=images,
               held_out=True, n_store=500, steps=2000)
    assert not h.passed
    if advice is None:
        assert "smaller images" not in h.fix
    else:
        assert f"sees {side}×{side}" in h.fix and advice in h.fix
        assert ("profile" in h.fix) == (side == 128)  # only where the CPU profile would shrink them


@pytest.mark.parametrize("axis_encoder", ["auto", "network"])
def test_a_small_store_learns_duration_and_frequency_with_the_defaults(tmp_path, axis_encoder):
    """~300 syllables, default parameters (only the step floor lowered for the test budget). The default
    reads z0 and z1 off the image by rules; with ``"network"`` every dimension is learnt, and must learn too."""
    truth = _random_call_store(tmp_path / "store")
    res = train(tmp_path / "store", tmp_path / "vae", TrainParams(min_steps=600, figure_every=0, axis_encoder=axis_encoder),
                device="cpu", progress=False)
    assert res.batch_size == 16 and res.steps >= 600
    assert res.health.passed and res.health.active_units - len(res.health.rule_read_dims) >= 3, res.health  # learnt ones
    summary = json.loads((tmp_path / "vae" / "train.json").read_text())
    assert summary["health"]["passed"] and summary["steps"] == res.steps
    lat = encode(res.model_path, tmp_path / "store", tmp_path / "latents.csv", device="cpu")
    z = lat.filter(regex=r"^z\d+$").to_numpy()
    r2_duration = _cv_ridge_r2(z, truth["duration_s"].to_numpy())
    r2_freq = _cv_ridge_r2(z, 0.5 * (truth["start_freq_hz"] + truth["end_freq_hz"]).to_numpy())
    assert r2_duration >= 0.7 and r2_freq >= 0.7, (r2_duration, r2_freq)


def _collapsed_model(tmp_path):
    """A trained model made to collapse on purpose: its encoder head returns the prior, N(0, I), for every
    syllable, so the decoder sees one point. Its health is re-measured and written into model.pt, as
    training would have. (The planted 3-SD group shift stays visible to the classical measures.)"""
    from usvpipe.store import open_store
    from usvpipe.vae.health import measure_health
    from usvpipe.vae.model import build_model
    from usvpipe.vae.checkpoint import load_checkpoint, save_checkpoint

    _random_call_store(tmp_path / "store", n_recordings=4, per_recording=30, group_shift=3.0)
    params = TrainParams(min_steps=0, epochs=2, latent_dim=4, channels=(4, 8), hidden=(16,), figure_every=0)
    res = train(tmp_path / "store", tmp_path / "vae", params, device="cpu", progress=False)
    ckpt = load_checkpoint(res.model_path)
    model = build_model(ckpt["model_config"])
    model.load_state_dict(ckpt["model_state"])
    with torch.no_grad():
        model.head.weight.mul_(1e-4)  # all but the prior: mean ~0, log-variance ~0, U ~0 for every syllable
        model.head.bias.zero_()
    store = open_store(tmp_path / "store")
    images = store.read(np.arange(len(store)))
    health = measure_health(model, [torch.from_numpy(images[:, None])], images, held_out=True, n_store=len(store),
                            steps=res.steps)
    ckpt["model_state"] = model.state_dict()
    ckpt["health"] = health.to_dict()
    save_checkpoint(ckpt, res.model_path)
    return res, health


def test_a_collapse_of_the_learnt_dimensions_is_flagged_even_when_rule_read_ones_vary():
    """With ``contour+width`` z0 and z1 follow every call by construction; they must not hide a collapse."""
    from usvpipe.vae.health import health_from_dict, measure_health
    from usvpipe.vae.model import build_model

    rng = np.random.default_rng(0)
    images = np.zeros((40, 1, *SHAPE), np.float32)
    for img in images:  # calls at random rows and widths: z0 and z1 vary
        row, start, width = rng.integers(4, SHAPE[0] - 4), rng.integers(0, 8), rng.integers(4, 20)
        img[0, row, start:start + width] = 0.9
    torch.manual_seed(0)
    model = build_model(TrainParams(axis_encoder="contour+width", latent_dim=4, channels=(4, 8), hidden=(16,))
                        .model_config(SHAPE, obs_precision=1.0))
    with torch.no_grad():
        model.head.weight.zero_()  # every learnt dimension is the prior for every syllable
        model.head.bias.zero_()
    health = measure_health(model, [torch.from_numpy(images)], images[:, 0], held_out=True, n_store=40, steps=10)
    assert health.rule_read_dims == (0, 1) and health.active_units == 2  # the two rules vary ...
    assert health.collapsed and not health.passed and "every learnt dimension" in health.reason  # ... the rest collapsed
    assert "z0, z1 read off the image by fixed rules" in health.summary()
    assert health_from_dict(json.loads(json.dumps(health.to_dict()))) == health  # as train.json stores it

def test_a_collapsed_model_is_flagged_and_its_mmd_answer_is_not_interpretable(tmp_path):
    from usvpipe.mmd import MMDParams, mmd_test

    res, health = _collapsed_model(tmp_path)
    # (the default reads z0 and z1 off the image by rules: those two vary, every learnt dimension is the prior)
    assert health.collapsed and not health.passed and health.active_units == len(health.rule_read_dims) == 2
    assert health.recon_r2 <= 0.05 and health.fix
    encode(res.model_path, tmp_path / "store", tmp_path / "latents.csv", device="cpu")
    sidecar = json.loads((tmp_path / "latents.json").read_text())
    assert sidecar["model_health"]["passed"] is False
    mmd = mmd_test(tmp_path / "latents.csv", params=MMDParams(unit="syllable", permutations=99))
    assert mmd.interpretable is False and "do not interpret" in mmd.do_not_interpret
    assert mmd.to_dict()["latent_health"]["collapsed"] is True


def test_fully_identical_latents_fail_with_the_health_verdict_first(tmp_path):
    import pandas as pd

    from usvpipe.errors import UsvpipeError
    from usvpipe.mmd import MMDParams, mmd_test

    table = pd.DataFrame({"group": ["A"] * 5 + ["B"] * 5, "z0": 0.0, "z1": 0.0})
    dead = {"passed": False, "reason": "the posterior equals the prior in every dimension", "fix": "more steps"}
    with pytest.raises(UsvpipeError, match="do not interpret: the posterior equals the prior.*fix: more steps"):
        mmd_test(table, params=MMDParams(unit="syllable", permutations=99), health=dead)
    with pytest.raises(UsvpipeError, match="identical"):  # without a failed health: the plain reason
        mmd_test(table, params=MMDParams(unit="syllable", permutations=99), health=None)


def test_cli_train_prints_the_health_and_mmd_refuses_to_state_an_answer(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    res, _ = _collapsed_model(tmp_path)
    encode(res.model_path, tmp_path / "store", tmp_path / "latents.csv", device="cpu")
    out = CliRunner().invoke(main, ["mmd", str(tmp_path / "latents.csv"), "--unit", "syllable", "--permutations", "99",
                                    "--no-figures", "--out", str(tmp_path / "mmd"), "--store", str(tmp_path / "store")])
    assert out.exit_code != 0 and "do not interpret" in out.output
    report = json.loads((tmp_path / "mmd" / "report.json").read_text())
    assert report["interpretable"] is False
    reps = [r["representation"] for r in report["second_opinion"]]
    assert reps == ["VAE latents", "classical measures", "PCA of the images"]
    # the classical measures see the planted 3-SD group shift that the collapsed latents cannot
    classical = report["second_opinion"][1]
    assert classical["p_value"] < 0.05, classical


def test_a_run_stopped_mid_training_leaves_an_encodable_model(tmp_path, caplog):
    _random_call_store(tmp_path / "store", n_recordings=4, per_recording=30)
    params = TrainParams(min_steps=0, epochs=5, latent_dim=4, channels=(4, 8), hidden=(16,), figure_every=0,
                         checkpoint_min_interval_s=0)

    def stop_after_two(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt  # what a SLURM time limit looks like from inside

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "store", tmp_path / "vae", params, device="cpu", progress=False, on_epoch_end=stop_after_two)
    assert (tmp_path / "vae" / "model.pt").exists() and not (tmp_path / "vae" / "train.json").exists()
    with caplog.at_level("WARNING"):
        lat = encode(tmp_path / "vae", tmp_path / "store", tmp_path / "latents.csv", device="cpu")
    assert len(lat) == 120 and "unfinished training run" in caplog.text
    from usvpipe.pipeline.info import describe_directory

    assert "not finished" in " ".join(describe_directory(tmp_path / "vae"))


def test_classical_measures_are_standardised_and_constant_ones_dropped():
    import pandas as pd

    from usvpipe.mmd.trust import classical_features

    frame = pd.DataFrame({"duration_s": [0.01, 0.02, 0.03, 0.04], "mean_freq_hz": [6e4, 7e4, 6e4, 7e4],
                          "peak_amplitude": [3.0, 3.0, 3.0, 3.0], "max_freq_hz": [7e4, 8e4, 9e4, 8e4],
                          "min_freq_hz": [5e4, 5e4, 5e4, 6e4]})
    table, names = classical_features(frame)
    assert "m_peak_amplitude" not in names and "m_bandwidth_hz" in names
    assert np.allclose(table[names].mean(), 0) and np.allclose(table[names].std(ddof=0), 1)
