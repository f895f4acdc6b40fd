"""Training health: do the latents describe the syllables, or did the VAE learn nothing?

Measured on held-out syllables (the validation recordings; the training ones when nothing
is held out, and then labelled in-sample) after every training run, written to
``train.json`` and carried by ``model.pt`` and the latents' sidecar, so every later stage
and the report can refuse to state a group answer from an empty latent space.

- **Active units** (Burda et al. 2016 use the variance of the posterior means; here the
  equivalent in nats, as the latents issue asks): the number of latent dimensions whose
  KL divergence from the prior, averaged over syllables, exceeds ``ACTIVE_UNIT_KL_NATS``. A
  collapsed posterior equals the prior in every dimension: 0 active units. Dimensions whose
  means are fixed rules of the image (``axis_encoder = "contour"``/``"contour+width"``:
  z0, z1) always vary with the call, so collapse is judged on the learnt dimensions only.
- **Reconstruction R²** of the held-out images from their posterior means, against the
  mean training image (``1 - SSE_vae / SSE_mean``): 0 means "no better than predicting
  the average syllable", which is what a collapsed VAE reconstructs.
- **PCA R²** of the same held-out images from a PCA with as many components as the latent
  has dimensions, fitted on the training images: the linear model a VAE should not fall
  far behind.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: A latent dimension is "active" when its mean KL from the prior exceeds this (nats).
ACTIVE_UNIT_KL_NATS = 0.01
#: Fewer active dimensions than this is posterior collapse.
MIN_ACTIVE_UNITS = 1
#: Held-out reconstruction R² against the mean image below which the latents are declared
#: uninformative: the model reconstructs barely more than the average syllable.
MIN_RECON_R2 = 0.1
#: Syllables sampled for the statistics (enough for stable R² and KL; bounded cost on 10⁶).
MAX_HEALTH_SYLLABLES = 2048
MAX_PCA_SYLLABLES = 4096
#: The smallest real store on which the defaults were shown to learn (scripts/vae_real_benchmark.py
#: --seeds 3: the 170 syllables of the ../shared/data recordings pass the check with every seed).
#: Below it the report warns.
MIN_SYLLABLES_SHOWN_TO_LEARN = 170
#: The smallest syllable images the fix suggests: the demo's, whose latents pass this check.
SMALLEST_SUGGESTED_SIDE = 32


@dataclass(frozen=True)
class TrainingHealth:
    """The health check of one trained model (what ``train.json["health"]`` holds)."""

    passed: bool
    collapsed: bool
    active_units: int
    latent_dim: int
    recon_r2: float
    pca_r2: float
    mean_kl_nats: float
    n_syllables: int
    held_out: bool
    reason: str = ""
    fix: str = ""
    #: latent dimensions read off the image by fixed rules (``VAE.rule_read_dims``), not learnt
    rule_read_dims: tuple = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "rule_read_dims": list(self.rule_read_dims)}

    def summary(self) -> str:
        """One line for the terminal and the report."""
        where = "held-out" if self.held_out else "training (nothing held out)"
        verdict = "passed" if self.passed else ("FAILED: posterior collapse" if self.collapsed else "FAILED")
        rules = f" ({_dims_phrase(self.rule_read_dims)} read off the image by fixed rules)" if self.rule_read_dims else ""
        line = (f"training health {verdict}: {self.active_units}/{self.latent_dim} active latent dimensions{rules}, "
                f"reconstruction R² {self.recon_r2:.2f} (PCA with {self.latent_dim} components: {self.pca_r2:.2f}) "
                f"on {self.n_syllables} {where} syllables")
        if not self.passed:
            line += f" — {self.reason} (fix: {self.fix})"
        return line


def _dims_phrase(dims) -> str:
    """``(0, 1)`` -> ``"z0, z1"``."""
    return ", ".join(f"z{d}" for d in dims)


def per_dimension_kl(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Mean over syllables of ``KL(N(mu_i, var_i) || N(0, 1))`` for each latent dimension ``i``.

    ``var`` are the marginal posterior variances (for the low-rank posterior,
    ``diag(UUᵀ + D)``), so the sum over dimensions is an upper bound of the full KL only for
    the diagonal family; per dimension it is exactly the marginal's divergence.
    """
    var = np.maximum(var.astype(np.float64), 1e-30)
    mu = mu.astype(np.float64)
    return (0.5 * (var + mu * mu - 1.0 - np.log(var))).mean(axis=0)


def r2_against(reference_sse: float, sse: float) -> float:
    """``1 - sse / reference_sse`` (NaN when the reference explains nothing to beat)."""
    return float(1.0 - sse / reference_sse) if reference_sse > 0 else float("nan")


def pca_heldout_r2(train_images: np.ndarray, test_images: np.ndarray, n_components: int) -> float:
    """R² (against the training mean) of the test images reconstructed by a PCA fitted on the training ones."""
    from sklearn.decomposition import PCA

    train_flat = train_images.reshape(len(train_images), -1).astype(np.float64)
    test_flat = test_images.reshape(len(test_images), -1).astype(np.float64)
    mean = train_flat.mean(0)
    k = int(min(n_components, len(train_flat) - 1, train_flat.shape[1]))
    if k < 1:
        return float("nan")
    pca = PCA(n_components=k, svd_solver="randomized" if k < min(train_flat.shape) // 2 else "full",
              random_state=0).fit(train_flat)
    recon = pca.inverse_transform(pca.transform(test_flat))
    return r2_against(float(((test_flat - mean) ** 2).sum()), float(((test_flat - recon) ** 2).sum()))


def assess(*, mu: np.ndarray, var: np.ndarray, test_images: np.ndarray, reconstructions: np.ndarray,
           train_images: np.ndarray, held_out: bool, n_store: int, steps: int,
           rule_read_dims: tuple = ()) -> TrainingHealth:
    """Turn posterior moments and reconstructions into a :class:`TrainingHealth`.

    ``rule_read_dims``: dimensions whose means are fixed rules of the image; they are counted among
    the active ones but cannot stop a collapse of the learnt ones from being reported.
    ``test_images``/``reconstructions`` are ``(n, H, W)`` in [0, 1] at the size the model sees;
    ``train_images`` give the mean image and the PCA. ``n_store`` and ``steps`` only shape the fix.
    """
    kl = per_dimension_kl(mu, var)
    active = int((kl > ACTIVE_UNIT_KL_NATS).sum())
    mean_img = train_images.reshape(len(train_images), -1).mean(0)
    test_flat = test_images.reshape(len(test_images), -1).astype(np.float64)
    rec_flat = reconstructions.reshape(len(reconstructions), -1).astype(np.float64)
    recon_r2 = r2_against(float(((test_flat - mean_img) ** 2).sum()), float(((test_flat - rec_flat) ** 2).sum()))
    pca_r2 = pca_heldout_r2(train_images, test_images, mu.shape[1])
    rule_read_dims = tuple(int(d) for d in rule_read_dims)
    learnt_active = int((np.delete(kl, rule_read_dims) > ACTIVE_UNIT_KL_NATS).sum())
    collapsed = learnt_active < MIN_ACTIVE_UNITS
    informative = np.isfinite(recon_r2) and recon_r2 >= MIN_RECON_R2
    passed = bool(not collapsed and informative)
    reason = fix = ""
    if not passed:
        reason = ((f"the posterior equals the prior in every learnt dimension (only the rule-read "
                   f"{_dims_phrase(rule_read_dims)} vary)" if rule_read_dims else
                   "the posterior equals the prior in every dimension") if collapsed else
                  f"held-out reconstructions are barely better than the mean syllable (R² {recon_r2:.2f} < {MIN_RECON_R2})")
        fixes = []
        if n_store < MIN_SYLLABLES_SHOWN_TO_LEARN:
            fixes.append(f"more syllables (this store has {n_store}; the defaults were shown to learn from "
                         f"{MIN_SYLLABLES_SHOWN_TO_LEARN})")
        fixes.append(f"more optimiser steps (this run made {steps}; raise min_steps)")
        fixes.extend(_smaller_images_fix(*test_images.shape[1:3]))
        fixes.append("obs_precision = \"auto\"")
        fix = "; ".join(fixes)
    return TrainingHealth(passed=passed, collapsed=bool(collapsed), active_units=active, latent_dim=int(mu.shape[1]),
                          recon_r2=float(recon_r2), pca_r2=float(pca_r2), mean_kl_nats=float(kl.sum()),
                          n_syllables=int(len(test_images)), held_out=bool(held_out), reason=reason, fix=fix,
                          rule_read_dims=rule_read_dims)


def _smaller_images_fix(height: int, width: int) -> list[str]:
    """The "smaller images" advice for a network that sees ``height × width`` images (none when already small)."""
    from .params import CPU_PROFILE_SIDE

    side, seen = min(height, width), f"the network sees {height}×{width}"
    if side >= 2 * CPU_PROFILE_SIDE:  # the CPU profile can pool these by a whole factor
        return [f"smaller images ({seen}: profile = \"cpu\" pools them by {side // CPU_PROFILE_SIDE}, "
                f"or set the syllables shape to [{CPU_PROFILE_SIDE}, {CPU_PROFILE_SIDE}])"]
    if side > CPU_PROFILE_SIDE:
        return [f"smaller images ({seen}: set the syllables shape to [{CPU_PROFILE_SIDE}, {CPU_PROFILE_SIDE}])"]
    if side > SMALLEST_SUGGESTED_SIDE:
        return [f"smaller images ({seen}: a syllables shape of [{SMALLEST_SUGGESTED_SIDE}, {SMALLEST_SUGGESTED_SIDE}], "
                "as the demo)"]
    return []


def measure_health(model, batches, train_images: np.ndarray, *, held_out: bool, n_store: int,
                   steps: int) -> TrainingHealth:
    """Encode and reconstruct ``batches`` (float ``(n, 1, H, W)`` tensors of held-out syllables) with
    ``model`` (a :class:`usvpipe.vae.model.VAE`) and :func:`assess` the result.

    ``train_images`` are ``(n, h, w)`` in [0, 1] at the size the model sees (``model.output_shape``).
    """
    import torch

    was_training = model.training
    model.eval()
    mus, variances, images, recons = [], [], [], []
    with torch.no_grad():
        for x in batches:
            x = model.prepare(x.float())
            mu, log_d, u = model.encode(x)
            mus.append(mu.cpu().numpy())
            variances.append(model.posterior_variance(log_d, u).cpu().numpy())
            images.append(x[:, 0].cpu().numpy())
            recons.append(model.decode(mu).float().clamp(0, 1)[:, 0].cpu().numpy())
    model.train(was_training)
    return assess(mu=np.concatenate(mus), var=np.concatenate(variances), test_images=np.concatenate(images),
                  reconstructions=np.concatenate(recons), train_images=train_images, held_out=held_out,
                  n_store=n_store, steps=steps, rule_read_dims=getattr(model, "rule_read_dims", ()))


def health_from_dict(data) -> TrainingHealth | None:
    """The :class:`TrainingHealth` stored in ``train.json``/a sidecar (``None`` if absent or malformed)."""
    if not isinstance(data, dict):
        return None
    try:
        fields = {k: data[k] for k in TrainingHealth.__dataclass_fields__ if k in data}
        if "rule_read_dims" in fields:
            fields["rule_read_dims"] = tuple(int(d) for d in fields["rule_read_dims"])
        return TrainingHealth(**fields)
    except (TypeError, ValueError):
        return None
