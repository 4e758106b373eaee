"""GOT-10k training set (pytracking ``Got10k``), or any tree in its layout such as the official ``val`` folder.

The sequences are the lines of ``<root>/list.txt`` in file order (``split=None``), or the lines selected by a split
file of ``lib/train/data_specs``: its entries are 0-based indices into the lines of the complete 9335-sequence
training ``list.txt`` (pytracking convention), taken in split-file order. Sequence folders are not checked at
construction; a missing one surfaces as a :class:`~lib.train.dataset.base.TrainDatasetError` when it is read.
"""
from __future__ import annotations

import os
from pathlib import Path

from lib.train.admin.environment import DATA_SPECS_DIR
from lib.train.dataset.storage import FileStore
from lib.train.dataset.base import SequenceInfo
from lib.train.dataset.common import StoreDataset, box_validity, parse_boxes, parse_ints, read_split_file

SPLIT_FILES = {
    "train": "got10k_train_split.txt",
    "val": "got10k_val_split.txt",
    "train_full": "got10k_train_full_split.txt",
    "vottrain": "got10k_vot_train_split.txt",
    "votval": "got10k_vot_val_split.txt",
}
#: Sequences of the official training list that the split files index.
FULL_TRAIN_SEQUENCES = 9335


class Got10k(StoreDataset):
    """GOT-10k sequences of ``split`` (None: all of ``list.txt``) read from a folder or LMDB ``root``."""

    LAYOUT = """\
<root>/                         the training set folder (got10k/train), or got10k/val for split None
  list.txt                      one sequence folder name per line
  <sequence>/                   e.g. GOT-10k_Train_000001/
    00000001.jpg ...            one frame per ground-truth row, 1-based
    groundtruth.txt             x,y,w,h per frame, comma separated
    absence.label               one 0/1 per line (1 = target absent)       (optional)
    cover.label                 one 0..8 per line (0 = target not visible) (optional)
    meta_info.ini"""
    DIR_KEYS = ("got10k_dir", "got10k_val_dir")
    LMDB_KEYS = ("got10k_lmdb_dir",)
    LMDB_TARGETS = ("got10k", "got10k_val")
    LMDB_NOTE = " -- the training set LMDB is its train/ subfolder, the official val LMDB its val/ subfolder"

    def __init__(self, root: FileStore | str | os.PathLike, split: str | None = None,
                 data_specs_dir: str | os.PathLike | None = None) -> None:
        self.name = "GOT-10k" if split is None else f"GOT-10k({split})"
        super().__init__(root)
        names = [line.strip() for line in self.read_text("list.txt").splitlines() if line.strip()]
        if not names:
            raise self.layout_error(f"{self.store.locate('list.txt')} is empty")
        if split is None:
            self.sequences = names
            return
        if split not in SPLIT_FILES:
            raise self.layout_error(f"unknown split {split!r}; choose from {', '.join(SPLIT_FILES)} or None")
        split_file = Path(data_specs_dir or DATA_SPECS_DIR) / SPLIT_FILES[split]
        try:
            indices = [int(entry) for entry in read_split_file(split_file)]
        except ValueError as err:
            raise self.layout_error(f"{split_file} must hold 0-based line indices ({err})") from err
        out_of_range = [index for index in indices if not 0 <= index < len(names)]
        if out_of_range:
            raise self.layout_error(
                f"{split_file.name} holds 0-based indices into the complete {FULL_TRAIN_SEQUENCES}-sequence GOT-10k "
                f"training list, but {self.store.locate('list.txt')} has {len(names)} lines ({len(out_of_range)} "
                f"indices out of range, e.g. {out_of_range[0]}): point the path at the complete training set, or "
                "read other trees with split=None (dataset name GOT10K_all)")
        self.sequences = [names[index] for index in indices]

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence_name(self, seq_id: int) -> str:
        return self.sequences[seq_id]

    def _read_info(self, seq_id: int) -> SequenceInfo:
        folder = self.sequences[seq_id]
        boxes = parse_boxes(self.read_text(f"{folder}/groundtruth.txt"), self.store.locate(f"{folder}/groundtruth.txt"))
        valid = box_validity(boxes)
        visible = valid.copy()
        # Official rule: visible = not absent and cover > 0; sequences without the label files count as visible.
        for file_name, is_visible in (("absence.label", lambda v: v == 0), ("cover.label", lambda v: v > 0)):
            rel = f"{folder}/{file_name}"
            text = self.read_optional_text(rel)
            if text is None:
                continue
            labels = parse_ints(text, self.store.locate(rel))
            if len(labels) != len(boxes):
                raise self.layout_error(f"{self.store.locate(rel)}: {len(labels)} labels for {len(boxes)} "
                                        "ground-truth rows")
            visible &= is_visible(labels)
        return SequenceInfo(boxes, valid, visible)

    def _frame_path(self, seq_id: int, frame_id: int) -> str:
        return f"{self.sequences[seq_id]}/{frame_id + 1:08d}.jpg"
