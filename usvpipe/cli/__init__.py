"""The ``usvpipe`` command line: a thin click group.

Subcommands live in their own modules and are imported only when used, so
``usvpipe --help`` stays fast (no torch/umap import). User errors
(:class:`usvpipe.errors.UsvpipeError`) become one line on stderr and exit status 2.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from .._version import __version__
from ..errors import UsvpipeError

# command name -> (module, attribute, one-line help shown by `usvpipe --help`)
_COMMANDS = {
    "segment": ("usvpipe.cli.segment", "segment", "WAV files/folders -> segments.csv + syllable store."),
    "evaluate": ("usvpipe.cli.evaluate", "evaluate", "Score predicted onsets/offsets against annotations."),
    "synth": ("usvpipe.cli.synth", "synth", "Generate a synthetic USV dataset with ground truth."),
    "merge": ("usvpipe.cli.store", "merge", "Merge shard outputs of a syllable store (idempotent)."),
    "train": ("usvpipe.cli.vae", "train", "Train a VAE on a syllable store."),
    "encode": ("usvpipe.cli.vae", "encode", "Encode a syllable store to a latents table."),
    "umap": ("usvpipe.cli.umap", "umap", "Latents -> 2-D embedding, figures and an HTML explorer."),
    "mmd": ("usvpipe.cli.mmd", "mmd", "Kernel MMD permutation test between groups."),
    "measures": ("usvpipe.cli.measures", "measures", "Call counts, rates, durations, frequencies per animal; tested."),
    "poise": ("usvpipe.cli.poise", "poise", "POISE-VAE for paired modalities (train/generate/traverse)."),
    "power": ("usvpipe.cli.power", "power", "Animals needed: power curve from a pilot (planted effects)."),
    "init": ("usvpipe.cli.pipeline", "init", "Write a commented default usvpipe.toml."),
    "run": ("usvpipe.cli.pipeline", "run", "Run segment -> train -> encode -> umap -> mmd from a config."),
    "demo": ("usvpipe.cli.pipeline", "demo", "Run the whole pipeline on generated (or --real) data."),
    "info": ("usvpipe.cli.pipeline", "info", "Describe an output directory and whether it is complete."),
    "explore": ("usvpipe.cli.explore", "explore", "Serve a run's explorer locally: hear every syllable, save the review."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in _COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = _COMMANDS[name][0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx, name):
        if name not in _COMMANDS or not self._available(name):
            return None
        module, attr, _ = _COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        # Short help from the table above, without importing every command module.
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsvpipeError as exc:
            click.echo(f"usvpipe: error: {exc}", err=True)
            from .. import _io

            if _io.HDF5_LEFT_OPEN and _is_cli_process():
                # HDF5 met a full disk: closing its handles at exit crashed the interpreter (exit 139);
                # only the usvpipe process itself leaves this way, never a host (pytest, a notebook)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(2)
            sys.exit(2)
        except OSError as exc:
            # the file system said no (permissions, disk full, a vanished file): one line, not a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"usvpipe: error: {where}{exc.strerror or exc} (fix: check the path, its permissions and free space)", err=True)
            sys.exit(2)


def _is_cli_process() -> bool:
    """True in a process started as ``usvpipe`` or ``python -m usvpipe`` (not one that calls main())."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    package = __name__.split(".")[0]
    return ((spec is not None and spec.parent == package and spec.name.endswith(".__main__"))
            or os.path.basename(sys.argv[0]) in (package, package + ".exe"))


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="usvpipe")
@click.option("-v", "--verbose", count=True, help="Log progress (-v) or debug details (-vv).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def main(verbose: int, quiet: bool):
    """usvpipe: ultrasonic vocalisation analysis, from WAV folders to answers.

    Every stage reads and writes plain files (CSV, HDF5, JSON), so each can be run,
    re-run or replaced on its own. Run `usvpipe COMMAND --help` for details.
    """
    from .._threads import note_start_load

    note_start_load()  # before this command's own work raises it (usvpipe._threads)
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


import importlib.util  # noqa: E402  (after the table so the module reads top-down)
