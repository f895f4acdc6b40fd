"""POISE reference-code variants: full coupling matrix G, chain-averaged reconstruction,
dense random start, batch masking of a modality."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usvpipe.poise import prior as P  # noqa: E402
from usvpipe.poise.data import PairedData  # noqa: E402
from usvpipe.poise.params import PoiseParams  # noqa: E402

torch.set_num_threads(1)
F64 = torch.float64
# lambda, lambda', G11, G22, G12 (z z'^2), G21 (z^2 z'): the mixed blocks inside their bounds
# (|G21| < 0.99 sqrt(4 |G22| |a2|) = 0.84, |G12| < 0.99 sqrt(4 |G22| |b2|) = 0.77).
THETA = (0.3, -0.6, -0.2, -0.5, 0.8, -0.3, -0.25, 0.3)
DELTA = (0.5, -0.4, -0.7, -0.2)


class Grid:
    def __init__(self, half_width=9.0, n=541):
        g = torch.linspace(-half_width, half_width, n, dtype=F64)
        self.h = g[1] - g[0]
        self.z, self.zp = torch.meshgrid(g, g, indexing="ij")

    def energy(self, a1, a2, b1, b2, g11, g22, g12, g21):
        z, zp = self.z, self.zp
        return (a1 * z + a2 * z**2 + b1 * zp + b2 * zp**2 + g11 * z * zp + g22 * z**2 * zp**2
                + g12 * z * zp**2 + g21 * z**2 * zp)

    def log_z(self, *theta):
        return torch.logsumexp(self.energy(*theta).flatten(), 0) + 2 * torch.log(self.h)

    def moments(self, *theta):
        w = torch.softmax(self.energy(*theta).flatten(), 0).reshape(self.z.shape)
        z, zp = self.z, self.zp
        return {k: (w * v).sum() for k, v in {"z": z, "z2": z**2, "zp": zp, "zp2": zp**2, "zzp2": z * zp**2,
                                               "z2zp": z**2 * zp}.items()}


def _nat(theta):
    a1, a2, b1, b2, g11, g22, g12, g21 = theta
    r = lambda t: t.reshape(1)  # noqa: E731
    m = lambda t: t.reshape(1, 1)  # noqa: E731
    return P.NatParams(r(a1), r(a2), r(b1), r(b2), m(g11), m(g22), m(g12), m(g21))


@pytest.mark.parametrize("sampler", [P.gibbs, P.gibbs_loop])
def test_full_coupling_gibbs_matches_grid_moments(sampler):
    theta = [torch.tensor(v, dtype=F64) for v in THETA]
    truth = Grid().moments(*theta)
    gen = torch.Generator().manual_seed(1)
    chains = 20_000 if sampler is P.gibbs else 4_000
    z, zp = sampler(_nat(theta), torch.zeros(chains, 1, dtype=F64), 20, generator=gen)
    stats = {"z": z, "z2": z**2, "zp": zp, "zp2": zp**2, "zzp2": z * zp**2, "z2zp": z**2 * zp}
    for k, v in stats.items():
        se = v.std().item() / math.sqrt(v.numel())
        assert abs(v.mean().item() - truth[k].item()) < 5 * se + 1e-3, (k, v.mean().item(), truth[k].item())
    assert abs(truth["z2zp"].item()) > 0.02  # the mixed block really changes the moments


def test_full_coupling_kl_and_gradients_match_grid():
    grid = Grid()
    theta = [torch.tensor(v, dtype=F64, requires_grad=True) for v in THETA]
    delta = [torch.tensor(v, dtype=F64, requires_grad=True) for v in DELTA]
    a1, a2, b1, b2, *g = theta
    d1, d2, e1, e2 = delta
    tq = (a1 + d1, a2 + d2, b1 + e1, b2 + e2, *g)
    mq = grid.moments(*tq)
    kl_true = d1 * mq["z"] + d2 * mq["z2"] + e1 * mq["zp"] + e2 * mq["zp2"] - grid.log_z(*tq) + grid.log_z(*theta)
    g_true = torch.autograd.grad(kl_true, theta + delta)
    gen = torch.Generator().manual_seed(3)
    p = _nat(theta)
    d = (d1.reshape(1, 1, 1), d2.reshape(1, 1, 1))
    e = (e1.reshape(1, 1, 1), e2.reshape(1, 1, 1))
    q = p.unsqueeze(0).unsqueeze(0).shifted(*d, *e)
    K = 60_000
    zq, zpq = P.gibbs(q, torch.zeros(1, K, 1, dtype=F64), 20, generator=gen)
    zpr, _ = P.gibbs(p, torch.zeros(K, 1, dtype=F64), 20, generator=gen)
    kl = P.kl_surrogate(q, p, d, e, zq, zpq, zpr).sum()
    g_est = torch.autograd.grad(kl, theta + delta)
    assert abs(kl.item() - kl_true.item()) < 0.02, (kl.item(), kl_true.item())
    names = ["a1", "a2", "b1", "b2", "g11", "g22", "g12", "g21", "d1", "d2", "e1", "e2"]
    for name, gt, ge in zip(names, g_true, g_est):
        assert abs(ge.item() - gt.item()) < 0.03 + 0.05 * abs(gt.item()), (name, ge.item(), gt.item())
    assert abs(g_true[6].item()) > 0.05 and abs(g_true[7].item()) > 0.05


def test_bounded_mixed_blocks_keep_every_conditional_proper():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        prior = P.CoupledPrior(4, 3, full=True)
        with torch.no_grad():
            for prm in prior.parameters():
                prm.copy_(5 * torch.randn(prm.shape, generator=gen))
        nat = prior.natural()
        zp = 10 * torch.randn(64, 3, generator=gen, dtype=torch.float32)
        z = 10 * torch.randn(64, 4, generator=gen, dtype=torch.float32)
        assert (P.cond_z(nat, zp, zp * zp)[1] < 0).all() and (P.cond_zp(nat, z, z * z)[1] < 0).all()
        # the worst case over z' of each conditional: sum_j G21^2 / (4 |G22|) < |a2|
        worst = nat.a2 + (nat.g21 ** 2 / (4 * -nat.g22)).sum(1)
        worst_p = nat.b2 + (nat.g12 ** 2 / (4 * -nat.g22)).sum(0)
        assert (worst < 0).all() and (worst_p < 0).all()
        zs, zps = P.gibbs(nat, P.init_chain(nat, (256,)), 10, generator=gen)
        assert torch.isfinite(zs).all() and torch.isfinite(zps).all()


def test_gibbs_path_is_differentiable_and_matches_the_sampler():
    theta = [torch.tensor(v, dtype=F64, requires_grad=True) for v in THETA]
    p = _nat(theta)
    torch.manual_seed(0)
    zs, zps = P.gibbs_path(p, torch.zeros(20_000, 1, dtype=F64), 20)
    assert zs.shape == (20 * 20_000, 1)
    last = zs[-20_000:]
    truth = Grid().moments(*[t.detach() for t in theta])
    se = last.std().item() / math.sqrt(20_000)
    assert abs(last.mean().item() - truth["z"].item()) < 5 * se + 1e-3
    grads = torch.autograd.grad(zs.mean(), theta, allow_unused=True)
    assert grads[0] is not None and torch.isfinite(grads[0])


def _data(n=64):
    rng = np.random.default_rng(0)
    return PairedData(rng.uniform(0, 1, (n, 8, 8)), rng.standard_normal((n, 3)))


@pytest.mark.parametrize("variant", [dict(full_coupling=True), dict(recon_samples="all"),
                                     dict(prior_init="random"), dict(prior_init="random", full_coupling=True),
                                     dict(modality_dropout=0.2)])
def test_each_variant_trains_and_lowers_the_loss(variant):
    from usvpipe.poise import train_poise

    params = PoiseParams(latent_dim_1=3, latent_dim_2=2, hidden_units=16, epochs=8, batch_size=32,
                         gibbs_sweeps=2, gibbs_samples=2, prior_chains=16, **variant)
    hist = train_poise(_data(), None, params).history
    assert np.isfinite(hist["loss"]).all()
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]


def test_random_start_is_dense_and_seeded():
    from usvpipe.poise.model import build_model

    params = PoiseParams(latent_dim_1=3, latent_dim_2=2, hidden_units=8, prior_init="random", full_coupling=True)
    torch.manual_seed(0)
    a = build_model(params, (5,), (3,), "gaussian", "gaussian").prior.natural()
    torch.manual_seed(0)
    b = build_model(params, (5,), (3,), "gaussian", "gaussian").prior.natural()
    assert (a.g11 != 0).all() and (a.g12 != 0).all() and (a.g21 != 0).all()
    assert torch.equal(a.g11, b.g11) and torch.equal(a.g22, b.g22)


def test_modality_dropout_masks_a_whole_batch_of_one_modality(monkeypatch):
    from usvpipe.poise.model import build_model

    params = PoiseParams(latent_dim_1=2, latent_dim_2=2, hidden_units=8, gibbs_sweeps=1, gibbs_samples=2,
                         prior_chains=8, modality_dropout=0.2)
    model = build_model(params, (8, 8), (3,), "bernoulli", "gaussian")
    seen = []
    real = model._elbo_terms

    def spy(x1, x2, given1, given2, zpr, kl_weight):
        seen.append((given1, given2))
        return real(x1, x2, given1, given2, zpr, kl_weight)

    monkeypatch.setattr(model, "_elbo_terms", spy)
    data = _data(32)
    torch.manual_seed(0)
    for _ in range(300):
        model.loss(torch.as_tensor(data.x1), torch.as_tensor(data.x2))
    counts = {k: seen.count(k) for k in [(True, True), (False, True), (True, False)]}
    assert sum(counts.values()) == 300 and (False, False) not in seen
    for k in [(False, True), (True, False)]:  # 0.2 each: 60 expected, binomial s.d. ~7
        assert 35 < counts[k] < 85, counts
