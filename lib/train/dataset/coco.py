"""COCO 2017 train as one-frame sequences (pytracking ``MSCOCOSeq``), without pycocotools.

Every annotation of ``instances_train2017.json`` with ``iscrowd == 0`` is one sequence, ordered by annotation id.
Its box is the annotation's ``x, y, w, h``; valid = visible = w > 50 and h > 50 (samplers do not filter image
datasets by it). The JSON is parsed once at construction, and only the annotation ids, boxes and image file names
are kept: segmentations are dropped while parsing, which keeps the peak memory well below a full load.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from lib.train.dataset.storage import FileStore
from lib.train.dataset.base import SequenceInfo
from lib.train.dataset.common import StoreDataset, box_validity

ANNOTATION_FILE = "annotations/instances_train2017.json"
#: Image folders tried in order: pytracking's layout, then the layout of the official zip files.
IMAGE_DIRS = ("images/train2017", "train2017")
MIN_VALID_SIZE = 50.0


def _compact(obj: dict[str, Any]) -> Any:
    """``json`` object hook: annotations become ``(id, image_id, iscrowd, bbox)``, images ``(id, file_name)``."""
    if "bbox" in obj and "image_id" in obj:
        return obj.get("id"), obj["image_id"], obj.get("iscrowd", 0), obj["bbox"]
    if "file_name" in obj and "id" in obj:
        return obj["id"], obj["file_name"]
    return obj


class MSCOCOSeq(StoreDataset):
    """Non-crowd COCO 2017 train instances read from a folder or LMDB ``root``."""

    is_video = False
    LAYOUT = f"""\
<root>/
  {ANNOTATION_FILE}
  {IMAGE_DIRS[0]}/000000000009.jpg ...   (or {IMAGE_DIRS[1]}/ directly under <root>)"""
    DIR_KEYS = ("coco_dir",)
    LMDB_KEYS = ("coco_lmdb_dir",)
    LMDB_TARGETS = ("coco",)

    def __init__(self, root: FileStore | str | os.PathLike) -> None:
        self.name = "COCO2017"
        super().__init__(root)
        self.image_dir = next((folder for folder in IMAGE_DIRS if self.store.exists(folder)), None)
        if self.image_dir is None:
            raise self.layout_error(f"no image folder {' or '.join(IMAGE_DIRS)}")
        source = self.store.locate(ANNOTATION_FILE)
        try:
            data = self.store.read_bytes(ANNOTATION_FILE)
        except FileNotFoundError as err:
            raise self.layout_error(f"missing {source}") from err
        try:
            content = json.loads(data, object_hook=_compact)
            del data
            images, annotations = content["images"], content["annotations"]
            image_index = {image_id: index for index, (image_id, _) in enumerate(images)}
            instances = sorted(((ann_id, image_index[image_id], bbox)
                                for ann_id, image_id, iscrowd, bbox in annotations if not iscrowd),
                               key=lambda instance: instance[0])
            #: Image file names; ``_image_of[seq_id]`` indexes them.
            self.file_names = [file_name for _, file_name in images]
            self.annotation_ids = np.array([ann_id for ann_id, _, _ in instances], dtype=np.int64)
            self._image_of = np.array([index for _, index, _ in instances], dtype=np.int64)
            self._boxes = np.array([bbox for _, _, bbox in instances], dtype=np.float64).reshape(-1, 4)
        except (ValueError, TypeError, KeyError) as err:
            raise self.layout_error(f"{source} is not a COCO instances file ({type(err).__name__}: {err})") from err
        if not len(self.annotation_ids):
            raise self.layout_error(f"{source} has no non-crowd annotation")

    def lmdb_include(self) -> list[str]:
        return [ANNOTATION_FILE, self.image_dir]  # not val2017/ nor the other annotation files

    def __len__(self) -> int:
        return len(self.annotation_ids)

    def sequence_name(self, seq_id: int) -> str:
        return f"{self.file_names[self._image_of[seq_id]]}:{self.annotation_ids[seq_id]}"

    def _read_info(self, seq_id: int) -> SequenceInfo:
        boxes = self._boxes[[seq_id]]  # (1, 4), a copy
        valid = box_validity(boxes, MIN_VALID_SIZE)
        return SequenceInfo(boxes, valid, valid.copy())

    def _frame_path(self, seq_id: int, frame_id: int) -> str:
        return f"{self.image_dir}/{self.file_names[self._image_of[seq_id]]}"

    def frames(self, seq_id: int, frame_ids: Sequence[int], info: SequenceInfo | None = None
               ) -> tuple[list[np.ndarray], np.ndarray]:
        """The image and box of the instance once per requested id (the ids themselves are ignored).

        The image list holds the *same* array ``len(frame_ids)`` times: callers copy before modifying it.
        """
        info = self.sequence_info(seq_id) if info is None else info
        image = self.read_image(self._frame_path(seq_id, 0))
        return [image] * len(frame_ids), np.repeat(info.bbox, len(frame_ids), axis=0)
