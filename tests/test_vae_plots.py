"""Training figures: a loss curve whose first epoch would flatten the rest is drawn past it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from usvpipe.vae.plots import first_epoch_flattens, loss_figure, plot_losses


def _history(first):
    later = np.linspace(400.0, 300.0, 9)
    return pd.DataFrame({"epoch": np.arange(1, 11), "train_loss": np.r_[first, later], "val_loss": np.r_[first, later + 5],
                         "train_kl": np.r_[2.0, np.linspace(10, 12, 9)], "val_kl": np.r_[2.0, np.linspace(10, 12, 9)]})


def test_a_first_epoch_of_300000_does_not_flatten_the_later_epochs(tmp_path):
    h = _history(300_000.0)
    assert first_epoch_flattens([h["train_loss"], h["val_loss"]])
    fig = loss_figure(h)
    lo, hi = fig.axes[0].get_ylim()
    assert hi < 1000 and lo > 200  # the later epochs' 300-405 fill the axis
    assert any("epoch 1 off the scale (300,000" in t.get_text() for t in fig.axes[0].texts)
    # the KL starts low (2 vs 10-12): below the rest, also off the scale
    assert fig.axes[1].get_ylim()[0] > 2
    assert plot_losses(h, tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_an_ordinary_first_epoch_keeps_the_full_axis():
    h = _history(450.0)
    assert not first_epoch_flattens([h["train_loss"], h["val_loss"]])
    assert loss_figure(h).axes[0].get_ylim()[1] >= 450
