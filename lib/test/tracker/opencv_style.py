"""An OpenCV-style tracker (``init`` / ``update -> (ok, box)``) with a lost-target signal, over any of our trackers.

    import cv2
    from lib.api import build_opencv_tracker

    tracker = build_opencv_tracker(checkpoint="FARTrackSparse_ep0015.pth.tar")   # BGR frames, like cv2.Tracker*
    capture = cv2.VideoCapture("video.mp4")
    ok, frame = capture.read()
    tracker.init(frame, (x, y, w, h))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        found, (x, y, w, h) = tracker.update(frame)   # found is False when tracker.score < tracker.threshold

:class:`OpenCVStyleTracker` wraps any object with the pytracking contract of this project --
``initialize(rgb_image, {"init_bbox": [x, y, w, h]})`` and ``track(rgb_image) -> {"target_bbox", "best_score"}`` --
so it runs the FARTrack families on PyTorch (:func:`lib.api.build_tracker`), on ONNX Runtime
(``FARTrackTracker(OnnxBackend(...), ...)``) and FastSeqTrack alike.

* **Colour order**: frames are BGR by default, as ``cv2.VideoCapture`` / ``cv2.imread`` give them and as OpenCV's
  own trackers take them; they are converted to the RGB our trackers expect. Pass ``bgr=False`` for RGB frames
  (PIL, imageio, torchvision). Grayscale frames ((H, W) or (H, W, 1)) are accepted and expanded to 3 channels.
* **Boxes**: ``(x, y, w, h)``, top-left corner and size in pixels, as floats (``cv2.rectangle`` wants ints: round
  them). ``init`` takes what ``cv2.selectROI`` returns.
* **ok and score**: :attr:`OpenCVStyleTracker.score` is the tracker's confidence for the latest frame
  (``best_score``: the mean over the 4 coordinate tokens of the largest softmax probability, in [0, 1]; NaN after
  ``init``). ``update`` reports ``ok = score >= threshold``. ``threshold=None`` never reports a loss. When ``ok`` is
  False the box is still the tracker's best guess (the tracker keeps searching around it on the next frames), so
  callers may keep calling ``update``; OpenCV's own trackers behave the same way.
* **Default threshold** :data:`DEFAULT_LOST_THRESHOLD`: chosen from the AUROC / precision / recall measurement of
  :mod:`lib.test.analysis.lost_target` (``tracking/lost_target.py``); the numbers, the data and the checkpoint are
  in ``docs/opencv-tracker.md``. The score scale depends on the weights: re-measure for yours.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from lib.utils.box_ops import overlaps_image

__all__ = ["DEFAULT_LOST_THRESHOLD", "OpenCVStyleTracker", "as_rgb_frame", "checked_box"]

#: Score below which ``update`` reports the target as lost (``ok`` False): the best F1 of the lost class among the
#: thresholds flagging at most 5 % of the visible frames, measured with ``tracking/lost_target.py`` on 3079 frames
#: (synthetic LaSOT-layout test sequences and the real TLD motocross sequence) with the quickstart's final sparse
#: checkpoint (6 Dec 2026; AUROC 0.635, precision 0.114, recall 0.044). The score scale depends on the weights:
#: re-measure for yours. Numbers and command: docs/opencv-tracker.md.
DEFAULT_LOST_THRESHOLD = 0.037


def as_rgb_frame(image: Any, bgr: bool = True) -> np.ndarray:
    """``image`` as a contiguous (H, W, 3) uint8 RGB array; clear ``TypeError`` / ``ValueError`` otherwise.

    Accepts (H, W, 3) uint8 colour frames (BGR when ``bgr``, else RGB) and (H, W) / (H, W, 1) uint8 grayscale.
    """
    if image is None:
        raise TypeError("image is None: the frame was not read (check the ok flag of capture.read(), or the path "
                        "given to cv2.imread)")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array (H, W, 3) uint8 as cv2.VideoCapture.read() returns, got "
                        f"{type(image).__name__}; convert PIL images with np.asarray(image) and bgr=False")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}; convert it, e.g. "
                         f"np.clip(image * 255, 0, 255).astype(np.uint8) for floats in [0, 1]")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        if image.size == 0:
            raise ValueError(f"empty image of shape {image.shape}")
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] != 3:
        hint = (" (4 channels: drop the alpha channel with cv2.cvtColor(image, cv2.COLOR_BGRA2BGR))"
                if image.ndim == 3 and image.shape[2] == 4 else "")
        raise ValueError(f"expected an (H, W, 3) colour or (H, W) grayscale image, got shape {image.shape}{hint}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image of shape {image.shape}")
    image = np.ascontiguousarray(image)  # OpenCV refuses views with negative strides (image[:, ::-1])
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image


def checked_box(box: Any, image_shape: Sequence[int]) -> list[float]:
    """``box`` ``(x, y, w, h)`` as 4 floats; ``ValueError`` unless 4 finite numbers with w, h > 0 overlapping the
    image of shape ``image_shape`` (H, W, ...)."""
    try:
        values = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the box must be 4 numbers (x, y, w, h), got {box!r}") from error
    if values.shape != (4,):
        raise ValueError(f"the box must be 4 numbers (x, y, w, h), got {box!r}")
    if not np.isfinite(values).all():
        raise ValueError(f"the box must be finite, got {box!r}")
    x, y, w, h = (float(v) for v in values)
    if w <= 0 or h <= 0:
        raise ValueError(f"the box needs a positive width and height, got {box!r} (cv2.selectROI returns "
                         f"(0, 0, 0, 0) when the selection is cancelled)")
    height, width = image_shape[:2]
    if not overlaps_image((x, y, w, h), width, height):
        raise ValueError(f"the box {box!r} lies outside the {width}x{height} image")
    return [x, y, w, h]


def _checked_threshold(threshold: Optional[float]) -> Optional[float]:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not math.isfinite(threshold) \
            or not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be a number in [0, 1] (scores are probabilities) or None, got "
                         f"{threshold!r}")
    return float(threshold)


class OpenCVStyleTracker:
    """OpenCV's tracker interface over one of our trackers, with ``ok`` driven by the confidence score.

    Args:
        tracker: any object with ``initialize(rgb, {"init_bbox": [x, y, w, h]})`` and ``track(rgb) -> dict`` with
            ``target_bbox`` and ``best_score`` (from :func:`lib.api.build_tracker`, an ONNX Runtime
            ``FARTrackTracker``, a ``FastSeqTrackTracker``, ...).
        threshold: ``update`` reports ``ok`` False when the score is below it (a NaN or missing score counts as
            below); None never reports a loss. Default :data:`DEFAULT_LOST_THRESHOLD`.
        bgr: frames are BGR (default, OpenCV's order); False for RGB frames.

    Attributes:
        score: the latest confidence (NaN before the first ``update``).
        ok: the latest ``ok`` (True right after ``init``).
        last_output: the wrapped tracker's latest output dict (e.g. FastSeqTrack's ``exit``).
        frame_count: frames handled since ``init`` (``init``'s frame included).
    """

    def __init__(self, tracker: Any, threshold: Optional[float] = DEFAULT_LOST_THRESHOLD, *, bgr: bool = True) -> None:
        if not callable(getattr(tracker, "initialize", None)) or not callable(getattr(tracker, "track", None)):
            raise TypeError(f"expected a tracker with initialize(image, info) and track(image) methods, got "
                            f"{type(tracker).__name__}")
        self.tracker = tracker
        self.threshold = _checked_threshold(threshold)
        self.bgr = bool(bgr)
        self._score = float("nan")
        self._ok = False
        self._box: Optional[tuple[float, float, float, float]] = None
        self.last_output: dict = {}
        self.frame_count = 0

    # ------------------------------------------------------------------ OpenCV interface
    def init(self, image: np.ndarray, box: Sequence[float]) -> bool:
        """Start tracking the target at ``box`` ``(x, y, w, h)`` in ``image``; returns True (as OpenCV's did)."""
        rgb = as_rgb_frame(image, self.bgr)
        values = checked_box(box, rgb.shape)
        self.tracker.initialize(rgb, {"init_bbox": values})
        self._box = tuple(values)
        self._score = float("nan")
        self._ok = True
        self.last_output = {"target_bbox": list(values)}
        self.frame_count = 1
        return True

    def update(self, image: np.ndarray) -> tuple[bool, tuple[float, float, float, float]]:
        """Track one frame: ``(ok, (x, y, w, h))``, ``ok`` False when :attr:`score` is below the threshold."""
        if self._box is None:
            raise RuntimeError("update() called before init(): call init(first_frame, (x, y, w, h)) first")
        out = self.tracker.track(as_rgb_frame(image, self.bgr))
        box = out.get("target_bbox") if isinstance(out, dict) else None
        if box is None or len(box) != 4:
            raise TypeError(f"the wrapped tracker's track() must return a dict with a 4-value 'target_bbox', got "
                            f"{out!r}")
        score = out.get("best_score")
        self._score = float("nan") if score is None else float(score)
        self._ok = self.is_confident(self._score)
        self._box = tuple(float(v) for v in box)
        self.last_output = out
        self.frame_count += 1
        return self._ok, self._box

    # ------------------------------------------------------------------ the lost-target signal
    def is_confident(self, score: float) -> bool:
        """The ``ok`` flag for ``score``: ``score >= threshold`` (NaN is not), always True without a threshold."""
        if self.threshold is None:
            return True
        return bool(score >= self.threshold)  # False for NaN

    @property
    def score(self) -> float:
        """The confidence of the latest ``update`` (``best_score``, in [0, 1]); NaN after ``init``."""
        return self._score

    @property
    def ok(self) -> bool:
        """The ``ok`` of the latest ``update`` (True right after ``init``, False before it)."""
        return self._ok

    @property
    def box(self) -> Optional[tuple[float, float, float, float]]:
        """The latest box ``(x, y, w, h)``; None before ``init``."""
        return self._box

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({type(self.tracker).__name__}, threshold={self.threshold}, "
                f"bgr={self.bgr})")
