"""Metrics: hand-computed cases for every rule of metrics.md A.2-A.4 / B.1, and oracle checks against the ``got10k``
toolkit (pip ``got10k==0.1.3``) where the conventions agree."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lib.test.analysis import metrics as m

GT = [10.0, 10.0, 20.0, 20.0]


def scores(pred, gt, tag="otb", visible=None):
    return m.scores_from_curves(*m.sequence_curves(*m.calc_seq_err_robust(pred, gt, tag, visible)[:3]))


def arr(rows):
    return np.array(rows, dtype=np.float64)


# ------------------------------------------------------------------------------------------------ thresholds
def test_success_thresholds_are_the_official_torch_arange_values():
    expected = np.arange(21) * 0.05  # equal to np.arange(0, 1.05, 0.05)
    expected[[13, 15]] = np.nextafter(expected[[13, 15]], 1.0)  # 0.6500000000000001, 0.7500000000000001
    assert np.array_equal(m.SUCCESS_THRESHOLDS, expected)
    assert repr(m.SUCCESS_THRESHOLDS[13]) == "np.float64(0.6500000000000001)"
    # the official OP lookup finds 0.50 / 0.75 only after the float32 round trip: indices 10 and 15
    as32 = m.SUCCESS_THRESHOLDS.astype(np.float32)
    assert np.flatnonzero(as32 == 0.50).tolist() == [m.OP50_INDEX]
    assert np.flatnonzero(as32 == 0.75).tolist() == [m.OP75_INDEX]
    assert np.flatnonzero(m.SUCCESS_THRESHOLDS == 0.75).size == 0  # a float64 lookup finds nothing


def test_precision_thresholds():
    assert m.PRECISION_THRESHOLDS.tolist() == list(range(51))
    assert np.array_equal(m.NORM_PRECISION_THRESHOLDS, np.array([k / 100 for k in range(51)]))
    assert m.NORM_PRECISION_THRESHOLDS[m.NORM_PRECISION_INDEX] == 0.2
    assert m.GOT10K_THRESHOLDS[m.GOT10K_SR75_INDEX] == 0.75 and len(m.GOT10K_THRESHOLDS) == 101


def test_success_threshold_one_ulp_above_065():
    """An IoU one ulp above 0.65 does not pass the official 0.6500000000000001 threshold."""
    iou = np.array([np.nextafter(0.65, 1.0)])
    success = m.sequence_curves(iou, np.zeros(1), np.zeros(1))[0]
    assert success[12] == 1.0 and success[13] == 0.0


# ------------------------------------------------------------------------------------------------ A.3 per frame
def test_iou_exactly_half_fails_op50():
    gt, pred = arr([GT, [0, 0, 10, 10]]), arr([GT, [0, 0, 10, 5]])
    gt[1] = [0, 0, 10, 10]
    iou = m.calc_seq_err_robust(pred, gt, "otb")[0]
    assert iou.tolist() == [1.0, 0.5]
    s = scores(pred, gt)
    assert s["OP50"] == 50.0 and s["OP75"] == 50.0
    assert s["AUC"] == pytest.approx((10 * 1.0 + 10 * 0.5 + 0.0) / 21 * 100, abs=1e-5)
    assert s["Precision"] == 100.0  # centre offset 2.5 px
    assert s["NormPrecision"] == 50.0  # 2.5 / 10 = 0.25 > 0.20


def test_touching_boxes_have_iou_zero():
    gt, pred = arr([GT, [0, 0, 10, 10]]), arr([GT, [10, 0, 10, 10]])
    gt[1] = [0, 0, 10, 10]
    iou = m.calc_seq_err_robust(pred, gt, "otb")[0]
    assert iou[1] == 0.0
    assert m.sequence_curves(*m.calc_seq_err_robust(pred, gt, "otb")[:3])[0][0] == 0.5  # IoU 0 fails t = 0


def test_fractional_iou_is_continuous():
    pred, gt = arr([[0.5, 0.25, 3.5, 2.0]]), arr([[1.0, 0.0, 2.0, 4.0]])
    inter = 2.0 * 2.0
    assert m.iou_inclusive(pred, gt)[0] == pytest.approx(inter / (7.0 + 8.0 - inter), rel=1e-15)


def test_fractional_frame0_iou_keeps_the_official_rounding():
    """Frame 0 := GT; with a fractional GT the inclusive-pixel arithmetic can give 1 + 1 ulp (it then passes the
    threshold 1.0) or 1 - 1 ulp, as the official float64 computation does."""
    above = arr([[100.1, 50.1, 20.7, 30.9]])
    assert repr(float(m.iou_inclusive(above, above)[0])) == "1.0000000000000004"
    success = m.sequence_curves(*m.calc_seq_err_robust(above + 1, above, "got10k")[:3])[0]
    assert success[20] == 1.0
    below = arr([[12.3, 45.6, 33.3, 21.7]])
    assert repr(float(m.iou_inclusive(below, below)[0])) == "0.9999999999999997"


def test_normalised_error_divides_centres_before_subtracting():
    """18 px on a 90 px box: 0.20000000000000018 (> 0.20, fails) for this position, while 18 / 90 == 0.2."""
    gt = arr([[48, 50, 90, 90], [48, 50, 90, 90]])
    pred = gt.copy()
    pred[1, 0] += 18
    _, err, nerr, _ = m.calc_seq_err_robust(pred, gt, "otb")
    assert err[1] == 18.0 and 18 / 90 == 0.2
    assert repr(float(nerr[1])) == "0.20000000000000018"
    assert scores(pred, gt)["NormPrecision"] == 50.0
    gt[:, 0] = 0  # at x = 0 the rounding goes the other way: 0.19999999999999996 passes
    pred = gt.copy()
    pred[1, 0] += 18
    assert scores(pred, gt)["NormPrecision"] == 100.0


def test_centre_error_and_frame0_set_to_gt():
    gt = arr([GT, GT])
    pred = arr([[500, 500, 1, 1], [13, 14, 20, 20]])
    iou, err, _, valid = m.calc_seq_err_robust(pred, gt, "otb")
    assert iou[0] == 1.0 and err[0] == 0.0 and err[1] == 5.0 and valid.all()


# ------------------------------------------------------------------------------------------------ A.2 rules
def test_invalid_predictions_raise():
    gt = arr([GT, GT])
    with pytest.raises(ValueError, match="NaN or negative"):
        m.calc_seq_err_robust(arr([GT, [1, 1, np.nan, 2]]), gt, "otb")
    with pytest.raises(ValueError, match="frame\\(s\\) 1"):
        m.calc_seq_err_robust(arr([GT, [1, 1, -1, 2]]), gt, "uav")
    m.calc_seq_err_robust(arr([GT, [-5, -5, 20, 20]]), gt, "otb")  # negative x, y are fine


def test_nan_gt_raises_except_uav():
    gt = arr([GT, [np.nan] * 4, GT])
    pred = arr([GT, GT, GT])
    for tag in ("otb", "lasot", "got10k", "lasot_extension_subset"):
        with pytest.raises(ValueError, match="NaN in the ground truth"):
            m.calc_seq_err_robust(pred, gt, tag)
    iou, err, nerr, valid = m.calc_seq_err_robust(pred, gt, "uav")
    assert valid.tolist() == [True, False, True]
    assert iou[1] == -1.0 and err[1] == -1.0 and nerr[1] == -1.0
    s = scores(pred, gt, "uav")
    assert s["Precision"] == 100.0 and s["NormPrecision"] == 100.0  # the NaN frame counts as a success
    assert s["OP50"] == pytest.approx(200 / 3, abs=1e-5)  # but fails IoU


def test_zero_size_carry_forward_and_frame1_quirk():
    """Frame 1 inherits the tracker's raw frame-0 box (not the GT); runs of zero boxes carry forward."""
    gt = arr([GT] * 5)
    pred = arr([[0, 0, 5, 5], [10, 10, 0, 20], [12, 10, 20, 20], [0, 0, 0, 0], [3, 3, 7, 0]])
    iou = m.calc_seq_err_robust(pred, gt, "otb")[0]
    # frame 1 = raw frame 0 [0,0,5,5]: disjoint from the GT; frames 3, 4 = [12,10,20,20]: 18*20 / (800 - 360)
    assert iou.tolist() == pytest.approx([1.0, 0.0, 360 / 440, 360 / 440, 360 / 440], abs=1e-15)


def test_zero_size_rule_skips_nan_gt_rows():
    gt = arr([GT, [np.nan] * 4, GT])
    pred = arr([GT, [10, 10, 0, 0], [10, 10, 20, 0]])
    iou = m.calc_seq_err_robust(pred, gt, "uav")[0]
    # row 1 is kept (its GT has NaN); row 2 inherits row 1, a zero-area box: IoU 0
    assert iou.tolist() == [1.0, -1.0, 0.0]


def test_shorter_prediction_padded_after_zero_size_rule():
    gt = arr([GT] * 4)
    pred = arr([GT, [10, 10, 0, 0]])
    iou, err, nerr, _ = m.calc_seq_err_robust(pred, gt, "otb")
    assert iou.tolist() == [1.0, 1.0, 0.0, 0.0]  # row 1 carried forward, padded rows stay 0,0,0,0
    assert err[2] == pytest.approx(math.hypot(20, 20))  # centres (-0.5, -0.5) vs (19.5, 19.5)
    with pytest.raises(ValueError, match="shorter prediction"):
        m.calc_seq_err_robust(pred, gt, "lasot", np.ones(4))


def test_longer_prediction_truncated_for_every_tag():
    gt = arr([GT] * 2)
    pred = arr([GT, GT, [0, 0, 0, 0], [np.inf, 0, 1, 1]])
    for tag, vis in (("otb", None), ("lasot", np.ones(2))):
        assert m.calc_seq_err_robust(pred, gt, tag, vis)[0].tolist() == [1.0, 1.0]


# ------------------------------------------------------------------------------------------------ sentinels
def test_generic_invalid_frame_counts_as_normprecision_success():
    gt = arr([GT, [10, 10, 0, 20], [10, 10, 20, 20]])
    pred = arr([GT, [300, 300, 5, 5], [300, 300, 5, 5]])
    iou, err, nerr, valid = m.calc_seq_err_robust(pred, gt, "got10k")
    assert valid.tolist() == [True, False, True]
    assert iou[1] == -1.0 and err[1] == np.inf and nerr[1] == -1.0
    s = scores(pred, gt, "got10k")
    assert s["NormPrecision"] == pytest.approx(200 / 3, abs=1e-5)
    assert s["Precision"] == pytest.approx(100 / 3, abs=1e-5)
    assert s["AUC"] == pytest.approx(100 * 20 / 21 / 3, abs=1e-5)


def test_uav_invalid_frame_counts_as_precision_success():
    gt = arr([GT, [10, 10, 0, 20]])
    s = scores(arr([GT, [300, 300, 5, 5]]), gt, "uav")
    assert s["Precision"] == 100.0 and s["NormPrecision"] == 100.0 and s["OP50"] == 50.0


def test_lasot_invisible_frames_fail_everything():
    gt = arr([GT, GT, [10, 10, 0, 0]])
    pred = arr([GT, GT, [10, 10, 20, 20]])
    visible = np.array([1, 0, 1])
    iou, err, nerr, valid = m.calc_seq_err_robust(pred, gt, "lasot", visible)
    assert valid.tolist() == [True, False, False]
    assert iou.tolist() == [1.0, -1.0, -1.0]
    assert err.tolist() == [0.0, np.inf, np.inf]
    assert nerr.tolist() == [0.0, np.inf, -1.0]  # visible but zero-size GT: -1, a success
    s = scores(pred, gt, "lasot", visible)
    assert s["NormPrecision"] == pytest.approx(200 / 3, abs=1e-5)
    assert s["Precision"] == pytest.approx(100 / 3, abs=1e-5)


def test_lasot_extension_subset_is_generic():
    """Visibility flags make frames invalid, but without the 'lasot' override: norm. precision success."""
    gt, pred = arr([GT, GT]), arr([GT, GT])
    iou, err, nerr, _ = m.calc_seq_err_robust(pred, gt, "lasot_extension_subset", np.array([True, False]))
    assert iou[1] == -1.0 and err[1] == np.inf and nerr[1] == -1.0


# ------------------------------------------------------------------------------------------------ A.4 scores
def test_curves_are_float32_over_all_frames():
    gt = arr([GT, [0, 0, 0, 0], GT])
    curves = m.sequence_curves(*m.calc_seq_err_robust(arr([GT] * 3), gt, "otb")[:3])
    assert all(c.dtype == np.float32 for c in curves)
    assert curves[0][0] == np.float32(2) / np.float32(3)  # denominator 3 includes the invalid frame


def test_auc_equals_ceil_formula_on_random_boxes():
    """AUC = mean over sequences of (1 / L) sum ceil(20 IoU) / 21 (metrics.md A.4), dataset = sequence mean."""
    rng = np.random.default_rng(0)
    curves, expected = [], []
    for length in (7, 30, 61):
        gt = np.column_stack([rng.uniform(0, 100, (length, 2)), rng.uniform(5, 50, (length, 2))])
        pred = np.column_stack([gt[:, :2] + rng.normal(0, 8, (length, 2)),
                                gt[:, 2:] * rng.uniform(0.5, 1.5, (length, 2))])
        iou, err, nerr, _ = m.calc_seq_err_robust(pred, gt, "otb")
        expected.append(np.sum(np.ceil(20 * iou[iou > 0])) / 21 / length * 100)
        curves.append(m.sequence_curves(iou, err, nerr))
        assert m.scores_from_curves(*curves[-1])["AUC"] == pytest.approx(expected[-1], abs=1e-5)
    overall = m.scores_from_curves(*(m.average_curves([c[k] for c in curves]) for k in range(3)))
    assert overall["AUC"] == pytest.approx(np.mean(expected), abs=1e-5)


# ------------------------------------------------------------------------------------------------ B.1 GOT-10k
def test_got10k_clipping_shifts_left_and_crops_right():
    clipped = m.clip_to_image(arr([[-10, 0, 50, 50], [60, 70, 50, 50], [120, -5, 10, 10]]), 100, 100)
    assert clipped.tolist() == [[0, 0, 50, 50], [60, 70, 40, 30], [100, 0, 0, 10]]


def test_got10k_sequence_protocol():
    gt = arr([[0, 0, 50, 50]] * 5)
    pred = arr([[90, 90, 5, 5],     # frame 0: not scored
                [-10, 0, 50, 50],   # shifted to [0, 0, 50, 50]: IoU 1 (exact cropping would give 0.8)
                [25, 0, 50, 50],    # IoU 1/3
                [0, 0, 0, 0],       # zero-size: no carry-forward, IoU 0
                [0, 0, 50, 25]])    # cover 0: dropped
    ious = m.got10k_sequence_ious(pred, gt, np.array([8, 8, 3, 1, 0]), (100, 100))
    assert ious.tolist() == pytest.approx([1.0, 1 / 3, 0.0], abs=1e-12)
    s = m.got10k_scores(ious)
    assert s["AO"] == pytest.approx(100 * (4 / 3) / 3)
    assert s["SR50"] == pytest.approx(100 / 3) and s["SR75"] == s["SR50"]
    with pytest.raises(ValueError, match="frames"):
        m.got10k_sequence_ious(pred[:4], gt, np.ones(5), (100, 100))


def test_got10k_half_iou_fails_sr50_and_pooling_is_frame_weighted():
    short = m.got10k_sequence_ious(arr([[0, 0, 10, 10], [0, 0, 10, 5]]), arr([[0, 0, 10, 10]] * 2),
                                   np.ones(2), (100, 100))
    assert short[0] == pytest.approx(0.5) and m.got10k_scores(short)["SR50"] == 0.0
    long = np.ones(9)
    pooled = m.got10k_scores(np.concatenate([short, long]))
    assert pooled["AO"] == pytest.approx(100 * (0.5 + 9) / 10)  # not (50 + 100) / 2


# ------------------------------------------------------------------------------------------------ oracles
@pytest.fixture
def got10k_metrics():
    """The toolkit's ``got10k.utils.metrics`` (dev extra); only the oracle tests are skipped without it."""
    return pytest.importorskip("got10k.utils.metrics")


def _random_boxes(rng, n, low=-20.0, high=150.0):
    return np.column_stack([rng.uniform(low, high, (n, 2)), rng.uniform(1, 80, (n, 2))])


def test_oracle_rect_iou_and_center_error(got10k_metrics):
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 500), _random_boxes(rng, 500)
    b[:100] = a[:100] + rng.normal(0, 3, (100, 4)).clip(-0.9, 0.9)  # many overlapping pairs
    ours = m.iou_inclusive(a, b)
    theirs = got10k_metrics.rect_iou(a.copy(), b.copy())
    assert np.count_nonzero(ours > 0) > 100
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert np.allclose(m.centre_error(a, b), got10k_metrics.center_error(a, b), rtol=1e-13, atol=0)
    # the GOT-10k protocol's clipped IoU is the toolkit's rect_iou(bound=) exactly
    bounded = got10k_metrics.rect_iou(a.copy(), b.copy(), bound=(120, 90))
    assert np.array_equal(m.iou_got10k(m.clip_to_image(a, 120, 90), m.clip_to_image(b, 120, 90)), bounded)


def test_oracle_otb_success_score_equals_auc():
    """ExperimentOTB's success_score / precision_score / success_rate equal our AUC / Precision / OP50 when no frame
    is invalid and no prediction has zero size (integer boxes, as in OTB's GT and the runner's results: with
    fractional GT the inclusive-pixel rounding can put frame 0 one ulp above 1, see above)."""
    otb = pytest.importorskip("got10k.experiments.otb")
    exp = otb.ExperimentOTB.__new__(otb.ExperimentOTB)  # skip the dataset download of __init__
    exp.nbins_iou, exp.nbins_ce = 21, 51
    rng = np.random.default_rng(2)
    checked = []
    for length in (10, 50, 200):
        gt = np.trunc(np.column_stack([rng.uniform(0, 300, (length, 2)), rng.uniform(10, 90, (length, 2))]))
        pred = np.trunc(gt + rng.normal(0, 12, (length, 4)))
        pred[:, 2:] = np.maximum(pred[:, 2:], 1)
        ours = scores(pred, gt)
        boxes = pred.copy()
        boxes[0] = gt[0]
        ious, errors = exp._calc_metrics(boxes, gt)
        succ, prec = exp._calc_curves(ious, errors)
        assert ours["AUC"] == pytest.approx(100 * np.mean(succ), abs=1e-4)
        assert ours["Precision"] == pytest.approx(100 * prec[20], abs=1e-4)
        assert ours["OP50"] == pytest.approx(100 * succ[10], abs=1e-4)
        checked.append(ours["AUC"])
    assert len(set(checked)) == 3 and 0 < min(checked) < max(checked) < 100
