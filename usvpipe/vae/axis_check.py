"""Did the latent axes come out as trained? The move each axis stands for, measured on held-out calls.

With ``latent_axes`` the loss asks that moving a call by ``r`` rows along frequency moves z0 by
``r · PITCH_AXIS_UNITS_PER_HEIGHT / H`` and nothing else (and, for ``"duration"``, that
widening it moves z1 by a fixed amount per doubling). That is a penalty weighed against the
reconstruction term, not a constraint, so how well it holds depends on the balance the run
found and on how far new recordings are from the training ones: on the real store's held-out
recordings the 128×128 model (the GPU default) moved z0 by 0.6× the intended amount, and the
move explained a third of z0's change (benchmarks/vae-axis-at-128.md). So every run measures it:
each held-out image is encoded as it is and moved by a few known amounts, and the change of the
posterior means is compared with the intended one.

- ``slope``: the least-squares slope (through the origin) of the axis' change against the
  intended change: 1 when the axis has the intended scale.
- ``r2``: the share of the axis' change that the move explains about that line: 1 when every
  call moves alike, 0 when the axis' change has nothing to do with the move.
- ``leak``: the root-mean-square change of all the other posterior means per intended unit: 0
  when the move touches nothing else.

The axis is reported as holding when the slope is within a factor of ``SLOPE_FACTOR_TOLERANCE``
of 1 and the move explains at least ``MIN_AXIS_R2`` of the change; otherwise training logs a
warning: z0 alone is then not the straight pitch axis the plan line promised, on recordings the
model did not train on. The same fit is made for each held-out recording with at least
``MIN_RECORDING_SYLLABLES`` syllables, because the pooled fit mixes the recordings: on the real
store one seed failed on one recording (the highest-pitched lab-mouse calls, slope 0.13) while
the other seeds held, and among many held-out recordings such a one would be hidden. An analyst
comparing that recording's pitch with the rest needs to know, so a recording that fails is named
in the summary and logged even when the pooled fit holds.

It is a description of the latent space, not part of the health verdict: latents whose axis
drifted can still describe the calls (``encode``'s read-out says how much).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

#: The axis holds when its slope is within this factor of the intended one ...
SLOPE_FACTOR_TOLERANCE = 2.0
#: ... and the move explains at least this share of the axis' change.
MIN_AXIS_R2 = 0.5
#: Held-out calls the check encodes (each at ``len(MOVE_FRACTIONS)`` moves).
MAX_AXIS_CHECK_SYLLABLES = 512
#: The moves, as fractions of the largest training move (both directions).
MOVE_FRACTIONS = (-1.0, -0.5, 0.5, 1.0)
#: A held-out recording gets its own fit when it has at least this many syllables (fewer: too noisy to name).
MIN_RECORDING_SYLLABLES = 5


def _axis_holds(slope: float, r2: float) -> bool:
    return bool(np.isfinite(slope) and 1.0 / SLOPE_FACTOR_TOLERANCE <= slope <= SLOPE_FACTOR_TOLERANCE
                and np.isfinite(r2) and r2 >= MIN_AXIS_R2)


@dataclass(frozen=True)
class RecordingAxisFit:
    """The axis fit on the syllables of one held-out recording."""

    recording: str
    n_syllables: int
    slope: float
    r2: float

    @property
    def holds(self) -> bool:
        return _axis_holds(self.slope, self.r2)

    def describe(self) -> str:
        return f"{self.recording} (slope {self.slope:.2f}, R² {self.r2:.2f}, {self.n_syllables} syllables)"


@dataclass(frozen=True)
class AxisCheck:
    """How one latent axis responds to the move it was trained to stand for."""

    axis: str
    dimension: int
    slope: float
    r2: float
    leak: float
    largest_move: str
    n_syllables: int
    #: the same fit per held-out recording with at least MIN_RECORDING_SYLLABLES syllables
    by_recording: tuple = ()

    @property
    def holds(self) -> bool:
        return _axis_holds(self.slope, self.r2)

    @property
    def failing_recordings(self) -> list:
        """The :class:`RecordingAxisFit` of each held-out recording on which the axis does not hold."""
        return [fit for fit in self.by_recording if not fit.holds]

    @property
    def needs_warning(self) -> bool:
        return not self.holds or bool(self.failing_recordings)

    def to_dict(self) -> dict:
        return {**asdict(self), "by_recording": [{**asdict(fit), "holds": fit.holds} for fit in self.by_recording],
                "holds": self.holds}

    def summary(self) -> str:
        verdict = "holds" if self.holds else "does NOT hold"
        line = (f"{self.axis} axis {verdict}: z{self.dimension} moves {self.slope:.2f}× the intended amount "
                f"(R² {self.r2:.2f}; the other dimensions {self.leak:.2f} per unit) over moves up to "
                f"{self.largest_move} on {self.n_syllables} held-out syllables")
        failing = self.failing_recordings
        if self.by_recording:
            line += (f"; on its own it holds on {len(self.by_recording) - len(failing)} of {len(self.by_recording)} "
                     f"held-out recordings with {MIN_RECORDING_SYLLABLES}+ syllables"
                     + (", not on " + "; ".join(fit.describe() for fit in failing) if failing else ""))
        if self.needs_warning:
            where = "these recordings" if not self.holds else ("that recording" if len(failing) == 1 else "those recordings")
            line += (f" — z{self.dimension} alone is not a reliable {self.axis} read-out for {where} "
                     f"(read {self.axis} from the measures or from encode's read-out of all the latents; "
                     f"docs/vae.md, \"Do the latent axes hold?\")")
        return line


def axis_fit(change: np.ndarray, intended: np.ndarray, others: np.ndarray) -> tuple[float, float, float]:
    """``(slope, r2, leak)`` of an axis' observed ``change`` against the ``intended`` change (both ``(n,)``);
    ``others`` is ``(n, k)``, the change of the other dimensions.

    The slope is fitted through the origin (no move, no change); R² is about that line, against
    the change's own mean. NaN where the intended changes are all zero.
    """
    change, intended = np.asarray(change, np.float64), np.asarray(intended, np.float64)
    scale = float((intended * intended).sum())
    if scale <= 0:
        return math.nan, math.nan, math.nan
    slope = float((intended * change).sum() / scale)
    spread = float(((change - change.mean()) ** 2).sum())
    residual = float(((change - slope * intended) ** 2).sum())
    r2 = 1.0 - residual / spread if spread > 0 else math.nan
    others = np.asarray(others, np.float64).reshape(len(change), -1)
    leak = float(math.sqrt((others * others).sum() / scale))
    return slope, r2, leak


def _moves(axis: str, height: int, axis_shift: float, axis_stretch: float):
    """``([amount, ...], label)``: the moves the check applies along ``axis`` (rows for pitch, log
    widenings for duration; see :func:`usvpipe.vae.augment.intended_axis_change`) and the largest, in words."""
    if axis == "pitch":
        max_rows = max(1, round(axis_shift * height))
        return sorted({int(round(f * max_rows)) for f in MOVE_FRACTIONS} - {0}), f"{max_rows} rows"
    return [f * math.log1p(axis_stretch) for f in MOVE_FRACTIONS], f"±{axis_stretch:.0%} width"


def _moved(x, axis: str, amount):
    """``x`` moved by ``amount`` along ``axis``, as the training moves it (whole rows; a widening about the centre)."""
    import torch

    from .augment import move_calls, shift_rows

    n = x.shape[0]
    if axis == "pitch":
        return shift_rows(x, torch.full((n,), amount, device=x.device))
    return move_calls(x, torch.zeros(n, device=x.device), torch.full((n,), math.exp(amount), device=x.device))


def measure_axes(model, batches, axes, *, axis_shift: float, axis_stretch: float, recordings=None) -> list[AxisCheck]:
    """One :class:`AxisCheck` per name in ``axes`` (``"pitch"`` → z0, ``"duration"`` → z1).

    ``batches`` are float ``(n, 1, H, W)`` tensors of held-out store images; ``model`` is a
    :class:`usvpipe.vae.model.VAE`, evaluated in eval mode with its posterior means.
    ``recordings`` (optional): the recording of each image, in the order of the batches; then
    each recording with at least :data:`MIN_RECORDING_SYLLABLES` images gets its own fit
    (``AxisCheck.by_recording``), unless all the images are from one recording (the pooled fit is its fit).
    """
    import torch

    from .augment import intended_axis_change

    height = model.output_shape[0]
    plans = {axis: _moves(axis, height, axis_shift, axis_stretch) for axis in axes}
    changes = {axis: ([], [], [], []) for axis in axes}  # observed, intended, the other dimensions, image index
    was_training = model.training
    model.eval()
    n_seen = 0
    with torch.no_grad():
        for x in batches:
            x = model.prepare(x.float())
            n_seen += x.shape[0]
            mu = model.encode(x)[0].float()
            rows = np.arange(n_seen - x.shape[0], n_seen)
            for dim, axis in enumerate(axes):
                observed, intended, rest, image = changes[axis]
                for amount in plans[axis][0]:
                    delta = (model.encode(_moved(x, axis, amount))[0].float() - mu).cpu().numpy()
                    observed.append(delta[:, dim])
                    intended.append(np.full(len(delta), intended_axis_change(axis, amount, height)))
                    rest.append(np.delete(delta, dim, axis=1))
                    image.append(rows)
    model.train(was_training)
    labels = None if recordings is None else np.asarray(recordings, dtype=str)
    if labels is not None and len(labels) != n_seen:
        raise ValueError(f"measure_axes: {len(labels)} recording labels for {n_seen} images")
    checks = []
    for dim, axis in enumerate(axes):
        observed, intended, rest, image = (np.concatenate(part) for part in changes[axis])
        slope, r2, leak = axis_fit(observed, intended, rest)
        checks.append(AxisCheck(axis=axis, dimension=dim, slope=slope, r2=r2, leak=leak,
                                largest_move=plans[axis][1], n_syllables=n_seen,
                                by_recording=_fits_by_recording(observed, intended, labels, image)))
    return checks


def _fits_by_recording(observed, intended, labels, image) -> tuple:
    """:class:`RecordingAxisFit` of each recording with enough images (``()`` when all are from one recording)."""
    if labels is None:
        return ()
    names, counts = np.unique(labels, return_counts=True)
    if len(names) < 2:
        return ()  # the pooled fit is that recording's fit
    of_image = labels[image]
    fits = []
    for name, count in zip(names, counts):
        if count >= MIN_RECORDING_SYLLABLES:
            mine = of_image == name
            slope, r2, _ = axis_fit(observed[mine], intended[mine], np.zeros((int(mine.sum()), 0)))
            fits.append(RecordingAxisFit(recording=str(name), n_syllables=int(count), slope=slope, r2=r2))
    return tuple(fits)


def axis_checks_from_dicts(data) -> list[AxisCheck]:
    """The :class:`AxisCheck` list stored in ``train.json["latent_axes_check"]`` (``[]`` if absent or malformed)."""
    if not isinstance(data, list):
        return []
    fields = [name for name in AxisCheck.__dataclass_fields__ if name != "by_recording"]
    recording_fields = RecordingAxisFit.__dataclass_fields__
    try:
        return [AxisCheck(**{k: item[k] for k in fields},
                          # (train.json files written before the per-recording fits have none)
                          by_recording=tuple(RecordingAxisFit(**{k: fit[k] for k in recording_fields})
                                             for fit in item.get("by_recording", ())))
                for item in data]
    except (TypeError, KeyError, AttributeError):
        return []
