"""``usvpipe segment``: WAV files/folders -> segments.csv + syllable store."""
from __future__ import annotations

import sys
from pathlib import Path

import click


def _channel(value):
    if value is None:
        return None
    if str(value).lower() == "mix":
        return "mix"
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter("expected a channel index (0, 1, ...) or 'mix'") from None


@click.command("segment")
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="usvpipe.toml; its [spectrogram], [segment] and [syllables] sections set defaults.")
@click.option("--metadata", type=click.Path(path_type=Path), help="CSV path,animal,group,... (default: layout group/animal/*.wav).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Worker processes (each handles whole recordings).")
@click.option("--shard", help="Process task i of N (0-based, e.g. 0/4); default from SLURM_ARRAY_TASK_ID/COUNT.")
@click.option("--channel", help="Channel of multichannel files: an index or 'mix' (required for multichannel files).")
@click.option("--min-freq-hz", type=float, help="Lower edge of the analysis band [30000].")
@click.option("--max-freq-hz", type=float, help="Upper edge of the analysis band [110000].")
@click.option("--window-s", type=float, help="STFT window length in seconds [0.002048].")
@click.option("--hop-s", type=float, help="STFT hop in seconds [0.001536].")
@click.option("--threshold-mode", type=click.Choice(["noise", "absolute"]), help="Amplitude trace: dB above the noise floor (noise) or AVA's absolute amplitude [noise].")
@click.option("--trace", type=click.Choice(["tonal", "band_power"]),
              help="Detection trace in noise mode: the strongest whitened bin over the frame's own spectral envelope "
                   "(tonal: broadband clicks/scratches/bursts are not calls) or over its noise floor (band_power) [tonal].")
@click.option("--high-threshold", type=float, help="Peak threshold (dB above the noise floor) [14].")
@click.option("--low-threshold", type=float, help="Edge threshold (dB above the noise floor) [12].")
@click.option("--smoothing-s", type=float, help="Gaussian smoothing of the amplitude trace, seconds [0].")
@click.option("--min-dur-s", type=float, help="Shortest syllable kept, seconds [0.005].")
@click.option("--max-dur-s", type=float, help="Longest syllable kept, seconds [0.5].")
@click.option("--min-gap-s", type=float, help="Merge syllables closer than this, seconds [0.010].")
@click.option("--contour-max-gap-s", type=float,
              help="Join pieces closer than this when their contour is continuous, seconds; 0 = off [0.020].")
@click.option("--contour-max-jump-hz", type=float,
              help="Largest frequency step between one piece's end and the next one's start that the contour rule joins [10000].")
@click.option("--time-stretch/--no-time-stretch", default=None, help="Syllable images: AVA sqrt time stretch or a fixed window [stretch].")
@click.option("--exclude", "exclude", multiple=True, type=click.Path(path_type=Path),
              help="review.csv exported by the explorer (repeatable): detections reviewed as noise are dropped "
                   "(matched by time, intersection over union >= 0.5), relabelled ones get a label column.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def segment(in_dir, out_dir, config_path, metadata, jobs, shard, channel, min_freq_hz, max_freq_hz, window_s, hop_s, threshold_mode,
            trace, high_threshold, low_threshold, smoothing_s, min_dur_s, max_dur_s, min_gap_s, contour_max_gap_s,
            contour_max_jump_hz, time_stretch, exclude, no_progress):
    """Find syllables in every WAV under IN_DIR and write OUT_DIR.

    IN_DIR is a folder (searched recursively), a WAV file, or a .txt file listing WAV
    paths. OUT_DIR receives segments.csv (recording, onset_s, offset_s, scores), the
    syllable store (shards/, syllables.csv, manifest.json) and errors.csv. Re-running
    skips recordings that are already done; a bad file is reported and the rest
    continue (exit status 1 if any recording failed).
    """
    from ..config import load_config, params_from_mapping
    from ..segmentation.batch import segment_recordings
    from ..segmentation.exclusions import describe_review_totals
    from ..segmentation.params import SegmentParams, SyllableParams
    from ..segmentation.spectrogram import SpectrogramParams

    cfg = load_config(config_path) if config_path else {}
    sp = params_from_mapping(SpectrogramParams, cfg.get("spectrogram"), section="spectrogram",
                             min_freq_hz=min_freq_hz, max_freq_hz=max_freq_hz, window_s=window_s, hop_s=hop_s)
    seg = params_from_mapping(SegmentParams, cfg.get("segment"), section="segment", threshold_mode=threshold_mode,
                              trace=trace, high_threshold=high_threshold, low_threshold=low_threshold, smoothing_s=smoothing_s,
                              min_dur_s=min_dur_s, max_dur_s=max_dur_s, min_gap_s=min_gap_s,
                              contour_max_gap_s=contour_max_gap_s, contour_max_jump_hz=contour_max_jump_hz)
    syl = params_from_mapping(SyllableParams, cfg.get("syllables"), section="syllables", time_stretch=time_stretch)
    run = segment_recordings(in_dir, out_dir, spectrogram=sp, segmentation=seg, syllables=syl, metadata=metadata,
                             jobs=jobs, shard=shard, progress=not no_progress, channel=_channel(channel),
                             exclude=list(exclude) or None)
    rt = f", {run.realtime_factor:.0f}x real time" if run.audio_s > 0 else ""
    click.echo(
        f"segment: {run.n_recordings} recording(s): {run.n_done} done, {run.n_skipped} skipped (up to date), "
        f"{run.n_failed} failed; {run.n_syllables} syllable(s) found in {run.audio_s:.1f} s of audio; "
        f"{run.elapsed_s:.1f} s{rt}"
    )
    if run.n_padded:
        click.echo(f"segment: warning: {run.padded_warning()}", err=True)
    if run.pruned:
        click.echo(f"segment: removed {len(run.pruned)} recording(s) from the store that are no longer among the "
                   f"inputs (e.g. {run.pruned[0]})", err=True)
    if run.review_totals:
        t = run.review_totals
        click.echo(f"segment: exclusion list ({', '.join(run.review_files)}): {describe_review_totals(t)} "
                   f"(counts per recording in {run.out_dir / 'manifest.json'})")
        if t["n_rows_unmatched"]:
            click.echo(f"segment: warning: {t['n_rows_unmatched']} review row(s) overlap no detection with "
                       "intersection over union >= 0.5 (the parameters moved or removed those detections)", err=True)
    elif run.review_files and run.merged:
        click.echo(f"segment: exclusion list ({', '.join(run.review_files)}): no rows for these recordings")
    if run.merged:
        click.echo(f"segment: wrote {run.segments_path} ({run.n_syllables_total} syllables) and the store in {run.out_dir}")
    else:
        click.echo("segment: other shards are still pending; the last task to finish merges the store (or run `usvpipe merge`)")
    if run.failures:
        click.echo(f"segment: {len(run.failures)} recording(s) failed (also listed in {run.errors_path}):", err=True)
        for path, reason in run.failures:
            click.echo(f"  {reason if reason.startswith(str(path)) else f'{path}: {reason}'}", err=True)
        sys.exit(1)
