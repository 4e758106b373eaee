"""TrackingNet training set (pytracking ``TrackingNet``): chunks ``TRAIN_0`` .. ``TRAIN_11``.

The sequences are the ``anno/*.txt`` files of every used chunk, sorted by name within a chunk, chunks in
``set_ids`` order (pytracking lists them unsorted; sorting makes per-index sampling reproducible). Absent chunks are
skipped with a warning; none present is an error.
"""
from __future__ import annotations

import logging
import os
from typing import Iterable

from lib.train.dataset.storage import FileStore
from lib.train.dataset.base import SequenceInfo
from lib.train.dataset.common import StoreDataset, box_validity, parse_boxes

logger = logging.getLogger(__name__)

ALL_SET_IDS = tuple(range(12))


class TrackingNet(StoreDataset):
    """TrackingNet sequences of the chunks ``set_ids`` read from a folder or LMDB ``root``."""

    LAYOUT = """\
<root>/
  TRAIN_0/ ... TRAIN_11/        chunks; absent ones are skipped with a warning
    anno/<sequence>.txt         x,y,w,h per frame, comma separated
    frames/<sequence>/0.jpg 1.jpg ...   0-based, no zero padding"""
    DIR_KEYS = ("trackingnet_dir",)
    LMDB_KEYS = ("trackingnet_lmdb_dir",)
    LMDB_TARGETS = ("trackingnet",)

    def __init__(self, root: FileStore | str | os.PathLike, set_ids: Iterable[int] = ALL_SET_IDS) -> None:
        self.name = "TrackingNet"
        super().__init__(root)
        wanted = [f"TRAIN_{set_id}" for set_id in set_ids]
        if not wanted:
            raise self.layout_error("no chunk selected (empty set_ids)")
        self.chunks = [chunk for chunk in wanted if self.store.exists(f"{chunk}/anno")]
        if not self.chunks:
            raise self.layout_error(f"none of the chunks {', '.join(wanted)} has an anno/ folder")
        absent = [chunk for chunk in wanted if chunk not in self.chunks]
        if absent:
            logger.warning("%s: chunks %s are absent in %s; using %s", self.name, ", ".join(absent),
                           self.store.describe(), ", ".join(self.chunks))
        #: (chunk folder, sequence name) per sequence.
        self.sequences = [(chunk, file_name[:-4]) for chunk in self.chunks
                          for file_name in self.store.list_dir(f"{chunk}/anno") if file_name.endswith(".txt")]
        if not self.sequences:
            raise self.layout_error(f"no anno/<sequence>.txt file in {', '.join(self.chunks)}")

    def lmdb_include(self) -> list[str]:
        return list(self.chunks)  # not TEST/ nor other chunks that may share the folder

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence_name(self, seq_id: int) -> str:
        chunk, name = self.sequences[seq_id]
        return f"{chunk}/{name}"

    def _read_info(self, seq_id: int) -> SequenceInfo:
        chunk, name = self.sequences[seq_id]
        rel = f"{chunk}/anno/{name}.txt"
        boxes = parse_boxes(self.read_text(rel), self.store.locate(rel))
        valid = box_validity(boxes)
        return SequenceInfo(boxes, valid, valid.copy())

    def _frame_path(self, seq_id: int, frame_id: int) -> str:
        chunk, name = self.sequences[seq_id]
        return f"{chunk}/frames/{name}/{frame_id}.jpg"
