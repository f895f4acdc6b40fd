"""POISE-VAE and the MVAE / MMVAE / independent-VAE baselines in one framework.

All models share the encoders/decoders of :mod:`usvpipe.poise.nets` and one interface:
``loss(x1, x2)``, ``posterior_samples(x1, x2, n)`` (either modality may be ``None``),
``prior_samples(n)``, ``decode1``/``decode2``, ``latent_means(x1, x2)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from . import prior as P
from .nets import Decoder, Encoder, log_likelihood, use_conv
from .params import LIKELIHOODS, MODELS, PoiseParams  # noqa: F401  (re-exported)


def resolve_likelihood(kind: str, shape, x_min: float, x_max: float) -> str:
    if kind != "auto":
        return kind
    return "bernoulli" if (len(shape) == 2 and x_min >= 0.0 and x_max <= 1.0) else "gaussian"


class _Base(nn.Module):
    def __init__(self, params: PoiseParams, shape1, shape2, lik1: str, lik2: str):
        super().__init__()
        self.params = params
        self.shape1, self.shape2 = tuple(shape1), tuple(shape2)
        self.lik1, self.lik2 = lik1, lik2

    def _ll(self, x, xh, which):
        kind, shape = (self.lik1, self.shape1) if which == 1 else (self.lik2, self.shape2)
        return log_likelihood(x, xh, kind, self.params.obs_sd, len(shape))

    @staticmethod
    def _batch(x1, x2):
        return (x1 if x1 is not None else x2).shape[0]


# ------------------------------------------------------------------------------------- POISE-VAE
class PoiseVAE(_Base):
    """POISE-VAE: private latents, coupled exponential-family prior, product-of-experts posterior.

    The encoder of modality 1 outputs increments ``(d1, d2 = -softplus(.))`` of the natural
    parameters of ``T(z) = (z, z^2)``; that of modality 2 does the same for ``z'``. The
    posterior keeps the prior's couplings; a missing modality contributes a zero increment.
    """

    def __init__(self, params: PoiseParams, shape1, shape2, lik1="gaussian", lik2="gaussian"):
        super().__init__(params, shape1, shape2, lik1, lik2)
        n, m, h = params.latent_dim_1, params.latent_dim_2, params.hidden_units
        self.n, self.m = n, m
        self.enc1 = Encoder(shape1, 2 * n, h)
        self.enc2 = Encoder(shape2, 2 * m, h)
        self.dec1 = Decoder(shape1, n, h, sigmoid=(lik1 == "bernoulli" or use_conv(shape1)))
        self.dec2 = Decoder(shape2, m, h, sigmoid=(lik2 == "bernoulli" or use_conv(shape2)))
        paired = params.prior_init == "paired"
        self.prior = P.CoupledPrior(n, m, learn_lambda=params.learn_prior_scale,
                                    pair_coupling=params.pair_coupling if paired else 0.0,
                                    pair_quartic=params.pair_quartic if paired else 0.0,
                                    full=params.full_coupling, random_init=params.prior_init == "random")
        self.register_buffer("prior_zp", torch.randn(params.prior_chains, m))

    # -- natural parameters
    @staticmethod
    def _increments(enc, x):
        out = enc(x)
        k = out.shape[-1] // 2
        # The second (z^2) component is kept <= 0 so every product with the prior stays proper.
        return out[:, :k].unsqueeze(1), (-F.softplus(out[:, k:])).unsqueeze(1)

    def posterior_params(self, x1=None, x2=None):
        p = self.prior.natural()
        d = self._increments(self.enc1, x1) if x1 is not None else None
        e = self._increments(self.enc2, x2) if x2 is not None else None
        if d is None and e is None:
            raise ConfigError("at least one modality is needed for a posterior (fix: pass x1, x2 or both)")
        q = p.unsqueeze(0).unsqueeze(0).shifted(*(d or (None, None)), *(e or (None, None)))
        return p, q, d, e

    def _run_chains(self, q, batch, k, sweeps):
        zp0 = P.init_chain(q, (batch, k))
        return P.gibbs(q, zp0, sweeps)

    # -- training objective
    def _elbo_terms(self, x1, x2, given1, given2, zpr, kl_weight):
        prm = self.params
        p, q, d, e = self.posterior_params(x1 if given1 else None, x2 if given2 else None)
        B, K = x1.shape[0], prm.gibbs_samples
        if prm.recon_samples == "all":
            # Every state of every chain, differentiable through the whole chain; the final
            # states (detached) are the KL's posterior samples.
            zs, zps = P.gibbs_path(q, P.init_chain(q, (B, K)), prm.gibbs_sweeps)
            zq, zpq = zs[:, -K:].detach(), zps[:, -K:].detach()
        else:
            zq, zpq = self._run_chains(q, B, K, prm.gibbs_sweeps)
        # One differentiable sweep from the chains' state: reconstruction term (first chain)
        # and, with kl_gradient="pathwise", the KL's Cov_q(S) D part (all chains).
        need_rep = prm.kl_gradient == "pathwise" or prm.recon_samples == "one"
        if need_rep:
            z, zp = P.reparam_sample(q, zpq if prm.kl_gradient == "pathwise" else zpq[:, :1])
        rep = (z, zp) if prm.kl_gradient == "pathwise" else None
        kl = P.kl_surrogate(q, p, d, e, zq, zpq, zpr, rep=rep)
        if prm.recon_samples == "all":
            ll1 = self._ll(x1.unsqueeze(1), self.dec1(zs), 1).mean(1)
            ll2 = self._ll(x2.unsqueeze(1), self.dec2(zps), 2).mean(1)
        else:
            # Each modality is decoded from the half of a sweep drawn *last*: z' after z
            # (above) for x2, and z after z' for x1. A z drawn first, from the detached chain
            # state, has no path to modality 2's encoder: with recon_sweep="forward" the frame's
            # reconstruction (and cross-generation x1 <- x2) never trains encoder 2 (issue 12).
            z1 = z if prm.recon_sweep == "forward" else P.reparam_sample_reverse(q, zq[:, :1])[0]
            ll1 = self._ll(x1, self.dec1(z1[:, 0]), 1)
            ll2 = self._ll(x2, self.dec2(zp[:, 0]), 2)
        return -(ll1 + ll2) + kl_weight * kl, ll1, ll2, kl

    def loss(self, x1, x2, kl_weight: float = 1.0):
        prm = self.params
        # Persistent prior chains: a few sweeps per step track the slowly changing prior.
        with torch.no_grad():
            p = self.prior.natural()
            zpr, zppr = P.gibbs(p.detach(), self.prior_zp, prm.gibbs_sweeps)
            self.prior_zp.copy_(zppr)
        given1 = given2 = True
        if prm.modality_dropout > 0:
            # Batch masking (reference code): with probability p this batch's posterior
            # ignores modality 1, with probability p modality 2; both are still reconstructed.
            u = float(torch.rand(()))
            given1, given2 = u >= prm.modality_dropout, not (prm.modality_dropout <= u < 2 * prm.modality_dropout)
        term, ll1, ll2, kl = self._elbo_terms(x1, x2, given1, given2, zpr, kl_weight)
        info = {"recon_1": -ll1.mean().item(), "recon_2": -ll2.mean().item(), "kl": kl.mean().item()}
        if prm.subset_elbos:
            # ELBOs with one modality's expert only (still reconstructing both): also lower
            # bounds on log p(x1, x2); they train the prior's couplings to carry what
            # cross-generation needs.
            for g1, g2 in ((True, False), (False, True)):
                term = term + self._elbo_terms(x1, x2, g1, g2, zpr, kl_weight)[0]
        return term.mean(), info

    # -- inference
    @torch.no_grad()
    def posterior_samples(self, x1=None, x2=None, n_samples=1, sweeps=20):
        """Samples ``(z (B, S, n), z' (B, S, m))`` of ``q(z, z' | available modalities)``."""
        _, q, _, _ = self.posterior_params(x1, x2)
        return self._run_chains(q, self._batch(x1, x2), n_samples, sweeps)

    @torch.no_grad()
    def prior_samples(self, n, sweeps=50):
        p = self.prior.natural()
        dev = self.prior_zp.device
        return P.gibbs(p, P.init_chain(p, (n,)).to(dev), sweeps)

    @torch.no_grad()
    def latent_means(self, x1=None, x2=None, n_samples=32, sweeps=20):
        """Posterior means of ``z`` and ``z'`` (Rao-Blackwellised over the last half-sweep)."""
        _, q, _, _ = self.posterior_params(x1, x2)
        z, zp = self._run_chains(q, self._batch(x1, x2), n_samples, sweeps)
        mz, _ = P.gauss_moments(*P.cond_z(q, zp, zp * zp))
        mzp, _ = P.gauss_moments(*P.cond_zp(q, z, z * z))
        return mz.mean(1), mzp.mean(1)

    @torch.no_grad()
    def conditional_mean_other(self, latent, space: int):
        """Under the prior, ``E[z' | z]`` (space 1 given) or ``E[z | z']`` (space 2 given)."""
        p = self.prior.natural()
        if space == 1:
            return P.gauss_moments(*P.cond_zp(p, latent, latent * latent))[0]
        return P.gauss_moments(*P.cond_z(p, latent, latent * latent))[0]

    def decode1(self, z):
        return self.dec1(z)

    def decode2(self, zp):
        return self.dec2(zp)


# ------------------------------------------------------------------------------ Gaussian baselines
class GaussianMultiVAE(_Base):
    """MVAE (product of experts), MMVAE (mixture of experts) or two independent VAEs.

    For ``mvae``/``mmvae`` both modalities share one latent of ``latent_dim_1 + latent_dim_2``
    dims; ``latent_means`` returns it for both spaces. For ``vae`` the two latents are private
    and unlinked.
    """

    def __init__(self, params: PoiseParams, shape1, shape2, lik1="gaussian", lik2="gaussian"):
        super().__init__(params, shape1, shape2, lik1, lik2)
        h = params.hidden_units
        self.kind = params.model
        if self.kind == "vae":
            d1, d2 = params.latent_dim_1, params.latent_dim_2
        else:
            d1 = d2 = params.latent_dim_1 + params.latent_dim_2
        self.d1, self.d2 = d1, d2
        self.enc1 = Encoder(shape1, 2 * d1, h)
        self.enc2 = Encoder(shape2, 2 * d2, h)
        self.dec1 = Decoder(shape1, d1, h, sigmoid=(lik1 == "bernoulli" or use_conv(shape1)))
        self.dec2 = Decoder(shape2, d2, h, sigmoid=(lik2 == "bernoulli" or use_conv(shape2)))

    @staticmethod
    def _gauss(enc, x):
        out = enc(x)
        k = out.shape[-1] // 2
        return out[:, :k], out[:, k:].clamp(-8.0, 8.0)

    def _experts(self, x1, x2):
        ex = []
        if x1 is not None:
            ex.append(self._gauss(self.enc1, x1))
        if x2 is not None:
            ex.append(self._gauss(self.enc2, x2))
        return ex

    @staticmethod
    def _poe(experts):
        # Product of Gaussian experts with a N(0, 1) prior expert: precisions add.
        prec = 1.0 + sum(torch.exp(-lv) for _, lv in experts)
        mean = sum(mu * torch.exp(-lv) for mu, lv in experts) / prec
        return mean, -torch.log(prec)

    @staticmethod
    def _kl_std(mu, lv):
        return 0.5 * (torch.exp(lv) + mu * mu - 1.0 - lv).sum(-1)

    @staticmethod
    def _rsample(mu, lv):
        return mu + torch.exp(0.5 * lv) * torch.randn_like(mu)

    def loss(self, x1, x2, kl_weight: float = 1.0):
        if self.kind == "vae":
            mu1, lv1 = self._gauss(self.enc1, x1)
            mu2, lv2 = self._gauss(self.enc2, x2)
            ll1 = self._ll(x1, self.dec1(self._rsample(mu1, lv1)), 1)
            ll2 = self._ll(x2, self.dec2(self._rsample(mu2, lv2)), 2)
            kl = self._kl_std(mu1, lv1) + self._kl_std(mu2, lv2)
            loss = -(ll1 + ll2) + kl_weight * kl
        elif self.kind == "mvae":
            # ELBO of the joint posterior plus the two unimodal ones (sub-sampled training
            # of Wu & Goodman), so that each expert alone is a usable encoder.
            loss = 0.0
            parts = {}
            for tag, a, b in (("joint", x1, x2), ("x1", x1, None), ("x2", None, x2)):
                mu, lv = self._poe(self._experts(a, b))
                z = self._rsample(mu, lv)
                ll = 0.0
                if a is not None:
                    ll = ll + self._ll(x1, self.dec1(z), 1)
                if b is not None:
                    ll = ll + self._ll(x2, self.dec2(z), 2)
                term = -ll + kl_weight * self._kl_std(mu, lv)
                parts[tag] = term
                loss = loss + term
            ll1 = ll2 = kl = None
        else:  # mmvae
            (mu1, lv1), (mu2, lv2) = self._experts(x1, x2)
            loss = 0.0
            for mu, lv in ((mu1, lv1), (mu2, lv2)):
                z = self._rsample(mu, lv)
                ll = self._ll(x1, self.dec1(z), 1) + self._ll(x2, self.dec2(z), 2)
                logq = torch.logsumexp(torch.stack([_log_normal(z, mu1, lv1), _log_normal(z, mu2, lv2)]), 0) - math.log(2.0)
                logp = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
                loss = loss + 0.5 * (-ll + kl_weight * (logq - logp))
            ll1 = ll2 = kl = None
        loss = loss.mean()
        info = {"loss": loss.item()}
        if ll1 is not None:
            info.update(recon_1=-ll1.mean().item(), recon_2=-ll2.mean().item(), kl=kl.mean().item())
        return loss, info

    @torch.no_grad()
    def posterior_samples(self, x1=None, x2=None, n_samples=1, sweeps=None):
        B = self._batch(x1, x2)
        if self.kind == "vae":
            out = []
            for x, enc, d in ((x1, self.enc1, self.d1), (x2, self.enc2, self.d2)):
                if x is None:
                    out.append(torch.randn(B, n_samples, d, device=next(self.parameters()).device))
                else:
                    mu, lv = self._gauss(enc, x)
                    out.append(mu.unsqueeze(1) + torch.exp(0.5 * lv).unsqueeze(1) * torch.randn(B, n_samples, d, device=mu.device))
            return out[0], out[1]
        if self.kind == "mvae":
            mu, lv = self._poe(self._experts(x1, x2))
            z = mu.unsqueeze(1) + torch.exp(0.5 * lv).unsqueeze(1) * torch.randn(B, n_samples, mu.shape[-1], device=mu.device)
        else:
            ex = self._experts(x1, x2)
            mus = torch.stack([mu for mu, _ in ex], 1)
            sds = torch.stack([torch.exp(0.5 * lv) for _, lv in ex], 1)
            pick = torch.randint(len(ex), (B, n_samples), device=mus.device)
            idx = pick.unsqueeze(-1).expand(-1, -1, mus.shape[-1])
            z = torch.gather(mus, 1, idx) + torch.gather(sds, 1, idx) * torch.randn(B, n_samples, mus.shape[-1], device=mus.device)
        return z, z

    @torch.no_grad()
    def prior_samples(self, n, sweeps=None):
        dev = next(self.parameters()).device
        z1 = torch.randn(n, self.d1, device=dev)
        z2 = z1 if self.kind != "vae" else torch.randn(n, self.d2, device=dev)
        return z1, z2

    @torch.no_grad()
    def latent_means(self, x1=None, x2=None, n_samples=None, sweeps=None):
        if self.kind == "vae":
            # Unlinked spaces: a missing modality's posterior is its prior (mean 0).
            dev = next(self.parameters()).device
            B = self._batch(x1, x2)
            m1 = self._gauss(self.enc1, x1)[0] if x1 is not None else torch.zeros(B, self.d1, device=dev)
            m2 = self._gauss(self.enc2, x2)[0] if x2 is not None else torch.zeros(B, self.d2, device=dev)
            return m1, m2
        if self.kind == "mvae":
            mu, _ = self._poe(self._experts(x1, x2))
        else:
            mu = torch.stack([m for m, _ in self._experts(x1, x2)]).mean(0)
        return mu, mu

    @torch.no_grad()
    def conditional_mean_other(self, latent, space: int):
        if self.kind == "vae":
            return torch.zeros(latent.shape[:-1] + ((self.d2 if space == 1 else self.d1),), device=latent.device)
        return latent

    def decode1(self, z):
        return self.dec1(z)

    def decode2(self, zp):
        return self.dec2(zp)


def _log_normal(z, mu, lv):
    return (-0.5 * (math.log(2 * math.pi) + lv + (z - mu) ** 2 / torch.exp(lv))).sum(-1)


def build_model(params: PoiseParams, shape1, shape2, lik1: str, lik2: str) -> nn.Module:
    cls = PoiseVAE if params.model == "poise" else GaussianMultiVAE
    return cls(params, shape1, shape2, lik1, lik2)
