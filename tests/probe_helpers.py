"""Shared inputs of the outside-probe regression tests (tests/test_probes*.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

from usvpipe.synth import make_dataset


def probe_dataset(tmp_path_factory, name: str) -> Path:
    """A tiny synthetic study (2 + 2 animals, 1 s each), made once per test module."""
    root = tmp_path_factory.mktemp(name)
    make_dataset(root, animals_per_group=2, duration_s=1.0, seed=3)
    return root


def copy_recordings(dataset: Path, dest: Path) -> Path:
    """The dataset's WAVs alone (no metadata, truth or synth.json), as a user's folder would hold them."""
    shutil.copytree(dataset, dest, ignore=shutil.ignore_patterns("*.csv", "*.json"))
    return dest
