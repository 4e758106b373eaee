"""The video demo (headless, on a real image folder and an mp4), ``lib.api.build_tracker`` and the got10k adapter.

Networks run at depth 6 with random weights: these tests check the plumbing (sources, boxes, files, family
inference, the toolkit contract), not accuracy.
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

matplotlib.use("Agg")  # the got10k report draws a success plot; never try to open a window for it

from got10k.experiments import ExperimentGOT10k  # noqa: E402

from lib.api import build_tracker, checkpoint_family  # noqa: E402
from lib.config.loader import load_config  # noqa: E402
from lib.families import OFFICIAL_CONFIGS
from lib.families import build_network, get_family  # noqa: E402
from lib.test.demo import display_available, natural_key  # noqa: E402
from lib.test.tracker.backends import InferenceOptions  # noqa: E402
from lib.test.tracker.got10k_adapter import GOT10kTracker, to_rgb_array  # noqa: E402
from lib.utils.checkpoint import CheckpointError, save_checkpoint  # noqa: E402
from tracking.video_demo import main as demo_main  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sequences"
DEPTH = 6
NUM_FRAMES = 6


def copy_real_frames(name: str, folder: Path, num_frames: int, with_groundtruth: bool = True) -> np.ndarray:
    """Copy the first ``num_frames`` frames of a real sequence into ``folder``; returns their GT rows."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((REAL / name).glob("*.jpg"))[:num_frames]:
        shutil.copy(path, folder / path.name)
    gt = np.loadtxt(REAL / name / "groundtruth.txt", delimiter=",")[:num_frames]
    if with_groundtruth:
        np.savetxt(folder / "groundtruth.txt", gt, fmt="%g", delimiter=",")
    return gt


def count_video_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} is not a readable video"
    count, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, size = count + 1, (frame.shape[1], frame.shape[0])
    capture.release()
    return count, size


@pytest.fixture
def headless(monkeypatch):
    """No display, whatever machine runs the tests."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


DEMO_ARGS = ["fartrack_sparse", OFFICIAL_CONFIGS["fartrack_sparse"]]
SMOKE = ["--random_weights", "--depth", str(DEPTH), "--no_progress"]


# ------------------------------------------------------------------ the video demo
def test_demo_headless_on_real_sequence_folder(tmp_path, env, headless, caplog, capsys):
    caplog.set_level(logging.INFO)
    gt = copy_real_frames("otb_Crossing", tmp_path / "Crossing", NUM_FRAMES)
    # --show without a display must fall back to headless; the box comes from groundtruth.txt.
    assert demo_main([*DEMO_ARGS, str(tmp_path / "Crossing"), *SMOKE, "--save_results", "--show"]) == 0
    assert "running headless" in caplog.text and "groundtruth.txt as the initial box" in caplog.text

    video = Path(env.save_dir) / "demo" / "Crossing_fartrack_sparse.mp4"  # the default output location
    assert count_video_frames(video) == (NUM_FRAMES, (360, 240))
    rows = np.loadtxt(video.with_suffix(".txt"), delimiter=",")
    assert rows.shape == (NUM_FRAMES, 5)
    assert np.allclose(rows[0, :4], gt[0]) and math.isnan(rows[0, 4])
    assert np.all((rows[1:, 4] >= 0) & (rows[1:, 4] <= 1)) and np.all(rows[1:, 2:4] > 0)
    printed = capsys.readouterr().out
    assert f"tracked {NUM_FRAMES} frames; mean FPS" in printed and str(video) in printed


def test_demo_headless_on_mp4_file(tmp_path, env, headless):
    gt = copy_real_frames("otb_Crossing", tmp_path / "frames", NUM_FRAMES)
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (360, 240))
    for path in sorted((tmp_path / "frames").glob("*.jpg")):
        writer.write(cv2.imread(str(path)))
    writer.release()

    output = tmp_path / "out" / "annotated.mp4"
    box = [str(v) for v in gt[0]]
    assert demo_main([*DEMO_ARGS, str(clip), *SMOKE, "--optional_box", *box, "--output", str(output),
                      "--save_results"]) == 0
    assert count_video_frames(output) == (NUM_FRAMES, (360, 240))
    capture = cv2.VideoCapture(str(output))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)  # the source frame rate is kept
    capture.release()
    lines = output.with_suffix(".txt").read_text().splitlines()
    assert len(lines) == NUM_FRAMES and lines[0].split(",")[4] == "nan"
    assert [float(v) for v in lines[0].split(",")[:4]] == pytest.approx(list(gt[0]))


def test_demo_missing_source_fails_clearly(tmp_path, env, caplog):
    assert demo_main([*DEMO_ARGS, str(tmp_path / "missing.mp4"), *SMOKE]) == 2
    assert "not found" in caplog.text and "webcam index" in caplog.text


def test_demo_without_box_or_display_fails_clearly(tmp_path, env, headless, caplog):
    copy_real_frames("otb_Crossing", tmp_path / "no_gt", 2, with_groundtruth=False)
    assert demo_main([*DEMO_ARGS, str(tmp_path / "no_gt"), *SMOKE, "--show"]) == 2
    assert "no initial box: pass --optional_box" in caplog.text
    assert not (Path(env.save_dir) / "demo").exists()  # failed before building the tracker or writing anything


def test_demo_without_checkpoint_fails_clearly(tmp_path, env, caplog):
    copy_real_frames("otb_Crossing", tmp_path / "seq", 2)
    assert demo_main([*DEMO_ARGS, str(tmp_path / "seq"), "--no_progress"]) == 2
    expected = Path(env.save_dir) / "checkpoints" / "train" / "fartrack_sparse" / DEMO_ARGS[1]
    assert str(expected / "FARTrackSparse_ep0015.pth.tar") in caplog.text and "--random_weights" in caplog.text


def test_demo_helpers():
    names = ["10.jpg", "2.jpg", "1.jpg", "frame_0011.png", "frame_0002.png"]
    assert sorted(names, key=natural_key) == ["1.jpg", "2.jpg", "10.jpg", "frame_0002.png", "frame_0011.png"]
    available, reason = display_available(environ={}, platform="linux")
    assert not available and "DISPLAY" in reason


# ------------------------------------------------------------------ build_tracker
def test_build_tracker_from_config_maps_options():
    tracker = build_tracker("fartrack_distill", depth=DEPTH, faithful=True)
    assert tracker.backend.family == "fartrack_distill" and tracker.backend.net.depth == DEPTH
    assert tracker.backend.options == InferenceOptions.faithful()
    bf16 = build_tracker("fartrack", depth=DEPTH, precision="bf16")
    assert bf16.backend.options == InferenceOptions(precision="bf16")
    cfg = load_config("fartrack_distill", OFFICIAL_CONFIGS["fartrack_distill"])
    assert tracker.params.search_size == cfg.TEST.SEARCH_SIZE
    with pytest.raises(ValueError, match="needs a script, a checkpoint"):
        build_tracker()
    with pytest.raises(ValueError, match="faithful path runs in fp32"):
        build_tracker("fartrack", precision="bf16", faithful=True)
    with pytest.raises(ValueError, match="unknown precision"):
        build_tracker("fartrack", precision="fp8")
    with pytest.raises(ValueError, match="unknown script"):
        build_tracker("siamfc")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            build_tracker("fartrack", device="cuda")


@pytest.mark.parametrize("family", ["fartrack", "fartrack_sparse"])
def test_build_tracker_infers_the_family_from_a_checkpoint(tmp_path, family):
    torch.manual_seed(1)
    net = build_network(load_config(family, OFFICIAL_CONFIGS[family]))
    path = save_checkpoint(tmp_path / f"{get_family(family).net_class_name}_ep0001.pth.tar", net=net, epoch=1,
                           net_type=net.net_type, actor_type=net.net_type + "Actor")
    assert checkpoint_family(path) == family
    tracker = build_tracker(checkpoint=path, depth=DEPTH)
    assert tracker.backend.family == family and tracker.backend.net.depth == DEPTH
    assert torch.equal(tracker.backend.net.identity, net.identity)  # the checkpoint's weights were loaded

    frame = cv2.cvtColor(cv2.imread(str(REAL / "otb_Crossing" / "00000001.jpg")), cv2.COLOR_BGR2RGB)
    tracker.initialize(frame, {"init_bbox": [205, 151, 17, 50]})
    out = tracker.track(frame)
    assert len(out["target_bbox"]) == 4 and 0.0 <= out["best_score"] <= 1.0


def test_build_tracker_refuses_a_checkpoint_of_unknown_family(tmp_path):
    path = save_checkpoint(tmp_path / "other.pth.tar", net={"w": torch.ones(1)}, epoch=1, net_type="SiamFC",
                           actor_type="SiamFCActor")
    with pytest.raises(CheckpointError, match="net_type is 'SiamFC'.*pass the script"):
        build_tracker(checkpoint=path)


# ------------------------------------------------------------------ got10k toolkit adapter
def write_got10k_val(root: Path, names: list[str], num_frames: int) -> Path:
    """A GOT-10k ``val`` split from real sequences: list.txt, frames, groundtruth and the labels the report reads."""
    for name in names:
        folder = root / "val" / name
        copy_real_frames(name, folder, num_frames)
        width, height = Image.open(folder / "00000001.jpg").size
        (folder / "meta_info.ini").write_text(f"[METAINFO]\nobject_class: thing\nresolution: ({width}, {height})\n")
        for label, value in (("cover", 8), ("absence", 0), ("cut_by_image", 0)):
            (folder / f"{label}.label").write_text(f"{value}\n" * num_frames)
    (root / "val" / "list.txt").write_text("\n".join(names) + "\n")
    return root


def test_got10k_adapter_runs_an_experiment(tmp_path):
    names = ["otb_Crossing", "vot_bag"]
    root = write_got10k_val(tmp_path / "got10k", names, num_frames=5)
    tracker = GOT10kTracker(build_tracker("fartrack_sparse", depth=DEPTH))
    assert tracker.name == f"FARTrackSparse_depth{DEPTH}_fast" and tracker.is_deterministic
    experiment = ExperimentGOT10k(str(root), subset="val", result_dir=str(tmp_path / "results"),
                                  report_dir=str(tmp_path / "reports"))
    experiment.run(tracker)

    for name in names:
        folder = tmp_path / "results" / "GOT-10k" / tracker.name / name
        assert sorted(p.name for p in folder.iterdir()) == [f"{name}_001.txt", f"{name}_time.txt"]  # one run
        boxes = np.loadtxt(folder / f"{name}_001.txt", delimiter=",")
        gt = np.loadtxt(root / "val" / name / "groundtruth.txt", delimiter=",")
        assert boxes.shape == (5, 4) and np.allclose(boxes[0], gt[0]) and np.all(boxes[1:, 2:] > 0)
    assert 0.0 <= tracker.last_score <= 1.0

    performance = experiment.report([tracker.name])[tracker.name]["overall"]
    assert 0.0 <= performance["ao"] <= 1.0 and 0.0 <= performance["sr"] <= 1.0
    assert (tmp_path / "reports" / "GOT-10k" / tracker.name / "performance.json").is_file()


def test_got10k_adapter_inputs():
    gray = Image.fromarray(np.full((4, 6), 7, dtype=np.uint8))  # mode "L"
    assert to_rgb_array(gray).shape == (4, 6, 3)
    with pytest.raises(ValueError, match="uint8 RGB"):
        to_rgb_array(np.zeros((4, 6), dtype=np.uint8))
    with pytest.raises(TypeError, match="initialize / track"):
        GOT10kTracker(object())
