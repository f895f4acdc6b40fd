"""The latents' health, carried into every MMD result: can a difference found on these latents be stated?

A collapsed VAE maps every syllable to nearly the same point, and a permutation test on
those points still prints a p-value. The training health that ``usvpipe train`` measured
(:mod:`usvpipe.vae.health`) is read from the latents' sidecar; when it failed, the result is
marked ``interpretable = False`` with the concrete fix, and the report and
``run_manifest.json`` say "do not interpret" instead of stating a difference.

Used by :mod:`usvpipe.mmd.stage`; the second opinion from other representations, which
calls the stage, is :mod:`usvpipe.mmd.trust`.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

DO_NOT_INTERPRET = "latents not informative — do not interpret"


def latent_health_of(latents) -> tuple[dict | None, bool | None]:
    """``(health, model_complete)`` recorded beside a latents file (``(None, None)`` if unknown)."""
    if not isinstance(latents, (str, Path)):
        return None, None
    from ..artifacts import Latents

    meta = Latents.read_meta(latents)
    health = meta.get("model_health")
    return (health if isinstance(health, dict) else None), meta.get("model_complete")


def latent_readout_of(latents) -> list:
    """The acoustic read-out check ``usvpipe encode`` recorded beside a latents file (``[]`` if unknown)."""
    if not isinstance(latents, (str, Path)):
        return []
    from ..artifacts import Latents

    from ..vae.readout import readouts_from

    return [r.to_dict() for r in readouts_from(Latents.read_meta(latents).get("readout"))]


def apply_latent_health(result, health: dict | None, model_complete: bool | None = None):
    """Attach the health to an :class:`~usvpipe.mmd.result.MMDResult`; mark it uninterpretable when it failed."""
    result.latent_health = health
    if model_complete is False:
        result.notes.append("the latents come from an unfinished training run (fix: `usvpipe train … --resume`)")
    if health is not None and not health.get("passed", True):
        result.interpretable = False
        result.do_not_interpret = f"{DO_NOT_INTERPRET}: {health.get('reason', 'the training health check failed')}" \
                                  f" (fix: {health.get('fix', 'retrain')})"
    elif health is None and model_complete is None:
        result.notes.append("no training-health record for these latents (not written by `usvpipe encode`): "
                            "check that they describe the syllables before interpreting the test")
    return result


@contextlib.contextmanager
def explain_with_health(health: dict | None):
    """Re-raise a test's input error with the health verdict first when the latents failed it.

    A fully collapsed VAE gives identical latents, and the test then fails on the bandwidth;
    the reason the user must read is the collapse, with its fix.
    """
    from ..errors import UsvpipeError

    try:
        yield
    except UsvpipeError as exc:
        if health is None or health.get("passed", True):
            raise
        raise UsvpipeError(exc.path or "latents",
                           f"{DO_NOT_INTERPRET}: {health.get('reason', 'the training health check failed')}, "
                           f"and the test could not run ({exc.reason})", health.get("fix", "retrain")) from None
