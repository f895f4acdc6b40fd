"""``usvpipe mmd``: kernel MMD permutation test between two groups of a latents table."""
from __future__ import annotations

import click


@click.command("mmd")
@click.argument("latents", type=click.Path(dir_okay=False))
@click.option("--group-col", default="group", show_default=True, help="Column holding the group labels.")
@click.option("--a", "group_a", default=None, help="First group (default: the two groups present, sorted).")
@click.option("--b", "group_b", default=None, help="Second group.")
@click.option("--unit", type=click.Choice(["auto", "animal", "syllable"]), default=None,
              help="Unit of exchangeability [default: animal; a table without the animal column needs an explicit "
                   "--unit syllable].")
@click.option("--animal-col", default=None,
              help="Column naming the animal, the unit syllables are nested in (e.g. recording for sessions) "
                   "[default: animal].")
@click.option("--weighting", type=click.Choice(["auto", "animal", "syllable"]), default=None,
              help="Weight syllables so each animal counts equally (animal) or each syllable does [default: auto].")
@click.option("--permutations", type=int, default=None, help="Monte Carlo permutations [default: 1000].")
@click.option("--bandwidth", default=None,
              help="agg (MMDAgg: five bandwidths median x 2^e, e = -2..2, one level-corrected p-value) | median "
                   "(the median heuristic alone: sharper for a shift of the whole distribution, e.g. pitch) | "
                   "a positive number (fixed h) [default: agg].")
@click.option("--kernel", type=click.Choice(["gaussian", "laplace"]), default=None, help="Kernel [default: gaussian].")
@click.option("--statistic", type=click.Choice(["unbiased", "biased"]), default=None, help="MMD² estimator [default: unbiased].")
@click.option("--max-per-animal", type=int, default=None, help="Subsample at most this many syllables per animal.")
@click.option("--alpha", type=float, default=None, help="Level for the reject flag [default: 0.05].")
@click.option("--features", default=None, help="Comma-separated glob(s) of latent columns [default: z0..z{d-1}].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="auto: CUDA when present.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
              help="Precision of the kernel blocks and the permutation product; sums that give the reported "
                   "statistic always accumulate in float64 [default: float32].")
@click.option("--seed", type=int, default=None, help="Random seed [default: 0].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="mmd_out", show_default=True,
              help="Output directory for report.json, CSVs and figures.")
@click.option("--no-figures", is_flag=True, help="Skip the PNG figures.")
@click.option("--syllable-view/--no-syllable-view", default=None,
              help="With --unit animal, also run the syllable-unit test as a secondary view [default: on]; "
                   "off makes the animal test O(N²) instead of O(N² x permutations).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="usvpipe.toml; its [mmd] section gives defaults, options override it.")
@click.option("--store", "store_dir", type=click.Path(file_okay=False), default=None,
              help="The syllable store of the latents: adds PCA of its images to the second opinion.")
@click.option("--second-opinion/--no-second-opinion", default=True, show_default=True,
              help="Also test the classical acoustic measures (and PCA of the images with --store).")
def mmd(latents, group_col, group_a, group_b, unit, animal_col, weighting, permutations, bandwidth, kernel, statistic,
        max_per_animal, alpha, features, device, dtype, seed, out_dir, no_figures, syllable_view, config_path,
        store_dir, second_opinion):
    """Kernel MMD two-sample test between two groups of syllable latents.

    Animals (not syllables) are permuted between groups by default, with every split
    enumerated when there are few; the syllable-level test is reported as a secondary
    view. Writes report.json, null_distribution.csv, pairwise_mmd2.csv, per_animal.csv
    and figures to --out.
    """
    from ..config import load_config, params_from_mapping
    from ..mmd import MMDParams, mmd_test

    section = {}
    if config_path:
        section = load_config(config_path).get("mmd", {}) or {}
        section = dict(section)
        group_col = section.pop("group_col", group_col) if group_col == "group" else group_col
    if device == "cpu":
        backend = "numpy"
    elif device == "cuda":
        backend = "torch"
    else:
        backend = None
    params = params_from_mapping(
        MMDParams, section, section="mmd", unit=unit, animal_col=animal_col, weighting=weighting,
        permutations=permutations, bandwidth=bandwidth, kernel=kernel, statistic=statistic,
        max_per_animal=max_per_animal, alpha=alpha, features=features, device=device, backend=backend,
        dtype=dtype, seed=seed, syllable_view=syllable_view)
    result = mmd_test(latents, group_col=group_col, a=group_a, b=group_b, params=params)
    if second_opinion:
        from ..mmd.trust import second_opinion as run_second_opinion

        result.second_opinion = run_second_opinion(latents, result, group_col=group_col, params=params, store=store_dir)
    paths = result.save(out_dir, figures=not no_figures)
    _echo_test(result)
    if result.syllable_view:
        sv = result.syllable_view
        click.echo(f"secondary, syllables as independent units (anticonservative): p = {sv['p_value']:.4g}")
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.second_opinion:
        from ..mmd.trust import agreement

        click.echo("second opinion (same test, other representations):")
        for row in result.second_opinion:
            if "p_value" in row:
                click.echo(f"  {row['representation']:<20} p = {row['p_value']:.4g}  MMD² = {row['statistic']:.4g}  "
                           f"({row['n_features']} features)")
            else:
                click.echo(f"  {row['representation']:<20} not tested: {row['skipped']}")
        if agreement(result.second_opinion):
            click.echo(f"  -> {agreement(result.second_opinion)}")
    if result.latent_health is not None:
        h = result.latent_health
        click.echo(f"latent health: {'passed' if h.get('passed') else 'FAILED'} ({h.get('active_units')}/"
                   f"{h.get('latent_dim')} active dimensions, reconstruction R² {h.get('recon_r2', float('nan')):.2f})")
    if result.latent_readout and result.interpretable:
        from ..vae.readout import folds_phrase, readout_warning, readouts_from

        click.echo(f"latent read-out, {folds_phrase(result.latent_readout)} R² (ridge / 10-NN), latents vs PCA of "
                   "the same images: " + "; ".join(
            f"{r.measure} {r.latent_ridge_r2:.2f} / {r.latent_knn_r2:.2f} vs {r.pca_ridge_r2:.2f} / "
            f"{r.pca_knn_r2:.2f}" for r in readouts_from(result.latent_readout)))
        weak = readout_warning(result.latent_readout)
        if weak:
            click.echo(f"warning: {weak}")
    click.echo(f"wrote {paths['report'].parent}")
    if not result.interpretable:
        # the numbers are written for the record; the answer must not be read from them
        raise click.ClickException(result.do_not_interpret)


def _echo_test(result) -> None:
    """The groups, the MMD², the p-value and how it was obtained (for MMDAgg: at which h, and each h's p)."""
    a, b = result.groups
    how = (f"exact, all {result.n_permutations} splits" if result.exact
           else f"{result.n_permutations} permutations, MC s.e. {result.p_value_mc_se:.2g}")
    click.echo(f"{a} (n={result.n_syllables[a]}, animals={result.n_animals[a]}) vs "
               f"{b} (n={result.n_syllables[b]}, animals={result.n_animals[b]})")
    if result.aggregated:  # MMDAgg: the MMD² is one bandwidth's, the p-value all of theirs
        from ..pipeline.answer import primary_bandwidth_name

        click.echo(f"MMD² = {result.statistic:.6g} at the {primary_bandwidth_name(result)} "
                   f"bandwidth h = {result.primary_bandwidth:.4g} (unit: {result.unit}, weighting: {result.weighting})")
        click.echo(f"p = {result.p_value:.4g} aggregated over {len(result.bandwidths)} bandwidths by MMDAgg ({how}; "
                   f"smallest attainable {result.min_attainable_p:.3g})")
        click.echo("  each bandwidth, p uncorrected: " + ", ".join(
            f"h = {h:.4g}: p = {p:.3g}" for h, p in zip(result.bandwidths, result.p_values_per_bandwidth)))
    else:
        click.echo(f"MMD² = {result.statistic:.6g} (unit: {result.unit}, weighting: {result.weighting}, "
                   f"bandwidth {result.bandwidth_rule}: {result.bandwidths[0]:.4g})")
        click.echo(f"p = {result.p_value:.4g} ({how}; smallest attainable {result.min_attainable_p:.3g})")
