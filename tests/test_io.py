"""Every output through one crash-safe path (usvpipe._io)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from usvpipe import _io
from usvpipe.cli import main
from usvpipe.errors import OutputError


def test_atomic_path_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with _io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "out.json"
    _io.write_json_atomic(target, {"a": np.int64(3), "b": np.float32(0.5), "c": (1, 2)})
    assert _io.read_json(target) == {"a": 3, "b": 0.5, "c": [1, 2]}


def test_ensure_output_dir_rejects_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permission bits
            pytest.skip("running as root: permission bits are not enforced")
        with pytest.raises(OutputError, match="not writable"):
            _io.ensure_output_dir(ro)
    finally:
        ro.chmod(0o700)


def test_ensure_output_dir_rejects_full_disk(tmp_path):
    with pytest.raises(OutputError, match="free"):
        _io.ensure_output_dir(tmp_path, min_free_bytes=2**62)


def test_ensure_output_dir_rejects_file_in_the_way(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(OutputError, match="cannot create"):
        _io.ensure_output_dir(f / "sub")


def test_unwritable_output_is_one_clear_line(tmp_path, monkeypatch):
    # an output "inside" a regular file cannot be created, also as root
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file.txt/x.csv: cannot write here"):
        _io.write_text_atomic(blocker / "x.csv", "a")
    assert blocker.read_text() == "x"
    # any other OSError reaching the CLI is one line naming the file, exit status 2
    import usvpipe.pipeline

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(usvpipe.pipeline, "describe_directory", denied)
    res = CliRunner().invoke(main, ["info", str(tmp_path / "somewhere")])
    assert res.exit_code == 2 and res.output.strip() == (
        f"usvpipe: error: {tmp_path / 'somewhere'}: Permission denied (fix: check the path, its permissions and free space)")
