"""Parameters of POISE-VAE and its baselines (no torch import here, so the CLI and configs stay fast)."""
from __future__ import annotations

from dataclasses import dataclass

from ..constraints import Interval, OneOf, check_params, config_error

MODELS = ("poise", "mvae", "mmvae", "vae")
LIKELIHOODS = ("auto", "gaussian", "bernoulli")
PRIOR_INITS = ("independent", "paired", "random")


@dataclass(frozen=True)
class PoiseParams:
    """Parameters of a POISE-VAE (or baseline) and its training.

    Attributes
    ----------
    model : {"poise", "mvae", "mmvae", "vae"}
        ``poise``: private latents ``z`` (``latent_dim_1``) and ``z'`` (``latent_dim_2``) with the
        coupled prior; ``mvae``: one shared Gaussian latent of ``latent_dim_1 + latent_dim_2``
        dims, product of Gaussian experts with a standard-normal expert (Wu & Goodman 2018,
        joint + unimodal ELBO terms); ``mmvae``: the same latent with a mixture of experts
        (Shi et al. 2019, stratified single-sample ELBO); ``vae``: two independent VAEs (no
        cross-modal link; the single-modality reference).
    latent_dim_1, latent_dim_2 : int
        Sizes of the private latent spaces of modality 1 and 2.
    hidden_units : int
        Width of the hidden layers of encoders and decoders.
    epochs, batch_size : int
        Passes over the data and pairs per optimisation step.
    learning_rate : float
        Adam step size.
    prior_lr_factor : float
        Step-size multiplier for the prior's parameters (``lambda``, ``G``).
    gibbs_sweeps : int
        Burn-in sweeps per step for posterior chains (started fresh from ``z' | z = 0``).
    gibbs_samples : int
        Posterior chains per datum (>= 2: the KL gradient uses their covariance).
    prior_chains : int
        Persistent chains for the prior's expectation ``E_p[S]``.
    likelihood_1, likelihood_2 : {"auto", "gaussian", "bernoulli"}
        Decoder likelihoods; ``auto`` = Bernoulli for images with values in [0, 1], else Gaussian.
    obs_sd : float
        Observation s.d. of Gaussian likelihoods (data units).
    learn_prior_scale : bool
        Learn the prior's own natural parameters ``lambda`` (else fixed at ``(0, -1/2)``, i.e.
        N(0, 1) factors before coupling; only ``G11``, ``G22`` are learnt).
    kl_gradient : {"pathwise", "score"}
        How the part of the KL gradient that flows through ``E_q[T]`` is estimated:
        ``score`` = covariance of the Gibbs samples (unbiased, but its noise grows with the
        size of the encoder increments, i.e. with sharp posteriors); ``pathwise`` = through
        one re-parameterised Gibbs sweep (low variance, slightly biased when the coupling is
        strong relative to the encoder increments). Both are checked against brute force.
    subset_elbos : bool
        POISE only: add the ELBOs whose posterior uses one modality's expert (the other's
        increment is 0) while reconstructing both, as MVAE does; trains cross-generation.
    prior_init : {"independent", "paired", "random"}
        Start of the prior's couplings. ``independent``: ``G11 = 0``, ``G22 = -0.1`` (nearly
        independent normals); ``paired``: each ``z_i`` coupled with ``z'_i`` (the first
        ``min(n, m)``) with ``G11_ii = pair_coupling``, ``G22_ii = -pair_quartic``;
        ``random``: dense random couplings (the lab's reference code starts them from
        ``randn``): ``G11 ~ N(0, 1/max(n, m))``, ``G22 = -softplus(N(0, 1))``, and with
        ``full_coupling`` the mixed blocks from random raw values. When the
        latents themselves are the goal (identifiability), use ``paired`` with a
        ``prior_warmup_epochs`` of about half the epochs: from the independent start the
        learnt couplings decay to ~0 and the latents stay rotated; the held paired start
        lets the encoders align with the prior's axes first (benchmarks/poise-identifiability.md). For
        cross-generation alone, ``independent`` did better in our video + audio runs.
    pair_coupling, pair_quartic : float
        Strength of the ``paired`` start (``G11_ii`` and ``-G22_ii``; ``lambda`` starts at
        N(0, 1) factors, ``(0, -1/2)``).
    prior_warmup_epochs : int
        Epochs during which the prior's parameters are held at their start (the networks
        still learn); 0 = learn them from the first step.
    full_coupling : bool
        POISE only: all four blocks of ``G`` -- also ``z . z'^2`` (``G12``) and ``z^2 . z'``
        (``G21``), as in the lab's reference code. The mixed blocks are bounded,
        ``|G21_ij| < 0.99 sqrt(4 |G22_ij| |a2_i| / m)`` (and ``G12`` likewise with ``b2_j`` and
        ``n``), which keeps every conditional proper and the joint normalisable (with
        ``a2 = -1/2`` this is the reference's ``0.99 sqrt(2 |g22|) / sqrt(D)``).
    recon_samples : {"one", "all"}
        POISE only: the reconstruction term from one re-parameterised sample of the first
        chain (``one``), or averaged over every state of every posterior chain,
        differentiated through the whole chain (``all``, the reference code's choice; costs
        ``gibbs_samples * gibbs_sweeps`` decoder passes per pair).
    recon_sweep : {"symmetric", "forward"}
        POISE only, with ``recon_samples="one"``: which re-parameterised sweep from the chains'
        state each modality is decoded from. ``symmetric`` (default): ``x'`` from ``z'`` drawn
        after ``z`` (``z | z'`` then ``z' | z``) and ``x`` from ``z`` drawn after ``z'``
        (``z' | z`` then ``z | z'``), so each reconstruction is differentiable w.r.t. *both*
        encoders through the coupling. ``forward``: both from one ``z | z'``, ``z' | z`` sweep
        (the behaviour before issue 12): the frame's reconstruction then has no gradient into
        the other modality's encoder, and cross-generation of modality 1 from modality 2 alone
        is not trained (benchmarks/poise-video-pairs.md, *Why audio → video failed*).
    modality_dropout : float
        POISE only: the probability, per batch, that modality 1 is masked (its expert
        contributes ``Delta = 0``; both are still reconstructed), and the same for modality
        2 (the reference code masks a whole batch's modality with probability 0.1-0.2); must
        be < 0.5. 0 = off.
    kl_weight : float
        Weight of the KL term (1 = the ELBO).
    kl_warmup_epochs : int
        Linear KL annealing from 0 over this many epochs (0 = none).
    heldout_fraction : float
        Share of the pairs kept out of training to check, after it, that cross-generation
        follows its input (:mod:`usvpipe.poise.check`; ``check.json``). Whole recordings are
        held out when the pairs name them (``poise pairs`` does); 0 = train on every pair and
        leave cross-generation unchecked. Must be < 0.5.
    seed : int
        Seed for initialisation, batching and sampling.
    """

    model: str = "poise"
    latent_dim_1: int = 8
    latent_dim_2: int = 8
    hidden_units: int = 256
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    prior_lr_factor: float = 10.0
    gibbs_sweeps: int = 5
    gibbs_samples: int = 4
    prior_chains: int = 512
    likelihood_1: str = "auto"
    likelihood_2: str = "auto"
    obs_sd: float = 0.1
    learn_prior_scale: bool = True
    kl_gradient: str = "score"
    subset_elbos: bool = False
    prior_init: str = "independent"
    pair_coupling: float = 1.0
    pair_quartic: float = 2.0
    prior_warmup_epochs: int = 0
    full_coupling: bool = False
    recon_samples: str = "one"
    recon_sweep: str = "symmetric"
    modality_dropout: float = 0.0
    kl_weight: float = 1.0
    kl_warmup_epochs: int = 0
    heldout_fraction: float = 0.1
    seed: int = 0

    _constraints = {
        "model": [OneOf(*MODELS)],
        "latent_dim_1": [Interval(int, 1, None)],
        "latent_dim_2": [Interval(int, 1, None)],
        "hidden_units": [Interval(int, 1, None)],
        "epochs": [Interval(int, 1, None)],
        "batch_size": [Interval(int, 1, None)],
        "learning_rate": [Interval(float, 0, None, closed="neither")],
        "prior_lr_factor": [Interval(float, 0, None, closed="neither")],
        "gibbs_sweeps": [Interval(int, 1, None)],
        # >= 2: the KL gradient uses the covariance of the posterior chains.
        "gibbs_samples": [Interval(int, 2, None)],
        "prior_chains": [Interval(int, 1, None)],
        "likelihood_1": [OneOf(*LIKELIHOODS)],
        "likelihood_2": [OneOf(*LIKELIHOODS)],
        "obs_sd": [Interval(float, 0, None, closed="neither")],
        "kl_gradient": [OneOf("pathwise", "score")],
        "prior_init": [OneOf(*PRIOR_INITS)],
        "pair_coupling": [Interval(float, 0, None)],
        "pair_quartic": [Interval(float, 0, None)],
        "prior_warmup_epochs": [Interval(int, 0, None)],
        "recon_samples": [OneOf("one", "all")],
        "recon_sweep": [OneOf("symmetric", "forward")],
        "modality_dropout": [Interval(float, 0, 0.5, closed="left")],
        "kl_weight": [Interval(float, 0, None)],
        "kl_warmup_epochs": [Interval(int, 0, None)],
        "heldout_fraction": [Interval(float, 0, 0.5, closed="left")],
    }

    def __post_init__(self):
        check_params(self, "poise")


ANCHORS = ("onset", "middle")


@dataclass(frozen=True)
class PairsParams:
    """How ``usvpipe poise pairs`` turns behaviour videos + a syllable store into pairs.

    The video frame paired with a syllable is the one on screen at the video time
    ``offset_s + t_audio * (1 + drift_ppm * 1e-6)``, where ``t_audio`` is the syllable's onset
    (or middle, ``anchor``) in seconds of its WAV.

    Attributes
    ----------
    offset_s : float
        Video time (s) at audio time 0: positive when the video started first. Per-recording
        values can come from a sync CSV (``recording,offset_s[,drift_ppm]``).
    drift_ppm : float
        Clock drift of the video against the audio, in parts per million: +50 means 50 µs
        more video time per second of audio (the camera clock runs fast). Two free-running
        clocks typically differ by 10-100 ppm, i.e. 36-360 ms per hour: more than a
        frame at 30 fps within minutes.
    anchor : {"onset", "middle"}
        Which time of the syllable picks the frame.
    frames : int
        Frames per pair: 1, or a short stack (the frames at ``t, t + step, ...``) laid side
        by side into one ``(height, frames * width)`` image.
    frame_step : int
        Frames between the stacked frames.
    size : (int, int)
        ``(height, width)`` of each frame after the region of interest, resized, grey in
        [0, 1]. Sides divisible by 4 give POISE its convolutional networks.
    roi : () or (int, int, int, int)
        Region of interest ``(x, y, width, height)`` in pixels of the full frame; () = all.
    fps : float
        Frame rate override (0 = the rate the file states; a file that states none fails
        unless this is set).
    """

    offset_s: float = 0.0
    drift_ppm: float = 0.0
    anchor: str = "onset"
    frames: int = 1
    frame_step: int = 1
    size: tuple[int, int] = (32, 32)
    roi: tuple[int, ...] = ()
    fps: float = 0.0

    _constraints = {
        "drift_ppm": [Interval(float, -1e5, 1e5, closed="neither")],
        "anchor": [OneOf(*ANCHORS)],
        "frames": [Interval(int, 1, None)],
        "frame_step": [Interval(int, 1, None)],
        "fps": [Interval(float, 0, None)],
    }

    def __post_init__(self):
        check_params(self, "poise_pairs")
        if (not isinstance(self.size, (tuple, list)) or len(self.size) != 2
                or not all(Interval(int, 2, None).accepts(n) for n in self.size)):
            raise config_error("poise_pairs", "size", f"{self.size!r} is not (height, width) with both >= 2",
                               "set size to two integers >= 2, e.g. [32, 32]")
        roi = self.roi
        if roi and (not isinstance(roi, (tuple, list)) or len(roi) != 4 or not all(Interval(int, 0, None).accepts(n) for n in roi[:2])
                    or not all(Interval(int, 1, None).accepts(n) for n in roi[2:])):
            raise config_error("poise_pairs", "roi", f"{roi!r} is not (x, y, width, height) with x, y >= 0 and sizes >= 1",
                               "give four integers in pixels of the full frame, or [] for the whole frame")

    def video_time(self, t_audio, *, offset_s=None, drift_ppm=None):
        """Video time of audio time ``t_audio`` (array), with optional per-recording sync."""
        off = self.offset_s if offset_s is None else offset_s
        drift = self.drift_ppm if drift_ppm is None else drift_ppm
        return off + t_audio * (1.0 + drift * 1e-6)
