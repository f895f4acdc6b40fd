"""``usvpipe synth``: write a synthetic USV dataset with exact ground truth."""
from __future__ import annotations

import click

from ..errors import ConfigError


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--groups", default="A,B", show_default=True, help="Comma-separated group names; group k is shifted by k*group-shift.")
@click.option("--animals-per-group", default=4, show_default=True, type=int)
@click.option("--recordings-per-animal", default=1, show_default=True, type=int)
@click.option("--duration-s", default=20.0, show_default=True, type=float, help="Length of each recording (s).")
@click.option("--group-shift", default=1.0, show_default=True, type=float,
              help="Effect size: shift of every call-shape parameter per group, in standard deviations.")
@click.option("--animal-sd", default=0.3, show_default=True, type=float,
              help="Individual variation: SD (in parameter SDs) of each animal's fixed offset.")
@click.option("--snr-db", default=20.0, show_default=True, type=float,
              help="Per-call SNR: call power vs noise power in 30-110 kHz (dB).")
@click.option("--call-rate-hz", default=2.0, show_default=True, type=float, help="Nominal calls per second.")
@click.option("--sample-rate-hz", default=250_000, show_default=True, type=int)
@click.option("--low-freq-noise-db", default=10.0, show_default=True, type=float,
              help="Room noise below 20 kHz relative to in-band noise (dB).")
@click.option("--no-low-freq-noise", is_flag=True, help="Disable the low-frequency room noise.")
@click.option("--balance-se", default=None, type=float,
              help="Assign the animals to groups by rerandomisation so that every shape parameter's group means of "
                   "the animal offsets differ by at most this many standard errors (1.0 accepts about one draw in ten); "
                   "the planted shift is then the only systematic difference.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--force", is_flag=True, help="Write into a folder that already holds WAV files.")
def synth(out_dir, groups, animals_per_group, recordings_per_animal, duration_s, group_shift, animal_sd, snr_db,
          call_rate_hz, sample_rate_hz, low_freq_noise_db, no_low_freq_noise, balance_se, seed, force):
    """Generate OUT_DIR/<group>/<animal>/*.wav with *.truth.csv and metadata.csv.

    Calls are frequency-modulated sweeps in 30-110 kHz with harmonics; onsets/offsets in
    the truth tables are exact. Deterministic given --seed.
    """
    from ..synth import make_dataset

    names = tuple(g.strip() for g in groups.split(",") if g.strip())
    if not names:
        raise ConfigError("--groups: give at least one group name, e.g. --groups A,B")
    from pathlib import Path

    old = sorted(Path(out_dir).rglob("*.wav")) if Path(out_dir).is_dir() else []
    if old and not force:
        # the old recordings would stay beside the new ones and enter every later analysis
        raise ConfigError(out_dir, f"already holds {len(old)} WAV file(s)", "choose a new folder, delete it, or pass --force")
    meta = make_dataset(
        out_dir, groups=names, animals_per_group=animals_per_group, recordings_per_animal=recordings_per_animal,
        duration_s=duration_s, group_shift=group_shift, animal_sd=animal_sd, snr_db=snr_db,
        sample_rate_hz=sample_rate_hz, seed=seed, call_rate_hz=call_rate_hz,
        low_freq_noise_db=None if no_low_freq_noise else low_freq_noise_db, balance_se=balance_se,
    )
    click.echo(f"wrote {len(meta)} recordings ({meta['animal'].nunique()} animals, {len(names)} groups) to {out_dir}")
    click.echo(f"metadata: {out_dir.rstrip('/')}/metadata.csv; truth: <wav stem>.truth.csv next to each WAV")
