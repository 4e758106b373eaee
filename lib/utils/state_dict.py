"""State_dicts of checkpoints: finding them, checking them against a module, loading them with a compact report.

* :func:`extract_state_dict`: the weights of an official training checkpoint (``net``), of MAE weights
  (``model``), of a generic ``state_dict`` entry or of a plain mapping of tensors, without ``module.`` (DDP)
  prefixes;
* :func:`load_state_dict_report` / :func:`compare_state_dict`: a name- and shape-checked ``load_state_dict``
  whose :class:`LoadReport` groups the differing keys (:func:`group_keys`) so hundreds of keys fit on a few lines.

Every failure is a :class:`~lib.utils.checkpoint.CheckpointError`.
"""
from __future__ import annotations

import fnmatch
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from lib.utils.checkpoint import CheckpointError

logger = logging.getLogger(__name__)

__all__ = [
    "LoadReport",
    "ShapeMismatch",
    "compare_state_dict",
    "extract_state_dict",
    "group_keys",
    "load_state_dict_report",
]

StateDict = dict[str, torch.Tensor]

#: Entries holding a state_dict, by checkpoint kind: official training checkpoints, MAE weights, generic.
_STATE_DICT_ENTRIES = ("net", "model", "state_dict")

_DDP_PREFIX = "module."
_MAE_PREFIX = "model."
_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


# ----------------------------------------------------------------------------------------------------------
# extraction


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
