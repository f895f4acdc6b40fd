"""``usvpipe info``: say what an output directory holds and whether it is complete."""
from __future__ import annotations

from pathlib import Path

from .. import _io
from .._csv import read_csv
from ..errors import UsvpipeError
from .answer import describe_mmd


def describe_directory(path) -> list[str]:
    """Human-readable lines saying what ``path`` holds and whether it is complete."""
    from ..store import shard_files

    path = Path(path)
    if not path.exists():
        raise UsvpipeError(f"{path}: does not exist")
    # a run folder's lock (a store's own writer lock is the store's business: its lines below say how far it got)
    is_store = (path / "shards").is_dir() or (path / "manifest.json").exists()
    state = run_state_lines(path) if path.is_dir() and not is_store else []
    if (path / "run_manifest.json").exists():
        return state + _describe_run(path)
    if state:  # a first run still going, or stopped: no manifest yet, but its folders say how far it got
        return state + _run_parts(path, in_progress="in progress" in state[0])
    if (path / "manifest.json").exists() and ((path / "shards").is_dir() or (path / "errors").is_dir()):
        m = _io.read_json(path / "manifest.json")
        n_shards = len(shard_files(path))
        merged = m.get("n_shards_on_disk", m.get("n_recordings")) == n_shards
        return [
            f"{path}: syllable store, {m.get('n_recordings')} recordings complete, {m.get('n_syllables')} syllables, "
            f"{m.get('n_failed', 0)} failed, spectrograms {m.get('spec_shape')}; "
            + ("merged" if merged else f"NOT merged ({n_shards} shards on disk): run `usvpipe merge {path}`")
        ] + [f"  warning: {line}" for line in [store_padded_warning(path)] if line]
    if (path / "shards").is_dir():
        n = len(shard_files(path))
        return [f"{path}: syllable store with {n} shard(s), not merged yet (run `usvpipe merge {path}`)"]
    models = sorted(p for p in path.glob("*.pt") if not p.name.startswith(_io.TMP_PREFIX))
    if models and not (path / "train.json").exists() and _is_poise_run(path):
        return _describe_poise(path)
    if models:
        names = ", ".join(m.name for m in models)
        if (path / "train.json").exists():
            t = _io.read_json(path / "train.json")
            epochs = f"{t.get('epochs_run')} epoch" + ("" if t.get("epochs_run") == 1 else "s")
            lines = [f"{path}: trained VAE ({names}): {epochs}, {t.get('steps', '?')} steps "
                     f"(profile {t.get('profile', 'full')}, images {t.get('image_shape', '?')}, axis encoder "
                     f"{t.get('axis_encoder') or (t.get('params') or {}).get('axis_encoder', 'network')}), kept epoch "
                     f"{t.get('kept_epoch', t.get('best_epoch'))}, {t.get('n_train')} train / {t.get('n_val')} "
                     f"validation syllables, device {t.get('device')}; complete"]
            from ..vae.health import health_from_dict

            health = health_from_dict(t.get("health"))
            lines.append("  " + (health.summary() if health is not None else
                                 "training health not recorded (a model from before usvpipe measured it)"))
            from ..vae.axis_check import axis_checks_from_dicts

            lines.extend("  " + check.summary() for check in axis_checks_from_dicts(t.get("latent_axes_check")))
            return lines
        return [f"{path}: VAE training not finished ({names}): continue with `usvpipe train STORE {path} --resume`"
                + ("; model.pt holds the last checkpoint's weights (encodable, provisional)"
                   if (path / "model.pt").exists() else "")]
    if (path / "report.json").exists():
        r = _io.read_json(path / "report.json")
        lines = [f"{path}: MMD report: {describe_mmd(r)}"]
        if r.get("interpretable") is False:
            lines.append(f"  {r.get('do_not_interpret')}")
        return lines
    if (path / "umap.json").exists():
        u = _io.read_json(path / "umap.json")
        files = sorted(p.name for p in path.iterdir() if p.suffix in {".png", ".pdf", ".svg", ".html", ".csv"})
        method = (u.get("params") or {}).get("method", "?")
        return [f"{path}: latent-space figures ({method}): {', '.join(files)}"]
    if (path / "synth.json").exists():
        wavs = [p for p in path.rglob("*.wav") if not p.name.startswith(".")]
        return [f"{path}: synthetic dataset, {len(wavs)} WAV files with *.truth.csv ground truth"]
    if path.is_file():
        return [_describe_file(path)]
    wavs = [p for p in path.rglob("*.wav") if not p.name.startswith(".")]
    if wavs:
        return [f"{path}: input folder with {len(wavs)} WAV file(s); segment it with `usvpipe segment {path} OUT_DIR`"]
    return [f"{path}: not a usvpipe output directory ({sum(1 for _ in path.iterdir())} entries)"]


def run_state_lines(path: Path) -> list[str]:
    """"a run is in progress (pid …, host …, started …)" or "… was interrupted …: re-run …", from the
    folder's writer locks (``[]`` when no writer holds or left one)."""
    from .._lock import lock_records

    lines = []
    for holder, alive in lock_records(path):
        who = f"pid {holder.pid}, host {holder.host}" + (f", started {holder.started}" if holder.started else "")
        command = holder.command if holder.command.startswith(("usvpipe run ", "usvpipe demo")) else ""
        kind = "a run" if command or not holder.command else f"`{holder.command}`"
        if alive:
            lines.append(f"{path}: {kind} is in progress ({who})" + (f": `{holder.command}`" if holder.command else "")
                         + "; wait for it to finish (what it has written so far is below)")
        else:
            again = f"`{command}`" if command else "`usvpipe run CONFIG`" if kind == "a run" else f"`{holder.command}`"
            lines.append(f"{path}: {kind} was interrupted ({who}); re-run {again} to finish it (stages already "
                         f"done are skipped)")
    return lines


def _run_parts(path: Path, *, in_progress: bool) -> list[str]:
    """The store's and model's lines under a running or interrupted run; the model's advice is the run's
    (re-running the run resumes its training; a second `usvpipe train` beside a running one would clash)."""
    lines = []
    for sub in ("store", "model"):
        if not (path / sub).exists():
            continue
        sub_lines = describe_directory(path / sub)
        if sub == "model" and "not finished" in sub_lines[0]:
            sub_lines = [f"{path / sub}: VAE training " + ("under way in that run" if in_progress else
                                                           "not finished: re-running the run resumes it from its "
                                                           "last checkpoint")]
        lines += ["  " + x for x in sub_lines]
    return lines


def _is_poise_run(path: Path) -> bool:
    """A ``poise train`` folder: its per-epoch history, or its held-out check, beside the model."""
    from ..poise.check import CHECK_FILE

    return (path / CHECK_FILE).exists() or (path / "history.csv").exists()


def _describe_poise(path: Path) -> list[str]:
    """A ``poise train`` OUT_DIR: the model, its epochs and its held-out cross-generation check."""
    import pandas as pd

    from ..poise.check import CHECK_FILE, check_from_dict

    epochs = len(pd.read_csv(path / "history.csv")) if (path / "history.csv").exists() else "?"
    if not (path / CHECK_FILE).exists():
        # check.json is written when training ends; history.csv after every epoch
        return [f"{path}: paired-modality model (`usvpipe poise train`), {epochs} epoch(s) in history.csv, no held-out "
                f"check: either training did not finish (continue with `usvpipe poise train PAIRS {path} --resume`) "
                "or the model is from before usvpipe checked cross-generation"]
    try:
        saved = _io.read_json(path / CHECK_FILE)
        check, model = check_from_dict(saved), saved.get("model", "paired-modality")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"{path}: paired-modality model (`usvpipe poise train`), {epochs} epochs; {CHECK_FILE} is unreadable "
                f"({type(exc).__name__}), so cross-generation counts as unchecked (fix: re-run `usvpipe poise train "
                f"PAIRS {path} --resume`, which checks the finished model again)"]
    return ([f"{path}: trained {model} model (`usvpipe poise train`), {epochs} epochs; {check.summary()}"]
            + ["  " + line for line in check.lines()] + [f"  warning: {line}" for line in check.warnings()])


def store_padded_warning(store_dir: Path) -> str:
    """The store's syllables whose images run past their recording ("" when none or unknown)."""
    from ..segmentation.images import PADDED_COLUMN, padded_images_line

    try:
        # only the two columns; a store written before the column existed reads without it: ""
        table = read_csv(store_dir / "syllables.csv", usecols=lambda c: c in ("recording", PADDED_COLUMN),
                         text_columns=("recording",))
    except (OSError, ValueError):
        return ""
    return padded_images_line(table)


def latents_atypical_warning(latents_path: Path) -> str:
    """The sidecar's sentence on syllables with atypical latents ("" when none, unknown or no latents)."""
    from ..artifacts import Latents

    return (Latents.read_meta(latents_path).get("atypical_warning") or "") if latents_path.exists() else ""


def _describe_run(path: Path) -> list[str]:
    """``usvpipe run``'s output: the stages, what the answer must not be read as, and its store and model."""
    from ..vae.readout import readout_warning

    m = _io.read_json(path / "run_manifest.json")
    lines = [f"{path}: usvpipe run (usvpipe {m.get('usvpipe_version')}, {m.get('wall_s', '?')} s)"]
    for s in m.get("stages", []):
        lines.append(f"  {s['name']:<8} {s['status']:<22} {s.get('detail', '')}")
    answer = m.get("answer") or {}
    weak = readout_warning(answer.get("latent_readout"))
    if answer.get("interpretable") is False:
        lines.append(f"  answer: {answer.get('do_not_interpret')}")
    elif weak:
        lines.append(f"  warning: {weak}")
    atypical = latents_atypical_warning(path / "latents.csv")
    if atypical:
        lines.append(f"  warning: {atypical}")
    if m.get("segment_failures"):
        lines.append(f"  {len(m['segment_failures'])} recording(s) failed; see store/errors.csv")
    for sub in ("store", "model"):
        if (path / sub).exists():
            lines += ["  " + x for x in describe_directory(path / sub)]
    return lines


def _describe_file(path: Path) -> str:
    """One line about a single file: a WAV, one of usvpipe's tables, a model or a report."""
    suffix = path.suffix.lower()
    if suffix in (".wav", ".wave"):
        return _describe_wav(path)
    if suffix == ".h5" or (suffix == ".csv" and _has_latents(path)):
        from ..vae import read_latents

        try:
            table = read_latents(path)
        except Exception as exc:  # noqa: BLE001 - describing, not validating
            raise UsvpipeError(f"{path}: not a latents table ({exc})") from None
        zcols = [c for c in table.columns if c.startswith("z") and c[1:].isdigit()]
        from ..artifacts import Latents
        from ..vae.readout import readout_warning

        meta = Latents.read_meta(path)
        notes = [line for line in (readout_warning(meta.get("readout")), meta.get("atypical_warning")) if line]
        return (f"{path}: latents table, {len(table)} syllables, {len(zcols)}-d latents"
                + "".join(f"; warning: {line}" for line in notes))
    if suffix in (".csv", ".tsv", ".txt"):
        return _describe_table(path)
    if suffix == ".pt":
        from ..vae.checkpoint import load_checkpoint

        try:
            ck = load_checkpoint(path)
        except UsvpipeError as exc:
            return f"{exc}"
        return (f"{path}: usvpipe VAE {'training checkpoint' if ck.get('kind') == 'checkpoint' else 'model'}, epoch {ck.get('epoch', '?')}, "
                f"latent dim {(ck.get('model_config') or {}).get('latent_dim', '?')}, usvpipe {ck.get('usvpipe_version', '?')}")
    if path.name == "report.json":
        return f"{path}: MMD report: {describe_mmd(_io.read_json(path))}"
    return f"{path}: a file, not a usvpipe output"


def _has_latents(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            header = fh.readline().strip().split(",")
    except OSError:
        return False
    return any(c.startswith("z") and c[1:].isdigit() for c in header)


def _describe_wav(path: Path) -> str:
    from ..audio import audio_info
    from ..segmentation.spectrogram import SpectrogramParams

    info = audio_info(path)  # raises a one-line InputFileError for a bad file
    band = SpectrogramParams()
    nyq = info.sample_rate_hz / 2
    fit = ("covers the default USV band" if nyq >= band.max_freq_hz else
           f"Nyquist {nyq:.0f} Hz is below the default band {band.min_freq_hz:.0f}-{band.max_freq_hz:.0f} Hz")
    ch = "mono" if info.n_channels == 1 else f"{info.n_channels} channels (choose one with --channel)"
    return (f"{path}: WAV, {info.sample_rate_hz} Hz, {ch}, {info.duration_s:.3f} s ({info.n_frames} frames); {fit}")


def _describe_table(path: Path) -> str:
    try:
        table = read_csv(path, all_text=True, nrows=2_000_000)
    except Exception as exc:  # noqa: BLE001 - describing, not validating
        return f"{path}: not a readable CSV ({type(exc).__name__})"
    cols = set(table.columns)
    if {"path", "recording", "reason"} <= cols:
        return f"{path}: segmentation error list, {len(table)} failed recording(s)"
    if {"shard", "index", "recording", "onset_s"} <= cols:
        return (f"{path}: syllable table of a store, {len(table)} syllables in {table['recording'].nunique()} "
                "recording(s)")
    if {"recording", "onset_s", "offset_s"} <= cols:
        return (f"{path}: segments table, {len(table)} syllables in {table['recording'].nunique()} recording(s)"
                + (f", groups {', '.join(sorted(table['group'].unique())[:6])}" if "group" in cols else ""))
    if {"path", "animal", "group"} <= cols:
        return (f"{path}: metadata CSV, {len(table)} recording(s), {table['animal'].nunique()} animal(s), "
                f"groups {', '.join(sorted(table['group'].unique())[:6])}")
    try:
        from ..annotations import read_segments

        seg = read_segments(path)
        return f"{path}: onset/offset table, {len(seg)} syllables"
    except Exception:  # noqa: BLE001 - not an annotation table either
        return f"{path}: a table with columns {', '.join(list(table.columns)[:8])}, not a usvpipe table"
