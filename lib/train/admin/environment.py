"""Where the training data, pretrained weights and logs live.

Each call of :func:`train_env_settings` builds a fresh :class:`TrainEnvSettings` from three layers, highest
precedence first: environment variables ``FARTRACK_<KEY>`` (see :data:`ENV_VARS`, e.g. ``FARTRACK_DATA_DIR``,
``FARTRACK_LASOT_DIR``, ``FARTRACK_GOT10K_DIR``), the generated plain-data local file ``lib/train/admin/local.py``
(or the file named by ``FARTRACK_TRAIN_LOCAL_FILE``; never executed, see :mod:`lib.utils.local_paths`), and
defaults relative to the repository root. The official default layout is kept: ``got10k_dir`` is
``<data_dir>/got10k/train`` and ``got10k_val_dir`` is ``<data_dir>/got10k/val``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from lib.utils.local_paths import ENV_PREFIX, REPO_ROOT, Derived, read_local_file, resolve_paths

LOCAL_FILE = REPO_ROOT / "lib" / "train" / "admin" / "local.py"
LOCAL_FILE_ENV = "FARTRACK_TRAIN_LOCAL_FILE"
#: Official training split lists (``got10k_val_split.txt`` ...), shipped with the package.
DATA_SPECS_DIR = REPO_ROOT / "lib" / "train" / "data_specs"

BASES = {"workspace_dir": REPO_ROOT, "data_dir": REPO_ROOT / "data"}
KEYS = {
    "tensorboard_dir": Derived("workspace_dir", "tensorboard"),
    "pretrained_networks": Derived("workspace_dir", "pretrained_networks"),
    "lasot_dir": Derived("data_dir", "lasot"),
    "got10k_dir": Derived("data_dir", "got10k/train"),
    "got10k_val_dir": Derived("data_dir", "got10k/val"),
    "trackingnet_dir": Derived("data_dir", "trackingnet"),
    "coco_dir": Derived("data_dir", "coco"),
    "lasot_lmdb_dir": Derived("data_dir", "lasot_lmdb"),
    "got10k_lmdb_dir": Derived("data_dir", "got10k_lmdb"),
    "trackingnet_lmdb_dir": Derived("data_dir", "trackingnet_lmdb"),
    "coco_lmdb_dir": Derived("data_dir", "coco_lmdb"),
}
#: Every environment variable that :func:`train_env_settings` reads (besides ``FARTRACK_TRAIN_LOCAL_FILE``).
ENV_VARS = tuple(ENV_PREFIX + name.upper() for name in (*BASES, *KEYS))


@dataclass
class TrainEnvSettings:
    """Absolute training paths (official key names)."""

    workspace_dir: Path
    data_dir: Path
    tensorboard_dir: Path
    pretrained_networks: Path
    lasot_dir: Path
    got10k_dir: Path
    got10k_val_dir: Path
    trackingnet_dir: Path
    coco_dir: Path
    lasot_lmdb_dir: Path
    got10k_lmdb_dir: Path
    trackingnet_lmdb_dir: Path
    coco_lmdb_dir: Path


def local_file_path() -> Path:
    """The train local file: ``$FARTRACK_TRAIN_LOCAL_FILE`` if set, else ``lib/train/admin/local.py``."""
    override = os.environ.get(LOCAL_FILE_ENV)
    return Path(override).expanduser().resolve() if override else LOCAL_FILE


def train_env_settings() -> TrainEnvSettings:
    """A fresh :class:`TrainEnvSettings` from the environment variables, the local file and the defaults."""
    resolved = resolve_paths(KEYS, BASES, read_local_file(local_file_path()))
    return TrainEnvSettings(**{field.name: resolved[field.name] for field in fields(TrainEnvSettings)})


def default_local_values(workspace_dir: Path, data_dir: Path) -> dict[str, Path]:
    """What ``create_default_local_file.py`` writes: the bases and every path derived from them."""
    bases = {"workspace_dir": workspace_dir, "data_dir": data_dir}
    return {**bases, **{key: bases[rule.base] / rule.relative for key, rule in KEYS.items()}}
