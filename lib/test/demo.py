"""The library side of the video demo (``tracking/video_demo.py``): frame sources, the initial box, annotated
output, the boxes-and-scores file and the optional window.

* **Sources** (:func:`open_source`): a video file (anything OpenCV's ``VideoCapture`` decodes), a folder of
  ``.jpg`` / ``.jpeg`` / ``.png`` frames (sorted by name with numbers compared as numbers, so ``2.jpg`` comes
  before ``10.jpg``), or a webcam index given as an integer string (``"0"``). An existing path always wins over
  a webcam index. Frames come out as OpenCV reads them, BGR uint8; the tracker is given RGB.
* **Initial box** (:func:`resolve_initial_box`), in this order: ``--optional_box x y w h``; the first line of
  ``groundtruth.txt`` in an image folder; a box drawn with ``cv2.selectROI`` when a window can be shown;
  otherwise a :class:`DemoError` asking for ``--optional_box``.
* **Outputs**: an annotated video (box and score drawn on every frame, ``mp4v`` fourcc; when that codec cannot
  be opened, MJPG in an ``.avi`` next to the requested path, with a warning) and, on request, a text file with
  one line per frame ``x,y,w,h,score`` (comma-separated, no header, so ``np.loadtxt(path, delimiter=",")`` reads
  it). The first frame's score is ``nan``: that box is the given one, not a prediction. The other scores are the
  tracker's ``best_score`` (mean confidence of the four coordinate tokens, in [0, 1]).
* **Display** (:func:`should_show`): a window is shown only when asked for *and* a display exists (on Linux
  ``DISPLAY`` or ``WAYLAND_DISPLAY`` set) *and* this OpenCV build has GUI support (the pip
  ``opencv-python-headless`` wheel has none). Otherwise the demo logs that it runs headless. In the window, ``q``
  or Esc stops the run; Ctrl+C stops it anywhere, and what was tracked so far is kept.
* **The command** (:func:`run_video_demo`, behind ``tracking/video_demo.py``): the checkpoint (``--checkpoint``,
  else the official location for ``TEST.EPOCH``, or none with ``--random_weights``), the tracker from
  :func:`lib.api.build_tracker`, the default output ``<save_dir>/demo/<source>_<script>.mp4`` and the exit status:
  0 done, 2 bad input, 1 tracking failed.
"""
from __future__ import annotations

import abc
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from lib.api import build_tracker
from lib.config.loader import ConfigError, load_config
from lib.test.evaluation.environment import env_settings
from lib.test.evaluation.run_benchmark import config_name, default_checkpoint
from lib.utils.checkpoint import CheckpointError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
#: Frame rate of the output video when the source does not report one (image folders, most webcams).
DEFAULT_FPS = 30.0
WINDOW_NAME = "FARTrack demo (q / Esc to stop)"
BOX_COLOR = (0, 255, 0)  # BGR
TEXT_COLOR = (255, 255, 255)


class DemoError(RuntimeError):
    """Bad demo input (missing source, unreadable frame, no initial box, unwritable output), said plainly."""


# ---------------------------------------------------------------------------------------------------- sources
def natural_key(name: str) -> list:
    """Sort key comparing digit runs as numbers (``frame2`` < ``frame10``), the rest case-insensitively."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)]


class FrameSource(abc.ABC):
    """An iterable of BGR uint8 frames with what the demo needs to know about it.

    Attributes:
        kind: ``"folder"``, ``"video"`` or ``"webcam"``.
        label: a short name for output files (folder name, video stem, ``webcam0``).
        total: the number of frames when known (folders; video files that report a frame count), else None.
        fps: the source frame rate, :data:`DEFAULT_FPS` when unknown.
        folder: the image folder (``kind == "folder"``), else None.
    """

    kind: str = ""
    label: str = ""
    total: Optional[int] = None
    fps: float = DEFAULT_FPS
    folder: Optional[Path] = None

    @abc.abstractmethod
    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the frames, BGR uint8, in order."""

    def close(self) -> None:
        """Release the underlying reader (no-op for image folders)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ImageFolderSource(FrameSource):
    """The ``.jpg`` / ``.jpeg`` / ``.png`` files of a folder, in natural name order."""

    kind = "folder"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.label = folder.resolve().name
        self.files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                            key=lambda p: natural_key(p.name))
        if not self.files:
            raise DemoError(f"image folder {folder} holds no {' / '.join(IMAGE_EXTENSIONS)} frames")
        self.total = len(self.files)
        self.fps = DEFAULT_FPS

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.files:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DemoError(f"cannot read frame {path} (empty, truncated or not an image)")
            yield frame


class CaptureSource(FrameSource):
    """A video file or a webcam read through ``cv2.VideoCapture``."""

    def __init__(self, capture: cv2.VideoCapture, kind: str, label: str) -> None:
        self.capture = capture
        self.kind = kind
        self.label = label
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == "video" else 0
        self.total = count if count > 0 else None
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if math.isfinite(fps) and 1.0 <= fps <= 1000.0 else DEFAULT_FPS

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return
            yield frame

    def close(self) -> None:
        self.capture.release()


def open_source(source: str) -> FrameSource:
    """Open ``source``: an image folder, a video file, or a webcam index (an integer string such as ``"0"``)."""
    path = Path(os.path.expanduser(str(source)))
    if path.is_dir():
        return ImageFolderSource(path)
    if path.is_file():
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise DemoError(f"cannot open video file {path}: OpenCV cannot decode it (not a video, or an "
                            f"unsupported codec)")
        return CaptureSource(capture, "video", path.stem)
    text = str(source).strip()
    if text.isdigit():
        index = int(text)
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise DemoError(f"cannot open webcam {index} (no camera with that index, or it is in use)")
        return CaptureSource(capture, "webcam", f"webcam{index}")
    raise DemoError(f"source {str(source)!r} not found: expected a video file, an image folder or a webcam index "
                    f"(0, 1, ...)")


# ---------------------------------------------------------------------------------------------------- display
def gui_support() -> tuple[bool, str]:
    """Whether this OpenCV build can open windows, and why not (read from ``cv2.getBuildInformation``)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            backend = value.strip()
            if backend.upper() in ("", "NONE", "NO"):
                return False, "this OpenCV build has no GUI support (e.g. opencv-python-headless)"
            return True, f"OpenCV GUI backend {backend}"
    # Builds that do not report a GUI line: ask the library itself.
    try:
        cv2.namedWindow(WINDOW_NAME)
        cv2.destroyWindow(WINDOW_NAME)
    except cv2.error:
        return False, "this OpenCV build cannot open windows"
    return True, "OpenCV can open windows"


def display_available(environ: Optional[dict] = None, platform: str = sys.platform) -> tuple[bool, str]:
    """Whether a window can be shown here, and why not.

    On Linux a display server must be named by ``DISPLAY`` or ``WAYLAND_DISPLAY``; on other platforms the desktop
    is assumed. In both cases OpenCV must have GUI support.
    """
    environ = os.environ if environ is None else environ
    if platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return False, "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return gui_support()


def should_show(requested: bool) -> bool:
    """True when a window is both requested and possible; logs the headless reason otherwise."""
    if not requested:
        logger.info("running headless (pass --show to open a window when a display exists)")
        return False
    available, reason = display_available()
    if not available:
        logger.warning("--show requested, but %s: running headless", reason)
        return False
    logger.info("showing the tracking window (%s)", reason)
    return True


# ---------------------------------------------------------------------------------------------------- initial box
def check_box(values: Sequence[float], origin: str) -> list[float]:
    """``values`` as ``[x, y, w, h]`` floats; a :class:`DemoError` naming ``origin`` unless 4 finite with w, h > 0."""
    try:
        box = [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise DemoError(f"{origin}: the box must be 4 numbers x y w h, got {list(values)!r}") from error
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        raise DemoError(f"{origin}: the box must be 4 finite numbers x y w h with w, h > 0, got {list(values)!r}")
    return box


def read_groundtruth_box(path: Path) -> list[float]:
    """The first non-empty line of a ground-truth file (comma, tab or space separated) as ``[x, y, w, h]``."""
    for line in path.read_text().splitlines():
        if line.strip():
            return check_box([v for v in re.split(r"[,\s]+", line.strip()) if v], f"first line of {path}")
    raise DemoError(f"{path} is empty: no initial box in it")


def select_box(frame: np.ndarray) -> list[float]:
    """Let the user draw the initial box on ``frame`` (BGR) with ``cv2.selectROI``."""
    logger.info("draw the target box and press Enter or Space (c cancels)")
    x, y, w, h = cv2.selectROI(WINDOW_NAME, frame, showCrosshair=True, fromCenter=False)
    if w <= 0 or h <= 0:
        raise DemoError("no box was drawn: draw one, or pass --optional_box x y w h")
    return [float(x), float(y), float(w), float(h)]


def resolve_initial_box(optional_box: Optional[Sequence[float]], source: FrameSource, first_frame: np.ndarray,
                        can_select: bool) -> list[float]:
    """The initial ``[x, y, w, h]``: the given box, else the folder's ``groundtruth.txt``, else a drawn one.

    ``can_select`` says whether a window may be opened for ``cv2.selectROI`` (``--show`` and a display).
    """
    if optional_box is not None:
        return check_box(optional_box, "--optional_box")
    if source.folder is not None and (source.folder / "groundtruth.txt").is_file():
        path = source.folder / "groundtruth.txt"
        box = read_groundtruth_box(path)
        logger.info("no --optional_box: using the first line of %s as the initial box %s", path, box)
        return box
    if can_select:
        return select_box(first_frame)
    raise DemoError("no initial box: pass --optional_box x y w h (or --show on a machine with a display to draw "
                    "one, or use an image folder holding a groundtruth.txt)")


# ---------------------------------------------------------------------------------------------------- outputs
def draw_annotation(frame: np.ndarray, box: Sequence[float], score: float, index: int) -> np.ndarray:
    """A copy of ``frame`` (BGR) with ``box`` drawn and ``#index score`` written in the top-left corner."""
    out = frame.copy()
    x, y, w, h = box
    thickness = max(2, round(min(out.shape[:2]) / 240))
    cv2.rectangle(out, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))), BOX_COLOR, thickness)
    label = f"#{index} init" if not math.isfinite(score) else f"#{index} score {score:.2f}"
    scale = max(0.5, min(out.shape[:2]) / 480)
    origin = (8, int(8 + 22 * scale))
    # A dark outline under the white text keeps it readable on any background.
    cv2.putText(out, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(out, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, thickness, cv2.LINE_AA)
    return out


class AnnotatedVideoWriter:
    """Writes BGR frames of one size to a video: ``mp4v`` at ``path``, else MJPG at ``path`` with ``.avi``.

    ``path`` is the file actually written (it changes when the fallback is used). Frames of another size (image
    folders may mix sizes) are resized to the first frame's size.
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DemoError(f"cannot create the folder of the annotated video {path}: {error}") from error
        self.size = size
        self._resize_warned = False
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        self.path = path
        if not self.writer.isOpened():
            self.writer.release()
            fallback = path.with_suffix(".avi")
            logger.warning("cannot write %s with the mp4v codec on this OpenCV build: writing MJPG to %s instead",
                           path, fallback)
            self.writer = cv2.VideoWriter(str(fallback), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
            self.path = fallback
            if not self.writer.isOpened():
                self.writer.release()
                raise DemoError(f"cannot write the annotated video: neither mp4v ({path}) nor MJPG ({fallback}) can "
                                f"be opened by this OpenCV build, or the folder is not writable")

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            if not self._resize_warned:
                logger.warning("frame size %dx%d differs from the first frame's %dx%d: resizing for the video",
                               frame.shape[1], frame.shape[0], *self.size)
                self._resize_warned = True
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.release()


class ResultsFile:
    """The boxes-and-scores text file, one ``x,y,w,h,score`` line per frame, written as the frames go by (so an
    interrupted run keeps what it tracked). The first frame's score is ``nan``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handle = path.open("w", encoding="utf-8")

    def write(self, box: Sequence[float], score: float) -> None:
        self.handle.write(",".join(f"{v:.2f}" for v in box) + f",{score:.4f}\n")

    def close(self) -> None:
        self.handle.close()


# ---------------------------------------------------------------------------------------------------- the run
@dataclass
class DemoSummary:
    """What a run did: frames handled (the first included), seconds spent in ``track`` (frames after the first),
    the files written, and whether it stopped before the source ended (q / Esc / Ctrl+C / ``max_frames``)."""

    frames: int
    track_seconds: float
    video_path: Optional[Path]
    results_path: Optional[Path]
    stopped_early: bool = False

    @property
    def fps(self) -> float:
        """Mean tracking speed over the frames after the first (network, crops, decode; not reading or drawing)."""
        tracked = self.frames - 1
        return tracked / self.track_seconds if tracked > 0 and self.track_seconds > 0 else float("nan")


def run_demo(tracker, source: FrameSource, frames: Iterator[np.ndarray], first_frame: np.ndarray,
             init_box: Sequence[float], *, video_path: Optional[Path], results_path: Optional[Path],
             show: bool = False, progress: bool = True, max_frames: Optional[int] = None) -> DemoSummary:
    """Track ``init_box`` from ``first_frame`` through the rest of ``frames`` (BGR) with ``tracker``.

    ``tracker`` follows the ``initialize`` / ``track`` contract on RGB frames. ``frames`` is the iterator the first
    frame was taken from. Writes the annotated video to ``video_path`` and the boxes and scores to ``results_path``
    (either may be None), shows the window when ``show``, and stops after ``max_frames`` frames if given.
    """
    writer = AnnotatedVideoWriter(video_path, source.fps, (first_frame.shape[1], first_frame.shape[0])) \
        if video_path is not None else None
    try:
        results = ResultsFile(results_path) if results_path is not None else None
    except OSError as error:
        if writer is not None:
            writer.close()
        raise DemoError(f"cannot write the results file {results_path}: {error}") from error
    total = source.total if max_frames is None else min(source.total or max_frames, max_frames)
    bar = tqdm(total=total, desc=f"tracking {source.label}", unit="frame", disable=not progress)
    count, track_seconds, stopped_early = 0, 0.0, False

    def emit(frame: np.ndarray, box: Sequence[float], score: float) -> bool:
        """Record one frame; False when the user asked to stop."""
        nonlocal count
        annotated = draw_annotation(frame, box, score, count) if (writer is not None or show) else None
        if writer is not None:
            writer.write(annotated)
        if results is not None:
            results.write(box, score)
        count += 1
        bar.update()
        if show:
            cv2.imshow(WINDOW_NAME, annotated)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                logger.info("stopped from the window after %d frames", count)
                return False
        return True

    try:
        tracker.initialize(cv2.cvtColor(first_frame, cv2.COLOR_BGR2RGB), {"init_bbox": list(init_box)})
        keep_going = emit(first_frame, init_box, float("nan"))
        for frame in frames:
            if not keep_going or (max_frames is not None and count >= max_frames):
                stopped_early = True
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            start = time.perf_counter()
            out = tracker.track(rgb)
            track_seconds += time.perf_counter() - start
            keep_going = emit(frame, out["target_bbox"], float(out.get("best_score", float("nan"))))
            if count > 1:
                bar.set_postfix_str(f"{(count - 1) / max(track_seconds, 1e-9):.1f} FPS", refresh=False)
        else:
            stopped_early = not keep_going
    except KeyboardInterrupt:
        logger.warning("interrupted: keeping the %d frames tracked so far", count)
        stopped_early = True
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if results is not None:
            results.close()
        if show:
            cv2.destroyAllWindows()
    return DemoSummary(count, track_seconds, writer.path if writer is not None else None,
                       results.path if results is not None else None, stopped_early)


# ---------------------------------------------------------------------------------------------------- the CLI
#: The log name of ``tracking/video_demo.py`` (its messages read ``INFO video_demo: ...``).
cli_logger = logging.getLogger("video_demo")


def demo_checkpoint(script: str, config: str, checkpoint: Optional[Path], random_weights: bool) -> Optional[Path]:
    """The weights of a demo run: ``checkpoint``, else (without ``random_weights``) the official location for
    ``TEST.EPOCH``, else None. Raises DemoError when the file is missing, ConfigError / FileNotFoundError when the
    config cannot be loaded."""
    cfg = load_config(script, config)
    if random_weights:
        cli_logger.warning("--random_weights: the network keeps its random initialisation; the boxes are meaningless")
    elif checkpoint is None:
        checkpoint = default_checkpoint(env_settings().save_dir, script, config_name(cfg, config), cfg.TEST.EPOCH)
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise DemoError(f"checkpoint {checkpoint} not found: pass --checkpoint PATH (or --random_weights for a smoke "
                        f"run)")
    return checkpoint


def print_summary(summary: DemoSummary) -> None:
    """The lines ``tracking/video_demo.py`` prints at the end of a run."""
    fps = "n/a (a single frame)" if math.isnan(summary.fps) else f"{summary.fps:.1f}"
    counted = f"{summary.frames} frame{'s' if summary.frames != 1 else ''}"
    print(f"tracked {counted}; mean FPS {fps} (tracking only, frames after the first)")
    print(f"annotated video: {summary.video_path}")
    if summary.results_path is not None:
        print(f"boxes and scores: {summary.results_path}")


def run_video_demo(script: str, config: str, source: str, *, optional_box: Optional[Sequence[float]] = None,
                   checkpoint: Optional[Path] = None, random_weights: bool = False, save_results: bool = False,
                   output: Optional[Path] = None, show: bool = False, device: Optional[str] = None,
                   depth: Optional[int] = None, precision: str = "fp32", faithful: bool = False,
                   threads: Optional[int] = None, max_frames: Optional[int] = None, no_progress: bool = False) -> int:
    """Run ``tracking/video_demo.py``'s job (its options, same names): 0 done, 2 bad input, 1 tracking failed."""
    if max_frames is not None and max_frames < 1:
        cli_logger.error("--max_frames must be at least 1, got %d", max_frames)
        return 2
    try:
        checkpoint = demo_checkpoint(script, config, checkpoint, random_weights)
    except (ConfigError, FileNotFoundError, DemoError) as error:
        cli_logger.error("%s", error)
        return 2
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        frame_source = open_source(source)
    except DemoError as error:
        cli_logger.error("%s", error)
        return 2
    with frame_source:
        show = should_show(show)
        frames = iter(frame_source)
        try:
            first_frame = next(frames, None)
            if first_frame is None:
                raise DemoError(f"no frame could be read from {source}")
            init_box = resolve_initial_box(optional_box, frame_source, first_frame, can_select=show)
        except DemoError as error:
            cli_logger.error("%s", error)
            return 2
        try:
            tracker = build_tracker(script, config, checkpoint, device=device, depth=depth, precision=precision,
                                    faithful=faithful, threads=threads)
        except (ValueError, CheckpointError, FileNotFoundError) as error:
            cli_logger.error("cannot build the tracker: %s", error)
            return 2
        video_path = output or Path(env_settings().save_dir) / "demo" / f"{frame_source.label}_{script}.mp4"
        results_path = video_path.with_suffix(".txt") if save_results else None
        cli_logger.info("tracking %s (%s) from box %s", source, frame_source.kind, init_box)
        try:
            summary = run_demo(tracker, frame_source, frames, first_frame, init_box, video_path=video_path,
                               results_path=results_path, show=show, progress=not no_progress,
                               max_frames=max_frames)
        except DemoError as error:
            cli_logger.error("tracking stopped: %s", error)
            return 1
    print_summary(summary)
    return 0
