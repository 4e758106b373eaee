"""The two key layouts of FARTrack state_dicts, and the conversion between them (spec sections 3.5 and 4).

* dense (``BackboneSpec.masked_norm`` False; ``fartrack`` and ``fartrack_distill`` checkpoints): every block has
  ``norm1`` / ``norm2``;
* sparse (``masked_norm`` True; ``fartrack_sparse`` checkpoints): every block also has ``masknorm1.norm`` /
  ``masknorm2.norm``, and the backbone registers ``pos_embed_z`` and ``prev_position_embeddings``, which the
  forward never uses.

:func:`convert_state_dict` adapts a state_dict of either layout to the layout of a network; it knows the layouts
only, not the family names.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import Tensor

from lib.utils.state_dict import group_keys

logger = logging.getLogger(__name__)

__all__ = ["KeyConversion", "convert_state_dict", "has_masked_norm_keys"]

StateDict = dict[str, Tensor]

# dense block norms and their sparse masked-norm twins: backbone.{blocks,extension}.<i>.norm<K>.<param>
_BLOCK_NORM_RE = re.compile(r"^(backbone\.(?:blocks|extension)\.\d+)\.norm([12])\.(weight|bias)$")
_SPARSE_ONLY_KEYS = ("backbone.pos_embed_z", "backbone.prev_position_embeddings.weight")
_SPARSE_OWN_INIT_KEYS = ("backbone.prev_position_embeddings.weight",)


class KeyConversion(NamedTuple):
    """Result of :func:`convert_state_dict`."""

    state_dict: StateDict
    #: keys of the target network that the state_dict cannot provide: keep the network's own initial values
    keep_own_keys: list[str]
    #: keys of the source that the target layout does not have
    dropped_keys: list[str]


def has_masked_norm_keys(state_dict: Mapping[str, Any]) -> bool:
    """True when the keys are those of the sparse layout (blocks own ``masknorm1`` / ``masknorm2``)."""
    return any(".masknorm1." in key or ".masknorm2." in key for key in state_dict)


def convert_state_dict(state_dict: Mapping[str, Tensor], masked_norm: bool) -> KeyConversion:
    """Adapt a FARTrack state_dict of either layout to a network whose ``spec.masked_norm`` is ``masked_norm``.

    * dense -> sparse (``masked_norm`` True): as the official sparse builder, copy each block's
      ``normK.weight/bias`` to ``masknormK.norm.weight/bias``; add ``backbone.pos_embed_z`` as a copy of
      ``backbone.pos_embed_z0`` (the official tensors share one storage); ``backbone.prev_position_embeddings.weight``
      is unused and keeps the network's own init (``keep_own_keys``).
    * sparse -> dense (``masked_norm`` False): drop the masknorm, ``pos_embed_z`` and ``prev_position_embeddings``
      keys (``dropped_keys``).
    * same layout: unchanged (a shallow copy).
    """
    if has_masked_norm_keys(state_dict) == masked_norm:
        return KeyConversion(dict(state_dict), [], [])
    if masked_norm:
        return _dense_to_sparse(state_dict)
    return _sparse_to_dense(state_dict)


def _dense_to_sparse(state_dict: Mapping[str, Tensor]) -> KeyConversion:
    """Add the sparse-only keys to a dense state_dict (see :func:`convert_state_dict`)."""
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
    return KeyConversion(converted, keep_own, [])


def _sparse_to_dense(state_dict: Mapping[str, Tensor]) -> KeyConversion:
    """Remove the sparse-only keys from a sparse state_dict (see :func:`convert_state_dict`)."""
    dropped = [key for key in state_dict if ".masknorm" in key or key in _SPARSE_ONLY_KEYS]
    dropped_set = set(dropped)
    converted = {key: value for key, value in state_dict.items() if key not in dropped_set}
    logger.info("sparse -> dense: dropped %s", "; ".join(group_keys(dropped)))
    return KeyConversion(converted, [], dropped)
