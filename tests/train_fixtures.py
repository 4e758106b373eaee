"""Writers of tiny training trees in the exact official layouts, for tests.

Every writer takes the dataset root (the folder a ``TrainEnvSettings`` path points at) and returns what it wrote:
``{sequence name: SequenceInfo}`` with the expected boxes and valid / visible flags (COCO: one
:class:`CocoInstance` per non-crowd annotation, in annotation-id order). Frames are small real JPEGs: seeded noise
with the target drawn as a filled rectangle of colour :data:`TARGET_RGB` at its box (see ``benchmark_fixtures``).

* LaSOT (names of ``lasot_train_split.txt`` by default): frame 2 fully occluded with its box kept, frame 3 out of
  view with GT ``0,0,0,0``.
* GOT-10k: ``list.txt``, ``groundtruth.txt``, ``absence.label`` / ``cover.label`` (last frame absent) and
  ``meta_info.ini``; sequence 1 has an empty box at frame 1, sequence 2 has no label files.
  :func:`write_split_files` writes a ``data_specs`` folder with small GOT-10k split files.
* TrackingNet: ``TRAIN_<k>/anno/<seq>.txt`` and ``TRAIN_<k>/frames/<seq>/<i>.jpg`` (0-based); the first sequence
  of every chunk has an empty box at frame 1.
* COCO: ``annotations/instances_train2017.json`` and ``images/train2017/*.jpg`` (or ``train2017/``); every image
  has a large (valid), a small (invalid) and a crowd annotation; the first image is grayscale.

``write_all_train(data_dir)`` writes every tree under the default folders of ``lib/train/admin/environment.py``
(``lasot``, ``got10k/train``, ``got10k/val``, ``trackingnet``, ``coco``), so ``FARTRACK_DATA_DIR=<data_dir>``
finds them.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

from benchmark_fixtures import IMAGE_HEIGHT, IMAGE_WIDTH, boxes_for, write_boxes, write_frame
from lib.train.admin.environment import DATA_SPECS_DIR
from lib.train.dataset.base import SequenceInfo
from lib.train.dataset.got10k import SPLIT_FILES as GOT10K_SPLIT_FILES

#: The target colour drawn by ``benchmark_fixtures.write_frame`` (BGR (40, 200, 240)), in RGB.
TARGET_RGB = (240, 200, 40)
LASOT_NAMES = ("airplane-10", "bear-1")


def _info(boxes: np.ndarray, hidden: np.ndarray | None = None) -> SequenceInfo:
    valid = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    return SequenceInfo(boxes, valid, valid if hidden is None else valid & ~hidden)


def write_lasot_train(root: Path, names: Iterable[str] = LASOT_NAMES, num_frames: int = 6
                      ) -> dict[str, SequenceInfo]:
    """LaSOT sequences ``<class>/<name>`` with ``num_frames`` (>= 4) frames each."""
    expected = {}
    for k, name in enumerate(names):
        folder = root / name.rsplit("-", 1)[0] / name
        occlusion, out_of_view = np.zeros(num_frames, dtype=int), np.zeros(num_frames, dtype=int)
        occlusion[2], out_of_view[3] = 1, 1
        boxes = boxes_for(num_frames, seed=k)
        boxes[3] = 0  # LaSOT writes 0,0,0,0 where the target is out of view
        for i, box in enumerate(boxes, start=1):
            write_frame(folder / "img" / f"{i:08d}.jpg", box, seed=1000 * k + i)
        write_boxes(folder / "groundtruth.txt", boxes)
        (folder / "full_occlusion.txt").write_text(",".join(map(str, occlusion)))
        (folder / "out_of_view.txt").write_text(",".join(map(str, out_of_view)))
        expected[name] = _info(boxes, (occlusion | out_of_view).astype(bool))
    return expected


def write_got10k_train(root: Path, num_sequences: int = 3, num_frames: int = 6, prefix: str = "GOT-10k_Train"
                       ) -> dict[str, SequenceInfo]:
    """``<prefix>_000001`` ... in ``list.txt`` order; use ``prefix="GOT-10k_Val"`` for the official val folder."""
    expected = {}
    names = [f"{prefix}_{i:06d}" for i in range(1, num_sequences + 1)]
    for k, name in enumerate(names):
        folder = root / name
        boxes = boxes_for(num_frames, seed=k)
        if k == 1:
            boxes[1, 2] = 0
        for i, box in enumerate(boxes, start=1):
            write_frame(folder / f"{i:08d}.jpg", box, seed=1000 * k + i)
        write_boxes(folder / "groundtruth.txt", boxes)
        absent = np.zeros(num_frames, dtype=bool)
        if k != 2:  # the third sequence has no label files: every valid frame is visible
            absent[-1] = True
            cover = np.where(absent, 0, 8)
            (folder / "cover.label").write_text("".join(f"{c}\n" for c in cover))
            (folder / "absence.label").write_text("".join(f"{int(a)}\n" for a in absent))
        (folder / "meta_info.ini").write_text(
            f"[METAINFO]\nobject_class: thing\nresolution: ({IMAGE_WIDTH}, {IMAGE_HEIGHT})\n")
        expected[name] = _info(boxes, absent)
    (root / "list.txt").write_text("".join(f"{name}\n" for name in names))
    return expected


def write_split_files(specs_dir: Path, got10k_splits: Mapping[str, Sequence[int]]) -> Path:
    """A ``data_specs`` folder: the official files, with the GOT-10k splits of ``got10k_splits`` (split name ->
    0-based ``list.txt`` line indices) replaced."""
    shutil.copytree(DATA_SPECS_DIR, specs_dir, dirs_exist_ok=True)
    for split, indices in got10k_splits.items():
        (specs_dir / GOT10K_SPLIT_FILES[split]).write_text("".join(f"{index}\n" for index in indices))
    return specs_dir


def write_trackingnet_train(root: Path, chunks: Iterable[int] = (0,), num_sequences: int = 2, num_frames: int = 6
                            ) -> dict[str, SequenceInfo]:
    """``TRAIN_<k>`` chunks; sequence names are ``TRAIN_<k>/<video id>``, written in reverse name order."""
    expected = {}
    for chunk in chunks:
        for j in reversed(range(num_sequences)):
            name = f"vid{chunk}x{j}_0"
            boxes = boxes_for(num_frames, seed=10 * chunk + j)
            if j == 0:
                boxes[1, 3] = 0
            for i, box in enumerate(boxes):
                write_frame(root / f"TRAIN_{chunk}" / "frames" / name / f"{i}.jpg", box, seed=1000 * j + i)
            write_boxes(root / f"TRAIN_{chunk}" / "anno" / f"{name}.txt", boxes)
            expected[f"TRAIN_{chunk}/{name}"] = _info(boxes)
    return dict(sorted(expected.items()))


@dataclass(frozen=True)
class CocoInstance:
    """One non-crowd COCO annotation as the dataset must expose it."""

    annotation_id: int
    file_name: str
    bbox: np.ndarray
    valid: bool


def write_coco(root: Path, num_images: int = 2, image_dir: str = "images/train2017") -> list[CocoInstance]:
    """``annotations/instances_train2017.json`` and ``<image_dir>/<file>.jpg``; annotations are listed in
    decreasing id order (the dataset orders them by id)."""
    rng = np.random.default_rng(7)
    images, annotations, expected = [], [], []
    next_id = 100
    for k in range(num_images):
        image_id, file_name = 9 + 10 * k, f"{9 + 10 * k:012d}.jpg"
        large = [4.0 + k, 6.0, 60.0, 55.0]
        small = [70.0, 10.0 + k, 20.5, 15.0]
        crowd = [10.0, 62.0, 30.0, 8.0]
        image = rng.integers(0, 120, size=(IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
        for x, y, w, h in (large, small):
            cv2.rectangle(image, (int(x), int(y)), (int(x + w) - 1, int(y + h) - 1), TARGET_RGB[::-1], thickness=-1)
        if k == 0:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        path = root / image_dir / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
        images.append({"license": 1, "file_name": file_name, "coco_url": "", "height": IMAGE_HEIGHT,
                       "width": IMAGE_WIDTH, "date_captured": "", "id": image_id})
        for box, iscrowd, valid in ((large, 0, True), (small, 0, False), (crowd, 1, False)):
            x, y, w, h = box
            segmentation = ({"counts": [0, 5, 7], "size": [IMAGE_HEIGHT, IMAGE_WIDTH]} if iscrowd
                            else [[x, y, x + w, y, x + w, y + h, x, y + h]])
            annotations.append({"segmentation": segmentation, "area": w * h, "iscrowd": iscrowd,
                                "image_id": image_id, "bbox": box, "category_id": 1, "id": next_id})
            if not iscrowd:
                expected.append(CocoInstance(next_id, file_name, np.array(box), valid))
            next_id += 1
    content = {"info": {"year": 2017}, "licenses": [{"id": 1, "name": "x", "url": ""}], "images": images,
               "annotations": annotations[::-1],
               "categories": [{"supercategory": "thing", "id": 1, "name": "thing"}]}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(content))
    return expected


def write_all_train(data_dir: Path) -> dict[str, Path]:
    """Every training tree under its default folder of ``data_dir``; returns ``{settings key: root}``."""
    roots = {"lasot_dir": data_dir / "lasot", "got10k_dir": data_dir / "got10k" / "train",
             "got10k_val_dir": data_dir / "got10k" / "val", "trackingnet_dir": data_dir / "trackingnet",
             "coco_dir": data_dir / "coco"}
    write_lasot_train(roots["lasot_dir"])
    write_got10k_train(roots["got10k_dir"])
    write_got10k_train(roots["got10k_val_dir"], num_sequences=2, prefix="GOT-10k_Val")
    write_trackingnet_train(roots["trackingnet_dir"], chunks=(0, 1))
    write_coco(roots["coco_dir"])
    return roots
