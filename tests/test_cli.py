"""The click group: commands listed without heavy imports (usvpipe.cli)."""
from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from usvpipe.cli import main


def test_cli_help_lists_commands_without_heavy_imports():
    code = "import sys; from usvpipe.cli import main; import usvpipe; print('torch' in sys.modules, 'umap' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0 and "merge" in res.output
