"""The synthetic data generator: deterministic content, labels consistent with the pixels, layouts that the
project's test and training loaders read, the manifest skip, and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib.synthetic import (Difficulty, SyntheticConfig, SyntheticDataError, hidden_ground_truth, lasot_names,
                           read_manifest, render_image, render_sequence, write_synthetic_data)
from lib.synthetic.scenes import MIN_VISIBLE_FRACTION
from lib.test.evaluation import environment as test_env
from lib.test.evaluation.datasets import check_dataset, get_dataset, read_boxes, read_flags
from lib.train.admin import environment as train_env
from lib.train.dataset import build_dataset
from lib.utils.local_paths import REPO_ROOT

SIZE = (96, 128)  # (H, W)
TINY = SyntheticConfig(seed=3, image_size=(128, 96), got10k_train=3, got10k_val=2, got10k_test=2, got10k_frames=24,
                       got10k_test_frames=20, lasot_train=3, lasot_test=2, lasot_train_frames=24,
                       lasot_test_frames=30, trackingnet_train=3, trackingnet_test=2, trackingnet_frames=20,
                       trackingnet_chunks=12, coco_images=6)
GOT10K_LABELS = ("absence.label", "cover.label", "cut_by_image.label")


def _crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x, y, w, h = box.astype(int)
    return cv2.resize(frame[y:y + h, x:x + w], (12, 12), interpolation=cv2.INTER_AREA).astype(np.float32)


def _mask_box(mask: np.ndarray) -> list[int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]


def _files(root: Path, suffix: str) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob(f"*{suffix}"))}


# ---------------------------------------------------------------------------------------------------- content
def test_rendering_is_deterministic():
    first, again = (render_sequence((7, 1), 12, SIZE, "hard") for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, again.frames))
    assert np.array_equal(first.boxes, again.boxes) and np.array_equal(first.cover, again.cover)
    other = render_sequence((7, 2), 12, SIZE, "hard")
    assert not np.array_equal(first.frames[0], other.frames[0])
    assert render_image(5, SIZE).objects == render_image(5, SIZE).objects


@pytest.mark.parametrize("seed", range(4))
def test_clean_boxes_enclose_the_drawn_target(seed):
    """No nuisance: every frame visible unless partly cut by the image, the box is the bounding box of the target
    mask, and the crop at the box looks like the first frame's target, unlike a crop shifted by half a box."""
    seq = render_sequence(seed, 60, SIZE, "clean", return_masks=True)
    assert seq.frames[0].shape == (*SIZE, 3) and seq.frames[0].dtype == np.uint8
    assert not seq.absent.any() and seq.cover[0] == 8
    height, width = SIZE
    x, y, w, h = seq.boxes.T
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= width).all() and (y + h <= height).all()
    for box, mask, cover, area in zip(seq.boxes, seq.masks, seq.cover, seq.area):
        assert _mask_box(mask) == box.tolist()
        assert cover == (8 if mask.sum() == area else min(7, 8 * mask.sum() // area))
    reference = _crop(seq.frames[0], seq.boxes[0])
    full = np.flatnonzero(seq.cover == 8)[1:]
    errors = np.array([np.abs(_crop(seq.frames[t], seq.boxes[t]) - reference).mean() for t in full])
    shifted = []
    for t in full:
        box = seq.boxes[t].copy()
        box[0] = box[0] + box[2] / 2 if box[0] + 1.5 * box[2] <= width else box[0] - box[2] / 2
        shifted.append(np.abs(_crop(seq.frames[t], box) - reference).mean())
    assert np.median(errors) < 0.5 * np.median(shifted)
    assert (errors < np.array(shifted)).mean() > 0.9


def test_occlusion_and_out_of_view_flags_match_the_pixels():
    """Frequent occluders and excursions, nothing else: absent frames are exactly those with less than the minimum
    fraction of the target visible; out-of-view boxes are zero, fully occluded ones keep the hidden extent."""
    difficulty = replace(Difficulty.from_level(0.0), occlusion_rate=6.0, out_of_view_rate=3.0)
    occluded = out_of_view = 0
    for seed in range(3):
        seq = render_sequence(seed, 100, SIZE, difficulty, return_masks=True)
        visible_pixels = np.array([mask.sum() for mask in seq.masks])
        assert np.array_equal(seq.absent, visible_pixels < MIN_VISIBLE_FRACTION * seq.area)
        assert np.array_equal(seq.absent, seq.occluded | seq.out_of_view) and not (seq.occluded & seq.out_of_view).any()
        assert np.array_equal(seq.absent, seq.cover == 0)
        assert (seq.boxes[seq.out_of_view] == 0).all()
        assert (seq.boxes[seq.occluded][:, 2:] > 0).all()
        assert seq.cut_by_image[seq.out_of_view].all()
        for t in np.flatnonzero(~seq.absent):
            assert _mask_box(seq.masks[t]) == seq.boxes[t].tolist()
        occluded += seq.occluded.sum()
        out_of_view += seq.out_of_view.sum()
    assert occluded > 0 and out_of_view > 0


@pytest.mark.parametrize("difficulty", ["easy", "hard", 1.0])
def test_first_frame_is_fully_visible(difficulty):
    for seed in range(15):
        seq = render_sequence(seed, 2, SIZE, difficulty)
        assert seq.cover[0] == 8 and not seq.cut_by_image[0]


def test_difficulty_parsing():
    assert Difficulty.parse("medium") == Difficulty.from_level(0.5) == Difficulty.parse("0.5") == Difficulty()
    clean = Difficulty.parse("clean")
    assert clean.distractors == clean.occlusion_rate == clean.noise == clean.blur_prob == 0
    for bad in ("extreme", 1.5):
        with pytest.raises(ValueError):
            Difficulty.parse(bad)


def test_still_images_annotate_visible_objects():
    image = render_image(11, (240, 320))
    assert image.image.shape == (240, 320, 3) and image.objects
    for obj in image.objects:
        x, y, w, h = obj.box
        assert x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240 and 0 < obj.area <= w * h


def _chroma(pixels: np.ndarray, statistic=np.median) -> float:
    """Chroma ``max(R, G, B) - min(R, G, B)`` (0..1) of ``(N, 3)`` uint8 RGB pixels; by default the median, robust
    to a distractor among background pixels (the mean suits a target, whose white border has no chroma)."""
    pixels = pixels.reshape(-1, 3).astype(float)
    return float(statistic(pixels.max(1) - pixels.min(1))) / 255.0


@pytest.mark.parametrize("difficulty", ["easy", "medium"])
def test_salience_changes_colours_only(difficulty):
    """``salience`` keeps the scene and every label (same random draws) and makes the target stand out: a saturated,
    bright target on a greyer, darker background, and a larger colour gap between them."""
    gaps = []
    for seed in range(6):
        plain = render_sequence(seed, 24, SIZE, difficulty, return_masks=True)
        salient = render_sequence(seed, 24, SIZE, difficulty, return_masks=True, salience=1.0)
        for field in ("boxes", "absent", "cover", "occluded", "out_of_view", "cut_by_image", "area"):
            assert np.array_equal(getattr(plain, field), getattr(salient, field)), field
        assert plain.class_name == salient.class_name and salient.description.endswith("with a light border")
        assert all(np.array_equal(a, b) for a, b in zip(plain.masks, salient.masks))
        assert not np.array_equal(plain.frames[0], salient.frames[0])
        # Frame 0: the target is fully visible and unoccluded; the background is what lies outside its box.
        mask = salient.masks[0]
        x, y, w, h = salient.boxes[0].astype(int)
        outside = np.ones(mask.shape, bool)
        outside[max(y - 2, 0):y + h + 2, max(x - 2, 0):x + w + 2] = False
        for seq in (plain, salient):
            frame = seq.frames[0]
            gaps.append(np.linalg.norm(frame[mask].astype(float).mean(0) - frame[outside].astype(float).mean(0)))
        assert _chroma(salient.frames[0][outside]) < _chroma(plain.frames[0][outside]) + 0.02
        assert _chroma(salient.frames[0][mask], np.mean) > _chroma(salient.frames[0][outside]) + 0.2
        assert salient.frames[0][mask].mean() > np.median(salient.frames[0][outside]) + 80
    assert np.mean(gaps[1::2]) > np.mean(gaps[0::2])
    # The default is the original look, bit for bit.
    assert all(np.array_equal(a, b) for a, b in zip(render_sequence(5, 8, SIZE).frames,
                                                     render_sequence(5, 8, SIZE, salience=0.0).frames))
    with pytest.raises(ValueError, match="salience"):
        render_sequence(0, 2, SIZE, salience=1.5)


def test_salience_zero_keeps_the_original_random_draws():
    """At the default salience the object look consumes the random stream exactly as before the knob existed (the
    default data are unchanged bit for bit): a reference replay of the original draws gives the same look and leaves
    the generator in the same state."""
    from lib.synthetic.scenes import _Look, _rgb
    for seed in range(5):
        rng, ref = np.random.default_rng(seed), np.random.default_rng(seed)
        look = _Look.draw(rng, "striped_box")
        hue = ref.random()
        stops = np.stack([_rgb(hue, ref.uniform(0.6, 1.0), ref.uniform(0.7, 1.0)),
                          _rgb(hue + ref.uniform(0.1, 0.5), ref.uniform(0.5, 1.0), ref.uniform(0.3, 0.8))])
        dark = bool(ref.random() < 0.5)
        assert np.array_equal(look.stops, stops) and look.dark_border == dark
        assert np.array_equal(look.border, _rgb(hue, 0.3, 0.1) if dark else _rgb(hue, 0.1, 0.97))
        assert rng.random() == ref.random()


def test_salience_keeps_still_image_annotations():
    for seed in range(4):
        plain, salient = render_image(seed, SIZE), render_image(seed, SIZE, salience=1.0)
        assert plain.objects == salient.objects
        assert not np.array_equal(plain.image, salient.image)


def test_salience_is_recorded_in_the_manifest_only_when_set(tmp_path):
    config = replace(TINY, got10k_train=1, got10k_val=1, got10k_test=0, lasot_train=0, lasot_test=0,
                     trackingnet_train=0, trackingnet_test=0, coco_images=0)
    assert "salience" not in config.params("got10k")
    write_synthetic_data(tmp_path / "plain", config, datasets=["got10k"], progress=False)
    write_synthetic_data(tmp_path / "salient", replace(config, salience=0.8), datasets=["got10k"], progress=False)
    assert read_manifest(tmp_path / "salient")["datasets"]["got10k"]["params"]["salience"] == 0.8
    for name in ("groundtruth.txt", "absence.label", "cover.label"):
        assert _files(tmp_path / "plain" / "got10k", name) == _files(tmp_path / "salient" / "got10k", name)
    with pytest.raises(SyntheticDataError, match="salience"):
        write_synthetic_data(tmp_path / "bad", config, salience=-0.1, progress=False)


def test_lasot_names_alternate_over_classes():
    assert lasot_names(["a-1", "a-2", "b-3", "c-1", "c-2"], 4) == ["a-1", "b-3", "c-1", "a-2"]
    with pytest.raises(SyntheticDataError):
        lasot_names(["a-1"], 2)


# ----------------------------------------------------------------------------------------------------- layouts
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_data(root, TINY, progress=False)
    return root


@pytest.fixture
def settings(data_dir, tmp_path, monkeypatch):
    """Path settings reading only FARTRACK_DATA_DIR = the synthetic data (no local file, no caller variable)."""
    for name in list(os.environ):
        if name.startswith("FARTRACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(test_env.LOCAL_FILE_ENV, str(tmp_path / "absent_test_local.py"))
    monkeypatch.setenv(train_env.LOCAL_FILE_ENV, str(tmp_path / "absent_train_local.py"))
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(data_dir))
    return train_env.train_env_settings()


def test_test_loaders_read_every_layout(settings, data_dir):
    test = get_dataset("got10k_test")
    assert [seq.name for seq in test] == ["GOT-10k_Test_000001", "GOT-10k_Test_000002"]
    for seq in test:
        assert len(seq.frames) == TINY.got10k_test_frames and seq.ground_truth_rect.shape == (1, 4)
        hidden = hidden_ground_truth(data_dir, "got10k_test", seq.name)
        full = read_boxes(hidden / "groundtruth.txt")
        assert len(full) == len(seq.frames) and np.array_equal(full[:1], seq.ground_truth_rect)
        assert all(len((hidden / label).read_text().split()) == len(full) for label in GOT10K_LABELS)
    for seq in get_dataset("got10k_val"):
        assert len(seq.frames) == len(seq.ground_truth_rect) == TINY.got10k_frames
    names = read_manifest(data_dir)["datasets"]["lasot"]["summary"]["test_sequences"]
    lasot = get_dataset("lasot", sequences=names)
    assert [seq.name for seq in lasot] == names == [seq.name for seq in get_dataset("lasot", allow_missing=True)]
    for seq in lasot:
        folder = data_dir / "lasot" / seq.object_class / seq.name
        assert len(seq.frames) == len(seq.ground_truth_rect) == TINY.lasot_test_frames
        hidden = read_flags(folder / "full_occlusion.txt") | read_flags(folder / "out_of_view.txt")
        assert np.array_equal(seq.target_visible, ~hidden)
        assert (seq.ground_truth_rect[read_flags(folder / "out_of_view.txt")] == 0).all()
        assert (folder / "nlp.txt").read_text().startswith("the ")
    tracking_net = get_dataset("trackingnet")
    assert len(tracking_net) == TINY.trackingnet_test
    for seq in tracking_net:
        full = read_boxes(hidden_ground_truth(data_dir, "trackingnet", seq.name))
        assert len(seq.frames) == len(full) == TINY.trackingnet_frames and seq.ground_truth_rect.shape == (1, 4)
    for name in ("got10k_test", "got10k_val", "trackingnet"):
        assert check_dataset(name).ok, check_dataset(name).summary()


@pytest.mark.parametrize("name, count, frames", [
    ("LASOT", TINY.lasot_train, TINY.lasot_train_frames), ("GOT10K_all", TINY.got10k_train, TINY.got10k_frames),
    ("GOT10K_official_val", TINY.got10k_val, TINY.got10k_frames),
    ("TRACKINGNET", TINY.trackingnet_train, TINY.trackingnet_frames)])
def test_training_loaders_read_the_video_datasets(settings, name, count, frames):
    dataset = build_dataset(name, settings)
    assert len(dataset) == count
    for seq_id in range(count):
        info = dataset.sequence_info(seq_id)
        assert len(info) == frames and info.visible[0]
        images, boxes = dataset.frames(seq_id, [0, frames - 1], info)
        assert images[0].shape == (96, 128, 3) and np.array_equal(boxes, info.bbox[[0, frames - 1]])


def test_training_visibility_follows_the_labels(settings, data_dir):
    got10k = build_dataset("GOT10K_all", settings)
    for seq_id in range(len(got10k)):
        folder = data_dir / "got10k" / "train" / got10k.sequence_name(seq_id)
        absent = np.loadtxt(folder / "absence.label", dtype=int).astype(bool)
        info = got10k.sequence_info(seq_id)
        assert np.array_equal(info.visible, ~absent) and info.valid.all()  # absent rows repeat the last box
        assert np.array_equal(np.loadtxt(folder / "cover.label", dtype=int) == 0, absent)
    tracking_net = build_dataset("TRACKINGNET", settings)
    assert all(np.array_equal(tracking_net.sequence_info(i).visible, tracking_net.sequence_info(i).valid)
               for i in range(len(tracking_net)))
    assert {chunk.name for chunk in (data_dir / "trackingnet").glob("TRAIN_*")} == {f"TRAIN_{i}" for i in range(12)}


def test_coco_layout(settings, data_dir):
    coco = build_dataset("COCO17", settings)
    content = json.loads((data_dir / "coco" / "annotations" / "instances_train2017.json").read_text())
    assert len(content["images"]) == TINY.coco_images
    assert len(coco) == sum(not ann["iscrowd"] for ann in content["annotations"]) > 0
    assert all(image["file_name"] == f"{image['id']:012d}.jpg" for image in content["images"])
    images, boxes = coco.frames(0, [0, 1])
    assert images[0].shape == (96, 128, 3) and boxes.shape == (2, 4)


def test_got10k_toolkit_reads_the_metadata(data_dir):
    got10k = pytest.importorskip("got10k.datasets")
    _, anno, meta = got10k.GOT10k(str(data_dir / "got10k"), subset="val", return_meta=True)[0]
    assert meta["resolution"] == "(128, 96)" and len(meta["cover"]) == len(anno) == TINY.got10k_frames


# -------------------------------------------------------------------------------------- determinism, manifest
def test_same_seed_same_files_other_seed_other_files(data_dir, tmp_path):
    again = tmp_path / "again"
    write_synthetic_data(again, TINY, datasets=["got10k", "lasot"], progress=False)
    for dataset in ("got10k", "lasot"):
        for suffix in (".txt", ".label"):
            assert _files(again / dataset, suffix) == _files(data_dir / dataset, suffix)
        frames = _files(again / dataset, ".jpg")
        assert frames.keys() == _files(data_dir / dataset, ".jpg").keys()
        name = next(iter(frames))
        assert np.array_equal(cv2.imread(str(again / dataset / name)), cv2.imread(str(data_dir / dataset / name)))
    other = tmp_path / "other"
    write_synthetic_data(other, replace(TINY, seed=4), datasets=["lasot"], progress=False)
    assert _files(other / "lasot", "groundtruth.txt") != _files(data_dir / "lasot", "groundtruth.txt")


def test_manifest_skips_identical_parameters_and_force_regenerates(tmp_path):
    config = replace(TINY, got10k_train=1, got10k_val=1, got10k_test=1, lasot_train=1, lasot_test=1,
                     trackingnet_train=1, trackingnet_test=1, coco_images=2)
    first = write_synthetic_data(tmp_path, config, progress=False)
    assert not any(entry["skipped"] for entry in first["datasets"].values())
    marker = tmp_path / "got10k" / "train" / "list.txt"
    stamp = marker.stat().st_mtime_ns
    second = write_synthetic_data(tmp_path, config, progress=False)
    assert all(entry["skipped"] for entry in second["datasets"].values()) and second["frames"] == 0
    assert marker.stat().st_mtime_ns == stamp
    changed = write_synthetic_data(tmp_path, replace(config, coco_images=3), progress=False)
    assert [name for name, entry in changed["datasets"].items() if not entry["skipped"]] == ["coco"]
    forced = write_synthetic_data(tmp_path, replace(config, coco_images=3), datasets=["got10k"], force=True,
                                  progress=False)
    assert not forced["datasets"]["got10k"]["skipped"] and marker.read_text().split() == ["GOT-10k_Train_000001"]
    assert read_manifest(tmp_path)["datasets"]["coco"]["params"]["coco_images"] == 3
    assert not list(tmp_path.glob(".synthetic-staging-*"))


def test_foreign_folders_are_never_replaced(tmp_path):
    (tmp_path / "lasot").mkdir()
    (tmp_path / "lasot" / "real.txt").write_text("keep")
    with pytest.raises(SyntheticDataError, match="left untouched"):
        write_synthetic_data(tmp_path, TINY, datasets=["lasot"], progress=False)
    assert (tmp_path / "lasot" / "real.txt").read_text() == "keep"
    with pytest.raises(SyntheticDataError, match="invalid generation parameters"):
        write_synthetic_data(tmp_path, TINY, datasets=["coco"], coco_images=-1, progress=False)


def test_cli(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FARTRACK_")}
        return subprocess.run([sys.executable, str(REPO_ROOT / "tracking" / "generate_synthetic.py"),
                               "--data_dir", str(tmp_path), "--quiet", *args], env=environ, capture_output=True,
                              text=True, timeout=60)

    counts = ["--datasets", "got10k", "coco", "--frames", "12", "--image_size", "96", "64", "--got10k_train", "1",
              "--got10k_val", "1", "--got10k_test", "1", "--coco_images", "2"]
    result = run(*counts)
    assert result.returncode == 0, result.stderr
    assert "got10k       generated" in result.stdout and f"FARTRACK_DATA_DIR={tmp_path}" in result.stdout
    assert len(list((tmp_path / "got10k" / "val" / "GOT-10k_Val_000001").glob("*.jpg"))) == 12
    assert "skipped" in run(*counts).stdout
    assert "got10k       generated" in run(*counts, "--force").stdout
    failed = run("--difficulty", "extreme")
    assert failed.returncode == 1 and "unknown difficulty" in failed.stderr
