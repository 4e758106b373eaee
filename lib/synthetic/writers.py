"""Synthetic tracking datasets written in the official on-disk layouts of GOT-10k, LaSOT, TrackingNet and COCO 2017.

:func:`write_synthetic_data` writes every dataset under its default folder of ``data_dir`` (``got10k/{train,val,
test}``, ``lasot``, ``trackingnet``, ``coco``), so ``FARTRACK_DATA_DIR=<data_dir>`` points both the test settings
(``lib.test.evaluation.datasets.get_dataset``) and the training settings (``lib.train.dataset.build_dataset``) at
them. Content comes from :mod:`lib.synthetic.scenes`; sequence ``i`` of a split is rendered from the seed
``(seed, split stream, i)``, so changing a count never changes the other sequences.

Ground truth of the frames where the target is absent (fully occluded or out of view), per layout:

* **GOT-10k** (``train``, ``val``): ``groundtruth.txt`` (4 decimals) repeats the last visible box, with
  ``absence.label`` = 1 and ``cover.label`` = 0 (the training loader and the official toolkit drop these frames;
  the test-side ``got10k_val`` of :mod:`lib.test.evaluation.datasets` reads no label, so there they are scored
  against the repeated box); ``cut_by_image.label`` is 1 when part of the target lies outside the image. ``test``: ``groundtruth.txt`` holds the
  first frame only, as in the real test set; the full annotations (``groundtruth.txt``, the three labels,
  ``meta_info.ini``) are in ``got10k/test_hidden_gt/<sequence>/``, outside the test tree.
* **LaSOT**: integer boxes; a fully occluded frame keeps the in-image extent of the hidden target with
  ``full_occlusion`` = 1, an out-of-view frame is ``0,0,0,0`` with ``out_of_view`` = 1. Training sequences take the
  names of ``lib/train/data_specs/lasot_train_split.txt`` and test sequences those of
  ``lib/test/evaluation/lists/lasot.json``, one per class in list order, then a second per class, and so on; load the
  test set with ``get_dataset("lasot", sequences=...)`` (the names are in the manifest) or ``allow_missing=True``.
* **TrackingNet**: absent frames are ``0,0,0,0`` (its loaders take ``w, h > 0`` as visible). Training sequences are
  spread round-robin over the chunks ``TRAIN_0 .. TRAIN_<chunks - 1>`` (all created, so the official chunk list
  reads without warning); ``TEST/anno/<sequence>.txt`` holds the first frame only and the full annotation is in
  ``trackingnet/TEST_hidden_gt/anno/<sequence>.txt``.
* **COCO**: ``annotations/instances_train2017.json`` and ``images/train2017/<12-digit id>.jpg``; boxes and areas of
  the visible pixels, ``segmentation`` empty, a few ``iscrowd`` = 1 regions grouping small objects.

``<data_dir>/manifest.json`` records, per dataset, the generation parameters and a summary. A dataset whose
parameters equal the recorded ones (and whose folder exists) is skipped unless ``force``; a dataset is written to a
staging folder of ``data_dir`` and renamed into place when complete. A folder that the manifest does not list (e.g.
a real dataset) is never replaced.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import cv2
import numpy as np
from tqdm import tqdm

from lib.synthetic.scenes import CLASS_NAMES, Difficulty, RenderedSequence, render_image, render_sequence
from lib.train.admin.environment import DATA_SPECS_DIR

logger = logging.getLogger(__name__)

DATASETS = ("got10k", "lasot", "trackingnet", "coco")
MANIFEST = "manifest.json"
#: Bumped whenever the content or the layouts change, so older trees are regenerated.
GENERATOR_VERSION = 1
LASOT_TEST_LIST = Path(__file__).resolve().parents[1] / "test" / "evaluation" / "lists" / "lasot.json"
LASOT_TRAIN_LIST = DATA_SPECS_DIR / "lasot_train_split.txt"
GOT10K_HIDDEN = "test_hidden_gt"
TRACKINGNET_HIDDEN = "TEST_hidden_gt"
_TRACKINGNET_MAX_CHUNKS = 12
# Random streams of the splits: sequence i of a split is rendered from the seed (seed, stream, i).
_STREAMS = {"got10k/train": 1, "got10k/val": 2, "got10k/test": 3, "lasot/train": 4, "lasot/test": 5,
            "trackingnet/train": 6, "trackingnet/test": 7, "coco": 8}


class SyntheticDataError(RuntimeError):
    """Invalid generation parameters, or a target folder that this generator must not replace."""


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. Counts are sequences (images for COCO); the defaults take well under a minute on two cores.
    ``image_size`` is ``(W, H)``; ``difficulty`` is a level name of :data:`lib.synthetic.scenes.LEVELS` or 0..1.
    ``salience`` in 0..1 (default 0, the original look) makes the objects stand out by their colours, up to bright,
    saturated objects on dark, muted backgrounds at 1, with the same scenes and ground truth
    (:func:`lib.synthetic.scenes.render_sequence`)."""

    seed: int = 0
    difficulty: Union[str, float] = "medium"
    salience: float = 0.0
    image_size: tuple[int, int] = (320, 240)
    jpeg_quality: int = 90
    got10k_train: int = 60
    got10k_val: int = 10
    got10k_test: int = 10
    got10k_frames: int = 80
    got10k_test_frames: int = 100
    lasot_train: int = 30
    lasot_test: int = 10
    lasot_train_frames: int = 120
    lasot_test_frames: int = 150
    trackingnet_train: int = 24
    trackingnet_test: int = 6
    trackingnet_frames: int = 80
    trackingnet_chunks: int = 12
    coco_images: int = 300

    def __post_init__(self) -> None:
        Difficulty.parse(self.difficulty)  # raises ValueError on an unknown level
        if not 0.0 <= self.salience <= 1.0:
            raise ValueError(f"salience must be in 0..1, got {self.salience}")
        width, height = self.image_size
        if min(width, height) < 32:
            raise ValueError(f"image_size {self.image_size} too small (W and H must be >= 32)")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if not 1 <= self.trackingnet_chunks <= _TRACKINGNET_MAX_CHUNKS:
            raise ValueError(f"trackingnet_chunks must be in 1..{_TRACKINGNET_MAX_CHUNKS}")
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("_frames") and value < 1:
                raise ValueError(f"{item.name} must be >= 1, got {value}")
            if isinstance(value, int) and value < 0:
                raise ValueError(f"{item.name} must be >= 0, got {value}")

    def with_frames(self, num_frames: int) -> SyntheticConfig:
        """Every sequence length set to ``num_frames``."""
        return replace(self, **{item.name: num_frames for item in fields(self) if item.name.endswith("_frames")})

    def params(self, dataset: str) -> dict:
        """The parameters that determine the content of ``dataset`` (recorded in the manifest)."""
        shared = {"version": GENERATOR_VERSION, "seed": self.seed, "difficulty": self.difficulty,
                  "image_size": list(self.image_size), "jpeg_quality": self.jpeg_quality}
        if self.salience:  # recorded only when set, so trees generated before the knob existed stay valid
            shared["salience"] = self.salience
        return shared | {key: value for key, value in asdict(self).items() if key.startswith(dataset + "_")}

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` as the renderer takes it."""
        return self.image_size[1], self.image_size[0]


# --------------------------------------------------------------------------------------------- file writing
@dataclass(frozen=True)
class _Task:
    """One sequence (or COCO image) to render and write."""

    layout: str  # a dataset of DATASETS
    seed: tuple[int, ...]
    num_frames: int
    size: tuple[int, int]  # (H, W)
    difficulty: Union[str, float]
    salience: float
    quality: int
    out: str  # sequence folder (GOT-10k, LaSOT), frame folder (TrackingNet) or image file (COCO)
    anno: str = ""  # TrackingNet annotation file
    hidden: str = ""  # full annotation of a test sequence: a folder (GOT-10k) or a file (TrackingNet)
    first_row_only: bool = False  # test split: the public annotation holds the first frame only


def _write_image(path: Path, image: np.ndarray, quality: int) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"cannot write {path}")


def _write_frames(folder: Path, frames: list[np.ndarray], first: int, digits: int, quality: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames, start=first):
        _write_image(folder / f"{index:0{digits}d}.jpg", frame, quality)


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _box_lines(boxes: np.ndarray, decimals: int) -> list[str]:
    return [",".join(f"{value:.{decimals}f}" for value in row) for row in boxes]


def _last_visible_boxes(seq: RenderedSequence) -> np.ndarray:
    """GOT-10k convention: absent frames repeat the last visible box (frame 0 is always visible)."""
    boxes = seq.boxes.copy()
    for t in np.flatnonzero(seq.absent):
        boxes[t] = boxes[t - 1]
    return boxes


def _flags_line(flags: np.ndarray) -> str:
    return ",".join(str(int(flag)) for flag in flags)


def _got10k_meta(seq: RenderedSequence, task: _Task) -> str:
    """``meta_info.ini`` in the official ``key: value`` form (what the GOT-10k toolkit parses)."""
    seconds = task.num_frames // 10  # annotated at 10 Hz
    pattern, shape = seq.class_name.split("_")
    return (f"[METAINFO]\nurl: synthetic://fartrack/{'-'.join(map(str, task.seed))}\nbegin: 00:00:00\n"
            f"end: {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}\nanno_fps: 10Hz\n"
            f"object_class: {seq.class_name}\nmotion_class: moving\nmajor_class: {pattern}\nroot_class: {shape}\n"
            f"motion_adverb: smoothly\nresolution: ({task.size[1]}, {task.size[0]})\n")


def _write_got10k(task: _Task, seq: RenderedSequence) -> None:
    folder = Path(task.out)
    _write_frames(folder, seq.frames, first=1, digits=8, quality=task.quality)
    gt = _box_lines(_last_visible_boxes(seq), decimals=4)
    annotation = {"groundtruth.txt": gt,
                  "absence.label": [str(int(v)) for v in seq.absent],
                  "cover.label": [str(int(v)) for v in seq.cover],
                  "cut_by_image.label": [str(int(v)) for v in seq.cut_by_image],
                  "meta_info.ini": _got10k_meta(seq, task).splitlines()}
    if task.first_row_only:
        _write_lines(folder / "groundtruth.txt", gt[:1])
    for file_name, lines in annotation.items():
        _write_lines((Path(task.hidden) if task.first_row_only else folder) / file_name, lines)


def _write_lasot(task: _Task, seq: RenderedSequence) -> None:
    folder = Path(task.out)
    _write_frames(folder / "img", seq.frames, first=1, digits=8, quality=task.quality)
    _write_lines(folder / "groundtruth.txt", _box_lines(seq.boxes, decimals=0))
    _write_lines(folder / "full_occlusion.txt", [_flags_line(seq.occluded)])
    _write_lines(folder / "out_of_view.txt", [_flags_line(seq.out_of_view)])
    _write_lines(folder / "nlp.txt", [seq.description])


def _write_trackingnet(task: _Task, seq: RenderedSequence) -> None:
    _write_frames(Path(task.out), seq.frames, first=0, digits=0, quality=task.quality)
    boxes = np.where(seq.absent[:, None], 0.0, seq.boxes)
    gt = _box_lines(boxes, decimals=4)
    _write_lines(Path(task.anno), gt[:1] if task.first_row_only else gt)
    if task.first_row_only:
        _write_lines(Path(task.hidden), gt)


_SEQUENCE_WRITERS: dict[str, Callable[[_Task, RenderedSequence], None]] = {
    "got10k": _write_got10k, "lasot": _write_lasot, "trackingnet": _write_trackingnet}


def _run_task(task: _Task) -> dict:
    """Render and write one task; returns what the dataset's finishing step needs. Each task has its own seed, so
    the output does not depend on the order (or process) in which tasks run."""
    if task.layout == "coco":
        rendered = render_image(task.seed, task.size, task.difficulty, task.salience)
        _write_image(Path(task.out), rendered.image, task.quality)
        return {"frames": 1, "objects": [(obj.class_name, obj.box, obj.area, obj.iscrowd) for obj in rendered.objects]}
    seq = render_sequence(task.seed, task.num_frames, task.size, task.difficulty, salience=task.salience)
    _SEQUENCE_WRITERS[task.layout](task, seq)
    return {"frames": len(seq.frames), "absent": int(seq.absent.sum())}


# ------------------------------------------------------------------------------------------------ datasets
@dataclass
class _Plan:
    """The tasks of one dataset and the step that completes its tree once they are done."""

    tasks: list[_Task]
    finish: Callable[[list[dict]], dict]  # results in task order -> summary


def _task(config: SyntheticConfig, layout: str, stream: str, index: int, num_frames: int, out: Path,
          **extra: object) -> _Task:
    return _Task(layout, (config.seed, _STREAMS[stream], index), num_frames, config.size, config.difficulty,
                 config.salience, config.jpeg_quality, str(out), **extra)


def _frame_stats(results: list[dict]) -> dict:
    return {"frames": sum(r["frames"] for r in results), "absent_frames": sum(r.get("absent", 0) for r in results)}


def _plan_got10k(root: Path, config: SyntheticConfig) -> _Plan:
    splits = {"train": ("GOT-10k_Train", config.got10k_train, config.got10k_frames),
              "val": ("GOT-10k_Val", config.got10k_val, config.got10k_frames),
              "test": ("GOT-10k_Test", config.got10k_test, config.got10k_test_frames)}
    names = {split: [f"{prefix}_{i:06d}" for i in range(1, count + 1)] for split, (prefix, count, _) in splits.items()}
    tasks = [_task(config, "got10k", f"got10k/{split}", i, splits[split][2], root / split / name,
                   first_row_only=split == "test", hidden=str(root / GOT10K_HIDDEN / name) if split == "test" else "")
             for split in splits for i, name in enumerate(names[split])]

    def finish(results: list[dict]) -> dict:
        for split, split_names in names.items():
            if split_names:
                _write_lines(root / split / "list.txt", split_names)
        return {**{split: len(split_names) for split, split_names in names.items()}, **_frame_stats(results),
                "hidden_gt": f"got10k/{GOT10K_HIDDEN}"}

    return _Plan(tasks, finish)


def lasot_names(listed: list[str], count: int) -> list[str]:
    """``count`` names of an official LaSOT list: the first of every class (in list order), then the second..."""
    by_class: dict[str, list[str]] = {}
    for name in listed:
        by_class.setdefault(name.rsplit("-", 1)[0], []).append(name)
    if count > len(listed):
        raise SyntheticDataError(f"at most {len(listed)} LaSOT sequences can be named from this list, asked {count}")
    picked: list[str] = []
    for rank in range(max(map(len, by_class.values()), default=0)):
        picked += [names[rank] for names in by_class.values() if rank < len(names)]
    return picked[:count]


def _plan_lasot(root: Path, config: SyntheticConfig) -> _Plan:
    train = lasot_names(LASOT_TRAIN_LIST.read_text(encoding="utf-8").split(), config.lasot_train)
    test = lasot_names(json.loads(LASOT_TEST_LIST.read_text(encoding="utf-8")), config.lasot_test)
    tasks = [_task(config, "lasot", f"lasot/{split}", i, frames, root / name.rsplit("-", 1)[0] / name)
             for split, split_names, frames in (("train", train, config.lasot_train_frames),
                                                ("test", test, config.lasot_test_frames))
             for i, name in enumerate(split_names)]
    return _Plan(tasks, lambda results: {"train": len(train), "test": len(test), **_frame_stats(results),
                                         "train_sequences": train, "test_sequences": test})


def _plan_trackingnet(root: Path, config: SyntheticConfig) -> _Plan:
    tasks = []
    for i in range(config.trackingnet_train):
        chunk, name = root / f"TRAIN_{i % config.trackingnet_chunks}", f"synthetic_train_{i:05d}"
        tasks.append(_task(config, "trackingnet", "trackingnet/train", i, config.trackingnet_frames,
                           chunk / "frames" / name, anno=str(chunk / "anno" / f"{name}.txt")))
    for i in range(config.trackingnet_test):
        name = f"synthetic_test_{i:05d}"
        tasks.append(_task(config, "trackingnet", "trackingnet/test", i, config.trackingnet_frames,
                           root / "TEST" / "frames" / name, anno=str(root / "TEST" / "anno" / f"{name}.txt"),
                           hidden=str(root / TRACKINGNET_HIDDEN / "anno" / f"{name}.txt"), first_row_only=True))

    def finish(results: list[dict]) -> dict:
        for chunk in range(config.trackingnet_chunks):  # also the empty ones, which the loader then reads silently
            for sub in ("anno", "frames"):
                (root / f"TRAIN_{chunk}" / sub).mkdir(parents=True, exist_ok=True)
        return {"train": config.trackingnet_train, "test": config.trackingnet_test,
                "chunks": config.trackingnet_chunks, **_frame_stats(results),
                "hidden_gt": f"trackingnet/{TRACKINGNET_HIDDEN}"}

    return _Plan(tasks, finish)


def _plan_coco(root: Path, config: SyntheticConfig) -> _Plan:
    image_dir = root / "images" / "train2017"
    image_dir.mkdir(parents=True, exist_ok=True)
    tasks = [_task(config, "coco", "coco", i, 1, image_dir / f"{i + 1:012d}.jpg") for i in range(config.coco_images)]

    def finish(results: list[dict]) -> dict:
        width, height = config.image_size
        images, annotations = [], []
        for index, result in enumerate(results):
            image_id = index + 1
            images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": width, "height": height})
            for class_name, box, area, iscrowd in result["objects"]:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": CLASS_NAMES.index(class_name) + 1, "bbox": list(box),
                                    "area": area, "iscrowd": int(iscrowd), "segmentation": []})
        categories = [{"id": i + 1, "name": name, "supercategory": name.split("_")[1]}
                      for i, name in enumerate(CLASS_NAMES)]
        content = {"info": {"description": "FARTrack synthetic COCO-style images", "version": str(GENERATOR_VERSION)},
                   "licenses": [], "images": images, "annotations": annotations, "categories": categories}
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / "instances_train2017.json").write_text(json.dumps(content), encoding="utf-8")
        crowd = sum(a["iscrowd"] for a in annotations)
        return {"images": len(images), "annotations": len(annotations) - crowd, "crowd_annotations": crowd,
                "frames": len(images)}

    return _Plan(tasks, finish)


_PLANNERS: dict[str, Callable[[Path, SyntheticConfig], _Plan]] = {
    "got10k": _plan_got10k, "lasot": _plan_lasot, "trackingnet": _plan_trackingnet, "coco": _plan_coco}


# ------------------------------------------------------------------------------------------------ manifest
def read_manifest(data_dir: Union[str, os.PathLike]) -> dict:
    """The manifest of ``data_dir`` (``{"datasets": {}}`` when there is none)."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return {"generator": __name__, "datasets": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest.get("datasets"), dict):
            raise ValueError("no 'datasets' object")
    except ValueError as err:
        raise SyntheticDataError(f"{path} is not a manifest of synthetic data ({err}); move it away") from err
    return manifest


def _write_manifest(data_dir: Path, manifest: dict) -> None:
    staging = data_dir / f".{MANIFEST}.tmp"
    staging.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, data_dir / MANIFEST)


def write_synthetic_data(data_dir: Union[str, os.PathLike], config: Optional[SyntheticConfig] = None, *,
                         datasets: Iterable[str] = DATASETS, force: bool = False, progress: bool = True,
                         **overrides: object) -> dict:
    """Generate the ``datasets`` under ``data_dir`` (see the module docstring) and return a summary.

    ``config`` (default :class:`SyntheticConfig`) with its fields replaced by ``overrides`` (e.g. ``seed=1``,
    ``got10k_train=5``) says what to generate. Rendering runs in this process: it is CPU-bound, and on the 2-vCPU
    reference machine two worker processes were no faster than one (~850 frames/s either way). The summary:
    ``data_dir``, ``seconds``, ``frames`` (rendered now), ``frames_per_second`` and per
    dataset ``{"path", "skipped", **counts}``.
    """
    try:
        config = replace(config or SyntheticConfig(), **overrides)
    except (TypeError, ValueError) as err:
        raise SyntheticDataError(f"invalid generation parameters: {err}") from err
    datasets = list(dict.fromkeys(datasets))
    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise SyntheticDataError(f"unknown datasets {unknown}; choose from {', '.join(DATASETS)}")
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(data_dir)
    recorded = manifest["datasets"]

    started = time.perf_counter()
    summary: dict = {"data_dir": str(data_dir), "datasets": {}}
    todo = {}
    for name in datasets:
        target = data_dir / name
        params = json.loads(json.dumps(config.params(name)))  # as the manifest holds it (tuples become lists)
        if not force and target.is_dir() and recorded.get(name, {}).get("params") == params:
            summary["datasets"][name] = {"path": str(target), "skipped": True, **recorded[name]["summary"]}
            continue
        if target.exists() and name not in recorded:
            raise SyntheticDataError(f"{target} exists but {data_dir / MANIFEST} does not list it as synthetic data: "
                                     "it is left untouched; move it away or choose another data_dir")
        todo[name] = params
    frames = 0
    if todo:
        logger.info("generating %s in %s", ", ".join(todo), data_dir)
        staging = Path(tempfile.mkdtemp(prefix=".synthetic-staging-", dir=data_dir))
        try:
            plans = {name: _PLANNERS[name](staging / name, config) for name in todo}
            with tqdm(total=sum(len(plan.tasks) for plan in plans.values()), desc="synthetic data", unit="seq",
                      disable=not progress) as bar:
                for name, plan in plans.items():
                    results = []
                    for task in plan.tasks:
                        results.append(_run_task(task))
                        bar.update()
                    dataset_summary = plan.finish(results)
                    frames += dataset_summary["frames"]
                    target = data_dir / name
                    if target.exists():  # listed in the manifest: ours to replace
                        target.rename(staging / f"{name}.old")
                    (staging / name).rename(target)
                    recorded[name] = {"params": todo[name], "summary": dataset_summary}
                    _write_manifest(data_dir, manifest)
                    summary["datasets"][name] = {"path": str(target), "skipped": False, **dataset_summary}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    summary.update(seconds=seconds, frames=frames, frames_per_second=frames / seconds if frames else 0.0)
    return summary


def hidden_ground_truth(data_dir: Union[str, os.PathLike], dataset: str, sequence: str) -> Path:
    """The full ground truth of a test sequence whose public annotation holds the first frame only:
    ``dataset`` is ``"got10k_test"`` (a folder with ``groundtruth.txt`` and the labels) or ``"trackingnet"`` (the
    annotation file)."""
    if dataset == "got10k_test":
        return Path(data_dir) / "got10k" / GOT10K_HIDDEN / sequence
    if dataset == "trackingnet":
        return Path(data_dir) / "trackingnet" / TRACKINGNET_HIDDEN / "anno" / f"{sequence}.txt"
    raise SyntheticDataError(f"no hidden ground truth for {dataset!r}: use 'got10k_test' or 'trackingnet'")


#: Appended to "dataset not found" errors: how to get data when none is configured.
NO_DATA_HINT = ("no data there? `python tracking/generate_synthetic.py` writes the built-in synthetic datasets into "
                "./data, the default data folder (or run `make quickstart`)")


def builtin_data_notice(root: Union[str, os.PathLike]) -> Optional[str]:
    """A message when ``root`` (a dataset folder) holds the built-in synthetic data, else None.

    The data folder is recognised by its manifest, one or two levels above ``root`` (``<data>/lasot``,
    ``<data>/got10k/val``).
    """
    path = Path(root).resolve()
    for data_dir in (path.parent, path.parent.parent):
        manifest_path = data_dir / MANIFEST
        if not manifest_path.is_file():
            continue
        try:
            manifest = read_manifest(data_dir)
        except SyntheticDataError:
            return None
        top = path.relative_to(data_dir).parts[0]
        if top in manifest["datasets"]:
            seed = manifest["datasets"][top].get("params", {}).get("seed")
            return (f"{path} holds the built-in synthetic data (seed {seed}, tracking/generate_synthetic.py); point "
                    "FARTRACK_DATA_DIR or the dataset's path setting at real data to use it instead")
    return None
