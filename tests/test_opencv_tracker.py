"""The OpenCV-style tracker (``lib.test.tracker.opencv_style``) and the lost-target measurement
(``lib.test.analysis.lost_target``, ``tracking/lost_target.py``).

Real trackers run the quickstart configs (64 / 32 pixel crops) at depth 6 with random weights: these tests check the
plumbing (colour order, boxes, scores, files), not accuracy. The ok / score semantics use a scripted fake tracker.
"""
from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib.api import build_opencv_tracker, build_tracker
from lib.test.analysis.lost_target import (auroc, choose_threshold, false_alarm_thresholds, find_sequences,
                                           load_labelled_sequence, score_sequence, threshold_row, threshold_table)
from lib.test.evaluation.datasets import DatasetError
from lib.test.tracker.opencv_style import DEFAULT_LOST_THRESHOLD, OpenCVStyleTracker, as_rgb_frame
from tracking.lost_target import main as lost_target_main

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sequences"
DEPTH = 6
NUM_FRAMES = 6
SPARSE = ("fartrack_sparse", "fartrack_sparse_quickstart")

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real sequences not found at {REAL}")


class FakeTracker:
    """Returns the scripted scores (and a box moving by one pixel a frame); records the frames it was given."""

    def __init__(self, scores=(), output=None):
        self.scores = list(scores)
        self.output = output
        self.frames: list[np.ndarray] = []
        self.init_box = None

    def initialize(self, image, info):
        self.frames.append(image)
        self.init_box = info["init_bbox"]
        self.state = list(info["init_bbox"])
        return {"target_bbox": list(self.state)}

    def track(self, image, info=None):
        self.frames.append(image)
        if self.output is not None:
            return self.output
        self.state[0] += 1
        return {"target_bbox": list(self.state), "best_score": self.scores.pop(0)}


def bgr_frame(height=48, width=64):
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = 200  # blue in OpenCV's BGR order
    frame[..., 2] = 10
    return frame


def real_frames(name: str, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The first ``count`` frames of a real sequence as cv2.imread gives them (BGR) and their ground truth."""
    paths = sorted((REAL / name).glob("*.jpg"))[:count]
    gt = np.loadtxt(REAL / name / "groundtruth.txt", delimiter=",")[:count]
    return [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths], gt


def assert_valid_box(box, shape):
    assert len(box) == 4 and all(isinstance(v, float) and math.isfinite(v) for v in box)
    x, y, w, h = box
    assert w > 0 and h > 0 and x < shape[1] and y < shape[0] and x + w > 0 and y + h > 0


# ------------------------------------------------------------------ ok / score semantics (fake tracker)
def test_ok_follows_the_threshold_boundary():
    t = 0.3
    fake = FakeTracker([0.9, t, np.nextafter(t, 0.0), 0.0, float("nan"), 1.0])
    tracker = OpenCVStyleTracker(fake, threshold=t)
    assert math.isnan(tracker.score) and not tracker.ok and tracker.box is None
    assert tracker.init(bgr_frame(), (10, 12, 20, 16)) is True
    assert tracker.ok and math.isnan(tracker.score) and tracker.box == (10.0, 12.0, 20.0, 16.0)
    results = [tracker.update(bgr_frame()) for _ in range(6)]
    assert [ok for ok, _ in results] == [True, True, False, False, False, True]  # score == threshold is ok
    assert [box[0] for _, box in results] == [11.0, 12.0, 13.0, 14.0, 15.0, 16.0]  # box kept when lost
    assert tracker.score == 1.0 and tracker.ok and tracker.frame_count == 7
    assert tracker.last_output["best_score"] == 1.0


def test_no_threshold_never_reports_a_loss_and_missing_scores_are_nan():
    tracker = OpenCVStyleTracker(FakeTracker([0.0, float("nan")]), threshold=None)
    tracker.init(bgr_frame(), (1, 1, 5, 5))
    assert tracker.update(bgr_frame())[0] and tracker.update(bgr_frame())[0]
    no_score = OpenCVStyleTracker(FakeTracker(output={"target_bbox": [1, 2, 3, 4]}), threshold=0.1)
    no_score.init(bgr_frame(), (1, 1, 5, 5))
    ok, box = no_score.update(bgr_frame())
    assert not ok and math.isnan(no_score.score) and box == (1.0, 2.0, 3.0, 4.0)


def test_default_threshold_is_documented_and_used():
    assert OpenCVStyleTracker(FakeTracker()).threshold == DEFAULT_LOST_THRESHOLD
    docs = (Path(__file__).resolve().parents[1] / "docs" / "opencv-tracker.md").read_text()
    assert f"DEFAULT_LOST_THRESHOLD = {DEFAULT_LOST_THRESHOLD}" in docs
    assert "tracking/lost_target.py" in docs


# ------------------------------------------------------------------ colour order and frame forms
def test_bgr_frames_reach_the_tracker_as_rgb_and_rgb_frames_pass_through():
    fake = FakeTracker([0.5])
    tracker = OpenCVStyleTracker(fake)  # bgr=True by default
    tracker.init(bgr_frame(), np.array([3, 4, 10, 10]))
    tracker.update(bgr_frame())
    for seen in fake.frames:
        assert seen.shape == (48, 64, 3) and seen.dtype == np.uint8 and seen.flags.c_contiguous
        assert tuple(seen[0, 0]) == (10, 0, 200)  # R, G, B
    assert fake.init_box == [3.0, 4.0, 10.0, 10.0]

    flipped = as_rgb_frame(bgr_frame()[:, ::-1])  # a view with a negative stride
    assert flipped.flags.c_contiguous and tuple(flipped[0, 0]) == (10, 0, 200)

    fake = FakeTracker([0.5])
    rgb = OpenCVStyleTracker(fake, bgr=False)
    rgb.init(bgr_frame()[:, ::-1], (3, 4, 10, 10))  # a non-contiguous view is fine
    assert tuple(fake.frames[0][0, 0]) == (200, 0, 10) and fake.frames[0].flags.c_contiguous


@pytest.mark.parametrize("shape", [(48, 64), (48, 64, 1)])
def test_grayscale_frames_are_expanded(shape):
    gray = np.full(shape, 77, np.uint8)
    out = as_rgb_frame(gray)
    assert out.shape == (48, 64, 3) and (out == 77).all()


# ------------------------------------------------------------------ input errors
@pytest.mark.parametrize("image, error, message", [
    (None, TypeError, "frame was not read"),
    ([[1, 2, 3]], TypeError, "numpy array"),
    (np.zeros((8, 8, 3), np.float32), ValueError, "uint8"),
    (np.zeros((8, 8, 4), np.uint8), ValueError, "COLOR_BGRA2BGR"),
    (np.zeros((8, 8, 2), np.uint8), ValueError, "(H, W, 3)"),
    (np.zeros((2, 8, 8, 3), np.uint8), ValueError, "(H, W, 3)"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, "empty"),
])
def test_bad_frames_are_refused_clearly(image, error, message):
    tracker = OpenCVStyleTracker(FakeTracker([0.5]))
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        tracker.init(image, (1, 1, 4, 4))
    tracker.init(bgr_frame(), (1, 1, 4, 4))
    with pytest.raises(error):
        tracker.update(image)


@pytest.mark.parametrize("box, message", [
    ((1, 2, 3), "4 numbers"),
    ("abcd", "4 numbers"),
    ((1, 2, float("nan"), 4), "finite"),
    ((0, 0, 0, 0), "selectROI"),
    ((5, 5, -3, 4), "positive"),
    ((64, 10, 5, 5), "outside"),
    ((-20, 10, 19, 5), "outside"),
])
def test_bad_boxes_are_refused_clearly(box, message):
    with pytest.raises(ValueError, match=message):
        OpenCVStyleTracker(FakeTracker()).init(bgr_frame(), box)


def test_update_before_init_bad_threshold_and_bad_trackers():
    with pytest.raises(RuntimeError, match="before init"):
        OpenCVStyleTracker(FakeTracker([0.5])).update(bgr_frame())
    for threshold in (-0.1, 1.5, float("nan"), True, "0.2"):
        with pytest.raises(ValueError, match="threshold"):
            OpenCVStyleTracker(FakeTracker(), threshold=threshold)
    with pytest.raises(TypeError, match="initialize"):
        OpenCVStyleTracker(object())
    broken = OpenCVStyleTracker(FakeTracker(output={"best_score": 0.5}))
    broken.init(bgr_frame(), (1, 1, 4, 4))
    with pytest.raises(TypeError, match="target_bbox"):
        broken.update(bgr_frame())


# ------------------------------------------------------------------ real trackers
@pytest.fixture(scope="module")
def sparse_tracker():
    return build_tracker(*SPARSE, depth=DEPTH)


@needs_real
def test_real_sequence_matches_the_wrapped_tracker_on_rgb(sparse_tracker):
    frames, gt = real_frames("otb_Crossing", NUM_FRAMES)
    wrapper = OpenCVStyleTracker(sparse_tracker, threshold=0.5)
    assert wrapper.init(frames[0], tuple(gt[0]))
    wrapped = []
    for frame in frames[1:]:
        ok, box = wrapper.update(frame)
        assert_valid_box(box, frame.shape)
        assert 0.0 <= wrapper.score <= 1.0 and ok == (wrapper.score >= 0.5)
        wrapped.append((box, wrapper.score))
    # The same tracker given RGB frames directly: the same boxes and scores (the BGR -> RGB conversion is right).
    # Up to float rounding: the oneDNN fast path is not bitwise reproducible from run to run (~1e-5 px seen).
    sparse_tracker.initialize(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB), {"init_bbox": list(gt[0])})
    for frame, (box, score) in zip(frames[1:], wrapped):
        out = sparse_tracker.track(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        assert out["target_bbox"] == pytest.approx(list(box), abs=1e-3)
        assert out["best_score"] == pytest.approx(score, abs=1e-5)


@needs_real
def test_video_file_through_cv2_videocapture(tmp_path):
    frames, gt = real_frames("tld_motocross_first100", NUM_FRAMES)
    height, width = frames[0].shape[:2]
    path = tmp_path / "motocross.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    if not writer.isOpened():  # an OpenCV build without mp4v: MJPG in an .avi, as the video demo does
        path = path.with_suffix(".avi")
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()

    tracker = build_opencv_tracker(*SPARSE, depth=DEPTH, threshold=0.01)
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    assert ok and tracker.init(frame, tuple(gt[0]))
    updates = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        found, box = tracker.update(frame)
        assert_valid_box(box, frame.shape)
        assert found == (tracker.score >= 0.01)
        updates += 1
    capture.release()
    assert updates == NUM_FRAMES - 1 and tracker.frame_count == NUM_FRAMES


@needs_real
def test_fastseqtrack_and_onnx_runtime_trackers_behind_the_wrapper(tmp_path, sparse_tracker):
    frames, gt = real_frames("otb_Crossing", 3)
    trackers = {"fastseqtrack": build_tracker("fastseqtrack", "fastseqtrack_quickstart")}
    if importlib.util.find_spec("onnxruntime") is not None:  # the optional [onnx] extra
        from lib.export import OnnxBackend, export_onnx
        from lib.test.tracker.fartrack import FARTrackTracker

        export_onnx(sparse_tracker.backend.net, tmp_path / "sparse.onnx", sparse_tracker.params)
        backend = OnnxBackend(tmp_path / "sparse.onnx", intra_op_num_threads=1)
        trackers["onnx"] = FARTrackTracker(backend, backend.tracker_params)
    for name, inner in trackers.items():
        tracker = OpenCVStyleTracker(inner)
        tracker.init(frames[0], tuple(gt[0]))
        for frame in frames[1:]:
            ok, box = tracker.update(frame)
            assert_valid_box(box, frame.shape)
            assert 0.0 <= tracker.score <= 1.0 and ok == (tracker.score >= DEFAULT_LOST_THRESHOLD), name
        if name == "fastseqtrack":
            assert "exit" in tracker.last_output  # the wrapped tracker's own output stays reachable


# ------------------------------------------------------------------ AUROC and the threshold table
@pytest.mark.parametrize("scores, positive, expected", [
    ([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0], 1.0),
    ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 0.0),
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),  # pairs: (.35>.1) (.35<.4) (.8>.1) (.8>.4) -> 3/4
    ([0.5, 0.5, 0.5], [1, 0, 1], 0.5),  # all tied
    ([0.5, 0.7, 0.5, 0.3], [1, 1, 0, 0], 0.875),  # (.5=.5)=1/2, (.5>.3), (.7>.5), (.7>.3) -> 3.5/4
    ([2, 1, 1, 1, 0], [1, 1, 0, 0, 1], 0.5),  # 2 beats both, each 1 ties twice, 0 loses: (2 + 1 + 0) / 6
])
def test_auroc_hand_computed(scores, positive, expected):
    assert auroc(scores, positive) == pytest.approx(expected)


def test_auroc_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0)
             for p, n in itertools.product(scores[positive], scores[~positive])]
    assert auroc(scores, positive) == pytest.approx(sum(pairs) / len(pairs))
    assert auroc(-scores, ~positive) == pytest.approx(sum(pairs) / len(pairs))  # the lost-class view


@pytest.mark.parametrize("scores, positive, message", [
    ([0.1, 0.2], [1, 1], "both classes"),
    ([0.1, 0.2], [1], "labels"),
    ([0.1, float("nan")], [1, 0], "NaN"),
])
def test_auroc_refuses_degenerate_input(scores, positive, message):
    with pytest.raises(ValueError, match=message):
        auroc(scores, positive)


def test_threshold_table_hand_computed():
    scores = [0.1, 0.2, 0.3, 0.4, float("nan")]
    lost = [True, False, True, False, True]
    row = threshold_row(scores, lost, 0.25)  # flagged: 0.1 (lost), 0.2 (visible), NaN (lost)
    assert (row.flagged, row.true_lost) == (3, 2)
    assert row.precision == pytest.approx(2 / 3) and row.recall == pytest.approx(2 / 3)
    assert row.f1 == pytest.approx(2 / 3) and row.false_alarm == pytest.approx(1 / 2)
    at_score = threshold_row(scores, lost, 0.3)  # score == threshold is not flagged, as ok is True for it
    assert (at_score.flagged, at_score.true_lost) == (3, 2)
    none = threshold_table(scores, [False] * 4 + [True], [0.0])[0]
    assert none.flagged == 1 and none.true_lost == 1 and none.false_alarm == 0.0


def test_choose_threshold_respects_the_false_alarm_limit():
    visible = np.linspace(0.30, 0.90, 20)  # 20 visible frames
    lost = np.array([0.05, 0.10, 0.32, 0.50])  # 2 easy lost frames, 2 hard ones
    scores = np.r_[visible, lost]
    labels = np.r_[np.zeros(20, bool), np.ones(4, bool)]
    best = choose_threshold(scores, labels, max_false_alarm=0.0)
    assert best.threshold == pytest.approx(0.101) and best.precision == 1.0 and best.recall == 0.5
    loose = choose_threshold(scores, labels, max_false_alarm=0.05)  # one visible frame (0.30) may be flagged
    assert loose.threshold == pytest.approx(0.321) and loose.false_alarm == pytest.approx(0.05)
    assert loose.true_lost == 3 and loose.precision == pytest.approx(0.75)
    assert false_alarm_thresholds(scores, labels, rates=[0.0]) == [0.3]
    assert choose_threshold(scores, np.zeros(24, bool)) is None
    assert choose_threshold(np.r_[visible, [0.95]], np.r_[np.zeros(20, bool), [True]], 0.0) is None


# ------------------------------------------------------------------ labelled data and the command
@needs_real
def test_labels_of_the_real_tld_sequence():
    seq = load_labelled_sequence(REAL / "tld_motocross_first100")
    assert len(seq) == 100 and int(seq.absent.sum()) == 17 and seq.labels_from == "absence.label"
    assert np.all(seq.boxes[seq.absent] == 0)
    assert find_sequences(REAL, ["tld_motocross_first100", "otb_Crossing"]) == \
        [REAL / "otb_Crossing", REAL / "tld_motocross_first100"]


def test_lasot_layout_labels_and_scoring(tmp_path):
    folder = tmp_path / "lasot" / "cat" / "cat-1"
    (folder / "img").mkdir(parents=True)
    for i in range(5):
        frame = np.full((40, 50, 3), 30 * i, np.uint8)
        cv2.imwrite(str(folder / "img" / f"{i + 1:08d}.jpg"), frame)
    (folder / "groundtruth.txt").write_text("5,5,10,10\n6,5,10,10\n7,5,10,10\n0,0,0,0\n8,5,10,10\n")
    (folder / "full_occlusion.txt").write_text("0,0,1,0,0")
    (folder / "out_of_view.txt").write_text("0,0,0,1,0")
    assert find_sequences(tmp_path / "lasot") == [folder]
    seq = load_labelled_sequence(folder)
    assert seq.absent.tolist() == [False, False, True, True, False]
    scored = score_sequence(FakeTracker([0.9, 0.1, 0.2, 0.8]), seq)
    assert scored.scores.tolist() == [0.9, 0.1, 0.2, 0.8] and scored.absent.tolist() == [False, True, True, False]
    assert auroc(scored.scores, ~scored.absent) == 1.0
    assert scored.iou[0] == pytest.approx(1.0) and np.isnan(scored.iou[1:3]).all()  # the fake moves 1 px / frame
    (folder / "out_of_view.txt").write_text("0,0,0,1")
    with pytest.raises(DatasetError, match="absence labels"):
        load_labelled_sequence(folder)
    for name in ("full_occlusion.txt", "out_of_view.txt"):  # no label files: empty ground-truth boxes are absent
        (folder / name).unlink()
    unlabelled = load_labelled_sequence(folder)
    assert unlabelled.absent.tolist() == [False, False, False, True, False]
    assert unlabelled.labels_from == "empty ground-truth boxes"


@needs_real
def test_lost_target_command_prints_auroc_and_the_table(capsys):
    code = lost_target_main([str(REAL / "tld_motocross_first100"), "--script", SPARSE[0], "--config", SPARSE[1],
                             "--random_weights", "--depth", str(DEPTH), "--max_frames", "36", "--threads", "1",
                             "--thresholds", "0.5"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "35 tracked frames, 5 absent" in out and "AUROC visible vs absent (score): 0." in out
    assert "threshold   flagged  precision  recall" in out and "    0.500" in out
    assert f"default threshold {DEFAULT_LOST_THRESHOLD}" in out


def test_lost_target_command_fails_clearly(tmp_path, capsys):
    assert lost_target_main([str(tmp_path), "--script", SPARSE[0], "--random_weights"]) == 2
    assert "no sequence folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        lost_target_main([str(tmp_path), "--random_weights"])  # needs --script
