"""Online trackers: crops, template schedules, sparse mask propagation, robustness, the result-file runner."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.api import build_tracker, load_network
from lib.config.loader import load_config
from lib.families import OFFICIAL_CONFIGS
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.running import TrackerSpec, read_rgb, result_paths, run_sequences, track_sequence
from lib.test.tracker.backends import InferenceOptions
from lib.test.tracker.cuda_graphs import CudaGraphForward
from lib.test.tracker.fartrack import FARTrackTracker, TrackerParams
from lib.test.tracker.template_memory import oldest_needed, slot_indices
from lib.utils.crop import CropError, sample_target

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sequences"
CONFIGS = OFFICIAL_CONFIGS


def real_sequence(name: str, num_frames: int | None = None) -> Sequence:
    frames = sorted(str(p) for p in (REAL / name).glob("*.jpg"))[:num_frames]
    gt = np.loadtxt(REAL / name / "groundtruth.txt", delimiter=",")[: len(frames)]
    return Sequence(name=name, frames=frames, ground_truth_rect=gt, dataset="otb")


def make_tracker(family: str, depth: int | None = None) -> FARTrackTracker:
    torch.manual_seed(0)
    net = load_network(family, CONFIGS[family], depth=depth)
    return FARTrackTracker(net, TrackerParams.from_config(load_config(family, CONFIGS[family])))


# ------------------------------------------------------------------ template schedules (spec 7.3)
def test_official_template_schedules():
    assert [slot_indices(n, 5, "mode1") for n in (1, 2, 3, 4)] == [
        [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 2], [0, 0, 1, 2, 3]]
    assert [slot_indices(n, 5, "distill") for n in (1, 2, 3, 4)] == [
        [0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 2, 0], [0, 0, 1, 2, 3]]
    assert slot_indices(5) == [0, 1, 2, 2, 4]
    assert slot_indices(9) == [0, 2, 4, 5, 8]
    assert slot_indices(9, method="linear") == [0, 2, 4, 6, 8]
    assert slot_indices(5, schedule="distill") == slot_indices(5, schedule="mode1")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 300), st.sampled_from(["exponential", "linear"]))
def test_forgotten_templates_are_never_needed_again(num_stored, later, method):
    bound = oldest_needed(num_stored, 5, method)
    future = slot_indices(num_stored + later, 5, "mode1", method)
    assert all(index == 0 or index >= bound for index in future)
    assert future[-1] == num_stored + later - 1 and future[0] == 0


# ------------------------------------------------------------------ crops
def test_sample_target_geometry_and_padding():
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    # box centre (15, 10), side ceil(sqrt(4*4)*2) = 8 -> window x 11..18, y 6..13: fully inside
    crop, factor = sample_target(image, [13, 8, 4, 4], 2.0, 8)
    assert factor == 1.0 and np.array_equal(crop, image[6:14, 11:19])
    # window x 24..31 crosses the right border (W = 30): official pads max(x2 - W + 1, 0) = 2 columns,
    # so image column 29 is replaced by zeros too
    crop, _ = sample_target(image, [26, 8, 4, 4], 2.0, 8)
    assert np.array_equal(crop[:, :5], image[6:14, 24:29]) and not crop[:, 5:].any()
    # window x -4..3 crosses the left border: 4 zero columns, then image columns 0..3
    crop, _ = sample_target(image, [-2, 8, 4, 4], 2.0, 8)
    assert not crop[:, :4].any() and np.array_equal(crop[:, 4:], image[6:14, 0:4])
    with pytest.raises(CropError):
        sample_target(image, [5, 5, 0, 4], 2.0, 8)


def test_sample_target_uses_half_to_even_rounding():
    image = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    # centre 10.5 - side/2 (3) = 7.5 -> round(7.5) = 8 (half to even), not 7
    crop, _ = sample_target(image, [9.5, 9.5, 2, 2], 3.0, 6)
    assert np.array_equal(crop, image[8:14, 8:14])


# ------------------------------------------------------------------ trackers
@pytest.mark.parametrize("family", list(CONFIGS))
def test_tracker_contract_on_real_frames(family):
    seq = real_sequence("otb_Crossing", 6)
    tracker = make_tracker(family)
    boxes, times, scores = track_sequence(tracker, seq)
    assert len(boxes) == len(times) == 6 and boxes[0] == seq.init_bbox()
    height, width = read_rgb(seq.frames[0]).shape[:2]
    for x, y, w, h in boxes[1:]:
        assert 0 <= x <= width - 10 and 0 <= y <= height - 10 and w >= 10 and h >= 10
    assert all(0.0 <= s <= 1.0 for s in scores[1:])
    assert tracker.slots == [0, 1, 2, 3, 5]  # 6 templates stored: the initial one + one per tracked frame


def test_sparse_tracker_prunes_older_templates_with_their_own_masks():
    tracker = make_tracker("fartrack_sparse")
    seq = real_sequence("otb_Crossing", 8)
    tracker.initialize(read_rgb(seq.frames[0]), {"init_bbox": seq.init_bbox()})
    kept = []
    for frame in seq.frames[1:]:
        keep = tracker.slot_keep()
        kept.append(int(keep.sum()))
        newest = tracker.slots[-1]
        tracker.track(read_rgb(frame))
        assert int(tracker.template_masks[newest].sum()) == 37  # computed when that template was the newest
    # frame 1 runs unpruned, then 4 x 37 + 49 tokens (slots holding the same template share its mask)
    assert kept[0] == 245 and all(k == 4 * 37 + 49 for k in kept[1:])


def test_sparse_tracker_full_retention_option():
    torch.manual_seed(0)
    net = load_network("fartrack_sparse", CONFIGS["fartrack_sparse"], opts=["MODEL.SPARSE.TEST_PRUNE_RATIO", "0.0"])
    tracker = FARTrackTracker(net, TrackerParams())
    seq = real_sequence("otb_Crossing", 4)
    track_sequence(tracker, seq)
    assert int(tracker.slot_keep().sum()) == 245


def test_zero_size_initial_box_fails_clearly():
    tracker = make_tracker("fartrack")
    with pytest.raises(ValueError, match="positive"):
        tracker.initialize(np.zeros((50, 50, 3), np.uint8), {"init_bbox": [10, 10, 0, 5]})


def test_hard_inputs_do_not_crash():
    """Grayscale frames, a frame size change mid-sequence, a tiny target and a box partly outside the image."""
    tracker = make_tracker("fartrack_sparse", depth=6)
    rgb = read_rgb(sorted((REAL / "otb_Dudek_first20").glob("*.jpg"))[0])
    gray = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    tracker.initialize(rgb, {"init_bbox": [-30.0, 400.0, 80.0, 120.0]})  # partly outside on the left and bottom
    for image in (gray, rgb[:200, :300], rgb, cv2.resize(rgb, (100, 60))):
        out = tracker.track(image)
        x, y, w, h = out["target_bbox"]
        assert np.isfinite([x, y, w, h]).all() and x + w <= image.shape[1] + 1e-9 and y + h <= image.shape[0] + 1e-9
    tracker.initialize(rgb, {"init_bbox": [100.0, 100.0, 1.0, 1.0]})  # 1-pixel target
    assert len(tracker.track(rgb)["target_bbox"]) == 4


# ------------------------------------------------------------------ runner and result files
def test_runner_writes_official_result_files_and_skips_finished(tmp_path):
    from lib.utils.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = load_network("fartrack", CONFIGS["fartrack"])
    ckpt = save_checkpoint(tmp_path / "FARTrack_ep0500.pth.tar", net=net, epoch=500, net_type="FARTrack",
                           actor_type="FARTrackActor")
    spec = TrackerSpec("fartrack", CONFIGS["fartrack"], str(ckpt))
    seqs = [real_sequence("otb_Dudek_first20", 4)]
    got = Sequence("vid", seqs[0].frames, seqs[0].ground_truth_rect, "got10k")
    summary = run_sequences(spec, seqs + [got], tmp_path / "res", progress=False)
    assert summary.count("done") == 2 and not summary.failed
    box_file, time_file = result_paths(tmp_path / "res", got)
    assert box_file == tmp_path / "res" / "got10k" / "vid.txt"
    lines = (tmp_path / "res" / "otb_Dudek_first20.txt").read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split("\t")) == 4 for line in lines)
    assert lines[0].split("\t") == [str(int(v)) for v in seqs[0].ground_truth_rect[0]]  # truncation of frame 0
    assert len(time_file.read_text().splitlines()) == 4
    again = run_sequences(spec, seqs + [got], tmp_path / "res", progress=False)
    assert again.count("skipped") == 2

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    bad = Sequence("bad", [seqs[0].frames[0], str(broken)], seqs[0].ground_truth_rect[:2], "otb")
    summary = run_sequences(spec, [bad], tmp_path / "res", progress=False)
    assert [o.name for o in summary.failed] == ["bad"] and "cannot read image" in summary.failed[0].error
    assert not result_paths(tmp_path / "res", bad)[0].exists()


# ------------------------------------------------------------------ inference paths
@pytest.mark.parametrize("kernels", [InferenceOptions(), InferenceOptions(attention="sdpa", linear="torch")],
                         ids=["auto-kernels", "torch-kernels"])
@pytest.mark.parametrize("family", list(CONFIGS))
def test_fast_path_gives_the_faithful_boxes(family, kernels):
    """Cached template tokens + dropped pruned tokens, with the device's fastest kernels (oneDNN on a CPU) or with
    SDPA and PyTorch's linears: the faithful path's boxes on a real sequence."""
    seq = real_sequence("otb_Crossing", 16)
    torch.manual_seed(0)
    net = load_network(family, CONFIGS[family], depth=8)
    params = TrackerParams.from_config(load_config(family, CONFIGS[family]))
    faithful, _, faithful_scores = track_sequence(FARTrackTracker(net, params, InferenceOptions.faithful()), seq)
    fast, _, fast_scores = track_sequence(FARTrackTracker(net, params, kernels), seq)
    faithful, fast = np.array(faithful), np.array(fast)
    assert np.unique(faithful[1:].round(), axis=0).shape[0] > 5  # the boxes really depend on the frames
    # dense decodes are argmax tokens (identical); the sparse one mixes in an expectation (float rounding)
    assert np.abs(fast - faithful).max() <= (1e-3 if family == "fartrack_sparse" else 0.0)
    assert np.allclose(fast_scores[1:], faithful_scores[1:], atol=1e-4)


def test_inference_options_validate_and_name_themselves():
    assert InferenceOptions().name == "fast" and InferenceOptions.faithful().name == "faithful"
    assert InferenceOptions(precision="bf16").name == "fast-bf16"
    with pytest.raises(ValueError, match="precision"):
        InferenceOptions(precision="fp8")
    net = load_network("fartrack", CONFIGS["fartrack"], depth=2)
    with pytest.raises(ValueError, match="CUDA"):
        FARTrackTracker(net, TrackerParams(), InferenceOptions(precision="fp16"))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_lower_precision_paths_track_close_to_fp32(precision):
    """Lower precision moves the probabilities a little and leaves the caller's fp32 network untouched."""
    torch.manual_seed(0)
    net = load_network("fartrack_sparse", CONFIGS["fartrack_sparse"], depth=4)
    seq = real_sequence("otb_Crossing", 2)
    image = read_rgb(seq.frames[0])
    crop, _ = sample_target(image, seq.init_bbox(), 4.0, 224)

    def first_logits(tracker):
        tracker.initialize(image, {"init_bbox": seq.init_bbox()})
        return tracker.backend.run([tracker.templates[i] for i in tracker.slots], crop, tracker.slot_keep())[0]

    # The sparse command rows renormalise in place on the first forward (max_norm=1): snapshot after it.
    full = first_logits(FARTrackTracker(net, TrackerParams(), InferenceOptions()))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    low = first_logits(FARTrackTracker(net, TrackerParams(), InferenceOptions(precision=precision)))
    assert low.dtype == torch.float32 and low.shape == full.shape
    assert (low.softmax(-1) - full.softmax(-1)).abs().max() < 0.1  # measured: bf16 ~0.01, int8 ~0.05
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert next(net.parameters()).dtype == torch.float32 and net.attention == "explicit"


def test_cuda_graph_option_is_validated():
    assert InferenceOptions(cuda_graphs=True).name == "fast+cuda-graphs"
    with pytest.raises(ValueError, match="cache_template_tokens"):
        InferenceOptions(cuda_graphs=True, cache_template_tokens=False)
    net = load_network("fartrack", CONFIGS["fartrack"], depth=2)
    with pytest.raises(ValueError, match="CUDA"):
        FARTrackTracker(net, TrackerParams(), InferenceOptions(cuda_graphs=True))
    with pytest.raises(ValueError, match="CUDA"):
        CudaGraphForward(lambda *inputs: {}, torch.device("cpu"))
    with pytest.raises(ValueError, match="fast path"):
        build_tracker("fartrack", cuda_graphs=True, faithful=True)


def test_baked_command_renorm_gives_the_same_logits():
    """Static graphs carry the sparse family's renormed command rows as constants (max_norm off): same outputs."""
    torch.manual_seed(0)
    net = load_network("fartrack_sparse", CONFIGS["fartrack_sparse"], depth=3).eval()
    spec = net.spec
    templates = torch.randn(1, spec.num_templates, 3, spec.template_size, spec.template_size)
    search = torch.randn(1, 3, spec.search_size, spec.search_size)
    with torch.no_grad():
        net(templates, search)  # the first forward renorms the command rows in place
        expected = net(templates, search)["logits"]
        net.backbone.bake_command_renorm()
        assert net.backbone.word_embeddings.max_norm is None
        torch.testing.assert_close(net(templates, search)["logits"], expected, rtol=0, atol=1e-6)
    dense = load_network("fartrack", CONFIGS["fartrack"], depth=2)
    before = dense.backbone.word_embeddings.weight.clone()
    dense.backbone.bake_command_renorm()
    assert torch.equal(dense.backbone.word_embeddings.weight, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("family", list(CONFIGS))
def test_cuda_graphs_give_the_fast_path_boxes(family):
    seq = real_sequence("otb_Crossing", 12)
    torch.manual_seed(0)
    net = load_network(family, CONFIGS[family], depth=6).cuda()
    params = TrackerParams.from_config(load_config(family, CONFIGS[family]))
    fast, _, _ = track_sequence(FARTrackTracker(net, params, InferenceOptions()), seq)
    graphed = FARTrackTracker(net, params, InferenceOptions(cuda_graphs=True))
    replayed, _, _ = track_sequence(graphed, seq)
    assert graphed.backend._forward.captured_shapes == 1  # one static shape per family, replayed every frame
    assert np.abs(np.array(replayed) - np.array(fast)).max() <= 1e-2
