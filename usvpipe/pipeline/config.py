"""The run's configuration: ``usvpipe.toml`` -> :class:`PipelineConfig` (every stage's parameters), and the commented default file."""
from __future__ import annotations

import dataclasses
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config import load_config, params_from_mapping, params_to_dict
from ..constraints import Interval, OneOf, check_params, config_error
from ..errors import ConfigError

STAGES = ("segment", "train", "encode", "umap", "mmd")
#: Stages run only when asked for: ``poise`` (behaviour video + audio pairs, POISE-VAE) runs
#: when ``[run] videos`` is set or ``stages`` lists it.
OPTIONAL_STAGES = ("poise",)


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
    exclude : tuple of str
        ``review.csv`` files exported by the explorer, applied by the segment stage:
        detections reviewed as noise are dropped, relabelled ones labelled (as
        ``usvpipe segment --exclude``). Relative paths are taken relative to the config file.
    videos : str
        Folder of behaviour videos (or one video) matched to the recordings as ``usvpipe
        poise pairs`` matches them; when set, the ``poise`` stage pairs every syllable with
        its video frame(s) (``[poise_pairs]``) and trains a POISE-VAE on the pairs (``[poise]``).
    sync, video_metadata : str
        Optional CSVs for the poise stage: ``recording,offset_s[,drift_ppm]`` per recording,
        and ``path,animal,group`` for the videos (default: their folder layout).
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
    exclude: tuple[str, ...] = ()
    videos: str = ""
    sync: str = ""
    video_metadata: str = ""

    _constraints = {
        "jobs": [Interval(int, 1, None)],
        "device": [OneOf("auto", "cpu", "cuda", "mps")],
    }

    def __post_init__(self):
        valid = STAGES + OPTIONAL_STAGES
        unknown = [s for s in self.stages if s not in valid]
        if unknown:
            raise config_error("run", "stages", f"unknown stage(s) {', '.join(unknown)}", f"use some of {', '.join(valid)}")
        check_params(self, "run")
        if "poise" in self.stages and not self.videos:
            raise config_error("run", "videos", "is empty, but stages include poise",
                               "set videos to the folder of behaviour videos, or drop poise from stages")

    def requests(self, stage: str) -> bool:
        """Whether the run includes ``stage``: listed in ``stages``, ``poise`` with ``videos`` set, or
        ``power``, which follows the test's answer (``[power] enabled`` switches it off)."""
        return stage in self.stages or (stage == "poise" and bool(self.videos)) or stage == "power"


def _stage_classes() -> dict[str, tuple[str, type]]:
    """TOML section -> (section name, dataclass). Imported lazily: keeps `usvpipe --help` fast."""
    from ..mmd import MMDParams
    from ..poise.params import PairsParams, PoiseParams
    from ..power.params import PowerParams
    from ..segmentation.params import SegmentParams, SyllableParams
    from ..segmentation.spectrogram import SpectrogramParams
    from ..vae import TrainParams
    from ..viz import UmapParams

    return {
        "spectrogram": SpectrogramParams,
        "segment": SegmentParams,
        "syllables": SyllableParams,
        "train": TrainParams,
        "umap": UmapParams,
        "mmd": MMDParams,
        "poise_pairs": PairsParams,
        "poise": PoiseParams,
        "power": PowerParams,
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
        for key in ("input", "output", "metadata", "videos", "sync", "video_metadata"):
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
        run = dataclasses.replace(run, input=rel(run.input), output=rel(run.output), metadata=rel(run.metadata),
                                  exclude=tuple(rel(p) for p in run.exclude), videos=rel(run.videos),
                                  sync=rel(run.sync), video_metadata=rel(run.video_metadata))
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
