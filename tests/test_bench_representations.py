"""scripts/bench/representations.py: a tiny --quick run completes and prints well-formed tables, on the
product's vocal world (the default) and on the record's typed world.

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


def _run(tmp_path, *extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--syllables", "240", "--experiments", "2",
                          "--steps", "8", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "rep.md"),
                          *extra], capture_output=True, text=True, env=env, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _check_power(text: str) -> list[list[str]]:
    """The power table: 9 conditions × 2 cohort sizes, every cell a share ± its Monte-Carlo se."""
    power = _table(text, "Animal-level MMD")
    kinds = {(r[0], r[1]) for r in power}
    assert kinds == {(n, k) for n in ("6+6", "12+12") for k in ("none", "usage", "pitch", "duration", "shape")}
    assert len(power) == 2 * 9
    for row in power:
        for cell in row[3:]:
            share, se = map(float, re.fullmatch(r"(\S+) ± (\S+)", cell).groups())
            assert 0.0 <= share <= 1.0 and se >= 0.0
    return power


def test_quick_run_on_the_vocal_world_prints_recovery_power_and_retrain_tables(tmp_path):
    out = tmp_path / "rep.md"
    run = _run(tmp_path, "--retrain", "2")  # the default world: the product's vocal world
    text = run.stdout
    assert "world vocal" in text
    # the vocal world's diagnostics: detection per type and the resampling's effective sample sizes
    shares = re.search(r"matched share per type: (.*)", text).group(1)
    assert {s.rsplit(" ", 1)[0] for s in shares.split(", ")} == {
        "flat", "upsweep", "downsweep", "chevron", "u_shape", "step", "multi_step", "two_component", "harmonic",
        "short", "complex"}
    assert re.search(r"resampling ESS per animal \(\d+ animals\): min \d+, median \d+", text)
    for section in out.read_text().split("### ")[1:]:  # the record written with --out is what was printed
        assert section.strip() in text

    recovery = _table(text, "Call-type recovery")
    assert {(r[0], r[1]) for r in recovery} == {(rep, space) for rep in REPRESENTATIONS for space in ("latents", "umap")}
    for row in recovery:
        assert 0.0 <= float(row[2]) <= 1.0 and -1.0 <= float(row[3]) <= 1.0

    power = _check_power(text)
    assert {(r[1], r[2]) for r in power if r[1] == "pitch"} == {("pitch", "1.000"), ("pitch", "2.000")}  # kHz

    retrain = _table(text, "Pooled group-blind VAE")
    assert [r[0] for r in retrain] == ["none", "usage"]  # --retrain 2: the A/A experiment, then usage
    for row in retrain:
        assert 0.0 < float(row[3]) <= 1.0 and 0.0 < float(row[4]) <= 1.0
    assert re.search(r"wall \d+ s, load average [\d.]+", text)


def test_quick_run_on_the_typed_world_keeps_the_records_sizes(tmp_path):
    """--world typed (the record's world) still runs; no VAE here, to keep CI short."""
    text = _run(tmp_path, "--world", "typed", "--retrain", "0", "--reps", "pca-32,measures").stdout
    assert "world typed" in text and "matched share per type" not in text
    power = _check_power(text)
    assert {r[2] for r in power if r[1] == "pitch"} == {"0.150", "0.300"}  # within-call sd, as in the record
