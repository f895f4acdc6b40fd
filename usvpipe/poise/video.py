"""Behaviour videos through PyAV (optional extra ``video``: ``pip install usvpipe[video]``).

PyAV's wheels bundle FFmpeg, so mp4/avi/mkv/mov files decode without a system FFmpeg.
``av`` is imported on first use only: ``import usvpipe`` (and ``usvpipe.poise``) work
without it, and a missing ``av`` is a one-line error naming the extra.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError, UsvpipeError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v")


def _av():
    try:
        import av
    except ImportError:
        raise UsvpipeError("reading videos needs PyAV (fix: pip install 'usvpipe[video]' or pip install av)") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself (first video stream)."""

    path: Path
    fps: float
    duration_s: float
    width: int
    height: int


def video_info(path, *, fps: float = 0.0) -> VideoInfo:
    """Frame rate, duration and frame size of ``path``.

    ``fps > 0`` overrides the container's frame rate (for files that do not state one).

    Raises
    ------
    InputFileError
        Missing or unreadable file, no video stream, unknown frame rate or duration.
    """
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "video not found", "check the path")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputFileError(path, "has no video stream", "pass the behaviour video file")
            stream = container.streams.video[0]
            rate = fps if fps > 0 else _stream_rate(stream)
            if not rate or not math.isfinite(rate) or rate <= 0:
                raise InputFileError(path, "unknown frame rate (the file states none)",
                                     "re-encode it with a constant frame rate, or pass --fps")
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000  # av.time_base
            elif stream.frames:
                duration = stream.frames / rate
            if duration is None or not duration > 0:
                raise InputFileError(path, "unknown duration", "re-encode (remux) the video")
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
    except InputFileError:
        raise
    except Exception as exc:  # av.error.* (InvalidDataError, ...), OSError
        raise InputFileError(path, f"not a readable video ({_why(exc)})", "check the file is complete, or re-encode it") from None
    return VideoInfo(path, float(rate), duration, width, height)


def _stream_rate(stream):
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        r = getattr(stream, attr, None)
        if r is not None and float(r) > 0:
            return float(r)
    return None


def resize_grey(img: np.ndarray, size) -> np.ndarray:
    """``(H, W)`` uint8 grey -> ``size = (h, w)`` float32 in [0, 1] (antialiased)."""
    from PIL import Image  # matplotlib's dependency

    h, w = int(size[0]), int(size[1])
    out = Image.fromarray(np.ascontiguousarray(img)).resize((w, h), Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


def crop(img: np.ndarray, roi, path) -> np.ndarray:
    """Region of interest ``roi = (x, y, width, height)`` in pixels of the full frame."""
    if roi is None:
        return img
    x, y, w, h = (int(v) for v in roi)
    H, W = img.shape
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > W or y + h > H:
        raise InputFileError(path, f"region of interest x={x}, y={y}, {w}x{h} does not fit the {W}x{H} frame",
                             "pass --roi X Y WIDTH HEIGHT inside the frame")
    return img[y:y + h, x:x + w]


def read_frames(path, times_s, *, size=(32, 32), roi=None, fps: float = 0.0) -> np.ndarray:
    """Grey frames shown at the times ``times_s`` (seconds of video time), resized to ``size``.

    One sequential decoding pass (no seeking, so keyframe spacing does not matter): for each
    time, the last frame whose presentation time is ``<= t`` (the frame on screen at ``t``).
    Returns ``(len(times_s), h, w)`` float32 in [0, 1].

    Raises
    ------
    InputFileError
        Unreadable/corrupt file, a time outside the video, or an ROI outside the frame.
    """
    av = _av()
    path = Path(path)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    out = np.zeros((len(times), int(size[0]), int(size[1])), dtype=np.float32)
    if not len(times):
        return out
    if times.min() < 0:
        raise InputFileError(path, f"a frame is needed at {times.min():.3f} s, before the video starts",
                             "check the sync offset (--offset-s)")
    order = np.argsort(times, kind="stable")
    k = 0  # next target, in time order
    held = None  # [frame, grey array or None]: the frame on screen until the next one

    def grey(entry):
        if entry[1] is None:
            entry[1] = resize_grey(crop(entry[0].to_ndarray(format="gray"), roi, path), size)
        return entry[1]

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = fps if fps > 0 else _stream_rate(stream)
            for i, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if (frame.time is not None and fps <= 0) else i / rate
                current = [frame, None]
                while k < len(order) and times[order[k]] < t:
                    # Shown before this frame: the held one (or, before the first frame, this one).
                    out[order[k]] = grey(held if held is not None else current)
                    k += 1
                if k >= len(order):
                    break
                held, held_t = current, t
            else:
                # Targets at or after the last frame: the last frame while it is on screen.
                if held is None:
                    raise InputFileError(path, "no frames could be decoded", "check the file is complete, or re-encode it")
                end = held_t + 1.0 / rate
                if k < len(order) and times[order[-1]] >= end:
                    raise InputFileError(path, f"video ends at {end:.3f} s, but a frame at {times[order[-1]]:.3f} s is needed",
                                         "check the sync offset and drift, or that this is the whole video")
                while k < len(order):
                    out[order[k]] = grey(held)
                    k += 1
    except InputFileError:
        raise
    except Exception as exc:  # av.error.* while decoding a damaged file
        raise InputFileError(path, f"could not decode the video ({_why(exc)})", "check the file is complete, or re-encode it") from None
    return out


def _why(exc) -> str:
    text = str(exc).splitlines()[0][:100] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def write_video(path, frames: np.ndarray, fps: int = 30) -> Path:
    """Write grey frames ``(n, H, W)`` in [0, 1] as an H.264 mp4 (atomically; for tests and demos).

    ``H`` and ``W`` must be even (yuv420p).
    """
    from .._io import atomic_path

    av = _av()
    frames = np.asarray(frames)
    n, h, w = frames.shape
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(fps))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": "10", "preset": "ultrafast"}
            for img in frames:
                grey = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, -1), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return Path(path)
