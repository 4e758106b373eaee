"""Lockstep batches: many sequences (or targets) per network call give the one-at-a-time results."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.api import build_tracker, track_many
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.lockstep import track_lockstep
from lib.test.evaluation.running import TrackerSpec, read_rgb, result_paths, run_sequences, track_sequence
from lib.test.evaluation.run_benchmark import option_error
from lib.families import get_family
from lib.test.tracker.backends import InferenceOptions
from lib.test.tracker.fartrack import FARTrackTracker
from lib.test.tracker.lockstep import MultiTargetTracker
from test_tracker import CONFIGS, make_tracker, real_sequence

NAMES = ("otb_Crossing", "otb_Dudek_first20", "vot_ball1", "tld_motocross_first100")


def sequences() -> list[Sequence]:
    """Four real sequences of different lengths (the batch refills as they end at different steps)."""
    return [real_sequence(name, 6 + 3 * index) for index, name in enumerate(NAMES)]


class CallLog:
    """Wraps a backend's ``run_batch`` and records every call's kept template tokens per row (0: dense family)."""

    def __init__(self, backend) -> None:
        self.calls: list[list[int]] = []
        self.network_calls = 0
        self.inner_call = backend._call
        self.inner_batch = backend.run_batch
        backend.run_batch, backend._call = self.run_batch, self.call

    def run_batch(self, templates, crops, keeps):
        self.calls.append([int(keep.sum()) for keep in keeps] if keeps is not None else [0] * len(crops))
        return self.inner_batch(templates, crops, keeps)

    def call(self, *args):
        self.network_calls += 1
        return self.inner_call(*args)


def assert_same_runs(tracker: FARTrackTracker, seqs: list[Sequence], batch: int) -> None:
    single = {seq.name: track_sequence(tracker, seq) for seq in seqs}
    runs = list(track_lockstep(tracker, seqs, batch, read_rgb))
    assert sorted(run.seq.name for run in runs) == sorted(single)
    for run in runs:
        assert not run.error, run.error
        expected_boxes, expected_times, expected_scores = single[run.seq.name]
        assert len(run.boxes) == len(run.times) == len(run.seq.frames)
        np.testing.assert_allclose(run.boxes, expected_boxes, atol=1e-3)
        np.testing.assert_allclose(run.scores, expected_scores, atol=1e-5)


@pytest.mark.parametrize("family", ["fartrack", "fartrack_distill", "fartrack_sparse"])
def test_lockstep_batches_give_the_single_sequence_boxes(family):
    tracker = make_tracker(family, depth=3)
    log = CallLog(tracker.backend)
    assert_same_runs(tracker, sequences(), batch=3)
    batched = [call for call in log.calls if len(call) > 1]
    assert batched, "no step ran more than one sequence"
    if family == "fartrack_sparse":
        # A sequence that joins mid-run runs its first frame with all template tokens (5 x 49) beside pruned
        # ones (4 x 37 + 49): both states in one step, one network call per token count.
        tokens = tracker.spec.num_templates * tracker.spec.tokens_per_template
        mixed = [call for call in batched if tokens in call and min(call) < tokens]
        assert mixed, log.calls
        assert log.network_calls > len(log.calls)


def test_faithful_path_mixes_sparse_states_in_one_masked_call():
    tracker = make_tracker("fartrack_sparse", depth=3)
    tracker = FARTrackTracker(tracker.backend.net, tracker.params, InferenceOptions.faithful())
    log = CallLog(tracker.backend)
    assert_same_runs(tracker, sequences()[:3], batch=3)
    assert log.network_calls == len(log.calls)  # pruned keys are masked: one call per step


def test_backends_without_run_batch_run_rows_one_by_one():
    tracker = make_tracker("fartrack_sparse", depth=3)

    class OneAtATime:  # the ONNX Runtime backend's contract: run() only
        def __init__(self, inner) -> None:
            self.inner = inner
            self.family, self.spec, self.prunes_templates = inner.family, inner.spec, inner.prunes_templates

        def encode_template(self, crop):
            return self.inner.encode_template(crop)

        def run(self, templates, crop, keep):
            return self.inner.run(templates, crop, keep)

    assert_same_runs(FARTrackTracker(OneAtATime(tracker.backend), tracker.params), sequences()[:3], batch=2)


def test_a_failing_sequence_fails_alone(tmp_path):
    tracker = make_tracker("fartrack", depth=2)
    seqs = sequences()[:3]
    broken = Sequence("broken", seqs[0].frames[:3] + [str(tmp_path / "missing.jpg")] + seqs[0].frames[3:6],
                      seqs[0].ground_truth_rect[:7], "otb")
    runs = {run.seq.name: run for run in track_lockstep(tracker, [broken, *seqs], 2, read_rgb)}
    assert "FrameReadError" in runs["broken"].error and "missing.jpg" in runs["broken"].error
    assert all(not runs[seq.name].error and len(runs[seq.name].boxes) == len(seq.frames) for seq in seqs)


def test_runner_batch_writes_the_batch_one_files(tmp_path, env):
    spec = TrackerSpec("fartrack_sparse", CONFIGS["fartrack_sparse"], None, depth=2)
    seqs = sequences()
    for batch in (1, 3):
        torch.manual_seed(0)  # the same random weights for both runs
        summary = run_sequences(spec, seqs, tmp_path / f"batch{batch}", batch=batch, progress=False)
        assert summary.count("done") == len(seqs) and not summary.failed
    for seq in seqs:
        one, three = (result_paths(tmp_path / f"batch{batch}", seq) for batch in (1, 3))
        assert one[0].read_text() == three[0].read_text()
        assert len(np.loadtxt(three[1])) == len(seq.frames)


def test_batch_option_is_validated():
    fartrack, fastseqtrack = get_family("fartrack"), get_family("fastseqtrack")
    assert option_error(fartrack, "cpu", None, False, "fp32", False, batch=8) is None
    assert "at least 1" in option_error(fartrack, "cpu", None, False, "fp32", False, batch=0)
    assert "drop --batch" in option_error(fastseqtrack, "cpu", None, False, "fp32", False, batch=2)
    with pytest.raises(ValueError, match="at least 1"):
        next(track_lockstep(make_tracker("fartrack", depth=1), sequences(), 0, read_rgb))


def test_track_many_follows_each_target_as_a_single_tracker_would():
    seq = real_sequence("otb_Crossing", 8)
    frames = [read_rgb(frame) for frame in seq.frames]
    boxes = [seq.init_bbox(), [150.0, 60.0, 40.0, 80.0]]
    torch.manual_seed(0)
    outputs = list(track_many(frames, boxes, "fartrack_sparse", depth=2))
    assert len(outputs) == len(frames) and all(len(frame_out) == 2 for frame_out in outputs)
    assert [out["target_bbox"] for out in outputs[0]] == boxes
    for target, box in enumerate(boxes):
        torch.manual_seed(0)  # the same random weights as track_many's
        alone = track_sequence(build_tracker("fartrack_sparse", depth=2),
                               Sequence("t", seq.frames, np.array([box]), "otb"))[0]
        np.testing.assert_allclose([out[target]["target_bbox"] for out in outputs], alone, atol=1e-3)


def test_multi_target_tracker_checks_its_inputs():
    with pytest.raises(TypeError, match="FARTrackTracker"):
        MultiTargetTracker(object())
    multi = MultiTargetTracker(make_tracker("fartrack", depth=1))
    with pytest.raises(RuntimeError, match="initialize"):
        multi.track(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="at least one"):
        multi.initialize(np.zeros((64, 64, 3), np.uint8), [])
