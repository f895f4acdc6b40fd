"""``usvpipe synth``: write a synthetic USV dataset with exact ground truth (sweep or vocal world)."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError

_VOCAL_ONLY = "Vocal world only."
_SWEEP_ONLY = "Sweep world only."


def _refuse_old_wavs(out_dir: str, force: bool) -> None:
    old = sorted(Path(out_dir).rglob("*.wav")) if Path(out_dir).is_dir() else []
    if old and not force:
        # the old recordings would stay beside the new ones and enter every later analysis
        raise ConfigError(out_dir, f"already holds {len(old)} WAV file(s)", "choose a new folder, delete it, or pass --force")


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--world", "world_kind", type=click.Choice(["sweep", "vocal"]), default="sweep", show_default=True,
              help="sweep: every call one FM sweep, groups shifted in SDs (the first generator, unchanged). "
                   "vocal: call types, repertoires per animal, noise classes of real rigs, four kinds of group "
                   "difference, truth_calls.csv + truth_noise.csv.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="usvpipe.toml with a [synth] section (vocal world; options given here override it).")
@click.option("--groups", default=None, help="Comma-separated group names (default A,B); group k carries k times "
              "the difference.")
@click.option("--animals-per-group", default=None, type=int, help="Default 4 (sweep) or 6 (vocal).")
@click.option("--recordings-per-animal", default=None, type=int, help="Default 1.")
@click.option("--syllables-per-animal", default=None, type=int, help=f"Default 200. {_VOCAL_ONLY}")
@click.option("--call-types", default=None, help=f"Comma-separated call types (default all: flat, upsweep, downsweep, "
              f"chevron, u_shape, step, multi_step, two_component, harmonic, short, complex). {_VOCAL_ONLY}")
@click.option("--noise", default=None, help=f"Comma-separated noise classes, or none (default all: clicks, "
              f"scratches, reverb, hum, gain). {_VOCAL_ONLY}")
@click.option("--difference", default=None, help=f"KIND:SIZE with KIND none, usage (probability moved, e.g. "
              f"usage:0.1), pitch (kHz), duration (%%) or shape (relative FM/jump change, pitch and duration "
              f"matched). Default none. {_VOCAL_ONLY}")
@click.option("--usage-from", default=None, help=f"Call type a usage difference takes from (default upsweep). {_VOCAL_ONLY}")
@click.option("--usage-to", default=None, help=f"Call type a usage difference gives to (default step). {_VOCAL_ONLY}")
@click.option("--snr-db", default=None, help="Per-call SNR in dB: a value (10) or, in the vocal world, a uniform "
              "range LOW:HIGH. Default 20 (sweep) or 5:30 (vocal).")
@click.option("--duration-s", default=20.0, show_default=True, type=float, help=f"Length of each recording (s). {_SWEEP_ONLY}")
@click.option("--group-shift", default=1.0, show_default=True, type=float,
              help=f"Effect size: shift of every call-shape parameter per group, in standard deviations. {_SWEEP_ONLY}")
@click.option("--animal-sd", default=0.3, show_default=True, type=float,
              help=f"Individual variation: SD (in parameter SDs) of each animal's fixed offset. {_SWEEP_ONLY}")
@click.option("--call-rate-hz", default=2.0, show_default=True, type=float, help=f"Nominal calls per second. {_SWEEP_ONLY}")
@click.option("--sample-rate-hz", default=None, type=int, help="Default 250000.")
@click.option("--low-freq-noise-db", default=10.0, show_default=True, type=float,
              help=f"Room noise below 20 kHz relative to in-band noise (dB). {_SWEEP_ONLY}")
@click.option("--no-low-freq-noise", is_flag=True, help=f"Disable the low-frequency room noise. {_SWEEP_ONLY}")
@click.option("--balance-se", default=None, type=float,
              help="Assign the animals to groups by rerandomisation so that every shape parameter's group means of "
                   "the animal offsets differ by at most this many standard errors (1.0 accepts about one draw in ten); "
                   f"the planted shift is then the only systematic difference. {_SWEEP_ONLY}")
@click.option("--seed", default=None, type=int, help="Default 0.")
@click.option("--force", is_flag=True, help="Write into a folder that already holds WAV files.")
def synth(out_dir, world_kind, config_path, force, **options):
    """Generate OUT_DIR/<group>/<animal>/*.wav with ground truth and metadata.csv.

    Sweep world: calls are frequency-modulated sweeps in 30-110 kHz with harmonics; truth in
    <wav stem>.truth.csv. Vocal world: typed calls (flat, sweeps, chevrons, steps, ...) under
    switchable rig noise; truth in truth_calls.csv and truth_noise.csv. Deterministic given --seed.
    """
    if world_kind == "vocal":
        _vocal(out_dir, config_path, force, options)
    else:
        _sweep(out_dir, force, options)


def _sweep(out_dir, force, o):
    from ..synth import make_dataset

    names = tuple(g.strip() for g in (o["groups"] or "A,B").split(",") if g.strip())
    if not names:
        raise ConfigError("--groups: give at least one group name, e.g. --groups A,B")
    vocal_given = [k for k in ("syllables_per_animal", "call_types", "noise", "difference", "usage_from", "usage_to")
                   if o[k] is not None]
    if vocal_given:
        raise ConfigError("--" + vocal_given[0].replace("_", "-"), "is an option of the vocal world",
                          "add --world vocal, or leave it out")
    try:
        snr_db = 20.0 if o["snr_db"] is None else float(o["snr_db"])
    except ValueError:
        raise ConfigError("--snr-db", f"{o['snr_db']!r} is not one number (the sweep world has one SNR)",
                          "give e.g. --snr-db 20, or use --world vocal for a range") from None
    _refuse_old_wavs(out_dir, force)
    meta = make_dataset(
        out_dir, groups=names, animals_per_group=o["animals_per_group"] or 4,
        recordings_per_animal=o["recordings_per_animal"] or 1, duration_s=o["duration_s"],
        group_shift=o["group_shift"], animal_sd=o["animal_sd"], snr_db=snr_db, sample_rate_hz=o["sample_rate_hz"] or 250_000,
        seed=o["seed"] or 0, call_rate_hz=o["call_rate_hz"],
        low_freq_noise_db=None if o["no_low_freq_noise"] else o["low_freq_noise_db"], balance_se=o["balance_se"],
    )
    click.echo(f"wrote {len(meta)} recordings ({meta['animal'].nunique()} animals, {len(names)} groups) to {out_dir}")
    click.echo(f"metadata: {out_dir.rstrip('/')}/metadata.csv; truth: <wav stem>.truth.csv next to each WAV")


def vocal_params(config_path, o):
    """The :class:`~usvpipe.synth.WorldParams` of the CLI options over the config's [synth] section."""
    from ..config import load_config, params_from_mapping
    from ..synth import WorldParams, parse_difference, parse_names, parse_snr

    section = (load_config(config_path).get("synth", {}) or {}) if config_path else {}
    kind, size = parse_difference(o["difference"]) if o["difference"] is not None else (None, None)
    overrides = {
        "groups": parse_names(o["groups"]) if o["groups"] is not None else None,
        "animals_per_group": o["animals_per_group"], "recordings_per_animal": o["recordings_per_animal"],
        "syllables_per_animal": o["syllables_per_animal"],
        "call_types": parse_names(o["call_types"]) if o["call_types"] is not None else None,
        "noise": parse_names(o["noise"]) if o["noise"] is not None else None,
        "snr_db": parse_snr(o["snr_db"]) if o["snr_db"] is not None else None,
        "difference": kind, "difference_size": size, "usage_from": o["usage_from"], "usage_to": o["usage_to"],
        "sample_rate_hz": o["sample_rate_hz"], "seed": o["seed"],
    }
    return params_from_mapping(WorldParams, section, section="synth", **overrides)


def _vocal(out_dir, config_path, force, o):
    from ..synth import simulate_world, write_world

    world = simulate_world(vocal_params(config_path, o))
    _refuse_old_wavs(out_dir, force)
    meta = write_world(world, out_dir)
    p = world.params
    click.echo(f"wrote {len(meta)} recordings, {len(world.calls)} calls ({world.animals.shape[0]} animals, "
               f"{len(p.groups)} groups; difference {p.difference}:{p.difference_size:g}) to {out_dir}")
    click.echo(f"metadata: {out_dir.rstrip('/')}/metadata.csv; truth: truth_calls.csv, truth_noise.csv")
