"""The checkpoint-file API: safe loading of official FARTrack checkpoints, and saving ours in the official layout.

Official training checkpoints (spec section 6.2) are ``torch.save``d dicts whose ``stats`` and ``settings``
entries are pickled objects of the official repository's own classes (``lib.train.admin...``).
:func:`load_checkpoint_file` reads them with :mod:`lib.utils.safe_unpickle`, which never executes code from the
file: the official ``lib.*`` classes and ``argparse.Namespace`` (:data:`OFFICIAL_RECORDS`) come back as plain dicts,
numpy numeric values as Python numbers, and any other global makes the load fail before anything is unpickled.
:func:`save_checkpoint` writes the official key layout with plain data only, atomically.

What is done with the weights lives elsewhere: extracting and shape-checked loading of state_dicts in
:mod:`lib.utils.state_dict`, the FARTrack key layouts in :mod:`lib.models.fartrack.checkpoint_keys`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from lib.utils.safe_unpickle import RecordPolicy, SafeLoadError, load_inert, to_plain

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_LAYOUT_KEYS",
    "CheckpointError",
    "OFFICIAL_RECORDS",
    "load_checkpoint_file",
    "save_checkpoint",
]

PathLike = Union[str, "os.PathLike[str]"]
StateDict = dict[str, torch.Tensor]

#: Package namespace of the official repository; its classes are loaded as inert records.
OFFICIAL_PACKAGE = "lib"

#: Official classes known to occur in training checkpoints. Used when the file cannot be scanned
#: beforehand (legacy format): only these names are then recorded, anything else is refused by torch.
KNOWN_OFFICIAL_CLASSES = (
    "lib.train.admin.settings.Settings",
    "lib.train.admin.local.EnvironmentSettings",
    "lib.train.admin.stats.AverageMeter",
    "lib.train.admin.stats.StatValue",
)

#: Third-party classes that are pure attribute bags and are loaded as inert records, never instantiated:
#: ``argparse.Namespace`` is how MAE-style pre-training scripts store their command line in checkpoints.
RECORDED_THIRD_PARTY_CLASSES = ("argparse.Namespace",)

#: What :func:`load_checkpoint_file` reads as inert records instead of refusing.
OFFICIAL_RECORDS = RecordPolicy(
    package=OFFICIAL_PACKAGE, known_classes=KNOWN_OFFICIAL_CLASSES, classes=RECORDED_THIRD_PARTY_CLASSES
)

#: Top-level keys of an official training checkpoint, in the official order.
CHECKPOINT_LAYOUT_KEYS = (
    "epoch", "actor_type", "net_type", "net", "net_info", "constructor", "optimizer", "stats", "settings",
)

_DDP_PREFIX = "module."


class CheckpointError(RuntimeError):
    """A checkpoint could not be read, was refused as unsafe, or does not fit the model."""


# ----------------------------------------------------------------------------------------------------------
# loading


def load_checkpoint_file(path: PathLike) -> dict[str, Any]:
    """Load a checkpoint file without executing any code from it, onto the CPU, as plain data.

    Official ``lib.*`` objects (settings, meters) come back as ``{"__class__": name, **state}`` dicts
    (plus ``"__args__"`` when constructed with arguments, ``"__state__"`` when the state is not a dict),
    numpy scalars / arrays as Python numbers / lists.

    Raises:
        CheckpointError: the path is not a readable checkpoint, the file names a global outside the
            policy described in :mod:`lib.utils.safe_unpickle` (refused before unpickling), or torch's
            restricted unpickler rejects it.
    """
    file_path = _checked_file(path)
    try:
        loaded = load_inert(file_path, OFFICIAL_RECORDS)
    except SafeLoadError as error:
        raise CheckpointError(str(error)) from error
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{file_path} holds a {type(loaded).__qualname__}, expected a checkpoint dict.")
    to_plain(loaded)
    return loaded


def _checked_file(path: PathLike) -> Path:
    """Return ``path`` as a Path after checking it is an existing, non-empty regular file."""
    file_path = Path(path)
    if not file_path.exists():
        raise CheckpointError(f"Checkpoint file {file_path} does not exist.")
    if file_path.is_dir():
        raise CheckpointError(f"Checkpoint path {file_path} is a directory, not a file.")
    if not file_path.is_file():
        raise CheckpointError(f"Checkpoint path {file_path} is not a regular file.")
    if file_path.stat().st_size == 0:
        raise CheckpointError(f"Checkpoint file {file_path} is empty.")
    return file_path


# ----------------------------------------------------------------------------------------------------------
# saving


def save_checkpoint(
    path: PathLike,
    *,
    net: nn.Module | Mapping[str, torch.Tensor],
    epoch: int,
    net_type: str,
    actor_type: str,
    optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint with the official key layout (spec 6.2) but only plain data, atomically.

    ``net`` is a module (DataParallel / DDP wrappers are unwrapped) or a state_dict; ``module.`` prefixes
    are removed and tensors moved to the CPU. ``extra`` may provide ``stats`` and ``settings`` (plain data;
    both default to ``{}``) and further top-level entries. The file is written to a temporary file in the
    target directory and renamed over ``path``; it loads back through :func:`load_checkpoint_file` with no
    unsafe globals. Returns the path written.
    """
    extra = dict(extra or {})
    clashes = sorted(set(extra) & (set(CHECKPOINT_LAYOUT_KEYS) - {"stats", "settings"}))
    if clashes:
        raise CheckpointError(f"extra must not override the checkpoint entries {', '.join(clashes)}.")
    checkpoint = {
        "epoch": int(epoch),
        "actor_type": str(actor_type),
        "net_type": str(net_type),
        "net": _net_state_dict(net),
        "net_info": None,
        "constructor": None,
        "optimizer": _plain_data(_optimizer_state(optimizer), "optimizer"),
        "stats": _plain_data(extra.pop("stats", {}), "stats"),
        "settings": _plain_data(extra.pop("settings", {}), "settings"),
    }
    checkpoint.update({key: _plain_data(value, key) for key, value in extra.items()})
    file_path = Path(path)
    _atomic_torch_save(checkpoint, file_path)
    logger.info("saved %s checkpoint (epoch %d) to %s", net_type, epoch, file_path)
    return file_path


def _net_state_dict(net: nn.Module | Mapping[str, torch.Tensor]) -> StateDict:
    """State_dict of an (unwrapped) module or a given state_dict, without ``module.`` prefixes, on the CPU.

    Same checks and messages as :func:`lib.utils.state_dict.extract_state_dict` of ``{"state_dict": net}`` (keys
    listed without grouping); done here because :mod:`lib.utils.state_dict` builds on this module.
    """
    while isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        net = net.module
    weights = net.state_dict() if isinstance(net, nn.Module) else net
    non_tensors = [str(key) for key, value in weights.items() if not isinstance(value, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(f"State_dict entry 'state_dict' has non-tensor values at: {'; '.join(non_tensors)}")
    state_dict: StateDict = {}
    for key, value in weights.items():
        name = str(key)
        while name.startswith(_DDP_PREFIX):
            name = name[len(_DDP_PREFIX):]
        if name in state_dict:
            raise CheckpointError(f"State_dict entry 'state_dict': key {key!r} collides with {name!r} after stripping.")
        state_dict[name] = value.detach().cpu()
    return state_dict


def _optimizer_state(optimizer: torch.optim.Optimizer | Mapping[str, Any] | None) -> Any:
    return optimizer.state_dict() if isinstance(optimizer, torch.optim.Optimizer) else optimizer


def _plain_data(value: Any, where: str) -> Any:
    """Copy ``value`` keeping only plain data (no pickled classes); numpy scalars become Python numbers."""
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":  # before float: np.float64 is a float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        bad_keys = [key for key in value if not isinstance(key, (str, int))]
        if bad_keys:
            raise CheckpointError(f"{where} has keys that are not str or int: {bad_keys!r}")
        return {key: _plain_data(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain_data(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise CheckpointError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}; checkpoints we write hold only "
        "plain data (dict, list, tuple, str, int, float, bool, None, tensors)."
    )


def _atomic_torch_save(obj: Any, file_path: Path) -> None:
    """``torch.save`` to a temporary file next to ``file_path``, fsync, then rename over ``file_path``."""
    file_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{file_path.name}.", suffix=".tmp", dir=file_path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, file_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
