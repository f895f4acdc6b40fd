import json

import pandas as pd

from power_helpers import synthetic_pilot
from usvpipe.power import PowerParams, power_curve, sensitivity, write_curve, write_sensitivity
from usvpipe.power.io import read_sensitivity


def test_the_sensitivity_is_written_as_json_csv_and_png_and_read_back(tmp_path):
    pilot = synthetic_pilot(animals_per_group=4, calls=15, seed=2)
    sens = sensitivity(pilot, PowerParams(draws=20, bisection_steps=1, kinds=("pitch", "usage")))
    paths = write_sensitivity(sens, tmp_path / "power")
    table = pd.read_csv(paths["csv"])
    assert set(table["kind"]) == {"pitch", "usage"} and table["power"].between(0, 1).all()
    assert (table.loc[table["effect"] == 0, "power"] <= 0.2).all()
    saved = json.loads(paths["json"].read_text())
    assert saved == read_sensitivity(tmp_path) and saved["n_animals"] == {"A": 4, "B": 4}
    assert [e["kind"] for e in saved["latent"]] == ["pitch", "usage"] and saved["params"]["draws"] == 20
    assert paths["figure"].stat().st_size > 1000
    assert not list((tmp_path / "power").glob(".tmp*"))


def test_the_curve_is_written_as_csv_and_png(tmp_path):
    pilot = synthetic_pilot(animals_per_group=4, calls=15, seed=2)
    curve = power_curve(pilot, "pitch", 8.0, PowerParams(draws=20), animals=(4, 6))
    paths = write_curve(curve, tmp_path)
    table = pd.read_csv(paths["csv"])
    assert table["animals_per_group"].tolist() == [4, 6] and (table["kind"] == "pitch").all()
    assert paths["figure"].stat().st_size > 1000
