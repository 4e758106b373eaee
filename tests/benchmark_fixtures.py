"""Writers of tiny benchmark trees in the exact official layouts, for tests.

Every ``write_<dataset>(root, ...)`` writes the dataset root ``root`` (the folder an ``EnvSettings`` path points
at) and returns it. Frames are small real JPEG (or PNG) images: seeded noise with the target drawn as a filled
rectangle at its ground-truth box. Boxes drift a few pixels per frame and stay inside the image.

* OTB / NfS / UAV: the listed sequences are written over their full official frame range (the shortest official
  sequences are the defaults), so the tree is a *subset* of the official list; load it with
  ``get_dataset(name, sequences=[...])`` or ``allow_missing=True``.
* LaSOT / LaSOT_ext: official names with ``num_frames`` frames; frames 2 and 3 are fully occluded / out of view
  (GT ``0,0,0,0`` there, as in LaSOT).
* GOT-10k: ``test`` (GT of frame 0 only), ``val`` and ``train`` splits with ``list.txt``; ``train/list.txt`` is
  the complete official list (9335 names) but only the first ``ltrval_sequences`` sequences of the val split
  exist on disk (load with ``allow_missing=True``).
* TrackingNet (``TEST/``: frames 0-based, anno of frame 0) and TNL2K (one sequence with PNG frames).

``write_all(data_dir)`` writes every dataset under its default folder, so ``FARTRACK_DATA_DIR=<data_dir>``
finds them all.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

LISTS_DIR = Path(__file__).resolve().parents[1] / "lib" / "test" / "evaluation" / "lists"
VAL_SPLIT = Path(__file__).resolve().parents[1] / "lib" / "train" / "data_specs" / "got10k_val_split.txt"
IMAGE_WIDTH, IMAGE_HEIGHT = 96, 72


def boxes_for(num_frames: int, seed: int) -> np.ndarray:
    """``(num_frames, 4)`` integer-valued float64 boxes x, y, w, h drifting inside a 96x72 image."""
    rng = np.random.default_rng(seed)
    w, h = rng.integers(14, 26), rng.integers(12, 20)
    x0, y0 = rng.integers(5, 30), rng.integers(5, 25)
    boxes = [(min(x0 + i, IMAGE_WIDTH - w - 1), min(y0 + i // 2, IMAGE_HEIGHT - h - 1), w, h)
             for i in range(num_frames)]
    return np.array(boxes, dtype=np.float64)


def write_frame(path: Path, box: np.ndarray, seed: int) -> None:
    """Write one noise image with the target (a filled rectangle) at ``box`` (nothing drawn for NaN/empty)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 120, size=(IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
    if np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0:
        x, y, w, h = (int(v) for v in box)
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), (40, 200, 240), thickness=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def write_boxes(path: Path, boxes: np.ndarray, delimiter: str = ",") -> None:
    """Write GT rows with ``delimiter`` (integers where exact, NaN as ``NaN``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [delimiter.join("NaN" if np.isnan(v) else f"{v:g}" for v in row) for row in boxes]
    path.write_text("\n".join(rows) + "\n")


def _json_entries(list_name: str, names: Iterable[str]) -> list[dict]:
    entries = {entry["name"]: entry for entry in json.loads((LISTS_DIR / f"{list_name}.json").read_text())}
    return [entries[name] for name in names]


def _write_json_listed(root: Path, list_name: str, names: Iterable[str], delimiter: str,
                       nan_rows: Iterable[int] = ()) -> Path:
    """Frames ``startFrame..endFrame`` and the full GT file (covering ``initOmit`` frames) of each entry."""
    for k, entry in enumerate(_json_entries(list_name, names)):
        first, last = entry["startFrame"], entry["endFrame"]
        boxes = boxes_for(last - first + 1, seed=k)
        boxes[list(nan_rows)] = np.nan
        for i, box in zip(range(first, last + 1), boxes):
            write_frame(root / entry["path"] / f"{i:0{entry['nz']}d}.{entry['ext']}", box, seed=1000 * k + i)
        write_boxes(root / entry["anno_path"], boxes, delimiter)
    return root


def write_otb(root: Path, names: Iterable[str] = ("Deer", "Football1")) -> Path:
    """OTB sequences of ``otb.json``; the GT is tab-separated (OTB files mix tabs and commas)."""
    return _write_json_listed(root, "otb", names, delimiter="\t")


def write_nfs(root: Path, names: Iterable[str] = ("nfs_car_jumping", "nfs_shuffleboard_5")) -> Path:
    """NfS 30 fps sequences of ``nfs.json``, tab-separated 4-column GT."""
    return _write_json_listed(root, "nfs", names, delimiter="\t")


def write_uav(root: Path, names: Iterable[str] = ("uav_uav6", "uav_uav2")) -> Path:
    """UAV123 sequences of ``uav.json``, comma-separated GT with NaN rows at frames 3 and 4."""
    return _write_json_listed(root, "uav", names, delimiter=",", nan_rows=(3, 4))


def _write_lasot_like(root: Path, names: Iterable[str], num_frames: int) -> Path:
    for k, name in enumerate(names):
        folder = root / name.rsplit("-", 1)[0] / name
        occlusion = np.zeros(num_frames, dtype=int)
        out_of_view = np.zeros(num_frames, dtype=int)
        occlusion[2], out_of_view[3] = 1, 1
        boxes = boxes_for(num_frames, seed=k)
        boxes[(occlusion | out_of_view).astype(bool)] = 0
        for i, box in enumerate(boxes, start=1):
            write_frame(folder / "img" / f"{i:08d}.jpg", box, seed=1000 * k + i)
        write_boxes(folder / "groundtruth.txt", boxes)
        (folder / "full_occlusion.txt").write_text(",".join(map(str, occlusion)))
        (folder / "out_of_view.txt").write_text(",".join(map(str, out_of_view)))
    return root


def write_lasot(root: Path, names: Iterable[str] = ("airplane-1", "bear-2"), num_frames: int = 6) -> Path:
    """LaSOT test sequences (names from ``lasot.json``)."""
    return _write_lasot_like(root, names, num_frames)


def write_lasot_extension_subset(root: Path, names: Iterable[str] = ("atv-1", "badminton-2"),
                                 num_frames: int = 6) -> Path:
    """LaSOT_ext sequences (names from ``lasot_extension_subset.json``)."""
    return _write_lasot_like(root, names, num_frames)


def _write_got10k_sequence(folder: Path, num_frames: int, seed: int, first_row_only: bool) -> None:
    boxes = boxes_for(num_frames, seed)
    for i, box in enumerate(boxes, start=1):
        write_frame(folder / f"{i:08d}.jpg", box, seed=1000 * seed + i)
    write_boxes(folder / "groundtruth.txt", boxes[:1] if first_row_only else boxes)
    if not first_row_only:  # the official train/val annotations: visible ratio class, absence, resolution
        cover = [8] * num_frames
        cover[-1] = 0  # the last frame is absent
        (folder / "cover.label").write_text("\n".join(map(str, cover)) + "\n")
        (folder / "absence.label").write_text("\n".join("1" if c == 0 else "0" for c in cover) + "\n")
    (folder / "meta_info.ini").write_text(
        f"[METAINFO]\nobject_class: thing\nresolution: ({IMAGE_WIDTH}, {IMAGE_HEIGHT})\n")


def write_got10k(root: Path, num_sequences: int = 2, num_frames: int = 6, ltrval_sequences: int = 2) -> Path:
    """GOT-10k root with ``test/`` and ``val/`` (``num_sequences`` each) and a ``train/`` holding the complete
    official ``list.txt`` plus the first ``ltrval_sequences`` sequences of ``got10k_val_split.txt``."""
    for split, prefix in (("test", "GOT-10k_Test"), ("val", "GOT-10k_Val")):
        names = [f"{prefix}_{i:06d}" for i in range(1, num_sequences + 1)]
        for k, name in enumerate(names):
            _write_got10k_sequence(root / split / name, num_frames, seed=k, first_row_only=split == "test")
        (root / split / "list.txt").write_text("\n".join(names) + "\n")
    train_names = [f"GOT-10k_Train_{i:06d}" for i in range(1, 9336)]
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "train" / "list.txt").write_text("\n".join(train_names) + "\n")
    for k, index in enumerate(VAL_SPLIT.read_text().split()[:ltrval_sequences]):
        _write_got10k_sequence(root / "train" / train_names[int(index)], num_frames, seed=k, first_row_only=False)
    return root


def write_trackingnet(root: Path, num_sequences: int = 2, num_frames: int = 6) -> Path:
    """TrackingNet ``TEST/frames/<seq>/<i>.jpg`` (0-based) and ``TEST/anno/<seq>.txt`` (frame 0 only)."""
    for k in range(num_sequences):
        name = f"seq_{k:03d}_trackingnet"
        boxes = boxes_for(num_frames, seed=k)
        for i, box in enumerate(boxes):
            write_frame(root / "TEST" / "frames" / name / f"{i}.jpg", box, seed=1000 * k + i)
        write_boxes(root / "TEST" / "anno" / f"{name}.txt", boxes[:1])
    return root


def write_tnl2k(root: Path, num_sequences: int = 2, num_frames: int = 6) -> Path:
    """TNL2K ``<seq>/imgs/*`` (the first sequence in PNG, the others JPEG) and ``<seq>/groundtruth.txt``."""
    for k in range(num_sequences):
        name, ext = f"seq_{k:03d}_tnl2k", ("png" if k == 0 else "jpg")
        boxes = boxes_for(num_frames, seed=k)
        for i, box in enumerate(boxes, start=1):
            write_frame(root / name / "imgs" / f"{i:05d}.{ext}", box, seed=1000 * k + i)
        write_boxes(root / name / "groundtruth.txt", boxes)
    return root


WRITERS = {
    "otb": write_otb,
    "nfs": write_nfs,
    "uav": write_uav,
    "lasot": write_lasot,
    "lasot_extension_subset": write_lasot_extension_subset,
    "got10k": write_got10k,
    "trackingnet": write_trackingnet,
    "tnl2k": write_tnl2k,
}


def write_all(data_dir: Path) -> dict[str, Path]:
    """Every benchmark under ``<data_dir>/<default folder>``; returns ``{folder: root}``."""
    return {folder: writer(data_dir / folder) for folder, writer in WRITERS.items()}
