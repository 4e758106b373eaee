"""LaSOT training set (pytracking ``Lasot``): one folder per sequence, grouped by class.

``split="train"`` is the official list ``lasot_train_split.txt`` (1120 sequences, in file order); ``split=None``
takes every ``<class>/<class>-<k>/groundtruth.txt`` present, sorted by name. Listed sequences missing on disk are
skipped with a warning; a split with none present is an error.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from lib.train.admin.environment import DATA_SPECS_DIR
from lib.train.dataset.storage import FileStore
from lib.train.dataset.base import SequenceInfo
from lib.train.dataset.common import StoreDataset, box_validity, parse_boxes, parse_ints, read_split_file

logger = logging.getLogger(__name__)

SPLIT_FILES = {"train": "lasot_train_split.txt"}


class Lasot(StoreDataset):
    """LaSOT sequences of ``split`` read from a folder or LMDB ``root``."""

    LAYOUT = """\
<root>/
  <class>/                      e.g. airplane/
    <class>-<k>/                e.g. airplane-10/
      img/00000001.jpg ...      one frame per ground-truth row, 1-based
      groundtruth.txt           x,y,w,h per frame, comma separated
      full_occlusion.txt        one line of comma-separated 0/1, one per frame
      out_of_view.txt           one line of comma-separated 0/1, one per frame"""
    DIR_KEYS = ("lasot_dir",)
    LMDB_KEYS = ("lasot_lmdb_dir",)
    LMDB_TARGETS = ("lasot",)

    def __init__(self, root: FileStore | str | os.PathLike, split: str | None = "train",
                 data_specs_dir: str | os.PathLike | None = None) -> None:
        self.name = "LaSOT" if split is None else f"LaSOT({split})"
        super().__init__(root)
        if split is None:
            self.sequences = self._present_sequences()
            if not self.sequences:
                raise self.layout_error("no <class>/<class>-<k>/groundtruth.txt found")
            return
        if split not in SPLIT_FILES:
            raise self.layout_error(f"unknown split {split!r}; choose from {', '.join(SPLIT_FILES)} or None")
        split_file = Path(data_specs_dir or DATA_SPECS_DIR) / SPLIT_FILES[split]
        listed = read_split_file(split_file)
        present = {name for name in listed if self.store.exists(f"{_folder(name)}/groundtruth.txt")}
        self.sequences = [name for name in listed if name in present]
        missing = [name for name in listed if name not in present]
        if not self.sequences:
            raise self.layout_error(f"none of the {len(listed)} sequences of {split_file.name} is present "
                                    f"(e.g. no {self.store.locate(_folder(listed[0]) + '/groundtruth.txt')})")
        if missing:
            logger.warning("%s: %d of the %d sequences of %s are missing in %s (e.g. %s); using the %d present",
                           self.name, len(missing), len(listed), split_file.name, self.store.describe(),
                           ", ".join(missing[:5]), len(self.sequences))

    def _present_sequences(self) -> list[str]:
        names = []
        for object_class in self.store.list_dir(""):
            try:
                children = self.store.list_dir(object_class)
            except FileNotFoundError:  # a file, not a class folder
                continue
            names += [name for name in children if name.startswith(object_class + "-")
                      and self.store.exists(f"{object_class}/{name}/groundtruth.txt")]
        return sorted(names)

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence_name(self, seq_id: int) -> str:
        return self.sequences[seq_id]

    def _read_info(self, seq_id: int) -> SequenceInfo:
        folder = _folder(self.sequences[seq_id])
        boxes = parse_boxes(self.read_text(f"{folder}/groundtruth.txt"), self.store.locate(f"{folder}/groundtruth.txt"))
        hidden = np.zeros(len(boxes), dtype=bool)
        for file_name in ("full_occlusion.txt", "out_of_view.txt"):
            rel = f"{folder}/{file_name}"
            flags = parse_ints(self.read_text(rel), self.store.locate(rel))
            if len(flags) != len(boxes):
                raise self.layout_error(f"{self.store.locate(rel)}: {len(flags)} flags for {len(boxes)} "
                                        "ground-truth rows")
            hidden |= flags != 0
        valid = box_validity(boxes)
        return SequenceInfo(boxes, valid, valid & ~hidden)

    def _frame_path(self, seq_id: int, frame_id: int) -> str:
        return f"{_folder(self.sequences[seq_id])}/img/{frame_id + 1:08d}.jpg"


def _folder(name: str) -> str:
    """``airplane-10`` -> ``airplane/airplane-10``."""
    return f"{name.rsplit('-', 1)[0]}/{name}"
