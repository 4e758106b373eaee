"""What the store-backed training datasets share: annotation parsing, layout errors, cached sequence info, images.

A :class:`StoreDataset` reads everything through a :class:`~lib.train.dataset.storage.FileStore`, so one class
serves both the folder and the LMDB built from it. Annotations are read on first use of a sequence and kept in a
bounded per-process LRU cache (a whole TrackingNet would otherwise hold ~0.5 GB of boxes in every DataLoader
worker); the cache is not pickled.
"""
from __future__ import annotations

import os
from abc import abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from lib.train.dataset.image_io import decode_image
from lib.synthetic.writers import NO_DATA_HINT
from lib.train.dataset.storage import FileStore, LmdbStore, as_store
from lib.train.dataset.base import ImageReadError, SequenceInfo, TrackingDataset, TrainDatasetError
from lib.utils.local_paths import ENV_PREFIX


def parse_boxes(text: str, source: str) -> np.ndarray:
    """``x, y, w, h`` rows separated by commas, tabs or spaces as a float64 ``(N, 4)`` array (NaN rows kept)."""
    rows = [line.replace(",", " ").split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise TrainDatasetError(f"{source}: the ground-truth file is empty")
    for number, row in enumerate(rows, start=1):
        if len(row) != 4:
            raise TrainDatasetError(f"{source}: expected 4 values (x, y, w, h) per row, row {number} has {len(row)}")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError as err:
        raise TrainDatasetError(f"{source}: unreadable ground truth ({err})") from err


def parse_ints(text: str, source: str) -> np.ndarray:
    """Integers separated by commas or whitespace (LaSOT flags, GOT-10k labels) as an int64 array."""
    try:
        return np.array([int(token) for token in text.replace(",", " ").split()], dtype=np.int64)
    except ValueError as err:
        raise TrainDatasetError(f"{source}: expected comma- or line-separated integers ({err})") from err


def read_split_file(path: Path) -> list[str]:
    """The whitespace-separated entries of an official split list (names or indices)."""
    try:
        entries = path.read_text(encoding="utf-8").split()
    except OSError as err:
        raise TrainDatasetError(f"cannot read the split file {path}: {err.strerror or err}") from err
    if not entries:
        raise TrainDatasetError(f"the split file {path} is empty")
    return entries


def box_validity(boxes: np.ndarray, min_size: float = 0.0) -> np.ndarray:
    """``w > min_size and h > min_size`` per row (False for NaN rows)."""
    return (boxes[:, 2] > min_size) & (boxes[:, 3] > min_size)


def _key_help(key: str) -> str:
    return f"{ENV_PREFIX}{key.upper()} or `{key}` in lib/train/admin/local.py"


class StoreDataset(TrackingDataset):
    """A training dataset read from a folder or an LMDB; subclasses list sequences and parse annotations.

    Subclasses implement :meth:`_read_info` and :meth:`_frame_path`; image datasets also override :meth:`frames`.
    """

    #: The expected layout, a short tree sketch shown in errors.
    LAYOUT: ClassVar[str] = ""
    #: Settings keys of the dataset folder(s) and of its LMDB(s), and the ``tracking/build_lmdb.py`` targets.
    DIR_KEYS: ClassVar[tuple[str, ...]] = ()
    LMDB_KEYS: ClassVar[tuple[str, ...]] = ()
    LMDB_TARGETS: ClassVar[tuple[str, ...]] = ()
    #: Where the LMDB lies relative to the LMDB setting, when not at it.
    LMDB_NOTE: ClassVar[str] = ""
    #: Sequences whose annotations stay cached per process.
    info_cache_size: ClassVar[int] = 4096

    def __init__(self, root: FileStore | str | os.PathLike) -> None:
        self.store = as_store(root)
        self._info_cache: OrderedDict[int, SequenceInfo] = OrderedDict()
        if not self.store.exists(""):
            raise self.layout_error(f"{self.store.describe()} does not exist")

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_info_cache": OrderedDict()}

    def lmdb_include(self) -> list[str] | None:
        """What an LMDB of this dataset must hold: relative files / folders of the root, None for everything."""
        return None

    # ------------------------------------------------------------------------------------------------- errors
    def layout_error(self, problem: str) -> TrainDatasetError:
        """An error naming the dataset, the problem, the expected layout and how to set the path."""
        if isinstance(self.store, LmdbStore):
            keys = " / ".join(_key_help(key) for key in self.LMDB_KEYS)
            targets = " / ".join(f"`python tracking/build_lmdb.py {target}`" for target in self.LMDB_TARGETS)
            where = f"set the LMDB path with {keys}{self.LMDB_NOTE}; build it with {targets}"
        else:
            keys = " / ".join(_key_help(key) for key in self.DIR_KEYS)
            where = f"set the path with {keys}; {ENV_PREFIX}DATA_DIR moves every dataset\n{NO_DATA_HINT}"
        return TrainDatasetError(f"{self.name}: {problem}\nexpected layout of {self.name} "
                                 f"({self.store.describe()}):\n{self.LAYOUT}\n{where}")

    # ------------------------------------------------------------------------------------------------ reading
    def read_text(self, rel: str) -> str:
        """A required annotation / list file; its absence is a layout error."""
        try:
            return self.store.read_text(rel)
        except FileNotFoundError as err:
            raise self.layout_error(f"missing {self.store.locate(rel)}") from err

    def read_optional_text(self, rel: str) -> str | None:
        """An optional annotation file, None when absent."""
        try:
            return self.store.read_text(rel)
        except FileNotFoundError:
            return None

    def read_image(self, rel: str) -> np.ndarray:
        """Image ``rel`` as ``(H, W, 3)`` uint8 RGB; :class:`ImageReadError` naming it when unreadable."""
        source = self.store.locate(rel)
        try:
            data = self.store.read_bytes(rel)
        except OSError as err:
            raise ImageReadError(f"cannot read image {source}: {err.strerror or err}") from err
        return decode_image(data, source)

    # --------------------------------------------------------------------------------------------- interface
    def sequence_info(self, seq_id: int) -> SequenceInfo:
        info = self._info_cache.get(seq_id)
        if info is None:
            info = self._read_info(seq_id)
            self._info_cache[seq_id] = info
            if len(self._info_cache) > self.info_cache_size:
                self._info_cache.popitem(last=False)
        else:
            self._info_cache.move_to_end(seq_id)
        return info

    def frames(self, seq_id: int, frame_ids: Sequence[int], info: SequenceInfo | None = None
               ) -> tuple[list[np.ndarray], np.ndarray]:
        info = self.sequence_info(seq_id) if info is None else info
        ids = np.asarray(frame_ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(info)):
            raise IndexError(f"{self.name} {self.sequence_name(seq_id)}: frame ids {ids.tolist()} outside "
                             f"0..{len(info) - 1}")
        images = [self.read_image(self._frame_path(seq_id, int(frame_id))) for frame_id in ids]
        return images, info.bbox[ids]

    @abstractmethod
    def _read_info(self, seq_id: int) -> SequenceInfo:
        """Parse the annotations of sequence ``seq_id``."""

    @abstractmethod
    def _frame_path(self, seq_id: int, frame_id: int) -> str:
        """The store path of the image of frame ``frame_id`` (0-based) of sequence ``seq_id``."""
