"""Tracking metrics, reproducing the reference analyses number for number (pure numpy).

Two conventions live here (facts: ``shared/spec/metrics.md``):

* the **pytracking convention** of the official FARTrack analysis (``extract_results.py`` + ``print_results``),
  sections A.2-A.4: :func:`calc_seq_err_robust`, :func:`sequence_curves`, :func:`scores_from_curves`;
* the **GOT-10k protocol** of the ``got10k`` toolkit (``ExperimentGOT10k.report``), section B.1:
  :func:`got10k_sequence_ious`, :func:`got10k_scores`.

All scores are returned in percent.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

#: Datasets tags whose rules differ from the generic path (A.1: only these two change anything).
LASOT_TAG = "lasot"
UAV_TAG = "uav"

#: Success thresholds, exactly the float64 values of the official ``torch.arange(0.0, 1.05, 0.05)`` (A.4).
#: ``np.arange`` gives 0.65 and 0.75 at indices 13 and 15; the official thresholds are one ulp higher there, which
#: decides ``IoU > t`` for an IoU that lands one ulp above 0.65 or 0.75.
SUCCESS_THRESHOLDS = np.array([
    0.0, 0.05, 0.1, 0.15000000000000002, 0.2, 0.25, 0.30000000000000004, 0.35000000000000003, 0.4, 0.45, 0.5,
    0.55, 0.6000000000000001, 0.6500000000000001, 0.7000000000000001, 0.7500000000000001, 0.8,
    0.8500000000000001, 0.9, 0.9500000000000001, 1.0,
])
#: Precision thresholds 0, 1, ..., 50 px (A.4).
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
#: Normalised-precision thresholds r = k / 100, k = 0..50 (A.4). Built as ``arange(51) / 100`` (each value is the
#: correctly rounded k/100), not ``arange(0, 0.51, 0.01)``, which differs at k = 35, 41, 47.
NORM_PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64) / 100.0

#: Curve indices of the read-outs (A.4). ``print_results`` finds OP50 / OP75 by an exact float comparison of the
#: thresholds after they pass through float32, where ``float32(0.7500000000000001) == 0.75``; reading indices 10 and
#: 15 is the same thing without the float32 round trip.
OP50_INDEX = 10
OP75_INDEX = 15
PRECISION_INDEX = 20  # 20 px
NORM_PRECISION_INDEX = 20  # 0.20

#: GOT-10k success thresholds (B.1): ``linspace(0, 1, 101)`` with ``IoU > t``; SR0.75 is entry 75.
GOT10K_THRESHOLDS = np.linspace(0, 1, 101)
GOT10K_SR75_INDEX = 75

PYTRACKING_KEYS = ("AUC", "OP50", "OP75", "Precision", "NormPrecision")
GOT10K_KEYS = ("AO", "SR50", "SR75")


def _as_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    """``boxes`` as a fresh ``(N, 4)`` float64 array (never a view of the caller's data)."""
    arr = np.array(boxes, dtype=np.float64, copy=True)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what} must be an (N, 4) array of x, y, w, h boxes, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    return arr


def check_prediction(pred: np.ndarray) -> None:
    """A.2 step 1: NaN anywhere or a negative w / h in a prediction is an error (official: "Invalid results")."""
    bad_nan = np.isnan(pred).any(axis=1)
    bad_neg = (pred[:, 2:] < 0.0).any(axis=1)
    bad = np.flatnonzero(bad_nan | bad_neg)
    if bad.size:
        rows = ", ".join(str(i) for i in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise ValueError(f"invalid tracker results: NaN or negative width/height in frame(s) {rows} (0-based)")


def carry_forward_zero_size(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """A.2 step 3, the zero-size rule, applied in place and returned.

    For i = 1, 2, ...: if predicted w == 0 or h == 0 and GT row i holds no NaN, row i := row i-1 (already processed,
    so runs of zero boxes carry the last non-zero box forward). Row 0 is untouched here, so a zero box at frame 1
    inherits the tracker's raw frame-0 output, not the GT (frame 0 is set to GT later, step 5).
    Rows past the end of the GT are skipped: they are truncated in step 4 and cannot influence earlier rows
    (the official loop would index past the GT there and crash).
    """
    gt_has_nan = np.isnan(gt).any(axis=1)
    for i in range(1, min(len(pred), len(gt))):
        if (pred[i, 2] == 0.0 or pred[i, 3] == 0.0) and not gt_has_nan[i]:
            pred[i] = pred[i - 1]
    return pred


def match_length(pred: np.ndarray, n_gt: int, dataset_tag: str) -> np.ndarray:
    """A.2 step 4: a longer prediction is truncated; a shorter one raises for ``'lasot'`` and is padded with
    ``0, 0, 0, 0`` rows (which then fail) for every other tag. Runs after the zero-size rule."""
    if len(pred) >= n_gt:
        return pred[:n_gt]
    if dataset_tag == LASOT_TAG:
        raise ValueError(f"prediction has {len(pred)} frames but the ground truth has {n_gt} "
                         f"(a shorter prediction is an error for LaSOT)")
    return np.concatenate([pred, np.zeros((n_gt - len(pred), 4))], axis=0)


def iou_inclusive(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """A.3 IoU in the official inclusive-pixel arithmetic (x2 = x + w - 1, side = min x2 - max x1 + 1, floored at 0).

    The +-1 terms cancel mathematically, so this is the continuous IoU; the operation order is kept so that rounding
    matches the official float64 values. With fractional boxes that rounding can differ from the plain form: two
    identical fractional boxes may give 1 + 1 ulp, which then passes the threshold 1.0, exactly as in the official
    analysis. No epsilon, no clipping; touching boxes give 0.
    """
    tl = np.maximum(pred[:, :2], gt[:, :2])
    br = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
    side = np.clip(br - tl + 1.0, 0.0, None)
    inter = side[:, 0] * side[:, 1]
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def centre_error(pred: np.ndarray, gt: np.ndarray, normalized: bool = False) -> np.ndarray:
    """A.3 centre error: centres x + 0.5 (w - 1); Euclidean distance in pixels.

    ``normalized=True`` divides each centre coordinate by the GT width / height **before** subtracting (so an 18 px
    offset on a 90 px box gives 0.20000000000000018, not 0.2). No lower bound on the GT size.
    """
    c_pred = pred[:, :2] + 0.5 * (pred[:, 2:] - 1.0)
    c_gt = gt[:, :2] + 0.5 * (gt[:, 2:] - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # zero / NaN GT sizes: invalid frames, overwritten later
        if normalized:
            c_pred = c_pred / gt[:, 2:]
            c_gt = c_gt / gt[:, 2:]
        diff = c_pred - c_gt
        return np.sqrt(diff[:, 0] ** 2 + diff[:, 1] ** 2)


def calc_seq_err_robust(pred: np.ndarray, gt: np.ndarray, dataset_tag: str,
                        target_visible: Optional[np.ndarray] = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame IoU, centre error, normalised centre error and validity, as the official ``calc_seq_err_robust``.

    Order (A.2): (1) NaN / negative-size prediction raises; (2) NaN GT raises unless the tag is ``'uav'``;
    (3) zero-size carry-forward; (4) truncate / pad (``'lasot'``: shorter raises); (5) prediction row 0 := GT row 0;
    (6) ``valid = GT w > 0 and GT h > 0 [and target_visible]``. Then (A.3) the sentinels of invalid frames:
    IoU -1; centre error +Inf (``'uav'``: -1, a success); normalised error -1 (a success); for ``'lasot'`` frames
    with ``target_visible`` false get +Inf in both centre errors. ``target_visible=None`` means every frame is
    visible (the official 'lasot' path would crash on it; LaSOT always provides the flags).

    Returns float64 arrays of length ``len(gt)`` and the boolean ``valid`` mask.
    """
    pred = _as_boxes(pred, "prediction")
    gt = _as_boxes(gt, "ground truth")
    check_prediction(pred)
    if np.isnan(gt).any() and dataset_tag != UAV_TAG:
        raise ValueError(f"NaN in the ground truth (allowed only for the 'uav' tag, got {dataset_tag!r})")
    pred = carry_forward_zero_size(pred, gt)
    pred = match_length(pred, len(gt), dataset_tag)
    pred[0] = gt[0]

    with np.errstate(invalid="ignore"):
        valid = (gt[:, 2] > 0.0) & (gt[:, 3] > 0.0)
    visible = None
    if target_visible is not None:
        visible = np.asarray(target_visible).astype(bool).reshape(-1)
        if len(visible) != len(gt):
            raise ValueError(f"target_visible has {len(visible)} entries but the ground truth has {len(gt)} rows")
        valid &= visible

    err_centre = centre_error(pred, gt)
    err_norm = centre_error(pred, gt, normalized=True)
    iou = iou_inclusive(pred, gt)

    err_centre[~valid] = -1.0 if dataset_tag == UAV_TAG else np.inf
    err_norm[~valid] = -1.0
    iou[~valid] = -1.0
    if dataset_tag == LASOT_TAG and visible is not None:
        err_norm[~visible] = np.inf
        err_centre[~visible] = np.inf
    if np.isnan(iou).any():
        raise ValueError("NaN in the computed overlaps")
    return iou, err_centre, err_norm, valid


def sequence_curves(iou: np.ndarray, err_centre: np.ndarray, err_norm: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A.4 per-sequence curves, float32 like the official: success #{IoU > t} / L, precision #{err <= d} / L,
    normalised precision #{nerr <= r} / L, with L = all GT frames (frame 0 and invalid frames included)."""
    n = np.float32(len(iou))

    def rate(hits: np.ndarray) -> np.ndarray:
        return hits.sum(axis=0).astype(np.float32) / n

    return (rate(iou[:, None] > SUCCESS_THRESHOLDS[None, :]),
            rate(err_centre[:, None] <= PRECISION_THRESHOLDS[None, :]),
            rate(err_norm[:, None] <= NORM_PRECISION_THRESHOLDS[None, :]))


def scores_from_curves(success: np.ndarray, precision: np.ndarray, norm_precision: np.ndarray) -> dict[str, float]:
    """A.4 read-outs in percent from (averaged) curves: AUC = mean of the 21 success values x 100; OP50 / OP75 =
    success at 0.50 / 0.75; Precision = precision at 20 px; NormPrecision = normalised precision at 0.20."""
    success = np.asarray(success, dtype=np.float64) * 100.0
    return {
        "AUC": float(success.mean()),
        "OP50": float(success[OP50_INDEX]),
        "OP75": float(success[OP75_INDEX]),
        "Precision": float(np.float64(precision[PRECISION_INDEX]) * 100.0),
        "NormPrecision": float(np.float64(norm_precision[NORM_PRECISION_INDEX]) * 100.0),
    }


def average_curves(curves: list[np.ndarray]) -> np.ndarray:
    """A.4 dataset aggregation: every sequence weighs the same (mean of the per-sequence float32 curves)."""
    return np.mean(np.stack(curves).astype(np.float64), axis=0)


def clip_to_image(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """B.1 the toolkit's clipping to the image (a copy): x into [0, W], then w into [0, W - x] (same for y / h).

    x is clipped before w is capped, so a box sticking out on the left / top is shifted right / down, not cropped;
    right / bottom overflow is cropped.
    """
    out = np.array(boxes, dtype=np.float64, copy=True)
    for pos, size, bound in ((0, 2, width), (1, 3, height)):
        out[:, pos] = np.clip(out[:, pos], 0, bound)
        out[:, size] = np.clip(out[:, size], 0, bound - out[:, pos])
    return out


def iou_got10k(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """B.1 IoU of the toolkit: continuous intersection / (union + machine eps), clipped to [0, 1]."""
    x1 = np.maximum(pred[:, 0], gt[:, 0])
    y1 = np.maximum(pred[:, 1], gt[:, 1])
    x2 = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
    y2 = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def got10k_sequence_ious(pred: np.ndarray, gt: np.ndarray, cover: np.ndarray,
                         resolution: tuple[float, float]) -> np.ndarray:
    """B.1 per-frame IoUs of one GOT-10k sequence: frames 1..N-1 only, both boxes clipped to ``resolution``
    ``(W, H)``, frames with ``cover == 0`` dropped. No zero-size rule. The prediction must have exactly the GT's
    shape (the toolkit asserts it)."""
    pred = _as_boxes(pred, "prediction")
    gt = _as_boxes(gt, "ground truth")
    cover = np.asarray(cover, dtype=np.float64).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"GOT-10k protocol: prediction has {len(pred)} frames but the ground truth has {len(gt)}")
    if len(cover) != len(gt):
        raise ValueError(f"GOT-10k protocol: cover.label has {len(cover)} entries but the ground truth has {len(gt)}")
    width, height = resolution
    ious = iou_got10k(clip_to_image(pred[1:], width, height), clip_to_image(gt[1:], width, height))
    return ious[cover[1:] > 0]


def got10k_scores(ious: np.ndarray) -> dict[str, float]:
    """B.1 read-outs in percent from per-frame IoUs (one sequence, or all kept frames of all sequences pooled):
    AO = mean IoU, SR50 = fraction IoU > 0.5, SR75 = success curve over ``linspace(0, 1, 101)`` at entry 75.
    An empty input (every frame absent) gives NaN, as the toolkit's means do."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return {key: float("nan") for key in GOT10K_KEYS}
    return {
        "AO": float(np.mean(ious) * 100.0),
        "SR50": float(np.mean(ious > 0.5) * 100.0),
        "SR75": float(np.mean(ious > GOT10K_THRESHOLDS[GOT10K_SR75_INDEX]) * 100.0),
    }
