"""Scoring trackers on a dataset: per-sequence and overall metrics, the markdown table and the JSON report.

``evaluate`` is what ``tracking/analysis_results.py`` runs. Every call reads the result files afresh (no cache:
the official ``eval_data.pkl`` cache ignores changed result files, metrics.md A.4).
"""
from __future__ import annotations

import ast
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence as Seq

import numpy as np

from lib.test.analysis import exits, metrics
from lib.test.analysis.results import find_result_file, read_result_file
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.datasets import get_dataset
from lib.test.evaluation.environment import env_settings
from lib.utils.run_layout import tracker_results_dir

logger = logging.getLogger(__name__)

#: Datasets that are also scored with the GOT-10k protocol (AO, SR50, SR75).
GOT10K_PROTOCOL_DATASETS = ("got10k_val", "got10k_ltrval")
#: Datasets whose test annotations hold frame 0 only: their evaluation servers score them.
SERVER_SCORED_DATASETS = {
    "got10k_test": "lib/test/utils/transform_got10k.py --tracker_name <script> --cfg_name <config>",
    "trackingnet": "lib/test/utils/transform_trackingnet.py --tracker_name <script> --cfg_name <config>",
}


class EvaluationError(RuntimeError):
    """The evaluation cannot produce a score (no results at all, a dataset scored by a server, ...)."""


@dataclass
class TrackerScores:
    """The scores of one tracker on one dataset; ``missing`` lists the sequences without a result file."""

    name: str
    overall: dict[str, float]
    per_sequence: dict[str, dict[str, float]]
    missing: list[str]
    success_curve: np.ndarray  # averaged over sequences, fractions
    precision_curve: np.ndarray
    norm_precision_curve: np.ndarray
    got10k_ious: dict[str, np.ndarray] = field(default_factory=dict)
    #: Frames per early exit over the scored sequences, when the tracker wrote ``<seq>_exits.txt`` (FastSeqTrack).
    exit_counts: dict[int, int] = field(default_factory=dict)


def parse_tracker(spec: str) -> tuple[str, str]:
    """``"<script>:<config>"`` -> ``(script, config)``."""
    script, sep, config = spec.partition(":")
    if not sep or not script or not config or ":" in config:
        raise ValueError(f"tracker must be given as <script>:<config>, got {spec!r}")
    return script, config


def read_got10k_annotations(seq: Sequence) -> tuple[np.ndarray, tuple[float, float]]:
    """``cover.label`` (one int per frame, 0 = absent) and ``meta_info.ini``'s ``resolution: (W, H)`` from the
    sequence folder, the parent of the frames (B.1)."""
    folder = Path(seq.frames[0]).parent
    cover_file, meta_file = folder / "cover.label", folder / "meta_info.ini"
    for needed in (cover_file, meta_file):
        if not needed.is_file():
            raise FileNotFoundError(f"GOT-10k protocol needs {needed} (sequence {seq.name})")
    cover = np.loadtxt(cover_file, dtype=np.float64, ndmin=1)
    match = re.search(r"^\s*resolution\s*:\s*(.+?)\s*$", meta_file.read_text(), flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{meta_file}: no 'resolution: (W, H)' line")
    width, height = ast.literal_eval(match.group(1))
    return cover, (float(width), float(height))


def _score_sequence(seq: Sequence, pred: np.ndarray, got10k_protocol: bool
                    ) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray, np.ndarray], Optional[np.ndarray]]:
    """Per-sequence scores (percent), the three float32 curves and, with the GOT-10k protocol, the kept IoUs."""
    iou, err, nerr, _ = metrics.calc_seq_err_robust(pred, seq.ground_truth_rect, seq.dataset, seq.target_visible)
    curves = metrics.sequence_curves(iou, err, nerr)
    scores = metrics.scores_from_curves(*curves)
    got_ious = None
    if got10k_protocol:
        cover, resolution = read_got10k_annotations(seq)
        got_ious = metrics.got10k_sequence_ious(pred, seq.ground_truth_rect, cover, resolution)
        scores.update(metrics.got10k_scores(got_ious))
    return scores, curves, got_ious


def evaluate_tracker(tracker: str, sequences: Seq[Sequence], results_path: Path,
                     got10k_protocol: bool = False) -> TrackerScores:
    """Score one ``"<script>:<config>"`` tracker on ``sequences``; sequences without results are listed in
    ``missing`` and left out of the means (the official ``skip_missing_seq=True``). No results at all raises."""
    script, config = parse_tracker(tracker)
    results_dir = tracker_results_dir(results_path, script, config)
    per_sequence, curves, got_ious, missing = {}, [], {}, []
    for seq in sequences:
        path = find_result_file(results_dir, seq.name, seq.dataset)
        if path is None:
            missing.append(seq.name)
            continue
        pred = read_result_file(path)
        try:
            scores, seq_curves, ious = _score_sequence(seq, pred, got10k_protocol)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        per_sequence[seq.name] = scores
        curves.append(seq_curves)
        if ious is not None:
            got_ious[seq.name] = ious
    if not per_sequence:
        raise EvaluationError(f"no results of {tracker} for any of the {len(sequences)} sequences in {results_dir} "
                              "(or its got10k/ and trackingnet/ sub-folders)")
    if missing:
        logger.warning("%s: %d of %d sequences have no results and are left out (first: %s)", tracker,
                       len(missing), len(sequences), ", ".join(missing[:5]))
    success, precision, norm_precision = (metrics.average_curves([c[k] for c in curves]) for k in range(3))
    overall = metrics.scores_from_curves(success, precision, norm_precision)
    if got10k_protocol:
        overall.update(metrics.got10k_scores(np.concatenate(list(got_ious.values()))))
    exit_files = [exits.find_exit_file(results_dir, seq.name, seq.dataset) for seq in sequences
                  if seq.name in per_sequence]
    exit_counts = exits.exit_counts(p for p in exit_files if p is not None)
    return TrackerScores(tracker, overall, per_sequence, missing, success, precision, norm_precision, got_ious,
                         exit_counts)


def load_sequences(dataset_name: str, env=None) -> list[Sequence]:
    """The dataset's sequences present on disk (the loader warns about and skips listed sequences that are absent,
    so a partial copy of a benchmark can be scored); a server-scored dataset (no GT beyond frame 0) raises
    :class:`EvaluationError`."""
    if dataset_name in SERVER_SCORED_DATASETS:
        raise EvaluationError(f"{dataset_name} has no ground truth beyond frame 0: it is scored by its evaluation "
                              f"server. Package the results with {SERVER_SCORED_DATASETS[dataset_name]} and upload "
                              f"the zip.")
    return list(get_dataset(dataset_name, env, allow_missing=True))


def evaluate_trackers(trackers: Seq[str], dataset_name: str, env=None,
                      sequences: Optional[Seq[Sequence]] = None) -> list[TrackerScores]:
    """Score every tracker on ``dataset_name`` (``sequences`` overrides the dataset loader)."""
    if env is None:
        env = env_settings()
    if sequences is None:
        sequences = load_sequences(dataset_name, env)
    got10k_protocol = dataset_name in GOT10K_PROTOCOL_DATASETS
    return [evaluate_tracker(t, sequences, Path(env.results_path), got10k_protocol) for t in trackers]


def to_json(dataset_name: str, scores: Seq[TrackerScores]) -> dict:
    """``{"dataset": D, "trackers": {"<script>:<config>": {"overall": {...}, "per_sequence": {...}}}}``; trackers
    with early exits also get ``"exits": {"<exit>": frames}``."""
    trackers = {}
    for s in scores:
        trackers[s.name] = {"overall": s.overall, "per_sequence": s.per_sequence}
        if s.exit_counts:  # only trackers with early exits
            trackers[s.name]["exits"] = {str(index): n for index, n in s.exit_counts.items()}
    return {"dataset": dataset_name, "trackers": trackers}


def evaluate(trackers: Seq[str], dataset_name: str, env=None,
             sequences: Optional[Seq[Sequence]] = None) -> dict:
    """Score trackers on a dataset and return the JSON report (all values in percent)."""
    return to_json(dataset_name, evaluate_trackers(trackers, dataset_name, env, sequences))


def metric_keys(scores: Seq[TrackerScores]) -> list[str]:
    """The columns of the report: the pytracking keys, plus the GOT-10k ones when present."""
    keys = list(metrics.PYTRACKING_KEYS)
    if scores and all(k in scores[0].overall for k in metrics.GOT10K_KEYS):
        keys += list(metrics.GOT10K_KEYS)
    return keys


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def markdown_table(scores: Seq[TrackerScores]) -> str:
    """One row per tracker with the overall scores (percent, 2 decimals) and the number of sequences scored."""
    keys = metric_keys(scores)
    lines = ["| tracker | " + " | ".join(keys) + " | sequences |", "|---" * (len(keys) + 2) + "|"]
    for s in scores:
        total = len(s.per_sequence) + len(s.missing)
        lines.append(f"| {s.name} | " + " | ".join(_fmt(s.overall[k]) for k in keys)
                     + f" | {len(s.per_sequence)}/{total} |")
    return "\n".join(lines)


def per_sequence_table(score: TrackerScores) -> str:
    """One row per sequence of one tracker (percent, 2 decimals)."""
    keys = metric_keys([score])
    lines = [f"| {score.name} sequence | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, values in score.per_sequence.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(values[k]) for k in keys) + " |")
    return "\n".join(lines)
