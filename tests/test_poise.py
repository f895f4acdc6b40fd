"""POISE-VAE: sampler, KL estimator and its gradients against a grid, inference paths, I/O, CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usvpipe.errors import InputFileError  # noqa: E402
from usvpipe.poise import prior as P  # noqa: E402
from usvpipe.poise.data import (  # noqa: E402
    PairedData,
    load_pairs,
    make_digits_gaussians,
    make_identifiability_data,
    mean_corr_coef,
    save_pairs,
)

# One thread: these models are tiny, and OpenMP spin-waiting on a shared 2-core machine
# makes 2 threads up to 50x slower than 1 here.
torch.set_num_threads(1)
F64 = torch.float64


# ------------------------------------------------------------------------------ 1-D x 1-D grid
class Grid:
    """Brute-force 1-D x 1-D density on a fine grid (the normaliser by quadrature)."""

    def __init__(self, half_width=8.0, n=481):
        g = torch.linspace(-half_width, half_width, n, dtype=F64)
        self.h = g[1] - g[0]
        self.z, self.zp = torch.meshgrid(g, g, indexing="ij")

    def energy(self, a1, a2, b1, b2, g11, g22):
        z, zp = self.z, self.zp
        return a1 * z + a2 * z**2 + b1 * zp + b2 * zp**2 + g11 * z * zp + g22 * z**2 * zp**2

    def log_z(self, *theta):
        return torch.logsumexp(self.energy(*theta).flatten(), 0) + 2 * torch.log(self.h)

    def moments(self, *theta):
        w = torch.softmax(self.energy(*theta).flatten(), 0).reshape(self.z.shape)
        z, zp = self.z, self.zp
        return {k: (w * v).sum() for k, v in
                {"z": z, "z2": z**2, "zp": zp, "zp2": zp**2, "zzp": z * zp, "z2zp2": z**2 * zp**2}.items()}


def _nat(theta):
    a1, a2, b1, b2, g11, g22 = theta
    return P.NatParams(a1.reshape(1), a2.reshape(1), b1.reshape(1), b2.reshape(1), g11.reshape(1, 1), g22.reshape(1, 1))


THETA = (0.3, -0.6, -0.2, -0.5, 0.8, -0.3)  # lambda, lambda', G11, G22
DELTA = (0.5, -0.4, -0.7, -0.2)              # encoder increments (second components <= 0)


def _sample_moments(z, zp):
    stats = {"z": z, "z2": z**2, "zp": zp, "zp2": zp**2, "zzp": z * zp, "z2zp2": z**2 * zp**2}
    return {k: (v.mean().item(), v.std().item() / math.sqrt(v.numel())) for k, v in stats.items()}


@pytest.mark.parametrize("sampler", [P.gibbs, P.gibbs_loop])
def test_gibbs_matches_grid_moments(sampler):
    theta = [torch.tensor(v, dtype=F64) for v in THETA]
    truth = Grid().moments(*theta)
    gen = torch.Generator().manual_seed(1)
    chains = 20_000 if sampler is P.gibbs else 5_000
    z, zp = sampler(_nat(theta), torch.zeros(chains, 1, dtype=F64), 20, generator=gen)
    for k, (mean, se) in _sample_moments(z, zp).items():
        # Chains are independent, so the i.i.d. standard error applies; 5 SE + tiny grid error.
        assert abs(mean - truth[k].item()) < 5 * se + 1e-3, (k, mean, truth[k].item(), se)


def test_conditionals_are_proper_for_random_couplings():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        prior = P.CoupledPrior(4, 3)
        with torch.no_grad():
            for p in prior.parameters():
                p.copy_(5 * torch.randn(p.shape, generator=gen))
        nat = prior.natural()
        assert (nat.a2 < 0).all() and (nat.b2 < 0).all() and (nat.g22 < 0).all()
        d2 = -torch.nn.functional.softplus(5 * torch.randn(8, 1, 4, generator=gen))
        e2 = -torch.nn.functional.softplus(5 * torch.randn(8, 1, 3, generator=gen))
        q = nat.unsqueeze(0).unsqueeze(0).shifted(torch.randn(8, 1, 4), d2, torch.randn(8, 1, 3), e2)
        zp = 10 * torch.randn(8, 5, 3, generator=gen)
        z = 10 * torch.randn(8, 5, 4, generator=gen)
        for nat_ in (nat, q):
            _, eta2 = P.cond_z(nat_, zp, zp * zp)
            _, eta2p = P.cond_zp(nat_, z, z * z)
            assert (eta2 < 0).all() and (eta2p < 0).all()
        # And sampling from them never produces NaN/inf.
        zs, zps = P.gibbs(q, P.init_chain(q, (8, 5)), 5, generator=gen)
        assert torch.isfinite(zs).all() and torch.isfinite(zps).all()


def _grid_kl(grid, theta, delta):
    a1, a2, b1, b2, g11, g22 = theta
    d1, d2, e1, e2 = delta
    theta_q = (a1 + d1, a2 + d2, b1 + e1, b2 + e2, g11, g22)
    m = grid.moments(*theta_q)
    return d1 * m["z"] + d2 * m["z2"] + e1 * m["zp"] + e2 * m["zp2"] - grid.log_z(*theta_q) + grid.log_z(*theta)


def test_kl_estimator_value_and_gradients_match_grid():
    grid = Grid()
    theta = [torch.tensor(v, dtype=F64, requires_grad=True) for v in THETA]
    delta = [torch.tensor(v, dtype=F64, requires_grad=True) for v in DELTA]
    kl_true = _grid_kl(grid, theta, delta)
    g_true = torch.autograd.grad(kl_true, theta + delta)

    gen = torch.Generator().manual_seed(3)
    p = _nat(theta)
    d = (delta[0].reshape(1, 1, 1), delta[1].reshape(1, 1, 1))
    e = (delta[2].reshape(1, 1, 1), delta[3].reshape(1, 1, 1))
    q = p.unsqueeze(0).unsqueeze(0).shifted(*d, *e)
    K = 60_000
    zq, zpq = P.gibbs(q, torch.zeros(1, K, 1, dtype=F64), 20, generator=gen)
    zpr, _ = P.gibbs(p, torch.zeros(K, 1, dtype=F64), 20, generator=gen)
    kl = P.kl_surrogate(q, p, d, e, zq, zpq, zpr).sum()
    g_est = torch.autograd.grad(kl, theta + delta)
    assert abs(kl.item() - kl_true.item()) < 0.02, (kl.item(), kl_true.item())
    names = ["a1", "a2", "b1", "b2", "g11", "g22", "d1", "d2", "e1", "e2"]
    for name, gt, ge in zip(names, g_true, g_est):
        assert abs(ge.item() - gt.item()) < 0.03 + 0.05 * abs(gt.item()), (name, ge.item(), gt.item())
    # The covariance (score-function) term is what carries the encoder gradient: without it
    # the gradient w.r.t. the increments would vanish; make sure the truth is far from 0.
    assert max(abs(g_true[i].item()) for i in range(6, 10)) > 0.1


def test_pathwise_kl_gradient_matches_grid_for_sharp_posteriors():
    # kl_gradient="pathwise": the Cov_q(S) D part through one re-parameterised Gibbs sweep.
    # Its bias is small when the encoder increments dominate the coupling (sharp posteriors,
    # the regime of training), which is where the score-function version is noisiest.
    grid = Grid()
    theta = [torch.tensor(v, dtype=F64, requires_grad=True) for v in THETA]
    delta = [torch.tensor(v, dtype=F64, requires_grad=True) for v in (3.0, -20.0, -2.0, -10.0)]
    g_true = torch.autograd.grad(_grid_kl(grid, theta, delta), theta + delta)
    gen = torch.Generator().manual_seed(4)
    p = _nat(theta)
    d = (delta[0].reshape(1, 1, 1), delta[1].reshape(1, 1, 1))
    e = (delta[2].reshape(1, 1, 1), delta[3].reshape(1, 1, 1))
    q = p.unsqueeze(0).unsqueeze(0).shifted(*d, *e)
    zq, zpq = P.gibbs(q, torch.zeros(1, 20_000, 1, dtype=F64), 20, generator=gen)
    zpr, _ = P.gibbs(p, torch.zeros(20_000, 1, dtype=F64), 20, generator=gen)
    torch.manual_seed(5)
    rep = P.reparam_sample(q, zpq)
    kl = P.kl_surrogate(q, p, d, e, zq, zpq, zpr, rep=rep).sum()
    g_est = torch.autograd.grad(kl, theta + delta)
    names = ["a1", "a2", "b1", "b2", "g11", "g22", "d1", "d2", "e1", "e2"]
    for name, gt, ge in zip(names, g_true, g_est):
        assert abs(ge.item() - gt.item()) < 0.02 + 0.05 * abs(gt.item()), (name, ge.item(), gt.item())


def test_kl_of_identical_distributions_is_zero():
    theta = [torch.tensor(v, dtype=F64) for v in THETA]
    p = _nat(theta)
    zeros = torch.zeros(1, 1, 1, dtype=F64)
    q = p.unsqueeze(0).unsqueeze(0).shifted(zeros, zeros, zeros, zeros)
    zq, zpq = P.gibbs(q, torch.zeros(1, 500, 1, dtype=F64), 5)
    kl = P.kl_value(q, p, (zeros, zeros), (zeros, zeros), zq, zpq)
    assert abs(kl.item()) < 1e-9


# ------------------------------------------------------------------------------ models and paths
def _tiny(model="poise", epochs=1, shape_img=True):
    from usvpipe.poise.model import PoiseParams

    rng = np.random.default_rng(0)
    n = 64
    x1 = rng.uniform(0, 1, (n, 8, 8)).astype(np.float32) if shape_img else rng.standard_normal((n, 5)).astype(np.float32)
    x2 = rng.standard_normal((n, 3)).astype(np.float32)
    params = PoiseParams(model=model, latent_dim_1=3, latent_dim_2=2, hidden_units=16, epochs=epochs,
                         batch_size=32, gibbs_sweeps=2, gibbs_samples=2, prior_chains=16)
    return PairedData(x1, x2), params


@pytest.mark.parametrize("model", ["poise", "mvae", "mmvae", "vae"])
def test_missing_modality_generation_shapes(model):
    from usvpipe.poise.api import cross_generate, encode, joint_generate, reconstruct, train_poise, traverse

    data, params = _tiny(model)
    m = train_poise(data, None, params).model
    x1, x2 = data.x1[:5], data.x2[:5]
    r1, r2 = reconstruct(m, x1, x2)
    assert r1.shape == (5, 8, 8) and r2.shape == (5, 3)
    g1, g2 = cross_generate(m, x1=x1, n_samples=4)
    assert g1.shape == (5, 4, 8, 8) and g2.shape == (5, 4, 3)
    g1, g2 = cross_generate(m, x2=x2, mean=True)
    assert g1.shape == (5, 1, 8, 8) and g2.shape == (5, 1, 3)
    j1, j2 = joint_generate(m, 6)
    assert j1.shape == (6, 8, 8) and j2.shape == (6, 3)
    p1, p2, t1, t2 = traverse(m, space=1, dim=0, steps=7)
    assert t1.shape == (7, 8, 8) and t2.shape == (7, 3) and len(p1) == len(p2) == 7
    # The path is a straight line in the traversed space: only coordinate 0 moves.
    assert np.allclose(np.diff(p1[:, 1:], axis=0), 0) and np.all(np.diff(p1[:, 0]) > 0)
    e1, e2 = encode(m, x1=x1)
    assert np.isfinite(e1).all() and np.isfinite(e2).all()
    for arr in (r1, r2, g1, g2, j1, j2, t1, t2):
        assert np.isfinite(arr).all()
    with pytest.raises(ValueError):
        cross_generate(m, x1=x1, x2=x2)


def test_missing_modality_means_zero_increment():
    from usvpipe.poise.api import train_poise

    data, params = _tiny("poise")
    m = train_poise(data, None, params).model
    x1 = torch.as_tensor(data.x1[:4])
    p, q, d, e = m.posterior_params(x1, None)
    assert e is None and d is not None
    assert torch.equal(q.b1.expand(4, 1, 2), p.b1.expand(4, 1, 2)) and torch.equal(q.b2.expand(4, 1, 2), p.b2.expand(4, 1, 2))
    assert not torch.allclose(q.a1, p.a1.expand_as(q.a1))
    assert (d[1] <= 0).all()


def test_reverse_reparameterised_sweep_keeps_the_stationary_distribution():
    # x1's reconstruction is decoded from z' | z then z | z' (issue 12): from stationary chains
    # that sweep must still give samples of the same joint.
    theta = [torch.tensor(v, dtype=F64) for v in THETA]
    truth = Grid().moments(*theta)
    gen = torch.Generator().manual_seed(2)
    z0, _ = P.gibbs(_nat(theta), torch.zeros(20_000, 1, dtype=F64), 20, generator=gen)
    torch.manual_seed(3)
    z, zp = P.reparam_sample_reverse(_nat(theta), z0)
    for k, (mean, se) in _sample_moments(z, zp).items():
        assert abs(mean - truth[k].item()) < 5 * se + 1e-3, (k, mean, truth[k].item(), se)


def _recon_grads(sweep, given1, given2):
    """|d log p(x1 | z) / d enc2| and |d log p(x2 | z') / d enc1| of one ELBO term."""
    from usvpipe.poise.model import build_model
    from usvpipe.poise.params import PoiseParams

    torch.manual_seed(0)
    params = PoiseParams(latent_dim_1=3, latent_dim_2=2, hidden_units=8, gibbs_sweeps=2, gibbs_samples=2,
                         prior_chains=8, recon_sweep=sweep)
    m = build_model(params, (6,), (5,), "gaussian", "gaussian")
    x1, x2 = torch.randn(8, 6), torch.randn(8, 5)
    zpr, _ = P.gibbs(m.prior.natural(), m.prior_zp, 2)
    _, ll1, ll2, _ = m._elbo_terms(x1, x2, given1, given2, zpr, 1.0)
    g_enc2 = torch.autograd.grad(ll1.sum(), list(m.enc2.parameters()), retain_graph=True, allow_unused=True)
    g_enc1 = torch.autograd.grad(ll2.sum(), list(m.enc1.parameters()), allow_unused=True)
    norm = lambda gs: sum(float(g.abs().sum()) for g in gs if g is not None)  # noqa: E731
    return norm(g_enc2), norm(g_enc1)


def test_each_reconstruction_trains_the_other_modalitys_encoder_through_the_coupling():
    # Issue 12: decoding x1 from a z drawn first (from the detached chain state) cut modality 2's
    # encoder off from x1's reconstruction, so cross-generation x1 <- x2 was never trained.
    for given in ((True, True), (False, True)):
        to_enc2, _ = _recon_grads("symmetric", *given)
        assert to_enc2 > 0, given
        assert _recon_grads("forward", *given)[0] == 0  # the old behaviour, kept as an ablation
    for given in ((True, True), (True, False)):
        assert _recon_grads("symmetric", *given)[1] > 0, given
        assert _recon_grads("forward", *given)[1] > 0, given


@pytest.mark.parametrize("model", ["poise", "poise-subset", "mvae", "mmvae"])
def test_tiny_training_lowers_loss(model):
    from usvpipe.poise.api import train_poise
    from usvpipe.poise.model import PoiseParams

    data = make_identifiability_data(512, n=2, m=2, dim_x=4, seed=0)
    params = PoiseParams(model=model.split("-")[0], subset_elbos=model.endswith("subset"), latent_dim_1=2,
                         latent_dim_2=2, hidden_units=32, epochs=8, batch_size=64, learning_rate=3e-3,
                         gibbs_sweeps=3, gibbs_samples=2, prior_chains=64)
    hist = train_poise(data, None, params).history
    assert hist["loss"].iloc[-1] < 0.7 * hist["loss"].iloc[0]


def test_save_load_round_trip_and_resume(tmp_path):
    from usvpipe.poise.api import load_poise, train_poise

    data, params = _tiny("poise", epochs=2)
    run = train_poise(data, tmp_path / "out", params)
    assert run.model_path.is_file() and (tmp_path / "out" / "history.csv").is_file()
    assert not list((tmp_path / "out").glob(".tmp-*"))
    loaded = load_poise(run.model_path)
    for (k, v), (k2, v2) in zip(run.model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v.cpu(), v2.cpu())
    z = torch.randn(3, 3)
    assert torch.allclose(run.model.decode1(z), loaded.decode1(z))
    # Resuming with more epochs continues from epoch 2.
    from dataclasses import replace

    with pytest.raises(InputFileError):
        train_poise(data, tmp_path / "out", replace(params, hidden_units=8), resume=True)
    run2 = train_poise(data, tmp_path / "out", replace(params, epochs=3), resume=True)
    assert list(run2.history["epoch"]) == [1, 2, 3]
    assert load_poise(run2.model_path).params.epochs == 3
    with pytest.raises(InputFileError):
        load_poise(tmp_path / "nope.pt")


def test_prior_learning_recovers_true_couplings():
    """Maximum likelihood of the prior alone (data moments vs persistent-chain moments, the
    gradient the KL gives the prior) recovers known couplings: the prior's parameterisation
    and sampler can learn strong couplings, so weak learnt ones come from the joint training."""
    from usvpipe.poise.data import sample_coupled_prior

    g11 = np.diag([1.2, -0.8])
    g22 = np.array([[-2.5, -0.02], [-0.02, -1.5]])
    z, zp = sample_coupled_prior(4000, g11, g22, seed=3)
    z, zp = torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(zp, dtype=torch.float32)
    torch.manual_seed(0)
    prior = P.CoupledPrior(2, 2)
    opt = torch.optim.Adam(prior.parameters(), lr=0.02)
    chains = torch.randn(512, 2)
    for _ in range(1500):
        idx = torch.randint(0, len(z), (256,))
        p = prior.natural()
        with torch.no_grad():
            zs, chains = P.gibbs(P.NatParams(*(t.detach() for t in (p.a1, p.a2, p.b1, p.b2, p.g11, p.g22))), chains, 3)
        loss = -P.energy(p, z[idx], zp[idx], zp[idx] ** 2).mean() + P.energy(p, zs, chains, chains ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    p = prior.natural()
    assert torch.allclose(torch.diagonal(p.g11), torch.tensor([1.2, -0.8]), atol=0.25)
    assert torch.allclose(torch.diagonal(p.g22), torch.tensor([-2.5, -1.5]), rtol=0.25)
    assert (p.g22[0, 1].abs() < 0.3) and (p.g22[1, 0].abs() < 0.3)


def test_paired_prior_start_and_warmup_hold_then_release(tmp_path):
    from dataclasses import replace

    from usvpipe.poise.api import train_poise
    from usvpipe.poise.model import PoiseParams, build_model

    params = PoiseParams(latent_dim_1=3, latent_dim_2=2, prior_init="paired", pair_coupling=0.7, pair_quartic=1.5)
    g = build_model(params, (4,), (4,), "gaussian", "gaussian").prior.natural()
    # Pairs (0, 0) and (1, 1) start coupled, everything else near independence.
    assert torch.allclose(torch.diagonal(g.g11), torch.tensor([0.7, 0.7]))
    assert torch.allclose(torch.diagonal(g.g22), torch.tensor([-1.5, -1.5]), atol=1e-3)
    off = ~torch.eye(3, 2, dtype=torch.bool)
    assert (g.g11[off] == 0).all() and torch.allclose(g.g22[off], torch.tensor(-0.1), atol=1e-3)
    indep = build_model(replace(params, prior_init="independent"), (4,), (4,), "gaussian", "gaussian").prior.natural()
    assert (indep.g11 == 0).all()

    data = make_identifiability_data(256, n=2, m=2, dim_x=4, seed=0)
    params = PoiseParams(latent_dim_1=2, latent_dim_2=2, hidden_units=16, epochs=2, batch_size=64,
                         gibbs_sweeps=2, gibbs_samples=2, prior_chains=32, prior_init="paired",
                         prior_warmup_epochs=2)
    model = build_model(params, (4,), (4,), "gaussian", "gaussian")
    start = {k: v.clone() for k, v in model.state_dict().items()}
    run = train_poise(data, tmp_path / "run", params, model=model)
    for k, v in run.model.state_dict().items():
        if k.startswith("prior."):
            assert torch.equal(v, start[k]), k  # held during the warm-up
    assert not torch.equal(run.model.state_dict()["enc1.body.1.weight"], start["enc1.body.1.weight"])  # networks learnt
    run = train_poise(data, tmp_path / "run", replace(params, epochs=3), resume=True)
    assert not torch.equal(run.model.prior.g11.detach(), start["prior.g11"])  # released after it


# ------------------------------------------------------------------------------------- data
def test_pairs_npz_and_folder(tmp_path):
    rng = np.random.default_rng(0)
    data = PairedData(rng.uniform(0, 1, (6, 8, 8)), rng.standard_normal((6, 3)))
    save_pairs(tmp_path / "p.npz", data)
    back = load_pairs(tmp_path / "p.npz")
    assert np.allclose(back.x1, data.x1) and np.allclose(back.x2, data.x2)
    folder = tmp_path / "pairs"
    folder.mkdir()
    rows = []
    for i in range(6):
        np.save(folder / f"a{i}.npy", data.x1[i])
        np.save(folder / f"b{i}.npy", data.x2[i])
        rows.append(f"a{i}.npy,b{i}.npy")
    (folder / "pairs.csv").write_text("x1,x2\n" + "\n".join(rows) + "\n")
    back = load_pairs(folder)
    assert np.allclose(back.x1, data.x1) and np.allclose(back.x2, data.x2)
    np.savez(tmp_path / "bad.npz", x1=data.x1)
    with pytest.raises(InputFileError, match="x2"):
        load_pairs(tmp_path / "bad.npz")
    np.savez(tmp_path / "mismatch.npz", x1=data.x1, x2=data.x2[:4])
    with pytest.raises(InputFileError, match="pair"):
        load_pairs(tmp_path / "mismatch.npz")
    with pytest.raises(InputFileError, match="pairs.csv"):
        load_pairs(tmp_path)


def test_mean_corr_coef():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2000, 3))
    perm = z[:, [2, 0, 1]] * np.array([-2.0, 0.5, 3.0]) + 1.0
    assert mean_corr_coef(z, perm) > 0.999
    assert mean_corr_coef(z, rng.standard_normal((2000, 3))) < 0.1
    assert mean_corr_coef(z, np.exp(perm), method="spearman") > 0.999


def test_identifiability_data_follows_the_prior():
    data = make_identifiability_data(3000, n=2, m=2, dim_x=5, coupling=1.0, quartic=0.5, seed=1)
    z, zp = data.extra["z"], data.extra["zp"]
    assert data.x1.shape == (3000, 5) and data.x2.shape == (3000, 5)
    # The coupling G11 shows up as a cross-correlation with the same sign pattern.
    c = np.corrcoef(z.T, zp.T)[:2, 2:]
    assert np.all(np.sign(c) == np.sign(data.extra["g11"]))


def test_identifiability_data_diagonal_couplings():
    data = make_identifiability_data(3000, n=3, m=3, dim_x=6, coupling=1.5, quartic=3.0, diagonal=True, seed=2)
    g11, g22 = data.extra["g11"], data.extra["g22"]
    off = ~np.eye(3, dtype=bool)
    assert np.all(g11[off] == 0) and np.all(g11.diagonal() != 0)
    assert np.all(g22 < 0) and np.abs(g22[off]).max() < 0.1 * np.abs(g22.diagonal()).min()
    # Each z_i correlates with its own partner z'_i (sign of G11_ii), hardly with the others.
    c = np.corrcoef(data.extra["z"].T, data.extra["zp"].T)[:3, 3:]
    assert np.all(np.sign(c.diagonal()) == np.sign(g11.diagonal()))
    assert np.abs(c.diagonal()).min() > 2 * np.abs(c[off]).max()
    with pytest.raises(ValueError, match="n == m"):
        make_identifiability_data(10, n=2, m=3, diagonal=True)


def test_digits_gaussians_offline():
    data = make_digits_gaussians(radius=3.0, copies=1)
    assert data.x1.shape[1:] == (8, 8) and data.x2.shape[1:] == (2,)
    assert set(np.unique(data.extra["label"])) == set(range(1, 9))
    assert 0 <= data.x1.min() and data.x1.max() <= 1


# --------------------------------------------------------------------------------------- CLI
def test_cli_train_generate_traverse(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    data, _ = _tiny("poise")
    save_pairs(tmp_path / "pairs.npz", data)
    runner = CliRunner()
    out = tmp_path / "model"
    res = runner.invoke(main, ["poise", "train", str(tmp_path / "pairs.npz"), str(out), "--epochs", "1",
                               "--latent-dim-1", "2", "--latent-dim-2", "2", "--hidden-units", "16",
                               "--gibbs-sweeps", "2", "--gibbs-samples", "2", "--prior-init", "paired",
                               "--prior-warmup-epochs", "1", "--kl-weight", "2"])
    assert res.exit_code == 0, res.output
    assert (out / "model.pt").is_file()
    from usvpipe.poise.api import load_poise

    loaded = load_poise(out / "model.pt")
    assert (loaded.params.prior_init, loaded.params.prior_warmup_epochs, loaded.params.kl_weight) == ("paired", 1, 2.0)
    assert torch.allclose(torch.diagonal(loaded.prior.natural().g11), torch.ones(2))  # held for the one epoch
    res = runner.invoke(main, ["poise", "generate", str(out / "model.pt"), str(tmp_path / "cross.png"),
                               "--pairs", str(tmp_path / "pairs.npz"), "--from", "2", "-n", "4"])
    assert res.exit_code == 0, res.output
    gen = np.load(tmp_path / "cross.npz")
    assert gen["x1"].shape == (4, 8, 8) and (tmp_path / "cross.png").stat().st_size > 0
    res = runner.invoke(main, ["poise", "generate", str(out / "model.pt"), str(tmp_path / "joint.png"), "--mode", "joint"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["poise", "traverse", str(out / "model.pt"), str(tmp_path / "trav.png"), "--steps", "5"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "trav.png").is_file()
    # User errors: one line, exit status 2.
    res = runner.invoke(main, ["poise", "train", str(tmp_path / "missing.npz"), str(out)])
    assert res.exit_code == 2 and "usvpipe: error:" in res.output and "missing.npz" in res.output
    res = runner.invoke(main, ["poise", "generate", str(out / "model.pt"), str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "--pairs" in res.output
    res = runner.invoke(main, ["poise", "train", str(tmp_path / "pairs.npz"), str(out), "--gibbs-samples", "1"])
    assert res.exit_code == 2 and "gibbs_samples" in res.output
    res = runner.invoke(main, ["poise", "train", str(tmp_path / "pairs.npz"), str(tmp_path / "m2"),
                               "--prior-warmup-epochs", "-1"])
    assert res.exit_code == 2 and "prior_warmup_epochs" in res.output
