"""Putting weights into a :class:`FARTrackNetwork`: official / our checkpoints and MAE ViT-Tiny weights.

Files are read with :func:`lib.utils.checkpoint.load_checkpoint_file`, which never executes pickled code; the
state_dict is converted to the network's key layout by :mod:`lib.models.fartrack.checkpoint_keys` and loaded with
the shape-checked :func:`lib.utils.state_dict.load_state_dict_report`.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Union

import torch
from torch import Tensor

from lib.models.fartrack.checkpoint_keys import convert_state_dict
from lib.models.fartrack.network import FARTrackNetwork
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file
from lib.utils.state_dict import LoadReport, extract_state_dict, group_keys, load_state_dict_report

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

_TEMPLATE_POS_ALIASES = ("backbone.pos_embed_z", "backbone.pos_embed_z0", "backbone.pos_embed_z1")


def _layer_prefixes(net: FARTrackNetwork) -> list[str]:
    spec = net.spec
    return [f"backbone.blocks.{i}." for i in range(spec.num_blocks)] + [
        f"backbone.extension.{i}." for i in range(spec.num_extension)
    ]


def _check_template_pos_aliases(state_dict: dict[str, Tensor]) -> None:
    """The official template position embedding has several names sharing one storage; the last loaded wins."""
    present = [k for k in _TEMPLATE_POS_ALIASES if k in state_dict]
    if any(not torch.equal(state_dict[k], state_dict[present[-1]]) for k in present):
        logger.warning(
            "checkpoint holds different values under %s; like the official model (one shared tensor) the "
            "template position embedding takes the last one, %s",
            ", ".join(present),
            present[-1],
        )


def load_network_weights(net: FARTrackNetwork, checkpoint: PathLike) -> LoadReport:
    """Load an official or our own checkpoint of any family into ``net``, strictly.

    Stage differences are converted to the network's key layout (``net.spec.masked_norm``: dense -> sparse copies
    ``normK`` into ``masknormK``; see :func:`lib.models.fartrack.checkpoint_keys.convert_state_dict`). A checkpoint
    that stores fewer layers than the network (e.g. a Nano model saved with 10 blocks) loads when it covers
    ``net.depth``; the layers it lacks keep their initialisation and are never run.
    """
    state_dict = extract_state_dict(load_checkpoint_file(checkpoint))
    state_dict, keep_own, dropped = convert_state_dict(state_dict, net.spec.masked_norm)
    if dropped:
        logger.info("not used by %s: %s", net.family, ", ".join(group_keys(dropped)))
    allowed_missing = set(keep_own)
    absent_layers = [p for p in _layer_prefixes(net) if not any(k.startswith(p) for k in state_dict)]
    if absent_layers:
        needed = set(_layer_prefixes(net)[: net.depth])
        if needed & set(absent_layers):
            raise CheckpointError(
                f"{os.fspath(checkpoint)} stores no weights for layers {sorted(needed & set(absent_layers))}, "
                f"which depth {net.depth} runs"
            )
        logger.info("checkpoint stores no weights for %s (beyond depth %d)", ", ".join(absent_layers), net.depth)
        own = net.state_dict()
        allowed_missing |= {k for k in own if any(k.startswith(p) for p in absent_layers)}
    _check_template_pos_aliases(state_dict)
    report = load_state_dict_report(net, state_dict, strict=True, allow_missing=sorted(allowed_missing))
    logger.info("loaded %s into %s (depth %d): %s", os.fspath(checkpoint), net.net_type, net.depth, report)
    return report


_MAE_PREFIX = re.compile(r"^(module\.|model\.)+")


def mae_backbone_state(mae_state: dict[str, Tensor], num_blocks: int, num_extension: int) -> dict[str, Tensor]:
    """Map an MAE ViT state_dict to backbone names: strip ``module.`` / ``model.`` prefixes and copy the last
    ``num_extension`` blocks into ``extension.0..`` (official stage-1 initialisation, spec 3.7)."""
    state = {_MAE_PREFIX.sub("", k): v for k, v in mae_state.items()}
    first_copied = num_blocks - num_extension
    for key in list(state):
        match = re.match(r"^blocks\.(\d+)\.(.*)$", key)
        if match and int(match.group(1)) >= first_copied:
            state[f"extension.{int(match.group(1)) - first_copied}.{match.group(2)}"] = state[key].clone()
    return state


def load_mae_weights(net: FARTrackNetwork, path: PathLike) -> LoadReport:
    """Initialise the backbone from MAE ViT-Tiny weights, then re-derive the task position embeddings.

    Loaded non-strictly, as the official code does (the MAE file has no task-specific entries and may carry
    decoder weights); the report lists what was skipped. Mis-shaped entries are an error.
    """
    spec = net.spec
    state = mae_backbone_state(extract_state_dict(load_checkpoint_file(path)), spec.num_blocks, spec.num_extension)
    backbone_keys = set(net.backbone.state_dict())
    try:
        # Every backbone entry may be absent (task-specific ones always are); a present one must fit.
        report = load_state_dict_report(
            net.backbone, {k: v for k, v in state.items() if k in backbone_keys}, strict=True, allow_missing=["*"]
        )
    except CheckpointError as error:
        raise CheckpointError(f"MAE weights {os.fspath(path)} do not fit the backbone:\n{error}") from None
    ignored = sorted(k for k in state if k not in backbone_keys)
    if net.spec.masked_norm:
        # Masked-norm blocks normalise with masknormK: start them from the MAE normK like the dense ones.
        for layer in net.backbone.layers:
            layer.masknorm1.norm.load_state_dict(layer.norm1.state_dict())
            layer.masknorm2.norm.load_state_dict(layer.norm2.state_dict())
    net.backbone.derive_task_position_embeddings()
    logger.info("MAE weights %s: %s; ignored %d entries not in the backbone%s", os.fspath(path), report,
                len(ignored), f" ({', '.join(ignored[:6])}{', ...' if len(ignored) > 6 else ''})" if ignored else "")
    return report
