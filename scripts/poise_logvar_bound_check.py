"""How often do the MVAE/MMVAE baselines' encoder log-variances reach their [-8, 8] clamp?

Runs ``scripts/poise_modes.py`` with the same arguments, counting every log-variance the
baselines' encoders output (training steps and evaluation passes alike) before the clamp, and
prints the fraction outside the range and the extremes:

    OMP_NUM_THREADS=1 python scripts/poise_logvar_bound_check.py --dataset mnist --radii 1 2 5 --seeds 0 --models mvae --figure ""

A plain clamp has no gradient outside its range (the fault benchmarks/vae-variance-bound.md found in
the syllable VAE); benchmarks/poise-circle-modes.md has what this prints on MNIST.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

#: The clamp of ``GaussianMultiVAE._gauss``.
BOUND = 8.0


def main(argv=None) -> int:
    from usvpipe.poise import model as poise_model

    counts = {"n": 0, "below": 0, "above": 0, "min": float("inf"), "max": float("-inf")}
    unclamped = poise_model.GaussianMultiVAE._gauss

    def counting(enc, x):
        out = enc(x)
        log_var = out[:, out.shape[-1] // 2:].detach()
        counts["n"] += log_var.numel()
        counts["below"] += int((log_var < -BOUND).sum())
        counts["above"] += int((log_var > BOUND).sum())
        counts["min"] = min(counts["min"], float(log_var.min()))
        counts["max"] = max(counts["max"], float(log_var.max()))
        return unclamped(enc, x)

    poise_model.GaussianMultiVAE._gauss = staticmethod(counting)
    import poise_modes

    poise_modes.main(argv)
    n = max(counts["n"], 1)
    print(f"log-variances: {counts['n']} outputs, {counts['below'] / n:.2%} below -{BOUND:g}, "
          f"{counts['above'] / n:.2%} above {BOUND:g}; range {counts['min']:.2f} to {counts['max']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
