"""How well a tracker's confidence separates frames where the target is visible from frames where it is absent.

The measurement behind the default threshold of :class:`~lib.test.tracker.opencv_style.OpenCVStyleTracker`
(``tracking/lost_target.py``). Each sequence is tracked from its first frame through the OpenCV-style wrapper
(frames read with ``cv2.imread``, BGR, as an OpenCV user would); every later frame gives a score and a label:

* **absent** ("lost" class): LaSOT layout (``img/``, ``full_occlusion.txt``, ``out_of_view.txt``): either flag set;
  GOT-10k-like layout (frames next to ``groundtruth.txt``, as ``../shared/data/real-sequences``):
  ``absence.label`` = 1; without label files: a ground-truth row with no positive size (``0,0,0,0``) or NaN.
* **visible**: the other frames.

Reported, per group of sequences (each path given) and pooled:

* **AUROC** of the score for visible (positive, higher score) against absent: the probability that a random
  visible frame scores higher than a random absent one, ties counted one half (:func:`auroc`, the Mann-Whitney
  rank statistic). 0.5 = no separation; it is also the AUROC of ``-score`` as a detector of the lost class.
* a **threshold table** (:func:`threshold_table`): a frame is flagged lost when ``score < threshold`` (what
  ``update`` reports as ``ok`` False); precision and recall of the lost class, F1, and the share of visible frames
  flagged (false alarms);
* the threshold with the best F1 of the lost class among those flagging at most :data:`MAX_FALSE_ALARM` of the
  visible frames (:func:`choose_threshold`, the rule of the default), and the best F1 without that limit;
* a secondary AUROC, **failure** vs tracked: failure = absent, or visible with IoU < 0.5 against the ground truth
  (the box is wrong, whether or not the target can be seen).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import cv2
import numpy as np

from lib.api import build_tracker
from lib.test.analysis.metrics import iou_got10k
from lib.test.evaluation.datasets import DatasetError, read_boxes, read_flags
from lib.test.tracker.opencv_style import OpenCVStyleTracker

PathLike = Union[str, Path]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
#: Thresholds are chosen among multiples of 10**-THRESHOLD_DECIMALS (the scores of weakly trained weights sit
#: around 0.05, so two decimals are too coarse).
THRESHOLD_DECIMALS = 3
#: The rule of the default threshold: the best F1 of the lost class among thresholds flagging at most this share of
#: the visible frames (a lost signal that fires on more visible frames than this is not worth acting on).
MAX_FALSE_ALARM = 0.05
#: The table shows, besides the requested thresholds, the largest threshold within each of these false-alarm rates.
FALSE_ALARM_RATES = (0.01, 0.02, 0.05, 0.10, 0.20, 0.50)
#: IoU under which a visible frame counts as a tracking failure (secondary AUROC).
FAILURE_IOU = 0.5


# ---------------------------------------------------------------------------------------------------- statistics
def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` class (higher score = more positive).

    The Mann-Whitney statistic ``(R+ - n+(n+ + 1)/2) / (n+ n-)`` with midranks, so tied scores count one half:
    1.0 when every positive scores above every negative, 0.0 when below, 0.5 for no separation. NaN scores are not
    allowed. Raises ValueError when either class is empty or the lengths differ.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(positive, dtype=bool).reshape(-1)
    if values.shape != labels.shape:
        raise ValueError(f"{values.size} scores for {labels.size} labels")
    if np.isnan(values).any():
        raise ValueError("scores contain NaN")
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes, got {n_pos} positive and {n_neg} negative")
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)
    # Midranks: every run of equal values gets the mean of its 1-based positions.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@dataclass(frozen=True)
class ThresholdRow:
    """The lost-class statistics of one threshold (lost predicted when ``score < threshold``).

    ``precision`` is NaN when no frame is flagged; ``false_alarm`` is the share of visible frames flagged."""

    threshold: float
    flagged: int
    true_lost: int
    precision: float
    recall: float
    f1: float
    false_alarm: float


def threshold_table(scores: Sequence[float], lost: Sequence[bool], thresholds: Iterable[float]) -> list[ThresholdRow]:
    """Precision / recall / F1 of the lost class and the false-alarm rate for each threshold, in the given order,
    flagging ``score < threshold`` as lost. A NaN score is always flagged (the OpenCV-style wrapper reports ``ok``
    False for it)."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(lost, dtype=bool).reshape(-1)
    if values.shape != labels.shape:
        raise ValueError(f"{values.size} scores for {labels.size} labels")
    cuts = np.asarray(list(thresholds), dtype=np.float64).reshape(-1)
    nan = np.isnan(values)
    lost_sorted = np.sort(values[labels & ~nan])
    visible_sorted = np.sort(values[~labels & ~nan])
    tp = np.searchsorted(lost_sorted, cuts, side="left") + int((nan & labels).sum())
    fp = np.searchsorted(visible_sorted, cuts, side="left") + int((nan & ~labels).sum())
    n_lost, n_visible = int(labels.sum()), int((~labels).sum())
    rows = []
    for t, tp_i, fp_i in zip(cuts.tolist(), tp.tolist(), fp.tolist()):
        flagged = tp_i + fp_i
        rows.append(ThresholdRow(
            threshold=t, flagged=flagged, true_lost=tp_i,
            precision=tp_i / flagged if flagged else float("nan"),
            recall=tp_i / n_lost if n_lost else float("nan"),
            f1=2 * tp_i / (flagged + n_lost) if (flagged + n_lost) else float("nan"),
            false_alarm=fp_i / n_visible if n_visible else float("nan")))
    return rows


def threshold_row(scores: Sequence[float], lost: Sequence[bool], threshold: float) -> ThresholdRow:
    """:func:`threshold_table` for one threshold."""
    return threshold_table(scores, lost, [threshold])[0]


def candidate_thresholds(decimals: int = THRESHOLD_DECIMALS) -> list[float]:
    """The cut points a threshold is chosen from: multiples of ``10**-decimals`` in (0, 1]. A rounded value is
    what a default can be written as; a finer cut would fit the measured frames, not the next ones."""
    count = 10 ** decimals
    return [round(i / count, decimals) for i in range(1, count + 1)]


def choose_threshold(scores: Sequence[float], lost: Sequence[bool], max_false_alarm: Optional[float] = None,
                     decimals: int = THRESHOLD_DECIMALS) -> Optional[ThresholdRow]:
    """The cut point (:func:`candidate_thresholds`) with the best F1 of the lost class among those flagging at most
    ``max_false_alarm`` of the visible frames (None: any); ties go to the lowest threshold. None when a class is
    empty or no qualifying cut point flags a single lost frame."""
    labels = np.asarray(lost, dtype=bool)
    if not labels.any() or labels.all():
        return None
    rows = [row for row in threshold_table(scores, lost, candidate_thresholds(decimals))
            if not math.isnan(row.f1) and not math.isnan(row.false_alarm)
            and (max_false_alarm is None or row.false_alarm <= max_false_alarm)]
    best = max(rows, key=lambda row: (row.f1, -row.threshold), default=None)
    return best if best is not None and best.true_lost > 0 else None


def false_alarm_thresholds(scores: Sequence[float], lost: Sequence[bool], rates: Iterable[float] = FALSE_ALARM_RATES,
                           decimals: int = THRESHOLD_DECIMALS) -> list[float]:
    """For each rate, the largest cut point flagging at most that share of the visible frames (table rows that
    follow the score scale of whatever weights are measured)."""
    rows = threshold_table(scores, lost, candidate_thresholds(decimals))
    chosen = []
    for rate in rates:
        ok = [row.threshold for row in rows if not math.isnan(row.false_alarm) and row.false_alarm <= rate]
        if ok:
            chosen.append(max(ok))
    return sorted(set(chosen))


# ---------------------------------------------------------------------------------------------------- data
@dataclass
class LabelledSequence:
    """Frames, ground-truth boxes (N, 4) ``x, y, w, h`` and the per-frame ``absent`` flags of one sequence."""

    name: str
    frames: list[Path]
    boxes: np.ndarray
    absent: np.ndarray
    labels_from: str

    def __len__(self) -> int:
        return len(self.frames)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_labelled_sequence(folder: PathLike) -> LabelledSequence:
    """A sequence folder in the LaSOT layout or the GOT-10k-like one (see the module docstring)."""
    folder = Path(folder)
    boxes = read_boxes(folder / "groundtruth.txt")
    if (folder / "img").is_dir():
        frames = _image_files(folder / "img")
    else:
        frames = _image_files(folder)
    if len(frames) != len(boxes):
        raise DatasetError(f"{folder}: {len(frames)} frames for {len(boxes)} ground-truth rows")
    lasot_flags = [folder / name for name in ("full_occlusion.txt", "out_of_view.txt")]
    if all(path.is_file() for path in lasot_flags):
        label_files = lasot_flags
    elif (folder / "absence.label").is_file():
        label_files = [folder / "absence.label"]
    else:
        label_files = []
    absent = ~(np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0))
    if label_files:
        absent = np.zeros(len(boxes), dtype=bool)
        for path in label_files:
            flags = read_flags(path)
            if len(flags) != len(boxes):
                raise DatasetError(f"{path}: {len(flags)} absence labels for {len(boxes)} ground-truth rows")
            absent |= flags
    labels_from = " + ".join(path.name for path in label_files) or "empty ground-truth boxes"
    if absent[0]:
        raise DatasetError(f"{folder}: the target is absent in the first frame; no initial box")
    return LabelledSequence(folder.name, frames, boxes, absent.astype(bool), labels_from)


def find_sequences(path: PathLike, names: Optional[Iterable[str]] = None, max_depth: int = 3) -> list[Path]:
    """``path`` itself when it holds a ``groundtruth.txt``, else the folders under it that do (up to ``max_depth``
    levels down), sorted by name and narrowed to ``names`` when given (a sequence folder given itself is kept)."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    if (root / "groundtruth.txt").is_file():
        found = [root]
    else:
        found, level = [], [root]
        for _ in range(max_depth):
            level = sorted(child for folder in level for child in folder.iterdir() if child.is_dir())
            found += [folder for folder in level if (folder / "groundtruth.txt").is_file()]
            level = [folder for folder in level if not (folder / "groundtruth.txt").is_file()]
        found.sort(key=lambda p: p.name)
    if names is not None and found != [root]:
        wanted = set(names)
        found = [folder for folder in found if folder.name in wanted]
    if not found:
        raise DatasetError(f"no sequence folder (one holding groundtruth.txt) under {root}"
                           + (" with the requested names" if names is not None else ""))
    return found


# ---------------------------------------------------------------------------------------------------- tracking
@dataclass
class SequenceScores:
    """Per-frame results of frames 1.. of one sequence: score, absent label and IoU with the ground truth
    (NaN on absent frames)."""

    name: str
    scores: np.ndarray
    absent: np.ndarray
    iou: np.ndarray


def score_sequence(tracker: Any, sequence: LabelledSequence, max_frames: Optional[int] = None) -> SequenceScores:
    """Track ``sequence`` from its first frame with ``tracker`` (initialize / track contract) through the
    OpenCV-style wrapper; the scores, labels and IoUs of frames 1 .. ``max_frames - 1``."""
    wrapper = OpenCVStyleTracker(tracker, threshold=None)
    count = len(sequence) if max_frames is None else min(len(sequence), max_frames)
    scores, boxes = [], []
    for index in range(count):
        frame = cv2.imread(str(sequence.frames[index]), cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError(f"cannot read frame {sequence.frames[index]}")
        if index == 0:
            wrapper.init(frame, sequence.boxes[0])
            continue
        _, box = wrapper.update(frame)
        scores.append(wrapper.score)
        boxes.append(box)
    absent = sequence.absent[1:count]
    predicted = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iou = iou_got10k(predicted, sequence.boxes[1:count])
    iou = np.where(absent, np.nan, iou)
    return SequenceScores(sequence.name, np.asarray(scores, dtype=np.float64), absent.copy(), iou)


# ---------------------------------------------------------------------------------------------------- report
@dataclass
class GroupSummary:
    """The statistics of one group of sequences (or of all of them pooled): counts, the two AUROCs, mean scores,
    the thresholds chosen with and without the false-alarm limit, and the table rows."""

    name: str
    sequences: int
    frames: int
    absent: int
    auroc: float
    failure_auroc: float
    failures: int
    mean_score_visible: float
    mean_score_absent: float
    chosen: Optional[ThresholdRow]
    best_f1: Optional[ThresholdRow]
    max_false_alarm: float = MAX_FALSE_ALARM
    rows: list[ThresholdRow] = field(default_factory=list)


def _safe_auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    try:
        return auroc(scores, positive)
    except ValueError:
        return float("nan")


def summarise(name: str, results: Sequence[SequenceScores], thresholds: Iterable[float] = (),
              max_false_alarm: float = MAX_FALSE_ALARM) -> GroupSummary:
    """Pool the frames of ``results``: the AUROCs, :func:`choose_threshold` with and without ``max_false_alarm``,
    and the table over ``thresholds``, the :func:`false_alarm_thresholds` and the chosen ones (sorted)."""
    scores = np.concatenate([r.scores for r in results]) if results else np.zeros(0)
    absent = np.concatenate([r.absent for r in results]) if results else np.zeros(0, dtype=bool)
    iou = np.concatenate([r.iou for r in results]) if results else np.zeros(0)
    failure = absent | (np.nan_to_num(iou, nan=0.0) < FAILURE_IOU)
    both = bool(absent.any() and (~absent).any())
    chosen = choose_threshold(scores, absent, max_false_alarm) if both else None
    best_f1 = choose_threshold(scores, absent) if both else None
    cuts = {round(float(t), 6) for t in thresholds}
    if both:
        cuts |= set(false_alarm_thresholds(scores, absent))
        cuts |= {row.threshold for row in (chosen, best_f1) if row is not None}
    mean = (lambda v: float(np.nanmean(v)) if v.size else float("nan"))
    return GroupSummary(name, len(results), int(scores.size), int(absent.sum()), _safe_auroc(scores, ~absent),
                        _safe_auroc(scores, ~failure), int(failure.sum()), mean(scores[~absent]),
                        mean(scores[absent]), chosen, best_f1, max_false_alarm,
                        threshold_table(scores, absent, sorted(cuts)))


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _describe(row: ThresholdRow) -> str:
    return (f"threshold {row.threshold:.3f}: precision {_fmt(row.precision)}, recall {_fmt(row.recall)}, "
            f"F1 {_fmt(row.f1)}, false alarms {_fmt(row.false_alarm)}")


def format_summary(summary: GroupSummary, marked: Iterable[float] = ()) -> str:
    """A text block: counts, AUROCs, mean scores, the chosen thresholds and the table (``*`` marks ``marked``
    thresholds, e.g. the wrapper's default; ``<`` the one chosen under the false-alarm limit)."""
    marked = {round(float(t), 6) for t in marked}
    lines = [f"== {summary.name}: {summary.sequences} sequence(s), {summary.frames} tracked frames, "
             f"{summary.absent} absent",
             f"AUROC visible vs absent (score): {_fmt(summary.auroc)}",
             f"AUROC tracked vs failure (absent or IoU < {FAILURE_IOU}; {summary.failures} failures): "
             f"{_fmt(summary.failure_auroc)}",
             f"mean score: visible {_fmt(summary.mean_score_visible)}, absent {_fmt(summary.mean_score_absent)}"]
    limit = f"best F1 of the lost class with false alarms <= {summary.max_false_alarm:.0%}: "
    if summary.chosen is not None:
        lines.append(limit + _describe(summary.chosen))
    elif summary.absent and summary.absent < summary.frames:
        lines.append(limit + "none (no such threshold flags a lost frame)")
    if summary.best_f1 is not None:
        lines.append(f"best F1 of the lost class, any false-alarm rate: {_describe(summary.best_f1)}")
    if summary.absent and summary.absent < summary.frames:
        lines.append("threshold   flagged  precision  recall     F1  false_alarm")
        chosen = summary.chosen.threshold if summary.chosen is not None else None
        for row in summary.rows:
            mark = ("*" if round(row.threshold, 6) in marked else " ") + ("<" if row.threshold == chosen else " ")
            lines.append(f"{row.threshold:9.3f}{mark} {row.flagged:7d}  {_fmt(row.precision):>9}  "
                         f"{_fmt(row.recall):>6}  {_fmt(row.f1):>5}  {_fmt(row.false_alarm):>11}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- the command
def measure(tracker: Any, groups: dict[str, list[Path]], max_frames: Optional[int] = None,
            log: Any = print) -> dict[str, list[SequenceScores]]:
    """Track every sequence folder of every group with ``tracker``; ``log`` gets one line per sequence."""
    results: dict[str, list[SequenceScores]] = {}
    for group, folders in groups.items():
        results[group] = []
        for folder in folders:
            sequence = load_labelled_sequence(folder)
            scored = score_sequence(tracker, sequence, max_frames)
            results[group].append(scored)
            visible, absent = scored.scores[~scored.absent], scored.scores[scored.absent]
            log(f"{group}: {sequence.name}: {scored.scores.size} frames, {absent.size} absent "
                f"({sequence.labels_from}); mean score visible {_fmt(visible.mean() if visible.size else None)}, "
                f"absent {_fmt(absent.mean() if absent.size else None)}; mean IoU on visible frames "
                f"{_fmt(np.nanmean(scored.iou) if visible.size else None)}")
    return results


def report(results: dict[str, list[SequenceScores]], thresholds: Iterable[float] = (),
           marked: Iterable[float] = (), max_false_alarm: float = MAX_FALSE_ALARM) -> str:
    """The text report: one block per group, then (with several groups) the pooled block."""
    thresholds, marked = [*thresholds, *marked], list(marked)
    blocks = [format_summary(summarise(name, scored, thresholds, max_false_alarm), marked)
              for name, scored in results.items()]
    if len(results) > 1:
        pooled = [scored for group in results.values() for scored in group]
        blocks.append(format_summary(summarise("pooled", pooled, thresholds, max_false_alarm), marked))
    return "\n\n".join(blocks)


def run_lost_target(paths: Sequence[PathLike], *, script: Optional[str], config: Optional[str],
                    checkpoint: Optional[PathLike], depth: Optional[int] = None, device: str = "cpu",
                    threads: Optional[int] = None, names: Optional[Sequence[str]] = None,
                    max_frames: Optional[int] = None, thresholds: Iterable[float] = (),
                    marked: Iterable[float] = (), max_false_alarm: float = MAX_FALSE_ALARM,
                    log: Any = print) -> str:
    """Build the tracker (:func:`lib.api.build_tracker`), find the sequences of each path (one group per path,
    named as given; ``names`` narrows the folders found under a path), track them and return :func:`report`'s
    text."""
    groups = {str(path): find_sequences(path, names) for path in paths}
    tracker = build_tracker(script, config, checkpoint, device=device, depth=depth, threads=threads)
    return report(measure(tracker, groups, max_frames, log), thresholds, marked, max_false_alarm)
