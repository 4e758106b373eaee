"""Where the benchmarks, checkpoints and results live at test time.

Each call of :func:`env_settings` builds a fresh :class:`EnvSettings` from three layers, highest precedence first:

1. environment variables ``FARTRACK_<KEY>`` (see :data:`ENV_VARS`), e.g. ``FARTRACK_SAVE_DIR``,
   ``FARTRACK_DATA_DIR``, ``FARTRACK_LASOT_PATH``, ``FARTRACK_GOT10K_PATH``;
2. the generated local file ``lib/test/evaluation/local.py`` (plain string assignments, never executed; see
   :mod:`lib.utils.local_paths`), or the file named by ``FARTRACK_TEST_LOCAL_FILE``;
3. defaults relative to the repository root: ``./`` (workspace), ``./data/<name>``, ``./output``.

Setting a base (``FARTRACK_DATA_DIR`` / ``FARTRACK_SAVE_DIR``) moves every path derived from it unless a layer at
least as high names that path explicitly. Dataset roots under ``<data_dir>``: ``otb nfs uav lasot
lasot_extension_subset got10k trackingnet tnl2k coco``. The official LaSOT_ext folder name varies (``LaSOT_ext``,
``LaSOT_extension_subset``); here the default folder is ``lasot_extension_subset`` — point
``FARTRACK_LASOT_EXTENSION_SUBSET_PATH`` (or ``lasot_extension_subset_path`` in the local file) elsewhere if needed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping, Optional

from lib.utils.local_paths import ENV_PREFIX, REPO_ROOT, Derived, read_local_file, resolve_paths
from lib.utils.run_layout import RESULTS_SUBDIR

LOCAL_FILE = REPO_ROOT / "lib" / "test" / "evaluation" / "local.py"
LOCAL_FILE_ENV = "FARTRACK_TEST_LOCAL_FILE"

BASES = {"workspace_dir": REPO_ROOT, "data_dir": REPO_ROOT / "data", "save_dir": REPO_ROOT / "output"}
DATASET_FOLDERS = {
    "otb_path": "otb",
    "nfs_path": "nfs",
    "uav_path": "uav",
    "lasot_path": "lasot",
    "lasot_extension_subset_path": "lasot_extension_subset",
    "got10k_path": "got10k",
    "trackingnet_path": "trackingnet",
    "tnl2k_path": "tnl2k",
    "coco_path": "coco",
}
KEYS = {
    "results_path": Derived("save_dir", RESULTS_SUBDIR),
    "result_plot_path": Derived("save_dir", "test/result_plots"),
    "network_path": Derived("save_dir", "."),
    **{key: Derived("data_dir", folder) for key, folder in DATASET_FOLDERS.items()},
}
#: Every environment variable that :func:`env_settings` reads (besides ``FARTRACK_TEST_LOCAL_FILE``).
ENV_VARS = tuple(ENV_PREFIX + name.upper() for name in (*BASES, *KEYS))


@dataclass
class EnvSettings:
    """Absolute test-time paths. ``network_path`` is ``save_dir``, under which the checkpoints are found as
    ``checkpoints/train/<script>/<config>/<NetClass>_ep%04d.pth.tar``."""

    workspace_dir: Path
    data_dir: Path
    save_dir: Path
    results_path: Path
    result_plot_path: Path
    network_path: Path
    otb_path: Path
    nfs_path: Path
    uav_path: Path
    lasot_path: Path
    lasot_extension_subset_path: Path
    got10k_path: Path
    trackingnet_path: Path
    tnl2k_path: Path
    coco_path: Path


def local_file_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The test local file: ``$FARTRACK_TEST_LOCAL_FILE`` if set, else ``lib/test/evaluation/local.py``."""
    override = (os.environ if environ is None else environ).get(LOCAL_FILE_ENV)
    return Path(override).expanduser().resolve() if override else LOCAL_FILE


def env_settings(environ: Optional[Mapping[str, str]] = None) -> EnvSettings:
    """A fresh :class:`EnvSettings` from the environment variables (``environ``, default ``os.environ``), the
    local file and the defaults."""
    resolved = resolve_paths(KEYS, BASES, read_local_file(local_file_path(environ)), environ)
    return EnvSettings(**{field.name: resolved[field.name] for field in fields(EnvSettings)})


def default_local_values(workspace_dir: Path, data_dir: Path, save_dir: Path) -> dict[str, Path]:
    """What ``create_default_local_file.py`` writes: the bases and every path derived from them."""
    bases = {"workspace_dir": workspace_dir, "data_dir": data_dir, "save_dir": save_dir}
    return {**bases, **{key: bases[rule.base] / rule.relative for key, rule in KEYS.items()}}
