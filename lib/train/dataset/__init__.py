"""Training datasets by their official config names (``DATA.TRAIN.DATASETS_NAME``), read from folders or LMDBs.

``build_dataset(name, settings)`` reads the folders of :func:`~lib.train.admin.environment.train_env_settings`;
with ``use_lmdb=True`` the same names read LMDBs instead. LMDB layout: **one LMDB per dataset folder, mirroring
exactly that folder** (keys are the files' paths relative to it), built by ``tracking/build_lmdb.py <target>``:

===============  ==========================  ==========================================================
target           source folder               LMDB (a folder holding ``data.mdb``)
===============  ==========================  ==========================================================
``lasot``        ``lasot_dir``               ``lasot_lmdb_dir``
``got10k``       ``got10k_dir`` (train)      ``<got10k_lmdb_dir>/train``
``got10k_val``   ``got10k_val_dir``          ``<got10k_lmdb_dir>/val``
``trackingnet``  ``trackingnet_dir``         ``trackingnet_lmdb_dir`` (the ``TRAIN_*`` chunks only)
``coco``         ``coco_dir``                ``coco_lmdb_dir`` (``instances_train2017.json`` and train images)
===============  ==========================  ==========================================================

So with the default paths ``data/got10k/train`` becomes ``data/got10k_lmdb/train``, and every dataset class reads
an LMDB with the same relative paths as its folder.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from lib.synthetic.writers import builtin_data_notice
from lib.train.admin.environment import TrainEnvSettings
from lib.train.dataset.base import ImageReadError, SequenceInfo, TrackingDataset, TrainDatasetError
from lib.train.dataset.coco import MSCOCOSeq
from lib.train.dataset.common import StoreDataset
from lib.train.dataset.got10k import Got10k
from lib.train.dataset.lasot import Lasot
from lib.train.dataset.storage import DirectoryStore, FileStore, LmdbStore
from lib.train.dataset.trackingnet import TrackingNet

logger = logging.getLogger(__name__)

__all__ = ["DATASET_NAMES", "LMDB_TARGETS", "Got10k", "ImageReadError", "Lasot", "MSCOCOSeq", "SequenceInfo",
           "StoreDataset", "TrackingDataset", "TrackingNet", "TrainDatasetError", "build_dataset", "lmdb_paths",
           "source_dataset"]

#: Config name -> (LMDB target whose folder it reads, GOT-10k split).
_GOT10K_NAMES = {
    "GOT10K_vottrain": ("got10k", "vottrain"),
    "GOT10K_votval": ("got10k", "votval"),
    "GOT10K_train": ("got10k", "train"),
    "GOT10K_val": ("got10k", "val"),
    "GOT10K_train_full": ("got10k", "train_full"),
    "GOT10K_official_val": ("got10k_val", None),
    "GOT10K_all": ("got10k", None),
}
DATASET_NAMES = ("LASOT", *_GOT10K_NAMES, "COCO17", "TRACKINGNET")
LMDB_TARGETS = ("lasot", "got10k", "got10k_val", "trackingnet", "coco")


def lmdb_paths(settings: TrainEnvSettings) -> dict[str, tuple[Path, Path]]:
    """``(source folder, LMDB path)`` of every LMDB target (see the module docstring)."""
    return {
        "lasot": (settings.lasot_dir, settings.lasot_lmdb_dir),
        "got10k": (settings.got10k_dir, settings.got10k_lmdb_dir / "train"),
        "got10k_val": (settings.got10k_val_dir, settings.got10k_lmdb_dir / "val"),
        "trackingnet": (settings.trackingnet_dir, settings.trackingnet_lmdb_dir),
        "coco": (settings.coco_dir, settings.coco_lmdb_dir),
    }


def source_dataset(target: str, root: FileStore | str | os.PathLike) -> StoreDataset:
    """The dataset reading everything of an LMDB target's tree (checks its layout before an LMDB is built)."""
    if target == "lasot":
        return Lasot(root, split=None)
    if target in ("got10k", "got10k_val"):
        return Got10k(root, split=None)
    if target == "trackingnet":
        return TrackingNet(root)
    if target == "coco":
        return MSCOCOSeq(root)
    raise TrainDatasetError(f"unknown LMDB target {target!r}; choose from {', '.join(LMDB_TARGETS)}")


def build_dataset(name: str, settings: TrainEnvSettings, *, use_lmdb: bool = False,
                  data_specs_dir: str | os.PathLike | None = None) -> TrackingDataset:
    """The training dataset of config name ``name`` (one of :data:`DATASET_NAMES`).

    ``use_lmdb`` reads the LMDB built from the dataset's folder; ``data_specs_dir`` replaces
    ``lib/train/data_specs`` as the source of the split files.
    """
    paths = lmdb_paths(settings)

    def store(target: str) -> FileStore:
        folder, lmdb_path = paths[target]
        if use_lmdb:
            return LmdbStore(lmdb_path)
        notice = builtin_data_notice(folder)
        if notice:
            logger.info("%s: %s", name, notice)
        return DirectoryStore(folder)

    if name == "LASOT":
        return Lasot(store("lasot"), split="train", data_specs_dir=data_specs_dir)
    if name in _GOT10K_NAMES:
        target, split = _GOT10K_NAMES[name]
        return Got10k(store(target), split=split, data_specs_dir=data_specs_dir)
    if name == "COCO17":
        return MSCOCOSeq(store("coco"))
    if name == "TRACKINGNET":
        return TrackingNet(store("trackingnet"))
    raise TrainDatasetError(f"unknown training dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
