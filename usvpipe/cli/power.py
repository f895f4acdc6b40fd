"""``usvpipe power``: how many animals a study needs, from a pilot (a run folder, or a store and its model)."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsvpipeError


@click.command("power")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="The VAE trained on the store (needed when SOURCE is a store, not a run folder).")
@click.option("--kind", type=click.Choice(["pitch", "duration", "usage"]), default="pitch", show_default=True,
              help="Kind of difference planted into group B of each simulated experiment.")
@click.option("--effect", type=float, required=True,
              help="Its size: pitch in kHz (rounded to whole image rows), duration in %, usage in percentage points.")
@click.option("--animals", default=None, help="Animals per group to try, comma-separated [default: 3,4,5,6,8,10,12,16].")
@click.option("--draws", type=int, default=None, help="Simulated experiments per point [default: 200].")
@click.option("--mde", is_flag=True, help="Also estimate the pilot design's own minimum detectable effects (sensitivity.csv/png).")
@click.option("--a", "group_a", default=None, help="First group (store only; default: the two groups present).")
@click.option("--b", "group_b", default=None, help="Second group.")
@click.option("--alpha", type=float, default=None, help="Level of the test [default: the run's, else 0.05].")
@click.option("--seed", type=int, default=None, help="Seed of the simulated experiments [default: 0].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: SOURCE/power for a run folder, ./power otherwise].")
def power(source, model_path, kind, effect, animals, draws, mde, group_a, group_b, alpha, seed, out_dir):
    """Power of the animal-level test against animals per group, for an effect of KIND and size EFFECT.

    Each simulated experiment draws n + n animals from the pilot's animals (one random half of
    them per group; with replacement once a half is used up), plants the effect into the
    second n animals' syllables (images re-encoded with the model; usage by re-weighting
    syllables) and runs the same animal-level MMD test. Writes
    power_curve.csv and power_curve.png, and prints the animals per group reaching 80 %.
    """
    import dataclasses

    from ..config import params_from_mapping
    from ..mmd.params import MMDParams
    from ..power import PowerParams, load_pilot, load_run_pilot, power_curve, sensitivity, write_curve, write_sensitivity

    params = params_from_mapping(PowerParams, {}, section="power", animals=animals, draws=draws, seed=seed)
    if not effect > 0:
        raise UsvpipeError("--effect", f"{effect} is not a positive size", "give the effect to plan for, e.g. --effect 3")
    if not source.exists():
        raise UsvpipeError(source, "does not exist", "pass a run folder (usvpipe run's output) or a syllable store")
    is_run = (source / "store").is_dir() and model_path is None
    if is_run:
        pilot = load_run_pilot(source, max_per_animal=params.max_syllables_per_animal, seed=params.seed)
    elif model_path is None:
        raise UsvpipeError(source, "is not a run folder (no store/ inside) and no --model was given",
                           "pass a run folder, or a store with --model MODEL.pt")
    else:
        pilot = load_pilot(source, model_path, a=group_a, b=group_b, max_per_animal=params.max_syllables_per_animal,
                           seed=params.seed)
    if alpha is not None:
        pilot.mmd = params_from_mapping(MMDParams, dataclasses.asdict(pilot.mmd), section="mmd", alpha=alpha)
    out_dir = out_dir or (source / "power" if is_run else Path("power"))
    curve = power_curve(pilot, kind, effect, params)
    paths = write_curve(curve, out_dir)
    click.echo(f"pilot: {pilot.k} animals ({', '.join(f'{n} {g}' for g, n in zip(pilot.groups, pilot.design))}), "
               f"{len(pilot.latents)} syllables; {kind} {curve.effect:.3g} {curve.unit} planted; "
               f"{params.draws} experiments per point, α = {pilot.mmd.alpha:g}")
    for p in curve.points:
        click.echo(f"  {int(p.size):>3} animals per group: power {p.power:.2f} ± {p.se:.2f}")
    need = curve.animals_needed
    click.echo(f"animals per group for {params.power:.0%} power: "
               + (str(need) if need is not None else f"more than {int(curve.points[-1].size)} (not reached)"))
    if mde:
        sens = sensitivity(pilot, dataclasses.replace(params, kinds=tuple(k for k in params.kinds if k != "measures")))
        paths.update({f"sensitivity {k}": v for k, v in write_sensitivity(sens, out_dir).items()})
        for m in sens.latent:
            click.echo(f"  minimum detectable {m.kind} with this pilot's design: "
                       + (f"{m.value:.3g} {m.unit} (± {m.se:.2g})" if m.value is not None and m.se is not None else
                          f"{m.value:.3g} {m.unit}" if m.value is not None else "not reached"))
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())} ({curve.seconds:.0f} s)")
