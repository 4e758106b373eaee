"""Safe loading of official FARTrack checkpoints, and saving ours in the official layout.

Official training checkpoints (spec section 6.2) are ``torch.save``d dicts whose ``stats`` and ``settings``
entries are pickled objects of the official repository's own classes (``lib.train.admin...``). Unpickling
them the usual way (``weights_only=False``) would import and run arbitrary code named by the file. This
module never does that:

1. the pickle's GLOBALs are listed by static disassembly (``torch.serialization.get_unsafe_globals_in_checkpoint``,
   nothing is unpickled);
2. globals of the official package (``lib`` / ``lib.*``) and ``argparse.Namespace`` are mapped to *inert
   records* (:class:`InertRecord`): classes defined here that only store their pickled arguments and state.
   The real modules are never imported, even though this project has its own ``lib`` package;
3. a short allow-list of numpy reconstruction helpers (numeric scalars and arrays, see :func:`_numpy_allowlist`)
   is permitted; every other global (``os.system``, ``builtins.eval``, ...) makes the load fail *before*
   anything is unpickled;
4. the file is then read with torch's hardened ``weights_only=True`` unpickler, with the records and the
   allow-list registered only for the duration of the call (``torch.serialization.safe_globals``);
5. the records are turned into plain dicts ``{"__class__": "<official name>", **state}``.

Also here: extracting the state_dict of official / MAE / DDP checkpoints, converting state_dicts between
the dense and sparse families (spec sections 3.5 and 4), a shape-checked ``load_state_dict`` with a compact
report, and an atomic ``save_checkpoint`` writing the official key layout with plain data only.
"""
from __future__ import annotations

import contextlib
import fnmatch
import functools
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "FAMILIES",
    "FamilyConversion",
    "InertRecord",
    "LoadReport",
    "ShapeMismatch",
    "compare_state_dict",
    "convert_for_family",
    "extract_state_dict",
    "group_keys",
    "is_sparse_state_dict",
    "load_checkpoint_file",
    "load_state_dict_report",
    "save_checkpoint",
]

PathLike = Union[str, "os.PathLike[str]"]
StateDict = dict[str, torch.Tensor]

#: Model families whose state_dicts this module converts between (spec section 1.2).
FAMILIES = ("fartrack", "fartrack_distill", "fartrack_sparse")
SPARSE_FAMILY = "fartrack_sparse"

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

#: Top-level keys of an official training checkpoint, in the official order.
CHECKPOINT_LAYOUT_KEYS = (
    "epoch", "actor_type", "net_type", "net", "net_info", "constructor", "optimizer", "stats", "settings",
)

#: Entries holding a state_dict, by checkpoint kind: official training checkpoints, MAE weights, generic.
_STATE_DICT_ENTRIES = ("net", "model", "state_dict")

_DDP_PREFIX = "module."
_MAE_PREFIX = "model."

# dense block norms and their sparse masked-norm twins: backbone.{blocks,extension}.<i>.norm<K>.<param>
_BLOCK_NORM_RE = re.compile(r"^(backbone\.(?:blocks|extension)\.\d+)\.norm([12])\.(weight|bias)$")
_SPARSE_ONLY_KEYS = ("backbone.pos_embed_z", "backbone.prev_position_embeddings.weight")
_SPARSE_OWN_INIT_KEYS = ("backbone.prev_position_embeddings.weight",)
# sentences of torch's weights_only error messages that carry no information about the file
_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")
_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(RuntimeError):
    """A checkpoint could not be read, was refused as unsafe, or does not fit the model."""


# ----------------------------------------------------------------------------------------------------------
# inert records and the allow-list


class InertRecord:
    """Inert stand-in for a class named in a checkpoint; never imports or runs the original class.

    Supports what torch's restricted unpickler does with an allowed class: ``NEWOBJ`` (``cls.__new__(cls,
    *args)``), ``REDUCE`` (``cls(*args)``) and ``BUILD`` (``obj.__setstate__(state)``). Arguments and state
    are only stored. Subclasses (one per official name) are made by :func:`_record_class`.
    """

    __slots__ = ("args", "state")
    official_name = "<unnamed>"

    def __new__(cls, *args: Any) -> InertRecord:
        record = super().__new__(cls)
        record.args = args
        record.state = None
        return record

    def __init__(self, *args: Any) -> None:
        """Accept the constructor arguments (already stored by ``__new__``) and do nothing else."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"InertRecord({self.official_name}, args={self.args!r}, state={self.state!r})"


@functools.lru_cache(maxsize=None)
def _record_class(official_name: str) -> type[InertRecord]:
    """Return the (cached) inert record class standing in for the class called ``official_name``."""
    return type(f"InertRecord[{official_name}]", (InertRecord,), {"__slots__": (), "official_name": official_name})


def _is_recorded_name(name: str) -> bool:
    """True for globals loaded as inert records: the official ``lib`` package and the attribute bags."""
    return name.startswith(OFFICIAL_PACKAGE + ".") or name in RECORDED_THIRD_PARTY_CLASSES


@functools.lru_cache(maxsize=1)
def _numpy_allowlist() -> tuple[tuple[Any, str], ...]:
    """Numpy globals needed to rebuild numeric scalars and arrays, registered under their pickled names.

    This is the set torch's ``torch.load`` documentation recommends for numpy data (meters in ``stats``
    may hold numpy scalars): ``multiarray.scalar`` (bytes -> scalar), ``multiarray._reconstruct`` and
    ``ndarray`` (empty array whose buffer ``BUILD`` fills from bytes), ``dtype`` (parses a type string) and
    the concrete numeric dtype classes, which torch requires for the ``BUILD`` of a dtype. Object, string
    and structured dtypes are deliberately absent. Files written by numpy 1.x name ``numpy.core.multiarray``,
    numpy 2.x ``numpy._core.multiarray``; both names map to the installed functions.
    """
    core = getattr(np, "_core", None) or np.core
    entries: list[tuple[Any, str]] = [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray")]
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        entries.append((core.multiarray.scalar, f"{module_name}.scalar"))
        entries.append((core.multiarray._reconstruct, f"{module_name}._reconstruct"))
    for type_char in "?bhilqBHILQefdgFDG":
        dtype_class = type(np.dtype(type_char))
        entries.append((dtype_class, f"{dtype_class.__module__}.{dtype_class.__qualname__}"))
    return tuple(entries)


@functools.lru_cache(maxsize=1)
def _allowed_third_party_names() -> frozenset[str]:
    return frozenset(name for _, name in _numpy_allowlist())


# ----------------------------------------------------------------------------------------------------------
# loading


def load_checkpoint_file(path: PathLike) -> dict[str, Any]:
    """Load a checkpoint file without executing any code from it, onto the CPU, as plain data.

    Official ``lib.*`` objects (settings, meters) come back as ``{"__class__": name, **state}`` dicts
    (plus ``"__args__"`` when constructed with arguments, ``"__state__"`` when the state is not a dict),
    numpy scalars / arrays as Python numbers / lists.

    Raises:
        CheckpointError: the path is not a readable checkpoint, the file names a global outside the
            policy described in the module docstring (refused before unpickling), or torch's restricted
            unpickler rejects it.
    """
    file_path = _checked_file(path)
    unsafe = _scan_unsafe_globals(file_path)
    if unsafe is None:
        recorded = list(KNOWN_OFFICIAL_CLASSES + RECORDED_THIRD_PARTY_CLASSES)
    else:
        _refuse_disallowed_globals(file_path, unsafe)
        recorded = [name for name in unsafe if _is_recorded_name(name)]
    loaded = _restricted_load(file_path, recorded)
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{file_path} holds a {type(loaded).__qualname__}, expected a checkpoint dict.")
    _to_plain(loaded, {})
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


def _scan_unsafe_globals(file_path: Path) -> list[str] | None:
    """List the GLOBALs that torch does not allow by default, by static disassembly (nothing is unpickled).

    Returns None when the file cannot be scanned (legacy non-zip format, damaged archive, pickle opcodes
    the scanner does not know); the caller then relies on torch's restricted unpickler alone.
    """
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(file_path)))
    except Exception as exc:  # the scan only reads bytes; any failure just means "cannot scan"
        logger.info("cannot scan the globals of %s (%s: %s); relying on the restricted unpickler with the known "
                    "official classes only", file_path, type(exc).__name__, exc)
        return None


def _refuse_disallowed_globals(file_path: Path, unsafe: Iterable[str]) -> None:
    """Raise CheckpointError naming every global that is neither recorded nor allow-listed."""
    refused = [name for name in unsafe if not _is_recorded_name(name) and name not in _allowed_third_party_names()]
    if refused:
        raise CheckpointError(
            f"Refusing to load {file_path}: it references globals that could run code when unpickled: "
            f"{', '.join(refused)}. The file was NOT unpickled and nothing in it was executed. Accepted are only "
            f"classes of the official '{OFFICIAL_PACKAGE}' package (read as inert records), "
            f"{', '.join(RECORDED_THIRD_PARTY_CLASSES)} and numpy numeric scalars/arrays."
        )


def _restricted_load(file_path: Path, recorded: Iterable[str]) -> Any:
    """``torch.load(weights_only=True)`` on the CPU with inert records and the numpy allow-list registered."""
    allowed = [(_record_class(name), name) for name in recorded] + list(_numpy_allowlist())
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(file_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged files raise many types (zip, pickle, EOF, struct); all mean "unreadable"
        raise CheckpointError(
            f"Cannot load {file_path} with torch's restricted (weights_only) unpickler "
            f"({_torch_error_summary(exc)}). No code from the file was executed."
        ) from exc


def _torch_error_summary(exc: Exception) -> str:
    """The informative lines of a torch.load error, without torch's advice to retry with weights_only=False."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith(_TORCH_BOILERPLATE)]
    return f"{type(exc).__name__}: {' '.join(kept) or 'no message'}"


def _to_plain(obj: Any, memo: dict[int, Any]) -> Any:
    """Return ``obj`` with inert records and numpy values replaced by plain data.

    Dicts and lists are updated in place (keeping e.g. the ``_metadata`` of a state_dict OrderedDict);
    ``memo`` maps ids of visited containers and records, so shared and cyclic references stay consistent.
    """
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, type) and issubclass(obj, InertRecord):
        return {"__global__": obj.official_name}
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, InertRecord):
        return _record_to_plain(obj, memo)
    if isinstance(obj, dict):
        memo[id(obj)] = obj
        for key, value in obj.items():
            obj[key] = _to_plain(value, memo)
    elif isinstance(obj, list):
        memo[id(obj)] = obj
        obj[:] = [_to_plain(item, memo) for item in obj]
    elif isinstance(obj, tuple):
        return tuple(_to_plain(item, memo) for item in obj)
    return obj


def _record_to_plain(record: InertRecord, memo: dict[int, Any]) -> dict[str, Any]:
    """Convert an inert record into ``{"__class__": name, ["__args__": [...]], **state}``."""
    plain: dict[str, Any] = {"__class__": record.official_name}
    memo[id(record)] = plain
    if record.args:
        plain["__args__"] = [_to_plain(arg, memo) for arg in record.args]
    state = record.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        # (dict or None, slot dict), as pickled for classes with __slots__
        instance_dict, slot_dict = state
        state = {**(instance_dict or {}), **slot_dict}
    if isinstance(state, dict) and all(isinstance(key, str) for key in state):
        for key, value in state.items():
            if key not in ("__class__", "__args__"):
                plain[key] = _to_plain(value, memo)
    elif state is not None:
        plain["__state__"] = _to_plain(state, memo)
    return plain


# ----------------------------------------------------------------------------------------------------------
# state_dict extraction and family conversion


def extract_state_dict(checkpoint: Mapping[str, Any]) -> StateDict:
    """Return the model weights of a checkpoint as ``{name: tensor}`` without ``module.`` (DDP) prefixes.

    Looks for ``net`` (official training checkpoints), ``model`` (MAE weights; a ``model.`` prefix is
    stripped as well, as the official MAE loader does), ``state_dict``, or takes the mapping itself when
    all its values are tensors.
    """
    entry, weights = _find_state_dict(checkpoint)
    non_tensors = [str(key) for key, value in weights.items() if not isinstance(value, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(f"State_dict entry {entry!r} has non-tensor values at: {_join_groups(non_tensors)}")
    prefixes = (_DDP_PREFIX, _MAE_PREFIX) if entry == "model" else (_DDP_PREFIX,)
    result: StateDict = {}
    for key, value in weights.items():
        name = _strip_prefixes(str(key), prefixes)
        if name in result:
            raise CheckpointError(f"State_dict entry {entry!r}: key {key!r} collides with {name!r} after stripping.")
        result[name] = value
    return result


def _find_state_dict(checkpoint: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Return ``(entry name, mapping)`` of the state_dict inside ``checkpoint``."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"Expected a checkpoint mapping, got {type(checkpoint).__qualname__}.")
    for entry in _STATE_DICT_ENTRIES:
        if isinstance(checkpoint.get(entry), Mapping):
            return entry, checkpoint[entry]
    if checkpoint and all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        return "<top level>", checkpoint
    raise CheckpointError(
        f"No state_dict found: expected one of the entries {', '.join(_STATE_DICT_ENTRIES)} or a mapping of "
        f"tensors; the checkpoint has the keys {', '.join(map(str, checkpoint)) or '(none)'}."
    )


def _strip_prefixes(key: str, prefixes: tuple[str, ...]) -> str:
    """Remove any sequence of the given prefixes from the start of ``key``."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key, stripped = key[len(prefix):], True
    return key


class FamilyConversion(NamedTuple):
    """Result of :func:`convert_for_family`."""

    state_dict: StateDict
    #: keys of the target model that the state_dict cannot provide: keep the model's own initial values
    keep_own_keys: list[str]
    #: keys of the source that the target family does not have
    dropped_keys: list[str]


def is_sparse_state_dict(state_dict: Mapping[str, Any]) -> bool:
    """True when the keys are those of the sparse family (blocks own ``masknorm1`` / ``masknorm2``)."""
    return any(".masknorm1." in key or ".masknorm2." in key for key in state_dict)


def convert_for_family(state_dict: Mapping[str, torch.Tensor], target_family: str) -> FamilyConversion:
    """Adapt a state_dict of any FARTrack family to the key set of ``target_family`` (spec 3.5 and 4).

    * dense (``fartrack`` / ``fartrack_distill``, identical keys) -> sparse: as the official sparse builder,
      copy each block's ``normK.weight/bias`` to ``masknormK.norm.weight/bias``; add ``backbone.pos_embed_z``
      as a copy of ``backbone.pos_embed_z0`` (the official tensors share one storage);
      ``backbone.prev_position_embeddings.weight`` is unused and keeps the model's own init (``keep_own_keys``).
    * sparse -> dense: drop the masknorm, ``pos_embed_z`` and ``prev_position_embeddings`` keys.
    * same kind: unchanged (a shallow copy).
    """
    if target_family not in FAMILIES:
        raise CheckpointError(f"Unknown model family {target_family!r}; expected one of {', '.join(FAMILIES)}.")
    source_sparse = is_sparse_state_dict(state_dict)
    target_sparse = target_family == SPARSE_FAMILY
    if source_sparse == target_sparse:
        return FamilyConversion(dict(state_dict), [], [])
    if target_sparse:
        return _dense_to_sparse(state_dict)
    return _sparse_to_dense(state_dict)


def _dense_to_sparse(state_dict: Mapping[str, torch.Tensor]) -> FamilyConversion:
    """Add the sparse-only keys to a dense state_dict (see :func:`convert_for_family`)."""
    converted = dict(state_dict)
    for key, value in state_dict.items():
        match = _BLOCK_NORM_RE.match(key)
        if match:
            block, index, param = match.groups()
            converted[f"{block}.masknorm{index}.norm.{param}"] = value.clone()
    if "backbone.pos_embed_z0" in state_dict:
        converted["backbone.pos_embed_z"] = state_dict["backbone.pos_embed_z0"].clone()
    keep_own = [key for key in _SPARSE_OWN_INIT_KEYS if key not in converted]
    logger.info("dense -> sparse: copied block norms to masknorms; keeping own init for %s", ", ".join(keep_own))
    return FamilyConversion(converted, keep_own, [])


def _sparse_to_dense(state_dict: Mapping[str, torch.Tensor]) -> FamilyConversion:
    """Remove the sparse-only keys from a sparse state_dict (see :func:`convert_for_family`)."""
    dropped = [key for key in state_dict if ".masknorm" in key or key in _SPARSE_ONLY_KEYS]
    dropped_set = set(dropped)
    converted = {key: value for key, value in state_dict.items() if key not in dropped_set}
    logger.info("sparse -> dense: dropped %s", _join_groups(dropped))
    return FamilyConversion(converted, [], dropped)


# ----------------------------------------------------------------------------------------------------------
# checked load_state_dict and its report


class ShapeMismatch(NamedTuple):
    """A key present in both the checkpoint and the model with different shapes."""

    key: str
    checkpoint_shape: tuple[int, ...]
    model_shape: tuple[int, ...]


@dataclass
class LoadReport:
    """Comparison of a state_dict with a module's own state_dict (names and shapes)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[ShapeMismatch] = field(default_factory=list)
    #: missing keys accepted through ``allow_missing``; the module keeps its own values for them
    allowed_missing: list[str] = field(default_factory=list)
    #: keys whose values were (or can be) loaded
    loaded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing (beyond the allowed keys), unexpected or mis-shaped."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        head = (
            f"state_dict matches the model ({len(self.loaded)} keys)" if self.ok else
            f"state_dict does not match the model: {len(self.missing)} missing, {len(self.unexpected)} "
            f"unexpected, {len(self.mismatched)} mis-shaped ({len(self.loaded)} keys match)"
        )
        lines = [head]
        lines += _section("missing in the checkpoint", group_keys(self.missing))
        lines += _section("unexpected (not in the model)", group_keys(self.unexpected))
        lines += _section("mis-shaped", _mismatch_lines(self.mismatched))
        lines += _section("allowed missing (model keeps its own init)", group_keys(self.allowed_missing))
        return "\n".join(lines)


def load_state_dict_report(
    module: nn.Module,
    state_dict: Mapping[str, Any],
    strict: bool = True,
    allow_missing: Iterable[str] = (),
) -> LoadReport:
    """Check names and shapes of ``state_dict`` against ``module``, then load it; return the report.

    ``allow_missing`` holds key names or ``fnmatch`` patterns of model keys that may be absent (the module
    keeps its own values). With ``strict=True`` any other difference raises :class:`CheckpointError`
    carrying the report and nothing is loaded; with ``strict=False`` the matching keys are loaded and the
    report is logged as a warning. Non-tensor and non-finite values always raise.
    """
    _check_values(state_dict)
    report = compare_state_dict(module, state_dict, allow_missing)
    if not report.ok:
        if strict:
            raise CheckpointError(str(report))
        logger.warning("%s", report)
    module.load_state_dict({key: state_dict[key] for key in report.loaded}, strict=False)
    return report


def compare_state_dict(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], allow_missing: Iterable[str] = ()
) -> LoadReport:
    """Build the :class:`LoadReport` of loading ``state_dict`` into ``module`` without loading anything."""
    patterns = tuple(allow_missing)
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    report = LoadReport()
    for key, model_shape in expected.items():
        if key not in state_dict:
            allowed = any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
            (report.allowed_missing if allowed else report.missing).append(key)
        elif tuple(state_dict[key].shape) != model_shape:
            report.mismatched.append(ShapeMismatch(key, tuple(state_dict[key].shape), model_shape))
        else:
            report.loaded.append(key)
    report.unexpected = [key for key in state_dict if key not in expected]
    return report


def _check_values(state_dict: Mapping[str, Any]) -> None:
    """Raise CheckpointError naming the keys whose values are not tensors or contain NaN / inf."""
    non_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(f"state_dict values that are not tensors: {_join_groups(non_tensors)}")
    non_finite = [
        key for key, value in state_dict.items()
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all())
    ]
    if non_finite:
        raise CheckpointError(f"state_dict values containing NaN or inf: {_join_groups(non_finite)}")


def _section(title: str, lines: list[str]) -> list[str]:
    """Indented report section, or nothing when ``lines`` is empty."""
    return [f"  {title}:", *(f"    {line}" for line in lines)] if lines else []


def _mismatch_lines(mismatches: Iterable[ShapeMismatch]) -> list[str]:
    """One line per (checkpoint shape, model shape) pair, with the keys grouped."""
    by_shapes: dict[tuple[tuple[int, ...], tuple[int, ...]], list[str]] = {}
    for mismatch in mismatches:
        by_shapes.setdefault((mismatch.checkpoint_shape, mismatch.model_shape), []).append(mismatch.key)
    return [
        f"{pattern}: checkpoint {list(ckpt_shape)} vs model {list(model_shape)}"
        for (ckpt_shape, model_shape), keys in by_shapes.items()
        for pattern in group_keys(keys)
    ]


def _join_groups(keys: Iterable[str]) -> str:
    return "; ".join(group_keys(keys))


def group_keys(keys: Iterable[str]) -> list[str]:
    """Abbreviate dotted keys: numeric components become index sets, sibling leaves are merged.

    ``backbone.blocks.0.norm1.weight`` ... ``backbone.blocks.11.norm1.bias`` ->
    ``backbone.blocks.{0..11}.norm1.{weight,bias}``. Order follows the first occurrence.
    """
    merged: dict[tuple[str, ...], list[str]] = {}
    for parts in _group_indices(keys):
        merged.setdefault(tuple(parts[:-1]), []).append(parts[-1])
    return [
        ".".join((*prefix, leaves[0] if len(leaves) == 1 else "{" + ",".join(leaves) + "}"))
        for prefix, leaves in merged.items()
    ]


def _group_indices(keys: Iterable[str]) -> list[list[str]]:
    """Collapse keys that differ only in numeric components into one part list with index sets."""
    templates: dict[tuple[str | None, ...], list[tuple[int, ...]]] = {}
    for key in keys:
        parts = key.split(".")
        template = tuple(None if _INDEX_RE.fullmatch(part) else part for part in parts)
        indices = tuple(int(part) for part in parts if _INDEX_RE.fullmatch(part))
        templates.setdefault(template, []).append(indices)
    grouped: list[list[str]] = []
    for template, index_tuples in templates.items():
        per_position = [sorted({indices[pos] for indices in index_tuples}) for pos in range(len(index_tuples[0]))]
        if math.prod(len(values) for values in per_position) == len(set(index_tuples)):
            grouped.append(_fill_template(template, [_format_indices(values) for values in per_position]))
        else:  # not a full product of index sets: keep the keys separate
            grouped += [_fill_template(template, [str(i) for i in indices]) for indices in index_tuples]
    return grouped


def _fill_template(template: tuple[str | None, ...], fillers: list[str]) -> list[str]:
    remaining = iter(fillers)
    return [next(remaining) if part is None else part for part in template]


def _format_indices(values: list[int]) -> str:
    """``[5]`` -> ``5``; ``[0, 1, 2, 4, 6, 7]`` -> ``{0..2,4,6,7}`` (runs of three or more become ranges)."""
    if len(values) == 1:
        return str(values[0])
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    pieces = [f"{run[0]}..{run[-1]}" if len(run) >= 3 else ",".join(map(str, run)) for run in runs]
    return "{" + ",".join(pieces) + "}"


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
    """State_dict of an (unwrapped) module or a given state_dict, without ``module.`` prefixes, on the CPU."""
    while isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        net = net.module
    weights = net.state_dict() if isinstance(net, nn.Module) else net
    state_dict = extract_state_dict({"state_dict": weights})
    return {key: value.detach().cpu() for key, value in state_dict.items()}


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
