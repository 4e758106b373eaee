"""Training samplers (causal frame sampler, sequence sampler), frame-level processing and the SiamFC crop."""
from __future__ import annotations

import logging
import time
from typing import Sequence

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lib.config.loader import default_config
from lib.train.data.processing import FrameProcessing, flip_normalised_box, joint_transform
from lib.train.data.sampler import (FrameSampler, SequenceSampler, causal_frame_ids, collate_sequences,
                                    sequential_frame_ids)
from lib.train.dataset.base import ImageReadError, SequenceInfo, TrackingDataset, TrainDatasetError
from lib.utils.crop import image_mean_colour, sample_target_with_mask, siamfc_crop

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------ fakes

class FakeVideos(TrackingDataset):
    """Sequences with given visibility, a moving 16 x 12 box in 64 x 48 random images; records frame requests."""

    def __init__(self, name: str, visibles: Sequence[Sequence[bool]], bad_frames: set[tuple[int, int]] = frozenset()):
        self.name = name
        self.visibles = [np.asarray(v, dtype=bool) for v in visibles]
        self.bad_frames = set(bad_frames)
        self.calls: list[tuple[int, list[int]]] = []

    def __len__(self) -> int:
        return len(self.visibles)

    def sequence_name(self, seq_id: int) -> str:
        return f"{self.name}-{seq_id:03d}"

    def sequence_info(self, seq_id: int) -> SequenceInfo:
        visible = self.visibles[seq_id]
        t = np.arange(len(visible))
        bbox = np.stack([20.0 + t % 5, 14.0 + t % 3, np.full(len(t), 16.0), np.full(len(t), 12.0)], axis=1)
        return SequenceInfo(bbox=bbox, valid=visible.copy(), visible=visible.copy())

    def frames(self, seq_id, frame_ids, info=None):
        self.calls.append((seq_id, list(frame_ids)))
        info = info or self.sequence_info(seq_id)
        images = []
        for frame in frame_ids:
            if (seq_id, frame) in self.bad_frames:
                raise ImageReadError(f"cannot decode /fake/{self.name}/{seq_id}/{frame:08d}.jpg")
            images.append(np.random.default_rng([seq_id, frame]).integers(0, 256, (48, 64, 3), dtype=np.uint8))
        return images, info.bbox[list(frame_ids)]


class FakeImages(TrackingDataset):
    """An image dataset: one 64 x 48 image and box per sequence."""

    name = "FakeCOCO"
    is_video = False

    def __len__(self) -> int:
        return 3

    def sequence_name(self, seq_id: int) -> str:
        return f"image-{seq_id}"

    def sequence_info(self, seq_id: int) -> SequenceInfo:
        return SequenceInfo(bbox=np.array([[10.0, 8.0, 30.0, 20.0]]), valid=np.ones(1, bool), visible=np.ones(1, bool))

    def frames(self, seq_id, frame_ids, info=None):
        image = np.full((48, 64, 3), 40 * seq_id, dtype=np.uint8)
        return [image] * len(frame_ids), np.repeat(self.sequence_info(seq_id).bbox, len(frame_ids), axis=0)


def visible_pattern(n: int, invisible: Sequence[int] = (), tail: int = 0) -> np.ndarray:
    """``n`` frames, visible except the listed ones and the last ``tail`` frames."""
    visible = np.ones(n, dtype=bool)
    visible[list(invisible)] = False
    if tail:
        visible[n - tail:] = False
    return visible


def small_processing(**overrides) -> FrameProcessing:
    kwargs = dict(template_size=32, search_size=64, template_factor=2.0, search_factor=4.0, template_center_jitter=0,
                  template_scale_jitter=0, search_center_jitter=3.5, search_scale_jitter=0.5, mean=MEAN, std=STD)
    return FrameProcessing(**(kwargs | overrides))


def plain_processing(**overrides) -> FrameProcessing:
    """No randomness at all: no jitter, grayscale, flips or brightness change."""
    plain = dict(search_center_jitter=0, search_scale_jitter=0, grayscale_prob=0, joint_flip_prob=0,
                 brightness_jitter=0, crop_flip_prob=0)
    return small_processing(**(plain | overrides))


def video_mix() -> FakeVideos:
    return FakeVideos("FakeVideos", [visible_pattern(40), visible_pattern(60, invisible=range(10, 30)),
                                     visible_pattern(10), visible_pattern(50, tail=20)])


def frame_sampler(datasets=None, **kwargs) -> FrameSampler:
    datasets = datasets or [video_mix(), FakeImages()]
    kwargs = dict(max_gap=20, seed=7) | kwargs
    return FrameSampler(datasets, [1] * len(datasets), 16, small_processing(), **kwargs)


def assert_samples_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


# ------------------------------------------------------------------ reproducibility

def test_sample_is_a_function_of_seed_epoch_index():
    first, second = frame_sampler(), frame_sampler()
    assert_samples_equal(first[3], second[3])
    assert_samples_equal(first[3], first[3])
    second.set_epoch(1)
    assert not torch.equal(first[3]["search_images"], second[3]["search_images"])
    assert not torch.equal(frame_sampler(seed=8)[3]["search_images"], first[3]["search_images"])


def test_samples_do_not_depend_on_call_order_or_workers():
    sampler = frame_sampler()
    forward = [sampler[i] for i in range(6)]
    backward = [sampler[i] for i in reversed(range(6))][::-1]
    for a, b in zip(forward, backward):
        assert_samples_equal(a, b)
    for workers in (0, 2):
        batch = next(iter(DataLoader(frame_sampler(), batch_size=6, num_workers=workers)))
        assert torch.equal(batch["search_images"], torch.stack([s["search_images"] for s in forward]))


def test_frame_sample_shapes_and_batch_major_collation():
    sample = frame_sampler()[0]
    assert sample["template_images"].shape == (5, 3, 32, 32) and sample["template_images"].dtype == torch.float32
    assert sample["search_images"].shape == (1, 3, 64, 64) and sample["search_images"].dtype == torch.float32
    assert sample["template_anno"].shape == (5, 4) and sample["search_anno"].shape == (1, 4)
    assert sample["search_anno"].dtype == torch.float32
    assert {"dataset", "failed_reads", "invalid_samples"} <= sample.keys()
    batch = next(iter(DataLoader(frame_sampler(), batch_size=3)))
    assert batch["template_images"].shape == (3, 5, 3, 32, 32)
    assert batch["search_anno"].shape == (3, 1, 4) and batch["dataset"].shape == (3,)


def test_len_and_index_range():
    sampler = frame_sampler()
    assert len(sampler) == 16
    with pytest.raises(IndexError):
        sampler[16]


# ------------------------------------------------------------------ causal frame choice

@pytest.mark.parametrize("visible", [visible_pattern(80), visible_pattern(200, invisible=range(30, 120)),
                                     visible_pattern(60, invisible=range(1, 60, 2))])
def test_causal_frame_constraints(visible):
    rng = np.random.default_rng(0)
    n, max_gap = len(visible), 25
    for _ in range(300):
        templates, search = causal_frame_ids(visible, rng, num_template=5, num_search=1, max_gap=max_gap)
        base, previous = templates[0], templates[1:]
        assert len(templates) == 5 and len(search) == 1
        assert 4 <= base < n - 1
        assert all(visible[i] for i in templates + search)
        assert all(p < base for p in previous)
        assert base < search[0]
        if visible.all():  # the first draw always succeeds: gap 0
            assert all(base - max_gap <= p for p in previous) and search[0] < base + max_gap


def test_causal_gap_grows_when_the_window_is_empty():
    # Visible 0..9 and 100..129: a base >= 100 needs a gap increase to reach frames 0..9 only if 100..base is empty.
    visible = np.zeros(130, dtype=bool)
    visible[:10] = visible[100:] = True
    rng = np.random.default_rng(1)
    for _ in range(200):
        templates, search = causal_frame_ids(visible, rng, num_template=5, num_search=1, max_gap=5)
        assert all(visible[i] for i in templates + search) and max(templates[1:]) < templates[0] < search[0]
        if templates[0] == 100:  # nothing visible in [95, 100): the templates come from 0..9 after gap increases
            assert max(templates[1:]) <= 9


def test_causal_template_order_option():
    rng = np.random.default_rng(2)
    for _ in range(50):
        templates, _ = causal_frame_ids(visible_pattern(100), rng, num_template=5, num_search=1, max_gap=30,
                                        template_order="chronological")
        assert templates == sorted(templates)


def test_causal_choice_terminates_without_valid_frames():
    visible = np.zeros(50, dtype=bool)
    visible[10] = True  # a base candidate, but nothing visible before it
    with pytest.raises(ValueError, match="no causal choice"):
        causal_frame_ids(visible, np.random.default_rng(0), num_template=5, num_search=1, max_gap=3)
    # Full-window path (max_gap >= len): still valid choices.
    visible = visible_pattern(30, invisible=range(5, 25))
    templates, search = causal_frame_ids(visible, np.random.default_rng(0), num_template=5, num_search=1, max_gap=100)
    assert all(visible[i] for i in templates + search) and max(templates[1:]) < templates[0] < search[0]


def test_frame_sampler_uses_eligible_sequences_and_repeats_image_frames():
    videos, images = video_mix(), FakeImages()
    sampler = FrameSampler([videos, images], [1, 1], 40, lambda *args: {"ok": torch.zeros(1)}, max_gap=20, seed=0,
                           template_order="chronological")
    datasets = [sampler[i]["dataset"] for i in range(40)]
    assert set(datasets) == {0, 1}
    assert videos.calls and all(seq != 2 for seq, _ in videos.calls)  # sequence 2 has only 10 frames
    for seq, ids in videos.calls:
        visible = videos.visibles[seq]
        assert all(visible[i] for i in ids) and ids[:5] == sorted(ids[:5]) and ids[4] < ids[5]


def test_image_dataset_frame_ids_are_all_zero():
    calls = []

    class Recording(FakeImages):
        def frames(self, seq_id, frame_ids, info=None):
            calls.append(list(frame_ids))
            return super().frames(seq_id, frame_ids, info)

    sampler = FrameSampler([Recording()], [1], 4, small_processing(), max_gap=20, seed=0)
    sample = sampler[0]
    assert calls and all(ids == [0] * 6 for ids in calls) and sample["dataset"] == 0


def test_ineligible_dataset_raises_quickly():
    short = FakeVideos("TooShort", [visible_pattern(15), visible_pattern(30, invisible=range(0, 20))])
    sampler = FrameSampler([short], [1], 4, small_processing(), max_gap=20, seed=0)
    start = time.perf_counter()
    with pytest.raises(TrainDatasetError, match=r"TooShort.*needs > 12 visible frames and at least 20 frames"):
        sampler[0]
    with pytest.raises(TrainDatasetError, match="TooShort"):
        sampler[1]
    assert time.perf_counter() - start < 2.0


def test_rare_eligible_sequences_are_still_found():
    # 1 eligible sequence among 300: the bounded rejection loop falls back to drawing among the eligible ones.
    videos = FakeVideos("Sparse", [visible_pattern(10)] * 299 + [visible_pattern(40)])
    sampler = FrameSampler([videos], [1], 4, lambda *args: {}, max_gap=20, seed=0, max_attempts=5)
    assert all(sampler[i]["dataset"] == 0 for i in range(4))
    assert {seq for seq, _ in videos.calls} == {299}


def test_unreadable_images_are_skipped_counted_and_logged(caplog):
    bad = {(0, f) for f in range(40)}  # sequence 0 cannot be read at all
    videos = FakeVideos("Corrupt", [visible_pattern(40), visible_pattern(40)], bad_frames=bad)
    sampler = FrameSampler([videos], [1], 30, small_processing(), max_gap=20, seed=3)
    with caplog.at_level(logging.WARNING, logger="lib.train.data.sampler"):
        samples = [sampler[i] for i in range(30)]
    failed = sum(s["failed_reads"] for s in samples)
    assert failed > 0 and sum("Corrupt-000" in r.message and ".jpg" in r.message for r in caplog.records) == failed
    assert all(seq in (0, 1) for seq, _ in videos.calls)


def test_all_unreadable_dataset_reports_reasons():
    videos = FakeVideos("Broken", [visible_pattern(40)], bad_frames={(0, f) for f in range(40)})
    sampler = FrameSampler([videos], [1], 2, small_processing(), max_gap=20, seed=0, max_attempts=10)
    with pytest.raises(TrainDatasetError, match=r"10 unreadable images \(e\.g\. cannot decode /fake/Broken/0/"):
        sampler[0]


def test_invalid_processing_is_resampled_and_reported():
    results = iter([None, None, {"x": torch.ones(1)}])
    sampler = FrameSampler([video_mix()], [1], 2, lambda *args: next(results), max_gap=20, seed=0)
    sample = sampler[0]
    assert sample["invalid_samples"] == 2 and sample["failed_reads"] == 0
    never = FrameSampler([video_mix()], [1], 2, lambda *args: None, max_gap=20, seed=0, max_attempts=7)
    with pytest.raises(TrainDatasetError, match="7 invalid processing results"):
        never[0]


# ------------------------------------------------------------------ sequence sampler

def test_sequential_frame_constraints():
    visible = visible_pattern(400, invisible=list(range(50, 80)) + list(range(200, 203)) + [300])
    visible_ids = np.flatnonzero(visible)
    rng = np.random.default_rng(0)
    n, max_gap = len(visible), 100
    for _ in range(300):
        templates, search = sequential_frame_ids(visible, rng, num_template=5, num_search=32, max_gap=max_gap)
        assert templates == sorted(templates) and all(visible[t] and t < n - 32 for t in templates)
        left = search[0]
        assert visible[left] and templates[-1] <= left < min(n - 32, templates[-1] + max_gap)
        assert len(search) == 32 and all(visible[i] for i in search)
        # consecutive visible frames: nothing visible is skipped between two search frames
        assert all(np.sum(visible[a + 1:b]) == 0 and a < b for a, b in zip(search, search[1:]))
        assert search == [int(i) for i in visible_ids[visible_ids >= left][:32]]


def test_sequential_end_of_video_padding():
    visible = np.zeros(40, dtype=bool)
    visible[:8] = visible[39] = True  # after frame 7 only the last frame is visible
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, search = sequential_frame_ids(visible, rng, num_template=5, num_search=32, max_gap=300)
        left = search[0]
        assert search == list(range(left, 8)) + [39] * (32 - (8 - left))
    visible = np.zeros(40, dtype=bool)
    visible[:10] = True  # invisible tail: the following ids, then the last index repeated
    for _ in range(20):
        _, search = sequential_frame_ids(visible, rng, num_template=5, num_search=32, max_gap=300)
        left = search[0]
        expected = (list(range(left, 40)) + [39] * 32)[:32]
        assert search == expected


def test_sequence_sampler_output_and_determinism():
    videos = FakeVideos("Long", [visible_pattern(100), visible_pattern(50), visible_pattern(120, tail=30)])
    sampler = SequenceSampler([videos], [1], 8, seed=5)
    sample = sampler[2]
    assert len(sample["template_images"]) == 5 and len(sample["search_images"]) == 32
    assert sample["template_images"][0].shape == (48, 64, 3) and sample["template_images"][0].dtype == np.uint8
    assert sample["template_boxes"].shape == (5, 4) and sample["search_boxes"].shape == (32, 4)
    assert sample["template_boxes"].dtype == np.float64
    assert sample["sequence"] in ("Long-000", "Long-002") and sample["dataset"] == 0
    assert len(sample["frame_ids"]) == 37 and sample["failed_reads"] == 0
    again = SequenceSampler([videos], [1], 8, seed=5)[2]
    assert again["frame_ids"] == sample["frame_ids"]
    assert all(np.array_equal(a, b) for a, b in zip(again["search_images"], sample["search_images"]))
    batch = next(iter(DataLoader(sampler, batch_size=4, collate_fn=collate_sequences)))
    assert isinstance(batch, list) and len(batch) == 4 and batch[2]["frame_ids"] == sample["frame_ids"]


def test_sequence_sampler_rejects_image_and_ineligible_datasets():
    with pytest.raises(TrainDatasetError, match="FakeCOCO"):
        SequenceSampler([video_mix(), FakeImages()], [1, 1], 4, seed=0)
    sampler = SequenceSampler([video_mix()], [1], 4, seed=0)  # no sequence has > 74 visible frames
    with pytest.raises(TrainDatasetError, match=r"needs > 74 visible frames and at least 37 frames"):
        sampler[0]


def test_sequence_sampler_skips_unreadable_sequences():
    videos = FakeVideos("Corrupt", [visible_pattern(100), visible_pattern(100)], bad_frames={(0, f) for f in range(100)})
    sampler = SequenceSampler([videos], [1], 10, seed=1)
    samples = [sampler[i] for i in range(10)]
    assert all(s["sequence"] == "Corrupt-001" for s in samples) and sum(s["failed_reads"] for s in samples) > 0


# ------------------------------------------------------------------ processing maths

def test_centred_target_boxes_and_crop_content():
    image = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    box = np.array([[90.0, 90.0, 20.0, 20.0]])  # centre (100, 100)
    out = plain_processing()([image], box, [image], box, np.random.default_rng(0))
    # search: side ceil(20 * 4) = 80, resize 64 / 80 = 0.8; centre (64 - 1) / 2 = 31.5, size 16 -> x = 23.5
    assert torch.allclose(out["search_anno"], torch.tensor([[23.5 / 64, 23.5 / 64, 0.25, 0.25]]), atol=1e-7)
    assert out["search_anno"][0, 0].item() == pytest.approx(0.3671875)
    # template: side 40, resize 32 / 40 = 0.8; centre 15.5, size 16 -> x = 7.5
    assert torch.allclose(out["template_anno"], torch.tensor([[7.5 / 32, 7.5 / 32, 0.5, 0.5]]), atol=1e-7)
    # crop: rows/cols round(100 - 40) = 60 .. 139, bilinear to 64, /255, normalised
    expected = cv2.resize(image[60:140, 60:140], (64, 64)).astype(np.float32) / 255
    expected = (expected - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    assert np.allclose(out["search_images"][0].numpy().transpose(1, 2, 0), expected, atol=1e-5)


def test_joint_flip_and_grayscale():
    image = np.random.default_rng(0).integers(0, 256, (30, 100, 3), dtype=np.uint8)
    flipped, box = joint_transform(image, np.array([10.0, 5.0, 20.0, 8.0]), grayscale=False, flip=True)
    assert np.array_equal(flipped, image[:, ::-1]) and np.allclose(box, [99 - 30, 5, 20, 8])
    gray, box = joint_transform(image, np.array([10.0, 5.0, 20.0, 8.0]), grayscale=True, flip=False)
    expected = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert all(np.array_equal(gray[..., c], expected) for c in range(3)) and np.allclose(box, [10, 5, 20, 8])


def test_joint_roll_is_shared_by_templates_and_search():
    # Coloured image (distinct channels) with a dark left half and a bright right half.
    image = np.empty((100, 100, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 30, 100, 170
    image[:, 50:] += 50
    boxes = np.array([[40.0, 40.0, 20.0, 20.0]] * 3)
    processing = plain_processing(grayscale_prob=0.5, joint_flip_prob=0.5, mean=(0, 0, 0), std=(1, 1, 1))
    grays, flips = set(), set()
    for seed in range(40):
        out = processing([image] * 3, boxes, [image], boxes[:1], np.random.default_rng(seed))
        images = [*out["template_images"], *out["search_images"]]
        grays.add(tuple(bool(torch.equal(im[0], im[1]) and torch.equal(im[1], im[2])) for im in images))
        flips.add(tuple(bool(im[0, :, 0].mean() > im[0, :, -1].mean()) for im in images))  # bright side left
    assert grays == {(False,) * 4, (True,) * 4} and flips == {(False,) * 4, (True,) * 4}


def test_crop_flip_flips_image_and_normalised_box():
    assert np.allclose(flip_normalised_box(np.array([0.1, 0.2, 0.3, 0.4])), [0.6, 0.2, 0.3, 0.4])
    image = np.random.default_rng(1).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    box = np.array([[40.0, 30.0, 24.0, 16.0]])
    plain = plain_processing()([image], box, [image], box, np.random.default_rng(0))
    flipped = plain_processing(crop_flip_prob=1.0)([image], box, [image], box, np.random.default_rng(0))
    for name in ("template", "search"):
        assert torch.equal(flipped[f"{name}_images"], plain[f"{name}_images"].flip(-1))
        x, y, w, h = plain[f"{name}_anno"][0].tolist()
        assert flipped[f"{name}_anno"][0].tolist() == pytest.approx([1 - x - w, y, w, h])


def test_brightness_factor_range():
    image = np.full((100, 100, 3), 100, dtype=np.uint8)
    box = np.array([[40.0, 40.0, 20.0, 20.0]])
    processing = plain_processing(brightness_jitter=0.2, mean=(0, 0, 0), std=(1, 1, 1))
    factors = []
    for seed in range(60):
        out = processing([image], box, [image], box, np.random.default_rng(seed))
        factors.append(out["search_images"][0, 0, 32, 32].item() * 255 / 100)  # an image pixel
    assert 0.8 <= min(factors) < 0.9 and 1.1 < max(factors) <= 1.2


def test_all_padding_crops_are_invalid():
    image = np.full((100, 100, 3), 50, dtype=np.uint8)
    good = np.array([[40.0, 40.0, 20.0, 20.0]])
    outside = np.array([[500.0, 500.0, 10.0, 10.0]])
    assert plain_processing()([image], outside, [image], good, np.random.default_rng(0)) is None
    assert plain_processing()([image], good, [image], outside, np.random.default_rng(0)) is None
    # A template crop (side 32, no resize) whose image part (columns and rows 22..31) misses the pixels that the
    # nearest downsampling to the 2 x 2 token grid reads (0 and 16): the mask is not all padding, its grid is.
    corner = np.array([[-14.0, -14.0, 16.0, 16.0]])
    _, _, mask = sample_target_with_mask(image, corner[0], 2.0, 32)
    assert not mask.all() and not mask[22:, 22:].any() and mask[:22].all()
    assert plain_processing()([image], corner, [image], good, np.random.default_rng(0)) is None
    assert plain_processing()([image], good, [image], good, np.random.default_rng(0)) is not None


def test_degenerate_boxes_are_invalid():
    image = np.full((100, 100, 3), 50, dtype=np.uint8)
    good = np.array([[40.0, 40.0, 20.0, 20.0]])
    for bad in ([40.0, 40.0, 0.0, 20.0], [40.0, 40.0, -5.0, -5.0], [40.0, 40.0, np.nan, 5.0], [np.inf, 4, 5, 5]):
        assert plain_processing()([image], good, [image], np.array([bad]), np.random.default_rng(0)) is None


def test_processing_from_config():
    processing = FrameProcessing.from_config(default_config("fartrack"))
    assert (processing.template_size, processing.search_size) == (128, 256)
    assert (processing.template_factor, processing.search_factor) == (2.0, 5.0)
    assert (processing.search_center_jitter, processing.search_scale_jitter) == (4.5, 0.5)
    assert processing.patch_size == 16 and processing.template_center_jitter == 0.0


# ------------------------------------------------------------------ SiamFC crop

def test_siamfc_crop_geometry_and_mean_padding():
    image = (np.arange(6)[:, None] * 10 + np.arange(8)[None, :]).astype(np.uint8)[..., None].repeat(3, axis=2)
    image[..., 1] += 100
    pad = (7.9, 8.2, 9.0)  # cast like the official uint8 assignment: (7, 8, 9)
    # centre (2, 1), side 4: c = 2.5, x start floor(2 - 2.5 + 0.5) = 0, y start floor(1 - 2.5 + 0.5) = -1
    crop = siamfc_crop(image, (2.0, 1.0), 4, 4, pad)
    assert np.array_equal(crop[1:], image[0:3, 0:4])
    assert np.array_equal(crop[0], np.tile([7, 8, 9], (4, 1)))
    # bottom-right: centre (7, 5) -> columns 5..8 and rows 3..6; column 8 and row 6 are padding
    crop = siamfc_crop(image, (7.0, 5.0), 4, 4, pad)
    assert np.array_equal(crop[:3, :3], image[3:6, 5:8])
    assert (crop[3] == [7, 8, 9]).all() and (crop[:, 3] == [7, 8, 9]).all()
    # the integer start is floored: centre 2.4 and 2.9 both start at column 0, 3.0 at column 1
    assert np.array_equal(siamfc_crop(image, (2.4, 3.0), 4, 4, pad), image[1:5, 0:4])
    assert np.array_equal(siamfc_crop(image, (2.9, 3.0), 4, 4, pad), image[1:5, 0:4])
    assert np.array_equal(siamfc_crop(image, (3.0, 3.0), 4, 4, pad), image[1:5, 1:5])
    # odd side 3 around 3.0: c = 2, start floor(3 - 2 + 0.5) = 1 -> columns and rows 1..3
    assert np.array_equal(siamfc_crop(image, (3.0, 3.0), 3, 3, pad), image[1:4, 1:4])
    # resize when the window differs from the output size
    assert np.array_equal(siamfc_crop(image, (4.0, 3.0), 4, 8, pad), cv2.resize(image[1:5, 2:6], (8, 8)))
    # a window entirely outside the image is all padding
    assert (siamfc_crop(image, (100.0, 100.0), 4, 4, pad) == [7, 8, 9]).all()


def test_image_mean_colour():
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[0, 0] = [4, 8, 12]
    assert np.allclose(image_mean_colour(image), [1, 2, 3])
