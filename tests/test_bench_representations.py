"""scripts/bench/representations.py: a tiny --quick run completes and prints well-formed tables.

No figure is asserted (the benchmark's figures are its record's business, and a tiny run's are noise);
only that every representation, space and condition has a row with values where they belong.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench" / "representations.py"
REPRESENTATIONS = ("vae-learnt", "vae-default", "pca-32", "measures")


def _table(text: str, title_start: str) -> list[list[str]]:
    """Rows (cells) of the markdown table under the section whose title starts with ``title_start``."""
    block = text.split(f"### {title_start}", 1)[1].split("###", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_quick_run_prints_recovery_power_and_retrain_tables(tmp_path):
    out = tmp_path / "rep.md"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--syllables", "240", "--experiments", "2",
                          "--steps", "8", "--retrain", "2", "--workdir", str(tmp_path / "work"), "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    text = run.stdout
    for section in out.read_text().split("### ")[1:]:  # the record written with --out is what was printed
        assert section.strip() in text

    recovery = _table(text, "Call-type recovery")
    assert {(r[0], r[1]) for r in recovery} == {(rep, space) for rep in REPRESENTATIONS for space in ("latents", "umap")}
    for row in recovery:
        assert 0.0 <= float(row[2]) <= 1.0 and -1.0 <= float(row[3]) <= 1.0

    power = _table(text, "Animal-level MMD")
    kinds = {(r[0], r[1]) for r in power}
    assert kinds == {(n, k) for n in ("6+6", "12+12") for k in ("none", "usage", "pitch", "duration", "shape")}
    assert len(power) == 2 * 9
    for row in power:
        for cell in row[3:]:
            share, se = map(float, re.fullmatch(r"(\S+) ± (\S+)", cell).groups())
            assert 0.0 <= share <= 1.0 and se >= 0.0

    retrain = _table(text, "Pooled group-blind VAE")
    assert [r[0] for r in retrain] == ["none", "usage"]  # --retrain 2: the A/A experiment, then usage
    for row in retrain:
        assert 0.0 < float(row[3]) <= 1.0 and 0.0 < float(row[4]) <= 1.0
    assert re.search(r"wall \d+ s, load average [\d.]+", text)
