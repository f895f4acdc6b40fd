"""``usvpipe init``, ``run``, ``demo`` and ``info``: the whole pipeline in one command."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import _io
from ..errors import UsvpipeError


@click.command("init")
@click.argument("config_path", default="usvpipe.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(config_path: Path, force: bool):
    """Write a commented default configuration to CONFIG_PATH (default usvpipe.toml)."""
    from ..pipeline import default_config_text

    if config_path.exists() and not force:
        raise UsvpipeError(config_path, "already exists", "use --force to overwrite, or choose another name")
    _io.write_text_atomic(config_path, default_config_text())
    click.echo(f"wrote {config_path}; set [run].input to your WAV folder, then: usvpipe run {config_path}")


def _root_quiet() -> bool:
    """``usvpipe -q run …`` means quiet too."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("quiet"))


def _finish(result) -> None:
    for s in result.stages:
        click.echo(f"  {s.name:<8} {s.status:<22} {s.seconds:7.1f} s  {s.detail}")
    if result.report_path:
        click.echo(f"report: {result.report_path}")
    if result.segment_failures:
        click.echo(f"{len(result.segment_failures)} recording(s) failed:", err=True)
        for f in result.segment_failures:
            click.echo(f"  {f}", err=True)
    for s in result.stages:
        if s.status == "failed":
            click.echo(f"usvpipe: error: {s.name}: {s.detail}", err=True)
    if not result.ok:
        sys.exit(1)


def _without_power(cfg, no_power: bool):
    """``cfg`` with ``[power] enabled = false`` when ``--no-power`` was given."""
    if not no_power:
        return cfg
    import dataclasses

    return dataclasses.replace(cfg, stages={**cfg.stages, "power": dataclasses.replace(cfg.stages["power"], enabled=False)})


@click.command("run")
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input", "input_", default=None, help="Override [run].input.")
@click.option("--output", default=None, help="Override [run].output.")
@click.option("--jobs", type=int, default=None, help="Override [run].jobs.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default=None, help="Override [run].device.")
@click.option("--stages", default=None, help="Comma-separated subset, e.g. mmd or umap,mmd.")
@click.option("--force", is_flag=True, help="Rerun stages even when up to date.")
@click.option("--no-progress", is_flag=True, help="No progress bars (each stage still says what it does).")
@click.option("--quiet", is_flag=True, help="No progress bars and no stage announcements (errors and the summary only).")
@click.option("--no-power", is_flag=True, help="Skip the sensitivity analysis after a test that found no difference "
                                                "(as [power] enabled = false).")
def run(config_path, input_, output, jobs, device, stages, force, no_progress, quiet, no_power):
    """Run segment -> train -> encode -> umap -> mmd with the parameters of CONFIG_PATH.

    Stages whose parameters and inputs are unchanged since their last run are skipped,
    so after a crash or a parameter change, running the same command again finishes
    the job. Exit status 1 when some recordings failed (the rest are analysed).
    """
    from ..pipeline import read_pipeline_config, run_pipeline

    overrides = {"input": input_, "output": output, "jobs": jobs, "device": device,
                 "stages": tuple(s.strip() for s in stages.split(",")) if stages else None}
    cfg = _without_power(read_pipeline_config(config_path, **overrides), no_power)
    quiet = quiet or _root_quiet()
    _finish(run_pipeline(cfg, progress=not no_progress, force=force, quiet=quiet))


@click.command("demo")
@click.option("--out", "out_dir", default="usvpipe_demo", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--real", is_flag=True, help="Use the real recordings in ../shared/data instead of synthetic data.")
@click.option("--animals-per-group", default=6, show_default=True, help="Synthetic animals per group (>= 5 for p < 0.01 at the animal level).")
@click.option("--duration-s", default=20.0, show_default=True, help="Seconds of synthetic audio per animal.")
@click.option("--epochs", type=int, default=None, help="VAE epochs (default: a small number that runs in minutes on a CPU).")
@click.option("--seed", default=0, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bars (each stage still says what it does).")
@click.option("--quiet", is_flag=True, help="No progress bars and no stage announcements.")
@click.option("--no-power", is_flag=True, help="Skip the sensitivity analysis after a test that found no difference.")
def demo(out_dir, real, animals_per_group, duration_s, epochs, seed, no_progress, quiet, no_power):
    """Run the whole pipeline on built-in synthetic data (two groups of mice), ending in a report."""
    from ..pipeline import demo_config, run_pipeline

    cfg = _without_power(demo_config(out_dir, real=real, animals_per_group=animals_per_group, duration_s=duration_s,
                                     epochs=epochs, seed=seed), no_power)
    quiet = quiet or _root_quiet()
    if not quiet:
        click.echo(f"demo data and outputs in {out_dir}/")
    _finish(run_pipeline(cfg, progress=not no_progress, quiet=quiet))


@click.command("info")
@click.argument("path", type=click.Path(path_type=Path))
def info(path):
    """Say what an output directory contains and whether it is complete."""
    from ..pipeline import describe_directory

    for line in describe_directory(path):
        click.echo(line)
