"""``usvpipe power`` and the run's power stage, on a tiny store of two groups with no difference and a tiny model."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from usvpipe.cli import main

TRAIN_ARGS = ["--epochs", "6", "--min-steps", "0", "--batch-size", "32", "--latent-dim", "4", "--patience", "0",
              "--seed", "3", "--device", "cpu", "--no-progress", "--set", "channels=[4,8]", "--set", "hidden=[32]",
              "--set", "figure_every=0"]


def _two_group_store(store_dir, animals_per_group=4, calls=30):
    from usvpipe.store import open_store, write_shard
    from usvpipe.synth import render_call_images, sample_calls

    rng = np.random.default_rng(0)
    for g in ("A", "B"):
        for i in range(animals_per_group):
            table = sample_calls(calls, seed=rng, animal_offset=rng.normal(0, 0.3, 6))
            onset = table["duration_s"].cumsum().to_numpy()
            mean_freq = (table["start_freq_hz"] + table["end_freq_hz"]).to_numpy() / 2
            write_shard(store_dir, f"{g}/{g}{i}/rec.wav", render_call_images(table, shape=(32, 32), seed=rng), onset,
                        onset + 0.01, animal=f"{g}{i}", group=g,
                        columns={"mean_freq_hz": mean_freq, "duration_s": table["duration_s"].to_numpy()},
                        params={"syllables": {"shape": [32, 32], "time_stretch": False, "min_freq_hz": 30000.0,
                                              "max_freq_hz": 110000.0}})
    return open_store(store_dir).path


@pytest.fixture(scope="module")
def pilot_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("powercli")
    store = _two_group_store(root / "store")
    subprocess.run([sys.executable, "-m", "usvpipe", "train", str(store), str(root / "model"), *TRAIN_ARGS], check=True,
                   capture_output=True)
    return store, root / "model" / "model.pt"


def test_power_writes_the_curve_as_csv_and_png_and_says_the_animals_needed(pilot_files, tmp_path):
    store, model = pilot_files
    res = CliRunner().invoke(main, ["power", str(store), "--model", str(model), "--kind", "usage", "--effect", "40",
                                    "--animals", "3,6", "--draws", "20", "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "p" / "power_curve.csv")
    assert table["animals_per_group"].tolist() == [3, 6] and table["power"].between(0, 1).all()
    assert table.loc[0, "power"] == 0.0  # 3 + 3 animals cannot reach p <= 0.05
    assert (tmp_path / "p" / "power_curve.png").stat().st_size > 1000
    assert "animals per group for 80% power" in res.output


@pytest.mark.parametrize("args, says", [
    (["--effect", "3"], "no --model was given"),
    (["--effect", "0", "--model", "m.pt"], "--effect: 0.0 is not a positive size"),
    (["--effect", "3", "--animals", "1,2"], "[power].animals"),
])
def test_bad_input_gives_a_one_line_error(pilot_files, tmp_path, args, says):
    store, _ = pilot_files
    res = CliRunner().invoke(main, ["power", str(store), *args, "--out", str(tmp_path / "p")])
    assert res.exit_code == 2
    assert says in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "p").exists()


def test_a_missing_pilot_is_named(tmp_path):
    res = CliRunner().invoke(main, ["power", str(tmp_path / "nothing"), "--effect", "3"])
    assert res.exit_code == 2 and "nothing: does not exist" in res.output


def test_the_simulated_test_is_the_one_the_report_ran_and_mmdagg_by_default(pilot_files, tmp_path):
    import json
    import shutil

    from usvpipe.power import load_pilot, load_run_pilot

    store, model = pilot_files
    pilot = load_pilot(store, model)  # no report: the product's default test
    assert pilot.mmd.bandwidth == "agg" and len(pilot.bandwidths()) == 5
    run = tmp_path / "run"
    shutil.copytree(store, run / "store")
    (run / "model").mkdir()
    shutil.copy(model, run / "model" / "model.pt")
    (run / "mmd").mkdir()
    for rule, n_bandwidths in (("median", 1), ("agg", 5)):  # a run folder: the rule its report.json records
        report = {"groups": ["A", "B"], "group_col": "group", "params": {"bandwidth": rule, "alpha": 0.05}}
        (run / "mmd" / "report.json").write_text(json.dumps(report))
        pilot = load_run_pilot(run)
        assert pilot.mmd.bandwidth == rule and len(pilot.bandwidths()) == n_bandwidths
