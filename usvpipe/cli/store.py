"""``usvpipe merge``: rebuild a store's table and manifest from its shards."""
from __future__ import annotations

import click

from ..store import merge_store


@click.command("merge")
@click.argument("store_dir", type=click.Path(file_okay=False, path_type=str))
def merge(store_dir: str):
    """Merge the per-recording shards of STORE_DIR into syllables.csv + manifest.json.

    Safe to run any number of times, also while other array tasks are still writing
    shards (it merges what is complete). Run it after a SLURM array of
    `usvpipe segment --shard i/N` tasks has finished.
    """
    from ..store import open_store

    table = merge_store(store_dir)
    store = open_store(store_dir, merge_if_stale=False)
    n_failed = store.manifest.get("n_failed", 0)
    click.echo(
        f"{store_dir}: {store.manifest.get('n_recordings', 0)} recordings complete, "
        f"{len(table)} syllables, {n_failed} failed recordings"
    )
    if store.manifest.get("mixed_parameters"):
        click.echo(f"warning: {store_dir}: shards were made with different parameters; "
                   "re-segment into a fresh OUT_DIR to compare like with like", err=True)
    if n_failed:
        for rec, info in store.manifest.get("failed", {}).items():
            click.echo(f"  failed: {info.get('path') or rec}: {info.get('error', '')}", err=True)
