"""``usvpipe run``: the stages of one config in order, each skipped when up to date.

Each stage writes into its own folder under the run's output directory and leaves a
*stamp* (``stage.json``) recording the digest of its parameters and inputs. A stage
whose stamp matches is skipped, so re-running ``usvpipe run`` after a crash, or after
changing only the MMD parameters, redoes only what is needed. Segmentation is always
entered, because it skips finished recordings itself.
"""
from __future__ import annotations

import dataclasses
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Callable

from .. import _io
from .._version import __version__
from ..config import params_digest
from ..errors import ConfigError, UsvpipeError
from .answer import describe_mmd
from .config import PipelineConfig
from .outcome import PipelineResult, StageOutcome
from .report import write_report

log = logging.getLogger(__name__)

STAMP = "stage.json"
LEAF_STAGES = ("umap", "mmd", "poise", "power")  # no other stage reads their outputs


def run_pipeline(config: PipelineConfig, *, progress: bool = True, force: bool = False,
                 quiet: bool = False) -> PipelineResult:
    """Run the requested stages of ``config``; returns a :class:`PipelineResult`.

    A stage is skipped when its stamp says its parameters and inputs are unchanged
    (``force=True`` reruns all). Segmentation failures of individual recordings do not
    stop the run; they are listed in the result and in the report. Before each stage one
    line on stderr says what it will do and how long it took last time (``quiet=True``
    silences those lines and, with ``progress=False``, the progress bars).
    """
    run = config.run
    if not run.input and "segment" in run.stages:
        raise ConfigError("[run].input", "is empty", "set it to your WAV folder, or run `usvpipe demo`")
    from .._lock import WHOLE, acquire_writer_lock

    out = _io.ensure_output_dir(run.output)
    # one run per folder; `usvpipe info` reads the lock as "in progress", or, left behind, as "interrupted"
    lock = acquire_writer_lock(out, WHOLE, what="run folder")
    try:
        result = _run_stages(config, out, progress=progress, force=force, quiet=quiet)
    except BaseException:
        lock.abandon()
        raise
    lock.release()
    return result


def _run_stages(config: PipelineConfig, out: Path, *, progress: bool, force: bool, quiet: bool) -> PipelineResult:
    """:func:`run_pipeline`'s body, under the folder's writer lock."""
    run = config.run
    started = time.time()
    r = _Run(config, out, progress=progress and not quiet, force=force)
    r.say = (lambda msg: None) if quiet else _say
    r.quiet = quiet
    r.history = _read_history(r.out)
    r.segment()
    # the store's digest is read only by the stages that read the store
    sd = r.store_digest() if ("train" in run.stages or "encode" in run.stages) else ""
    train_digest = params_digest(config.stages["train"], {"store": sd})
    r.stage("train", r.model_dir, train_digest, r.model_path.exists, lambda: r.train(train_digest),
            outputs=[r.model_path])
    r.stage("encode", r.out / "encode", params_digest({"model": _fingerprint(r.model_path), "store": sd}),
            r.latents_path.exists, r.encode, outputs=[r.latents_path])
    r.stage("umap", r.umap_dir, params_digest(config.stages["umap"], {"latents": _fingerprint(r.latents_path),
                                                                       "color": run.group_col}),
            r.umap_dir.exists, r.umap, outputs=[r.umap_dir / "umap.json"])
    r.stage("mmd", r.mmd_dir, params_digest(config.stages["mmd"], {"latents": _fingerprint(r.latents_path),
                                                                     "cmp": [run.group_col, run.group_a, run.group_b]}),
            lambda: (r.mmd_dir / "report.json").exists(), r.mmd, outputs=[r.mmd_dir / "report.json"])
    result = r.result
    # an up-to-date report from an earlier run (not a stale one when this run's test failed)
    if result.mmd is None and result.stages[-1].status.startswith("skipped") and (r.mmd_dir / "report.json").exists():
        result.mmd = _io.read_json(r.mmd_dir / "report.json")
    if run.requests("poise"):
        poise_digest = params_digest({"pairs": config.stages["poise_pairs"], "poise": config.stages["poise"]},
                                     {"store": sd or r.store_digest(), "videos": r.videos_fingerprint(),
                                      "sync": _fingerprint(Path(run.sync)) if run.sync else {},
                                      "video_metadata": _fingerprint(Path(run.video_metadata)) if run.video_metadata else {}})
        r.stage("poise", r.poise_dir, poise_digest, r.poise_model_path.exists, lambda: r.poise(poise_digest),
                outputs=[r.poise_model_path])
    r.measures()
    r.power()
    history = _update_history(r.history, result.stages)
    _write_manifest(r.out, config, result, wall_s=time.time() - started, history=history)
    result.report_path = write_report(r.out, config, result.stages, result)
    return result


class _Run:
    """One run's folders, options and results; one method per stage body."""

    def __init__(self, config: PipelineConfig, out: Path, *, progress: bool, force: bool):
        self.config, self.run, self.p = config, config.run, config.stages
        self.out, self.progress, self.force = out, progress, force
        self.store_dir, self.model_dir = out / "store", out / "model"
        self.model_path = self.model_dir / "model.pt"
        self.latents_path, self.umap_dir, self.mmd_dir = out / "latents.csv", out / "umap", out / "mmd"
        self.poise_dir = out / "poise"
        self.poise_model_path = self.poise_dir / "model" / "model.pt"
        self.result = PipelineResult(output=out, stages=[])
        self.say: Callable[[str], None] = _say
        self.quiet = False
        self.history: dict = {}

    def announce(self, name: str) -> None:
        """One line before a stage: what it does and how long it took when it last ran."""
        last = self.history.get(name) or {}
        took = f" (last run took {last['seconds']:.0f} s)" if isinstance(last.get("seconds"), (int, float)) else ""
        self.say(f"usvpipe: {name}: {_what(name, self.config)}{took}")

    def stage(self, name: str, stage_dir: Path, digest: str, outputs_exist: Callable[[], bool],
              body: Callable[[], str], *, outputs: tuple | list = ()) -> None:
        """Run ``body`` unless not requested or up to date; a leaf stage's failure is recorded, not raised.

        Up to date means: the stamp's digest matches and every output in ``outputs`` is
        intact (the size recorded when it was written, and readable), so a
        truncated or replaced ``model.pt`` is remade instead of failing every later stage.
        """
        outcomes = self.result.stages
        if not self.run.requests(name):
            outcomes.append(StageOutcome(name, "not requested"))
            return
        stamp = _read_stamp(stage_dir)
        if not self.force and stamp and stamp.get("digest") == digest and outputs_exist():
            damaged = _damaged_output(stamp, outputs)
            if damaged is None:
                outcomes.append(StageOutcome(name, "skipped (up to date)", 0.0, _last_ran(self.history.get(name))))
                log.info("%s: up to date, skipped", name)
                self.say(f"usvpipe: {name}: up to date, skipped")
                return
            log.warning("%s: %s; redoing the stage", name, damaged)
        self.announce(name)
        t0 = time.perf_counter()
        try:
            detail = body()
        except UsvpipeError as exc:
            if name not in LEAF_STAGES:
                raise
            # Nothing depends on a figure or a test: record why it failed and still
            # write the report of everything else (the command exits non-zero).
            outcomes.append(StageOutcome(name, "failed", time.perf_counter() - t0, str(exc)))
            log.info("%s failed: %s", name, exc)
            return
        dt = time.perf_counter() - t0
        _write_stamp(stage_dir, digest, dt, outputs)
        outcomes.append(StageOutcome(name, "ran", dt, detail or ""))

    def segment(self) -> None:
        """Always entered when requested (it skips finished recordings on its own); never stamped."""
        if "segment" not in self.run.stages:
            self.result.stages.append(StageOutcome("segment", "not requested"))
            return
        from ..segmentation.batch import segment_recordings

        run, p = self.run, self.p
        self.announce("segment")
        t0 = time.perf_counter()
        seg = segment_recordings(
            run.input, self.store_dir, spectrogram=p["spectrogram"], segmentation=p["segment"], syllables=p["syllables"],
            metadata=run.metadata or None, jobs=run.jobs, progress=self.progress, exclude=list(run.exclude) or None,
        )
        self.result.segment_failures = list(seg.failures)
        if seg.n_recordings and seg.n_failed == seg.n_recordings and set(run.stages) - {"segment"}:
            # say why now: the next stage could only report an empty store
            first = str(seg.failures[0][1]) if seg.failures else ""
            raise UsvpipeError(f"{run.input}: all {seg.n_recordings} recording(s) failed, e.g. {first} "
                               f"(every reason is in {seg.errors_path})")
        detail = f"done={seg.n_done}, skipped={seg.n_skipped}, failed={seg.n_failed}, syllables={seg.n_syllables}"
        if seg.review_totals:  # the whole store's counts, as `usvpipe segment` prints them
            from ..segmentation.exclusions import describe_review_totals

            detail += f"; exclusion list: {describe_review_totals(seg.review_totals)}"
        if seg.n_padded:
            log.warning("segment: %s", seg.padded_warning())
            detail += f"; {seg.n_padded} image(s) run past their recording's edges (see the warning)"
        if seg.pruned:  # the later stages see a new store digest and are redone
            detail += f", removed {len(seg.pruned)} recording(s) no longer among the inputs (e.g. {seg.pruned[0]})"
        elif seg.n_done == 0 and seg.n_failed == 0 and seg.n_skipped:
            # nothing new: say so, and when the store was last added to, instead of "syllables=0"
            last = _last_ran(self.history.get("segment"))
            self.result.stages.append(StageOutcome(
                "segment", "skipped (up to date)", time.perf_counter() - t0,
                f"all {seg.n_skipped} recording(s) already in the store" + (f"; {last}" if last else "")))
            return
        self.result.stages.append(StageOutcome("segment", "ran", time.perf_counter() - t0, detail))

    def store_digest(self) -> str:
        manifest = self.store_dir / "manifest.json"
        if not manifest.exists():
            from ..store import open_store

            open_store(self.store_dir)
        m = _io.read_json(manifest)
        return params_digest({"recordings": m.get("recordings", {}), "params": m.get("params_digests", [])})

    def train(self, digest: str) -> str:
        from ..vae import train

        stamp = _read_stamp(self.model_dir)
        if self.force or (stamp is not None and stamp.get("digest") != digest):
            # The checkpoint is a finished training of other parameters or another store:
            # start over (resuming it would fail, or silently continue the old run). Without
            # a stamp the checkpoint is this training's, interrupted: resume it.
            for name in (STAMP, "checkpoint.pt", "model.pt"):
                (self.model_dir / name).unlink(missing_ok=True)
        for name in ("checkpoint.pt", "model.pt"):
            if (self.model_dir / name).exists() and not _readable(self.model_dir / name):
                (self.model_dir / name).unlink()  # truncated or damaged: resume from what is intact
        res = train(self.store_dir, self.model_dir, self.p["train"], device=self.run.device, resume=True,
                    progress=self.progress, quiet=self.quiet)
        axes = "".join(f"; {check.summary()}" for check in res.axis_checks)
        return (f"model {res.model_path}; {res.health.summary()}" if res.health is not None else f"model {res.model_path}") + axes

    def encode(self) -> str:
        from ..artifacts import Latents
        from ..vae import encode
        from ..vae.readout import describe_readout

        table = encode(self.model_path, self.store_dir, self.latents_path, device=self.run.device)
        meta = Latents.read_meta(self.latents_path)
        readout = describe_readout(meta.get("readout"))
        atypical = meta.get("n_atypical") or 0
        return (f"{len(table)} syllables encoded" + (f"; {readout}" if readout else "")
                + (f"; {atypical} with atypical latents (see the warning)" if atypical else ""))

    def umap(self) -> str:
        from ..viz import run_umap

        run_umap(self.latents_path, self.umap_dir, self.p["umap"], store=self.store_dir, color_by=self.run.group_col,
                 audio_root=self.input_root())
        return f"figures in {self.umap_dir}"

    def mmd(self) -> str:
        from ..mmd import mmd_test

        run = self.run
        res = mmd_test(self.latents_path, group_col=run.group_col, a=run.group_a or None, b=run.group_b or None,
                       params=self.p["mmd"])
        from ..mmd.trust import second_opinion

        res.second_opinion = second_opinion(self.latents_path, res, group_col=run.group_col, params=self.p["mmd"],
                                            store=self.store_dir)
        res.save(self.mmd_dir)
        self.result.mmd = res
        return describe_mmd(res)

    def videos_fingerprint(self) -> list:
        """Size and modification time of every behaviour video (a new or edited one redoes the poise stage)."""
        from ..poise.pairs import discover_videos

        try:
            files, _ = discover_videos(self.run.videos)
        except UsvpipeError:
            return []  # the stage itself reports why
        return [[str(f), _fingerprint(f)] for f in files]

    def poise(self, digest: str) -> str:
        """Pair each syllable with its video frame(s) and train a POISE-VAE on the pairs."""
        from ..poise.api import train_poise
        from ..poise.pairs import make_pairs

        run, p = self.run, self.p
        model_dir = self.poise_model_path.parent
        stamp = _read_stamp(self.poise_dir)
        if self.force or (stamp is not None and stamp.get("digest") != digest):
            # a finished model of other pairs or parameters: start over instead of resuming it
            self.poise_model_path.unlink(missing_ok=True)
        if self.poise_model_path.exists() and not _readable(self.poise_model_path):
            self.poise_model_path.unlink()
        pairs_path = self.poise_dir / "pairs.npz"
        pairs = make_pairs(self.store_dir, run.videos, pairs_path, p["poise_pairs"],
                           video_metadata=run.video_metadata or None, audio=self.input_root(), sync=run.sync or None)
        for rec, path, reason in pairs.problems:
            log.warning("poise: %s: %s", path or rec, reason)
        errors = pairs_path.with_suffix(".errors.csv")
        if pairs.n_pairs == 0:
            raise UsvpipeError(f"{run.videos}: no syllable could be paired with a video frame "
                               f"(every recording's reason is in {errors})")
        res = train_poise(pairs_path, model_dir, p["poise"], device=run.device,
                          resume=self.poise_model_path.exists(), progress=self.progress)
        n_rec = pairs.table["recording"].nunique()
        unpaired = f"; {len(pairs.problems)} recording(s) could not pair (see {errors})" if pairs.problems else ""
        for line in res.check.warnings():
            log.warning("poise: %s", line)
        return (f"{pairs.n_pairs} pairs from {n_rec} recording(s){unpaired}; {p['poise'].model} model "
                f"{res.model_path}; {res.check.summary()}")

    def input_root(self):
        """The folder the store's recording identifiers are relative to (None when unknown)."""
        from ..segmentation.inputs import discover_inputs

        try:
            return discover_inputs(self.run.input)[1] if self.run.input else None
        except UsvpipeError:
            return None

    def measures(self) -> None:
        """Classical measures per animal from the store (seconds; remade every run, never stops it)."""
        if not (self.store_dir / "syllables.csv").exists():
            return
        from ..measures import measures_stage

        run = self.run
        groups = list(_mmd_groups(self.result.mmd) or (run.group_a or None, run.group_b or None))
        self.announce("measures")
        t0 = time.perf_counter()
        try:
            res = measures_stage(self.store_dir, self.out / "measures", input_root=self.input_root(), group_col=run.group_col,
                                 a=groups[0], b=groups[1], alpha=self.p["mmd"].alpha)
        except (UsvpipeError, ValueError) as exc:
            self.result.stages.append(StageOutcome("measures", "failed", time.perf_counter() - t0, str(exc)))
            return
        n_diff = 0 if res.tests is None else int(res.tests["reject"].sum())
        detail = (f"{len(res.per_animal)} animals; " + ("not tested" if res.tests is None else
                  f"{n_diff} of {len(res.tests)} measures differ (Holm)"))
        self.result.stages.append(StageOutcome("measures", "ran", time.perf_counter() - t0, detail))

    def power(self) -> None:
        """What the design could have detected, when the test did not reject (``[power]``; skipped when up to date).

        Not a listed stage: it follows the test's answer. A rejecting, uninterpretable or
        syllable-unit test needs no sensitivity; a failure is recorded and never stops the run.
        """
        from .report import _as_dict

        params, mmd = self.p["power"], _as_dict(self.result.mmd)
        if not params.enabled or mmd is None or mmd.get("reject") or mmd.get("interpretable") is False \
                or mmd.get("unit") != "animal":
            return
        if not (self.model_path.exists() and (self.store_dir / "syllables.csv").exists()):
            log.info("power: no store and model in %s (a test run on given latents): nothing to plant into", self.out)
            return
        power_dir = self.out / "power"
        digest = params_digest(params, {"latents": _fingerprint(self.latents_path), "model": _fingerprint(self.model_path),
                                        "mmd": mmd.get("params"), "groups": mmd.get("groups"),
                                        "measures": _fingerprint(self.out / "measures" / "measures_per_animal.csv")})
        self.stage("power", power_dir, digest, (power_dir / "sensitivity.json").exists, self._sensitivity,
                   outputs=[power_dir / "sensitivity.json"])

    def _sensitivity(self) -> str:
        from ..power import load_run_pilot, sensitivity, write_sensitivity

        params = self.p["power"]
        pilot = load_run_pilot(self.out, max_per_animal=params.max_syllables_per_animal, seed=params.seed,
                               device="cpu" if self.run.device == "auto" else self.run.device)
        sens = sensitivity(pilot, params)
        write_sensitivity(sens, self.out / "power")
        found = [f"{m.kind} {m.value:.3g} {m.unit}" for m in sens.latent if m.value is not None]
        return (f"minimum detectable effects at {params.power:.0%} power: {', '.join(found) or 'none reached'} "
                f"({params.draws} draws per size, {sens.seconds:.0f} s)")


#: what each stage does, in the words of the line announcing it
_WHAT = {
    "segment": "finding syllables in the WAV files and cutting their spectrograms into the store "
               "(recordings already in the store are skipped)",
    "train": "training the VAE on the syllable spectrograms ({epochs}{floor}; {stopping})",
    "encode": "encoding every syllable into its latent vector",
    "umap": "projecting the latents to 2-D and drawing the figures and the explorer",
    "mmd": "testing whether the groups differ (kernel MMD, whole animals permuted between groups)",
    "poise": "pairing each syllable with its behaviour-video frame(s) and training a POISE-VAE on the pairs",
    "measures": "call counts, rates, durations, frequencies and amplitudes per animal, tested between groups",
    "power": "the test found no difference: estimating what this design could have detected, by planting effects "
             "of known size into the animals' own syllables ([power] enabled = false skips it)",
}


def _what(name: str, config: PipelineConfig) -> str:
    text = _WHAT.get(name, name)
    if name == "train":
        tp = config.stages["train"]
        patience = getattr(tp, "patience", 0)
        stopping = (f"after those steps, stops early after {_count(patience, 'epoch')} without validation improvement"
                    if patience else "no early stopping")
        from .._threads import choose_threads

        floor = getattr(tp, "step_floor", 0)
        text = text.format(epochs=_count(getattr(tp, "resolved_epochs", "?"), "epoch"), stopping=stopping,
                           floor=f", more if needed to reach {floor} optimiser steps" if floor else ", as asked")
        text += f"; on the CPU with {choose_threads().line()}" if config.run.device in ("cpu", "auto") else ""
    if name == "umap" and getattr(config.stages["umap"], "method", "umap") == "umap":
        from ..viz._projection import umap_compiled

        if not umap_compiled():  # installing compiles it (scripts/_venv.sh); say so only when it did not
            text += " (this first UMAP in a fresh environment compiles its numba code: up to a minute, once)"
    return text


def _count(n, noun: str) -> str:
    """``1 epoch``, ``3 epochs`` (``? epochs`` when unknown)."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _mmd_groups(mmd) -> tuple | None:
    g = mmd.get("groups") if isinstance(mmd, dict) else getattr(mmd, "groups", None)
    return tuple(str(x) for x in g)[:2] if g and len(g) == 2 else None


def _read_history(out: Path) -> dict:
    """The previous run's per-stage history (``run_manifest.json``'s ``stage_history``)."""
    try:
        h = _io.read_json(out / "run_manifest.json").get("stage_history", {})
        return h if isinstance(h, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _update_history(history: dict, outcomes: list) -> dict:
    """Stages that ran now replace their entry; skipped ones keep when they last ran."""
    out = dict(history)
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for s in outcomes:
        if s.status in ("ran", "failed"):
            out[s.name] = {"ran_at": now, "status": s.status, "seconds": round(s.seconds, 3), "detail": s.detail}
    return out


def _last_ran(entry: dict | None) -> str:
    if not entry:
        return ""
    return f"last ran {entry.get('ran_at', '?')} ({float(entry.get('seconds', 0)):.1f} s): {entry.get('detail', '')}"


def _read_stamp(stage_dir: Path) -> dict | None:
    try:
        return _io.read_json(stage_dir / STAMP)
    except (OSError, ValueError):
        return None


def _write_stamp(stage_dir: Path, digest: str, seconds: float, outputs=()) -> None:
    _io.write_json_atomic(stage_dir / STAMP, {"digest": digest, "seconds": round(seconds, 3), "usvpipe_version": __version__,
                                              "outputs": {Path(p).name: Path(p).stat().st_size for p in outputs if Path(p).exists()}})


def _readable(path: Path) -> bool:
    """Cheap integrity check: a torch file is a zip whose CRCs match, a JSON file parses."""
    import zipfile

    try:
        if path.suffix == ".pt":
            with zipfile.ZipFile(path) as zf:
                return zf.testzip() is None
        if path.suffix == ".json":
            _io.read_json(path)
        return path.is_file()
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def _damaged_output(stamp: dict, outputs) -> str | None:
    """Why an output of a stamped stage cannot be trusted, or ``None`` when all are intact."""
    recorded = stamp.get("outputs", {})
    for p in map(Path, outputs):
        if not p.exists():
            return f"its output {p} is missing"
        # the size only: a run folder copied without keeping mtimes is still up to date
        if p.name in recorded and recorded[p.name] != p.stat().st_size:
            return f"its output {p} changed size since the stage wrote it (truncated?)"
        if not _readable(p):
            return f"its output {p} is unreadable (truncated?)"
    return None


def _fingerprint(path: Path) -> dict:
    return _io.file_fingerprint(path) if path.exists() else {}


def _write_manifest(out: Path, config: PipelineConfig, result: PipelineResult, *, wall_s: float,
                    history: dict | None = None) -> None:
    """``run_manifest.json``: versions, platform, the full config and what each stage did."""
    _io.write_json_atomic(out / "run_manifest.json", {
        "usvpipe_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _package_versions(),
        "config_source": config.source,
        "config": config.to_dict(),
        "stages": [dataclasses.asdict(s) for s in result.stages],
        "segment_failures": [str(f) for f in result.segment_failures],
        "latent_health": _train_health(out / "model"),
        "answer": _answer_record(result.mmd),
        "wall_s": round(wall_s, 3),
        "stage_history": history or {},
    })


def _train_health(model_dir: Path):
    """``train.json["health"]`` of the run's model (``None`` before training or for older models)."""
    try:
        return _io.read_json(model_dir / "train.json").get("health")
    except (OSError, ValueError):
        return None


def _answer_record(mmd) -> dict | None:
    """The MMD answer as the manifest records it: marked when it must not be interpreted."""
    if mmd is None:
        return None
    d = mmd if isinstance(mmd, dict) else mmd.to_dict()
    keys = ("statistic", "p_value", "reject", "alpha", "unit", "groups", "min_attainable_p", "interpretable",
            "do_not_interpret", "second_opinion", "latent_readout")
    return {k: d.get(k) for k in keys}


def _package_versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("numpy", "scipy", "pandas", "torch", "h5py", "soundfile", "scikit-learn", "umap-learn", "matplotlib", "click"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
