"""``usvpipe measures``: classical acoustic measures per animal and per group, tested between groups."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("measures")
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--input", "input_", default=None, type=click.Path(exists=True, path_type=Path),
              help="The folder that was segmented (recording paths are relative to it); gives calls per minute.")
@click.option("--group-col", default="group", show_default=True)
@click.option("--a", "a", default=None, help="First group (default: the only two groups present).")
@click.option("--b", "b", default=None, help="Second group.")
@click.option("--alpha", default=0.05, show_default=True, help="Family-wise level (Holm's correction over the measures).")
@click.option("--seed", default=0, show_default=True, help="Seed of Monte Carlo splits and bootstrap intervals.")
def measures(store, out_dir, input_, group_col, a, b, alpha, seed):
    """Call count, calls per minute, duration, frequencies, bandwidth and amplitude per animal (STORE's
    syllables.csv), per group, and each tested between two groups with whole animals permuted."""
    from ..measures import measures_stage
    from ..segmentation.inputs import discover_inputs

    root = discover_inputs(input_)[1] if input_ is not None else None
    res = measures_stage(store, out_dir, input_root=root, group_col=group_col, a=a, b=b, alpha=alpha, seed=seed)
    if res.tests is not None:
        ga, gb = res.groups
        for t in res.tests.to_dict(orient="records"):
            verdict = "differ" if t["reject"] else "no evidence"
            click.echo(f"  {t['label']:<40} {ga} {t[f'mean_{ga}']:.4g}  {gb} {t[f'mean_{gb}']:.4g}  "
                       f"p = {t['p_value']:.3g}, Holm {t['p_holm']:.3g}: {verdict}")
    for note in res.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"tables and figure in {out_dir}/")
