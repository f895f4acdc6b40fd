"""POISE checkpoints are read with ``weights_only=True``: a malicious pickle cannot run code."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usvpipe.errors import InputFileError  # noqa: E402
from usvpipe.poise.api import CHECKPOINT_FORMAT, load_poise  # noqa: E402

torch.set_num_threads(1)


class _WritesMarker:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any command an attacker picks."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoint(path, marker, *, legacy=False):
    state = {"format": CHECKPOINT_FORMAT, "params": _WritesMarker(marker)}
    if legacy:  # a plain pickle file (torch.load reads these too)
        with open(path, "wb") as fh:
            pickle.dump(state, fh)
    else:
        torch.save(state, path)
    return path


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the plain-pickle file
@pytest.mark.parametrize("legacy", [False, True])
def test_a_malicious_checkpoint_runs_no_code_and_names_the_file(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = _evil_checkpoint(tmp_path / "model.pt", marker, legacy=legacy)
    with pytest.raises(InputFileError) as err:
        load_poise(path)
    assert not marker.exists()
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "not loaded" in msg
    # The file really is armed: an unrestricted load would have run the payload.
    other = tmp_path / "armed"
    _evil_checkpoint(tmp_path / "armed.pt", other, legacy=legacy)
    if legacy:
        with open(tmp_path / "armed.pt", "rb") as fh:
            pickle.load(fh)
    else:
        torch.load(tmp_path / "armed.pt", weights_only=False)
    assert other.exists()


def test_cli_resume_and_generate_refuse_a_malicious_checkpoint(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main
    from usvpipe.poise.data import PairedData, save_pairs

    rng = np.random.default_rng(0)
    save_pairs(tmp_path / "pairs.npz", PairedData(rng.random((16, 4)), rng.random((16, 3))))
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "pwned"
    path = _evil_checkpoint(out / "model.pt", marker)
    runner = CliRunner()
    res = runner.invoke(main, ["poise", "train", str(tmp_path / "pairs.npz"), str(out), "--resume",
                               "--epochs", "1", "--hidden-units", "8"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert any(ln.startswith("usvpipe: error:") and str(path) in ln for ln in lines), res.output
    assert not marker.exists()
    res = runner.invoke(main, ["poise", "generate", str(path), str(tmp_path / "g.png"), "--mode", "joint"])
    assert res.exit_code == 2 and str(path) in res.output and not marker.exists()
def test_a_genuine_checkpoint_with_optimiser_state_loads_weights_only(tmp_path):
    from usvpipe.poise import PairedData, PoiseParams, train_poise

    rng = np.random.default_rng(0)
    data = PairedData(rng.random((32, 4)), rng.random((32, 3)))
    params = PoiseParams(latent_dim_1=2, latent_dim_2=2, hidden_units=8, epochs=1, batch_size=16,
                         gibbs_sweeps=1, gibbs_samples=2, prior_chains=8, full_coupling=True)
    train_poise(data, tmp_path, params)
    ck = torch.load(tmp_path / "model.pt", weights_only=True)  # raises if anything is not plain data
    assert ck["optimizer"] is not None and ck["epoch"] == 1
    assert load_poise(tmp_path / "model.pt").params.full_coupling
    run = train_poise(data, tmp_path, PoiseParams(**{**params.__dict__, "epochs": 2}), resume=True)
    assert list(run.history["epoch"]) == [1, 2]


def test_an_object_array_in_a_pairs_folder_is_refused_without_unpickling(tmp_path):
    from usvpipe.poise.data import load_pairs

    marker = tmp_path / "pwned"
    np.save(tmp_path / "a.npy", np.array([_WritesMarker(marker)], dtype=object), allow_pickle=True)
    np.save(tmp_path / "b.npy", np.zeros(3, np.float32))
    (tmp_path / "pairs.csv").write_text("x1,x2\na.npy,b.npy\n")
    with pytest.raises(InputFileError, match="a.npy"):
        load_pairs(tmp_path)
    assert not marker.exists()
