"""Where runs live on disk: the one home of the official checkpoint and result layout.

Every reader and writer (trainer, stage chaining, test runner, analysis, quickstart, demo) takes its paths from here:

* checkpoints ``<save_dir>/checkpoints/train/<script>/<config>/<NetClass>_ep%04d.pth.tar``;
* TensorBoard scalars ``<save_dir>/tensorboard/train/<script>/<config>/`` and the log
  ``<save_dir>/logs/<script>-<config>.log``;
* tracking results ``<results_path>/<script>/<label>/[<tag>/]<seq>.txt`` with ``<seq>_time.txt`` (and, for trackers
  with early exits, ``<seq>_exits.txt``) beside it; ``<tag>`` is the dataset tag for GOT-10k and TrackingNet, whose
  results the official runner writes into a sub-folder. ``<label>`` is the config name plus the suffixes of
  :func:`results_label`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

CHECKPOINT_SUFFIX = ".pth.tar"
#: Default ``results_path`` below ``save_dir`` (the official ``<save_dir>/test/tracking_results``).
RESULTS_SUBDIR = "test/tracking_results"
#: Dataset tags whose results the official runner writes into a sub-folder named after the tag.
SUBFOLDER_TAGS = ("got10k", "trackingnet")


def checkpoint_name(net_type: str, epoch: int) -> str:
    """Official file name ``<NetClass>_ep%04d.pth.tar``."""
    return f"{net_type}_ep{epoch:04d}{CHECKPOINT_SUFFIX}"


def stage_checkpoint_root(save_dir: PathLike, script: str) -> Path:
    """``<save_dir>/checkpoints/train/<script>``: one folder per config (run) of the stage below it."""
    return Path(save_dir) / "checkpoints" / "train" / script


def checkpoint_dir(save_dir: PathLike, script: str, config: str) -> Path:
    """``<save_dir>/checkpoints/train/<script>/<config>``, where a run writes its checkpoints."""
    return stage_checkpoint_root(save_dir, script) / config


def checkpoint_path(save_dir: PathLike, script: str, config: str, net_type: str, epoch: int) -> Path:
    """The checkpoint of ``epoch`` of a run: where training writes it and where testing looks (``TEST.EPOCH``)."""
    return checkpoint_dir(save_dir, script, config) / checkpoint_name(net_type, epoch)


def tensorboard_dir(save_dir: PathLike, script: str, config: str) -> Path:
    return Path(save_dir) / "tensorboard" / "train" / script / config


def log_file(save_dir: PathLike, script: str, config: str) -> Path:
    return Path(save_dir) / "logs" / f"{script}-{config}.log"


def list_checkpoints(directory: PathLike, net_type: str) -> list[Path]:
    """Checkpoints of ``net_type`` in ``directory``, oldest epoch first (official resume takes the last)."""
    pattern = re.compile(rf"^{re.escape(net_type)}_ep(\d+){re.escape(CHECKPOINT_SUFFIX)}$")
    found = [(int(m.group(1)), p) for p in Path(directory).glob(f"{net_type}_ep*{CHECKPOINT_SUFFIX}")
             if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


def results_label(config: str, variants: Iterable[tuple[str, Optional[float]]] = (), precision: str = "fp32",
                  faithful: bool = False) -> str:
    """The results folder name of a tracker: the config name, ``_<name><value>`` for every variant that is set (a
    depth or an early-exit threshold other than the config's: ``_depth10``, ``_tau0.5``), then ``_<precision>`` for
    precisions other than fp32, whose boxes differ slightly and must not mix with the fp32 results, and
    ``_faithful`` for the faithful path (a run of the other path must never skip its sequences as already done)."""
    label = config + "".join(f"_{name}{value:g}" for name, value in variants if value is not None)
    label = label if precision == "fp32" else f"{label}_{precision}"
    return f"{label}_faithful" if faithful else label


def tracker_results_dir(results_path: PathLike, script: str, label: str) -> Path:
    """``<results_path>/<script>/<label>``, the folder one tracker's results go to."""
    return Path(results_path) / script / label


def sequence_folder(results_dir: PathLike, dataset_tag: str = "") -> Path:
    """The folder of a sequence's result files: the ``<tag>/`` sub-folder for GOT-10k and TrackingNet."""
    return Path(results_dir) / dataset_tag if dataset_tag in SUBFOLDER_TAGS else Path(results_dir)


def result_file(results_dir: PathLike, seq_name: str, dataset_tag: str = "", kind: str = "") -> Path:
    """``<seq>.txt`` (boxes), or ``<seq>_<kind>.txt`` for ``kind`` ``time`` or ``exits``."""
    return sequence_folder(results_dir, dataset_tag) / (f"{seq_name}_{kind}.txt" if kind else f"{seq_name}.txt")
