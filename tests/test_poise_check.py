"""The held-out cross-generation check of POISE training (usvpipe.poise.check)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from usvpipe.poise.check import (MIN_HELDOUT, CrossGenerationCheck, DirectionCheck, heldout_split,
                                 matched_skill, permutation_skill)

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


# ------------------------------------------------------------------------------ the statistic
def test_generations_that_copy_their_partner_have_high_skill_and_the_smallest_p():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((40, 6, 5))
    skill, p = permutation_skill(truth + 0.1 * rng.standard_normal(truth.shape), truth, n_permutations=199)
    assert skill > 0.95 and p == pytest.approx(1 / 200)


def test_generations_that_ignore_their_input_have_no_skill_and_a_calibrated_p():
    # Under the null (generations independent of their partners) the p-value is uniform: at the
    # 5 % level about 5 % of 400 independent data sets reject (binomial s.d. 1.1 %).
    rng = np.random.default_rng(1)
    ps, skills = [], []
    for _ in range(400):
        truth = rng.standard_normal((30, 4))
        skill, p = permutation_skill(rng.standard_normal((30, 4)), truth, n_permutations=99, seed=int(rng.integers(1 << 30)))
        ps.append(p)
        skills.append(skill)
    rate = np.mean(np.array(ps) <= 0.05)
    assert 0.02 <= rate <= 0.085, rate
    assert abs(np.mean(skills)) < 0.02


def test_a_constant_generation_has_zero_skill():
    rng = np.random.default_rng(2)
    truth = rng.standard_normal((25, 3))
    for seed in range(20):  # ties broken by float rounding would give a random p
        skill, p = permutation_skill(np.full_like(truth, 0.3), truth, n_permutations=99, seed=seed)
        # every re-pairing has the same error as the true pairing, so none is better than it
        assert abs(skill) < 1e-9 and p == 1.0


def test_generations_that_only_know_the_recording_do_not_pass_within_recordings():
    # Items = recording offset + own detail; the "generation" knows the recording only. Across
    # recordings that looks like skill; re-pairing within recordings shows it follows nothing else.
    rng = np.random.default_rng(5)
    groups = np.repeat(["a", "b", "c", "d"], 15)
    offset = {g: rng.normal(0, 3, 6) for g in "abcd"}
    truth = np.stack([offset[g] for g in groups]) + rng.standard_normal((60, 6))
    gen = np.stack([offset[g] for g in groups])
    skill_all, p_all = permutation_skill(gen, truth, n_permutations=199)
    skill_within, p_within = permutation_skill(gen, truth, groups=groups, n_permutations=199)
    assert p_all == pytest.approx(1 / 200) and skill_all > 0.5
    assert p_within > 0.05 and abs(skill_within) < 0.1
    # the re-pairings really stay within recordings
    from usvpipe.poise.check import _group_codes, _repairings

    codes = _group_codes(groups, 60)
    perms = _repairings(60, 50, np.random.default_rng(0), codes)
    assert (codes[perms] == codes[None, :]).all() and all(sorted(row) == list(range(60)) for row in perms)


def test_matched_skill_is_the_statistic_without_its_p():
    rng = np.random.default_rng(4)
    truth = rng.standard_normal((30, 5))
    gen = truth + rng.standard_normal(truth.shape)
    assert matched_skill(gen, truth) == pytest.approx(permutation_skill(gen, truth, n_permutations=9)[0])
    # noise of the data's own variance: matched error 1 (the noise), mismatched 1 + 2 (noise and
    # two independent items) -> skill 1 - 1/3
    assert 0.55 < matched_skill(gen, truth) < 0.78


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one shape"):
        permutation_skill(np.zeros((5, 2)), np.zeros((5, 3)))


# ------------------------------------------------------------------------------ the split
def test_recordings_are_held_out_whole_and_one_is_always_trained_on():
    groups = np.repeat([f"rec{i}" for i in range(10)], 30)
    train, held, kind = heldout_split(len(groups), 0.1, seed=3, groups=groups)
    assert kind == "recording"
    assert set(groups[train]).isdisjoint(groups[held])
    assert np.array_equal(np.sort(np.r_[train, held]), np.arange(len(groups)))
    assert 0.1 <= len(held) / len(groups) <= 0.2
    again = heldout_split(len(groups), 0.1, seed=3, groups=groups)
    assert np.array_equal(again[1], held)  # seeded


@pytest.mark.parametrize("n", [2, 3, 5])
def test_the_split_always_leaves_pairs_to_train_on(n):
    for groups in (None, np.arange(n).astype(str)):
        train, held, _ = heldout_split(n, 0.49, seed=1, groups=groups)
        assert len(train) >= 1 and len(held) >= 1 and len(np.intersect1d(train, held)) == 0
    many = np.repeat([f"r{i}" for i in range(40)], 3)  # many small recordings
    train, held, kind = heldout_split(len(many), 0.1, seed=0, groups=many)
    assert kind == "recording" and 0.1 <= len(held) / len(many) <= 0.2 and set(many[train]).isdisjoint(many[held])


def test_a_split_that_would_take_most_pairs_falls_back_to_random_pairs():
    # Two recordings, one with 90 % of the pairs: neither alone is 15-30 % of them.
    groups = np.array(["big"] * 180 + ["small"] * 20)
    train, held, kind = heldout_split(200, 0.15, seed=0, groups=groups)
    assert kind == "pairs" and len(held) == 30 and len(np.intersect1d(train, held)) == 0
    assert heldout_split(200, 0.0)[2] == "none" and len(heldout_split(200, 0.0)[1]) == 0


# ------------------------------------------------------------------------------ the verdict
def test_the_verdict_lines_and_warnings():
    follows = DirectionCheck("x2", "x1", 0.4, 0.001, 50)
    ignores = DirectionCheck("x1", "x2", 0.01, 0.3, 50)
    check = CrossGenerationCheck("recording", 50, (follows, ignores), suggest_subset_elbos=True)
    assert not check.passed and check.checked
    text = "\n".join(check.lines())
    assert "whole recordings" in text and "x2 <- x1: skill 0.40" in text and "x1 <- x2" in text and "does NOT follow" in text
    (warning,) = check.warnings()
    assert "x1 generated from x2 alone" in warning and "--subset-elbos" in warning and "sync offset" in warning
    assert "--subset-elbos" not in CrossGenerationCheck("recording", 50, (follows, ignores)).warnings()[0]
    weak = DirectionCheck("x2", "x1", 0.02, 0.001, 500)
    assert weak.follows and "only weakly" in weak.line()
    unchecked = CrossGenerationCheck("pairs", 3, reason="only 3 of 30 pairs held out")
    assert not unchecked.passed and "unchecked: only 3" in unchecked.lines()[0]
    assert "not checked" in unchecked.warnings()[0]


# ------------------------------------------------------------------------------ after training
def _coupled_pairs(n, *, shuffled, seed=0):
    """Two vector modalities from one shared 2-D factor (or, shuffled, from independent ones)."""
    from usvpipe.poise import PairedData

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    zp = z[rng.permutation(n)] if shuffled else z
    x1 = np.tanh(z @ rng.standard_normal((2, 6))) + 0.05 * rng.standard_normal((n, 6))
    x2 = np.tanh(zp @ rng.standard_normal((2, 5))) + 0.05 * rng.standard_normal((n, 5))
    return PairedData(x1, x2, {"recording": np.repeat([f"r{i}" for i in range(10)], n // 10)})


def _params(**kw):
    from usvpipe.poise import PoiseParams

    settings = dict(latent_dim_1=2, latent_dim_2=2, hidden_units=32, epochs=25, batch_size=50, gibbs_sweeps=2,
                    gibbs_samples=2, prior_chains=64, subset_elbos=True, heldout_fraction=0.2)
    return PoiseParams(**{**settings, **kw})


def test_training_checks_cross_generation_on_held_out_recordings(tmp_path):
    from usvpipe.poise import train_poise

    coupled = train_poise(_coupled_pairs(500, shuffled=False), tmp_path / "coupled", _params())
    assert coupled.check.split == "recording" and coupled.check.n_heldout == 100
    assert coupled.check.null == "within recordings"  # two held-out recordings of 50 pairs
    assert coupled.check.passed, coupled.check.lines()
    assert all(d.skill > 0.3 for d in coupled.check.directions), coupled.check.lines()
    saved = json.loads((tmp_path / "coupled" / "check.json").read_text())
    assert saved["passed"] and len(saved["directions"]) == 2
    # reconstruction from both modalities is the reference cross-generation approaches
    assert set(saved["reconstruction_skill"]) == {"x1", "x2"}
    assert min(saved["reconstruction_skill"].values()) > 0.5
    assert "reconstructed from both modalities" in coupled.check.lines()[-1]
    from usvpipe.cli.poise import _cross_generation_caveat

    assert _cross_generation_caveat(tmp_path / "coupled" / "model.pt", given="x1") == ""  # passed: no warning
    from usvpipe.pipeline import describe_directory
    from usvpipe.poise.check import check_from_dict

    assert check_from_dict(coupled.check.to_dict()) == coupled.check  # check.json reads back whole
    info = describe_directory(tmp_path / "coupled")
    assert info[0].startswith(f"{tmp_path / 'coupled'}: trained poise model (`usvpipe poise train`), 25 epochs; "
                              "cross-generation follows its input both ways"), info
    assert any("x2 <- x1: skill" in line for line in info)
    (tmp_path / "coupled" / "check.json").write_text("{not json")
    assert "check.json is unreadable (JSONDecodeError)" in describe_directory(tmp_path / "coupled")[0]
    (tmp_path / "coupled" / "check.json").unlink()  # as after a kill mid-training (history is per epoch)
    assert "25 epoch(s) in history.csv" in describe_directory(tmp_path / "coupled")[0]
    assert "--resume" in describe_directory(tmp_path / "coupled")[0]
    # The same model trained on pairs whose partners were shuffled: nothing to follow.
    null = train_poise(_coupled_pairs(500, shuffled=True), None, _params())
    assert not null.check.passed and len(null.check.warnings()) >= 1, null.check.lines()
    assert all(abs(d.skill) < 0.1 for d in null.check.directions), null.check.lines()


def test_too_few_held_out_pairs_or_none_leave_it_unchecked_and_say_so():
    from usvpipe.poise import train_poise

    small = train_poise(_coupled_pairs(50, shuffled=False), None, _params(epochs=1))
    assert not small.check.checked and f"at least {MIN_HELDOUT}" in small.check.reason
    off = train_poise(_coupled_pairs(50, shuffled=False), None, _params(epochs=1, heldout_fraction=0.0))
    assert not off.check.checked and "every pair was trained on" in off.check.reason


def test_cli_warns_when_cross_generation_ignores_its_input(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main
    from usvpipe.poise.data import save_pairs

    save_pairs(tmp_path / "pairs.npz", _coupled_pairs(500, shuffled=True))
    res = CliRunner().invoke(main, ["poise", "train", str(tmp_path / "pairs.npz"), str(tmp_path / "m"),
                                    "--latent-dim-1", "2", "--latent-dim-2", "2", "--hidden-units", "32",
                                    "--epochs", "25", "--batch-size", "50", "--gibbs-sweeps", "2",
                                    "--gibbs-samples", "2", "--heldout-fraction", "0.2"])
    assert res.exit_code == 0, res.output
    assert "held-out pairs (whole recordings, not trained on; re-paired within recordings)" in res.output
    assert "usvpipe: warning:" in res.output and "no better than a random held-out partner" in res.output, res.output
    assert "--subset-elbos" in res.output  # trained without it: the fix names it
    res = CliRunner().invoke(main, ["info", str(tmp_path / "m")])  # not mistaken for an unfinished VAE
    assert res.exit_code == 0 and "do not follow their input" in res.output and "warning:" in res.output, res.output
    assert "usvpipe train" not in res.output
    # generating from that model repeats the verdict where the items are made
    res = CliRunner().invoke(main, ["poise", "generate", str(tmp_path / "m" / "model.pt"), str(tmp_path / "g.png"),
                                    "--pairs", str(tmp_path / "pairs.npz"), "--from", "1", "-n", "4"])
    assert res.exit_code == 0 and (tmp_path / "g.png").exists(), res.output
    assert "usvpipe: warning:" in res.output and "do not read a x1 -> x2 relation" in res.output, res.output
    (tmp_path / "m" / "check.json").unlink()  # e.g. a model trained before the check existed
    res = CliRunner().invoke(main, ["poise", "generate", str(tmp_path / "m" / "model.pt"), str(tmp_path / "g.png"),
                                    "--pairs", str(tmp_path / "pairs.npz"), "--from", "2", "-n", "4"])
    assert res.exit_code == 0 and "cross-generation from x2 was not checked" in res.output, res.output


def test_a_resumed_run_checks_the_same_held_out_pairs_with_the_same_result(tmp_path, monkeypatch):
    from usvpipe.errors import InputFileError
    from usvpipe.poise import api, train_poise

    data = _coupled_pairs(400, shuffled=False)
    fresh = train_poise(data, tmp_path / "fresh", _params(epochs=4))
    train_poise(data, tmp_path / "resumed", _params(epochs=2))
    first = train_poise(data, tmp_path / "resumed", _params(epochs=4), resume=True)
    assert list(first.history["epoch"]) == [1, 2, 3, 4]
    # the checkpoint carries the batch order's and the chains' random streams: killed after
    # epoch 2 and resumed, the run ends where the uninterrupted one does
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(v, first.model.state_dict()[k]), k
    saved = (tmp_path / "resumed" / "check.json").read_text()
    assert saved == (tmp_path / "fresh" / "check.json").read_text()
    # resuming the finished run trains nothing more and checks the same model again: the same
    # held-out pairs and the same seeded chains give the same verdict, digit for digit
    again = train_poise(data, tmp_path / "resumed", _params(epochs=4), resume=True)
    assert again.check.to_dict() == first.check.to_dict() and (tmp_path / "resumed" / "check.json").read_text() == saved
    # other pairs would move the held-out set under a finished model: refused
    other = _coupled_pairs(400, shuffled=False, seed=9)
    with pytest.raises(InputFileError, match="other pairs"):
        train_poise(other, tmp_path / "resumed", _params(epochs=5), resume=True)
    # more held-out pairs than MAX_HELDOUT: a seeded sample of them, and the output says so
    monkeypatch.setattr(api, "MAX_HELDOUT", 30)
    capped = train_poise(data, None, _params(epochs=1))
    assert capped.check.n_heldout == 30 and capped.check.n_heldout_total == 80
    assert "30 held-out pairs (a sample of 80)" in capped.check.lines()[0]


def test_a_checkpoint_from_before_the_check_resumes_as_trained_on_every_pair(tmp_path):
    from usvpipe.errors import InputFileError
    from usvpipe.poise import train_poise
    from usvpipe.poise.api import load_poise

    data = _coupled_pairs(100, shuffled=False)
    params = _params(epochs=1, heldout_fraction=0.0)
    train_poise(data, tmp_path, params)
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    del ck["params"]["heldout_fraction"]  # as written before the parameter existed
    del ck["pairs_digest"]
    torch.save(ck, tmp_path / "model.pt")
    assert load_poise(tmp_path / "model.pt").params.heldout_fraction == 0.0
    run = train_poise(data, tmp_path, _params(epochs=2, heldout_fraction=0.0), resume=True)
    assert list(run.history["epoch"]) == [1, 2]
    with pytest.raises(InputFileError, match=r"heldout_fraction = 0.0 there, 0.2 now"):
        train_poise(data, tmp_path, _params(epochs=3), resume=True)


def test_a_run_killed_mid_training_leaves_its_history_and_says_so(tmp_path, monkeypatch):
    from usvpipe.pipeline import describe_directory
    from usvpipe.poise import api, train_poise

    real_epoch = api._train_epoch
    calls = []

    def dies_in_epoch_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(api, "_train_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_poise(_coupled_pairs(100, shuffled=False), tmp_path, _params(epochs=5))
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 1 + 2  # header + the 2 finished epochs
    assert not (tmp_path / "check.json").exists()
    assert "2 epoch(s) in history.csv" in describe_directory(tmp_path)[0]
