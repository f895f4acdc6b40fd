"""The whole pipeline from one config: segment -> train -> encode -> umap -> mmd.

Each stage writes into its own folder under the run's output directory and leaves a
*stamp* (``stage.json``) recording the digest of its parameters and inputs. A stage
whose stamp matches is skipped, so re-running ``usvpipe run`` after a crash, or after
changing only the MMD parameters, redoes only what is needed. Segmentation is always
entered, because it skips finished recordings itself.
"""
from __future__ import annotations

import dataclasses
import html
import json
import logging
import platform
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from . import _io
from ._version import __version__
from .config import load_config, params_digest, params_from_mapping, params_to_dict
from .errors import ConfigError, UsvpipeError

log = logging.getLogger(__name__)

STAGES = ("segment", "train", "encode", "umap", "mmd")
STAMP = "stage.json"
LEAF_STAGES = ("umap", "mmd")  # no other stage reads their outputs


@dataclass(frozen=True)
class RunParams:
    """The ``[run]`` section: what to analyse, where to write, and the question asked.

    Parameters
    ----------
    input : str
        WAV folder (searched recursively), a single WAV, or a text file listing WAV paths.
        Relative paths are taken relative to the config file.
    output : str
        Output directory of the run.
    metadata : str
        Optional CSV (``path,animal,group,...``); default: folder layout ``group/animal/*.wav``.
    stages : tuple of str
        Stages to run, in pipeline order.
    jobs : int
        Worker processes for segmentation.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps`` for training, encoding and MMD.
    group_col, group_a, group_b : str
        The comparison: column of the latents table and the two levels compared
        (empty: the two levels present, when there are exactly two).
    """

    input: str = ""
    output: str = "usvpipe_out"
    metadata: str = ""
    stages: tuple[str, ...] = STAGES
    jobs: int = 1
    device: str = "auto"
    group_col: str = "group"
    group_a: str = ""
    group_b: str = ""

    def __post_init__(self):
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"[run].stages: unknown stage(s) {', '.join(unknown)}; valid: {', '.join(STAGES)}")
        if self.jobs < 1:
            raise ConfigError("[run].jobs must be >= 1")
        if self.device not in {"auto", "cpu", "cuda", "mps"}:
            raise ConfigError(f"[run].device must be auto, cpu, cuda or mps, got {self.device!r}")


def _stage_classes() -> dict[str, tuple[str, type]]:
    """TOML section -> (section name, dataclass). Imported lazily: keeps `usvpipe --help` fast."""
    from .mmd import MMDParams
    from .segmentation.params import SegmentParams, SyllableParams
    from .segmentation.spectrogram import SpectrogramParams
    from .vae import TrainParams
    from .viz import UmapParams

    return {
        "spectrogram": SpectrogramParams,
        "segment": SegmentParams,
        "syllables": SyllableParams,
        "train": TrainParams,
        "umap": UmapParams,
        "mmd": MMDParams,
    }


@dataclass(frozen=True)
class PipelineConfig:
    """Every stage's parameters, as read from ``usvpipe.toml``."""

    run: RunParams
    stages: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict:
        return {"run": params_to_dict(self.run), **{k: params_to_dict(v) for k, v in self.stages.items()}}


def config_from_mapping(mapping: Mapping[str, Mapping], *, base_dir: Path | None = None, source: str = "", **run_overrides) -> PipelineConfig:
    """Build a :class:`PipelineConfig` from TOML sections (unknown sections are an error)."""
    classes = _stage_classes()
    unknown = sorted(set(mapping) - set(classes) - {"run"})
    if unknown:
        raise ConfigError(f"{source or 'config'}: unknown section(s) {', '.join(unknown)}; valid: run, {', '.join(classes)}")
    run_overrides = dict(run_overrides)
    if base_dir is not None:
        # Paths given on the command line are relative to where the command runs, not to
        # the config file: make them absolute before the config's paths are rebased.
        for key in ("input", "output", "metadata"):
            if run_overrides.get(key):
                run_overrides[key] = str(Path(run_overrides[key]).expanduser().resolve())
    run = params_from_mapping(RunParams, mapping.get("run", {}), section="run", **run_overrides)
    if base_dir is not None:
        # Paths in a config file are relative to that file, not to where the command runs.
        def rel(p: str) -> str:
            if not p:
                return p
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (base_dir / q).resolve())
        run = dataclasses.replace(run, input=rel(run.input), output=rel(run.output), metadata=rel(run.metadata))
    stages = {name: params_from_mapping(cls, mapping.get(name, {}), section=name) for name, cls in classes.items()}
    return PipelineConfig(run=run, stages=stages, source=source)


def read_pipeline_config(path, **run_overrides) -> PipelineConfig:
    path = Path(path)
    mapping = load_config(path)
    try:
        return config_from_mapping(mapping, base_dir=path.parent.resolve(), source=str(path), **run_overrides)
    except ConfigError as exc:
        # name the file: "[train]: unknown parameter epoch" alone does not say which config
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


# --- default config ---------------------------------------------------------------------

def default_config_text() -> str:
    """A commented ``usvpipe.toml`` with every parameter at its default value."""
    classes = _stage_classes()
    lines = [
        "# usvpipe configuration. Every key is optional; shown values are the defaults.",
        "# Relative paths are relative to this file. CLI options override these values.",
        "",
    ]

    def emit(section: str, obj) -> None:
        doc = _param_docs(type(obj))
        lines.append(f"[{section}]")
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if doc.get(f.name):
                lines.extend("# " + w for w in textwrap.wrap(doc[f.name], 88))
            if value is None:  # TOML has no null: leave the key out, shown commented
                lines.append(f"# {f.name} = ...  (unset by default)")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")

    emit("run", RunParams(input="recordings/", output="usvpipe_out"))
    for name, cls in classes.items():
        emit(name, cls())
    return "\n".join(lines)


def _param_docs(cls) -> dict[str, str]:
    """Each parameter's numpydoc description, joined into one paragraph (best effort)."""
    lines = (cls.__doc__ or "").splitlines()
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, str] = {}
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        head = stripped.split(" : ")[0]
        entry = [n.strip() for n in head.split(",")] if " : " in stripped else []
        if entry and all(n in names for n in entry):
            current = entry
            continue
        if not stripped or set(stripped) <= set("-=") or (stripped and not line.startswith(" " * 8) and line.startswith("    ") and " : " in stripped):
            if not stripped or set(stripped) <= set("-="):
                current = []
            continue
        for n in current:
            out[n] = (out.get(n, "") + " " + stripped).strip()
    return out


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if v is None:
        return '""'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


# --- stage bookkeeping ---------------------------------------------------------------------

def _read_stamp(stage_dir: Path) -> dict | None:
    try:
        return _io.read_json(stage_dir / STAMP)
    except (OSError, ValueError):
        return None


def _write_stamp(stage_dir: Path, digest: str, seconds: float, extra: dict | None = None) -> None:
    _io.write_json_atomic(stage_dir / STAMP, {"digest": digest, "seconds": round(seconds, 3), "usvpipe_version": __version__, **(extra or {})})


def _fingerprint(path: Path) -> dict:
    return _io.file_fingerprint(path) if path.exists() else {}


@dataclass
class StageOutcome:
    name: str
    status: str  # "ran", "skipped (up to date)", "failed", "not requested"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class PipelineResult:
    """What a pipeline run produced (paths are absolute)."""

    output: Path
    stages: list[StageOutcome]
    report_path: Path | None = None
    mmd: Any = None
    segment_failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.stages) and not self.segment_failures


def run_pipeline(config: PipelineConfig, *, progress: bool = True, force: bool = False) -> PipelineResult:
    """Run the requested stages of ``config``; returns a :class:`PipelineResult`.

    A stage is skipped when its stamp says its parameters and inputs are unchanged
    (``force=True`` reruns all). Segmentation failures of individual recordings do not
    stop the run; they are listed in the result and in the report.
    """
    run = config.run
    if not run.input and "segment" in run.stages:
        raise ConfigError("[run].input is empty (fix: set it to your WAV folder, or run `usvpipe demo`)")
    out = _io.ensure_output_dir(run.output)
    p = config.stages
    store_dir, model_dir = out / "store", out / "model"
    latents_path, umap_dir, mmd_dir = out / "latents.csv", out / "umap", out / "mmd"
    outcomes: list[StageOutcome] = []
    result = PipelineResult(output=out, stages=outcomes)
    started = time.time()

    def stage(name: str, stage_dir: Path, digest: str, outputs_exist: Callable[[], bool], body: Callable[[], str]):
        if name not in run.stages:
            outcomes.append(StageOutcome(name, "not requested"))
            return
        stamp = _read_stamp(stage_dir)
        if not force and stamp and stamp.get("digest") == digest and outputs_exist():
            outcomes.append(StageOutcome(name, "skipped (up to date)"))
            log.info("%s: up to date, skipped", name)
            return
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
        _write_stamp(stage_dir, digest, dt)
        outcomes.append(StageOutcome(name, "ran", dt, detail or ""))

    # 1. segment (always entered: it skips finished recordings on its own)
    def do_segment() -> str:
        from .segmentation.batch import segment_recordings

        seg = segment_recordings(
            run.input, store_dir, spectrogram=p["spectrogram"], segmentation=p["segment"], syllables=p["syllables"],
            metadata=run.metadata or None, jobs=run.jobs, progress=progress,
        )
        result.segment_failures = list(getattr(seg, "failures", []) or [])
        if seg.n_recordings and seg.n_failed == seg.n_recordings and set(run.stages) - {"segment"}:
            # say why now: the next stage could only report an empty store
            first = str(seg.failures[0][1]) if seg.failures else ""
            raise UsvpipeError(f"{run.input}: all {seg.n_recordings} recording(s) failed, e.g. {first} "
                               f"(every reason is in {seg.errors_path})")
        return _describe(seg)

    if "segment" in run.stages:
        t0 = time.perf_counter()
        detail = do_segment()
        outcomes.append(StageOutcome("segment", "ran", time.perf_counter() - t0, detail))
    else:
        outcomes.append(StageOutcome("segment", "not requested"))

    def store_digest() -> str:
        manifest = store_dir / "manifest.json"
        if not manifest.exists():
            from .store import open_store

            open_store(store_dir)
        m = _io.read_json(manifest)
        return params_digest({"recordings": m.get("recordings", {}), "params": m.get("params_digests", [])})

    # 2. train
    def do_train() -> str:
        from .vae import train

        stamp = _read_stamp(model_dir)
        if force or (stamp is not None and stamp.get("digest") != train_digest):
            # The checkpoint is a finished training of other parameters or another store:
            # start over (resuming it would fail, or silently continue the old run). Without
            # a stamp the checkpoint is this training's, interrupted: resume it.
            for name in (STAMP, "checkpoint.pt", "model.pt"):
                (model_dir / name).unlink(missing_ok=True)
        res = train(store_dir, model_dir, p["train"], device=run.device, resume=True, progress=progress)
        return f"model {res.model_path}"

    model_path = model_dir / "model.pt"
    if "train" in run.stages or "encode" in run.stages:
        sd = store_digest()
    else:
        sd = ""
    train_digest = params_digest(p["train"], {"store": sd})
    stage("train", model_dir, train_digest, model_path.exists, do_train)

    # 3. encode
    def do_encode() -> str:
        from .vae import encode

        table = encode(model_path, store_dir, latents_path, device=run.device)
        return f"{len(table)} syllables encoded"

    stage("encode", out / "encode", params_digest({"model": _fingerprint(model_path), "store": sd}), latents_path.exists, do_encode)

    # 4. umap
    def do_umap() -> str:
        from .viz import run_umap

        run_umap(latents_path, umap_dir, p["umap"], store=store_dir, color_by=run.group_col)
        return f"figures in {umap_dir}"

    stage("umap", umap_dir, params_digest(p["umap"], {"latents": _fingerprint(latents_path), "color": run.group_col}),
          lambda: umap_dir.exists(), do_umap)

    # 5. mmd
    def do_mmd() -> str:
        from .mmd import mmd_test

        res = mmd_test(latents_path, group_col=run.group_col, a=run.group_a or None, b=run.group_b or None, params=p["mmd"])
        res.save(mmd_dir)
        result.mmd = res
        return _describe_mmd(res)

    stage("mmd", mmd_dir, params_digest(p["mmd"], {"latents": _fingerprint(latents_path), "cmp": [run.group_col, run.group_a, run.group_b]}),
          lambda: (mmd_dir / "report.json").exists(), do_mmd)
    # an up-to-date report from an earlier run (not a stale one when this run's test failed)
    if result.mmd is None and outcomes[-1].status.startswith("skipped") and (mmd_dir / "report.json").exists():
        result.mmd = _io.read_json(mmd_dir / "report.json")

    _io.write_json_atomic(out / "run_manifest.json", {
        "usvpipe_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _package_versions(),
        "config_source": config.source,
        "config": config.to_dict(),
        "stages": [dataclasses.asdict(s) for s in outcomes],
        "segment_failures": [str(f) for f in result.segment_failures],
        "wall_s": round(time.time() - started, 3),
    })
    result.report_path = write_report(out, config, outcomes, result)
    return result


def _describe(seg) -> str:
    parts = []
    for key in ("n_done", "n_skipped", "n_failed", "n_syllables"):
        if hasattr(seg, key):
            parts.append(f"{key[2:]}={getattr(seg, key)}")
    return ", ".join(parts)


def _mmd_field(res, name, default=None):
    if isinstance(res, Mapping):
        return res.get(name, default)
    return getattr(res, name, default)


def _describe_mmd(res) -> str:
    stat = _mmd_field(res, "statistic")
    pval = _mmd_field(res, "p_value")
    unit = _mmd_field(res, "unit", "")
    try:
        return f"MMD²={float(stat):.4g}, p={float(pval):.4g} (unit: {unit})"
    except (TypeError, ValueError):
        return ""


def _package_versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("numpy", "scipy", "pandas", "torch", "h5py", "soundfile", "scikit-learn", "umap-learn", "matplotlib", "click"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


# --- report ---------------------------------------------------------------------------------

def write_report(out: Path, config: PipelineConfig, outcomes: list[StageOutcome], result: PipelineResult) -> Path:
    """Write ``report.html`` (figures linked relative to it) and ``report.md``; returns the HTML path."""
    figures = [p for sub in ("umap", "mmd", "model") for p in sorted((out / sub).glob("*.png"))] if out.exists() else []
    mmd = result.mmd
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.status)}</td><td>{s.seconds:.1f}</td><td>{html.escape(s.detail)}</td></tr>"
        for s in outcomes
    )
    md = [f"# usvpipe report\n", f"usvpipe {__version__}; config: {config.source or '(built in)'}\n", "## Stages\n",
          "| stage | status | seconds | detail |", "|---|---|---|---|"]
    md += [f"| {s.name} | {s.status} | {s.seconds:.1f} | {s.detail} |" for s in outcomes]
    answer = ""
    if mmd is not None:
        answer = _describe_mmd(mmd)
        groups = _mmd_field(mmd, "groups") or [_mmd_field(mmd, "a"), _mmd_field(mmd, "b")]
        answer = f"{' vs '.join(str(g) for g in groups if g is not None)}: {answer}"
        md += ["", "## Group comparison (kernel MMD permutation test)", "", answer]
    if result.segment_failures:
        md += ["", "## Recordings that failed", ""] + [f"- {f}" for f in result.segment_failures]
    md += ["", "## Figures", ""] + [f"![{f.stem}]({f.relative_to(out).as_posix()})" for f in figures]
    md += ["", "## Parameters", "", "```json", json.dumps(config.to_dict(), indent=2), "```", ""]
    _io.write_text_atomic(out / "report.md", "\n".join(md))
    failures = "".join(f"<li>{html.escape(str(f))}</li>" for f in result.segment_failures)
    figs = "".join(
        f'<figure><img src="{html.escape(f.relative_to(out).as_posix())}" alt="{html.escape(f.stem)}"><figcaption>{html.escape(f.relative_to(out).as_posix())}</figcaption></figure>'
        for f in figures
    )
    explorer = next(iter(sorted((out / "umap").glob("*.html"))), None) if (out / "umap").exists() else None
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>usvpipe report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
figure{{display:inline-block;margin:8px;max-width:520px}}img{{max-width:100%}}.answer{{font-size:1.3em;background:#f3f6fa;padding:.6em 1em;border-left:4px solid #0072B2}}
pre{{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}}</style></head><body>
<h1>usvpipe report</h1><p>usvpipe {__version__} &middot; config: {html.escape(config.source or '(built in)')}</p>
{f'<p class="answer">{html.escape(answer)}</p>' if answer else ''}
{f'<p><a href="{html.escape(explorer.relative_to(out).as_posix())}">Open the interactive latent-space explorer</a></p>' if explorer else ''}
<h2>Stages</h2><table><tr><th>stage</th><th>status</th><th>seconds</th><th>detail</th></tr>{rows}</table>
{f'<h2>Recordings that failed</h2><ul>{failures}</ul>' if failures else ''}
<h2>Figures</h2>{figs or '<p>none</p>'}
<h2>Parameters and versions</h2><pre>{html.escape(json.dumps(config.to_dict(), indent=2))}</pre>
</body></html>"""
    return _io.write_text_atomic(out / "report.html", page)


# --- inspection -------------------------------------------------------------------------------

def describe_directory(path) -> list[str]:
    """Human-readable lines saying what ``path`` holds and whether it is complete."""
    from .store import shard_files

    path = Path(path)
    if not path.exists():
        raise UsvpipeError(f"{path}: does not exist")
    lines = []
    if (path / "run_manifest.json").exists():
        m = _io.read_json(path / "run_manifest.json")
        lines.append(f"{path}: usvpipe run (usvpipe {m.get('usvpipe_version')}, {m.get('wall_s', '?')} s)")
        for s in m.get("stages", []):
            lines.append(f"  {s['name']:<8} {s['status']:<22} {s.get('detail', '')}")
        if m.get("segment_failures"):
            lines.append(f"  {len(m['segment_failures'])} recording(s) failed; see store/errors.csv")
        for sub in ("store", "model"):
            if (path / sub).exists():
                lines += ["  " + x for x in describe_directory(path / sub)]
        return lines
    if (path / "manifest.json").exists() and ((path / "shards").is_dir() or (path / "errors").is_dir()):
        m = _io.read_json(path / "manifest.json")
        n_shards = len(shard_files(path))
        merged = m.get("n_recordings") == n_shards
        lines.append(
            f"{path}: syllable store, {m.get('n_recordings')} recordings complete, {m.get('n_syllables')} syllables, "
            f"{m.get('n_failed', 0)} failed, spectrograms {m.get('spec_shape')}; "
            + ("merged" if merged else f"NOT merged ({n_shards} shards on disk): run `usvpipe merge {path}`")
        )
        return lines
    if (path / "shards").is_dir():
        n = len(shard_files(path))
        return [f"{path}: syllable store with {n} shard(s), not merged yet (run `usvpipe merge {path}`)"]
    models = sorted(p for p in path.glob("*.pt") if not p.name.startswith(_io.TMP_PREFIX))
    if models:
        names = ", ".join(m.name for m in models)
        if (path / "train.json").exists():
            t = _io.read_json(path / "train.json")
            return [f"{path}: trained VAE ({names}): best epoch {t.get('best_epoch')} of {t.get('epochs_run')}, "
                    f"{t.get('n_train')} train / {t.get('n_val')} validation syllables, device {t.get('device')}; complete"]
        return [f"{path}: VAE training not finished ({names}): continue with `usvpipe train STORE {path} --resume`"]
    if (path / "report.json").exists():
        r = _io.read_json(path / "report.json")
        return [f"{path}: MMD report: {_describe_mmd(r)}"]
    if (path / "umap.json").exists():
        u = _io.read_json(path / "umap.json")
        files = sorted(p.name for p in path.iterdir() if p.suffix in {".png", ".pdf", ".svg", ".html", ".csv"})
        method = (u.get("params") or {}).get("method", "?")
        return [f"{path}: latent-space figures ({method}): {', '.join(files)}"]
    if (path / "synth.json").exists():
        wavs = [p for p in path.rglob("*.wav") if not p.name.startswith(".")]
        return [f"{path}: synthetic dataset, {len(wavs)} WAV files with *.truth.csv ground truth"]
    if path.is_file():
        if path.suffix in {".csv", ".h5"}:
            from .vae import read_latents

            try:
                table = read_latents(path)
            except Exception as exc:  # noqa: BLE001 - describing, not validating
                raise UsvpipeError(f"{path}: not a latents table ({exc})") from None
            zcols = [c for c in table.columns if c.startswith("z") and c[1:].isdigit()]
            return [f"{path}: latents table, {len(table)} syllables, {len(zcols)}-d latents"]
        return [f"{path}: a file, not a usvpipe output"]
    wavs = [p for p in path.rglob("*.wav") if not p.name.startswith(".")]
    if wavs:
        return [f"{path}: input folder with {len(wavs)} WAV file(s); segment it with `usvpipe segment {path} OUT_DIR`"]
    return [f"{path}: not a usvpipe output directory ({sum(1 for _ in path.iterdir())} entries)"]


# --- demo ------------------------------------------------------------------------------------

def shared_data_dir() -> Path | None:
    """``../shared/data`` next to the source checkout, if present."""
    here = Path(__file__).resolve().parents[1]
    for cand in (here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"):
        if cand.is_dir():
            return cand
    return None


def demo_config(out_dir, *, real: bool = False, animals_per_group: int = 6, duration_s: float = 20.0,
                epochs: int | None = None, seed: int = 0, progress: bool = True) -> PipelineConfig:
    """Build (and, for synthetic data, generate) the demo's inputs and config."""
    out_dir = Path(out_dir)
    sections: dict[str, dict] = {
        "run": {"output": str(out_dir), "device": "auto"},
    }
    # The demo must finish in minutes on a 2-core laptop without a GPU: 64x64 syllable
    # images (a quarter of the default's pixels) and a short schedule. A few hundred
    # syllables are little data for a VAE; a higher observation precision than AVA's 10
    # keeps the posterior from collapsing to the prior on these mostly dark images.
    sections["syllables"] = {"shape": [64, 64]}
    sections["train"] = {"epochs": epochs if epochs is not None else 15, "seed": seed, "obs_precision": 50.0,
                         "batch_size": 64}
    if real:
        data = shared_data_dir()
        if data is None:
            raise UsvpipeError("--real: ../shared/data not found next to the checkout (fix: run from the repository, or point `usvpipe run` at your own folder)")
        sections["run"].update({"input": str(data), "stages": ["segment", "train", "encode", "umap"]})
    else:
        from .synth import make_dataset

        data_dir = out_dir / "demo_data"
        if not (data_dir / "metadata.csv").exists():
            make_dataset(data_dir, groups=("A", "B"), animals_per_group=animals_per_group, recordings_per_animal=1,
                         duration_s=duration_s, group_shift=1.0, seed=seed)
        sections["run"].update({"input": str(data_dir), "metadata": str(data_dir / "metadata.csv"), "group_a": "A", "group_b": "B"})
    return config_from_mapping(sections, source="usvpipe demo" + (" --real" if real else ""))
