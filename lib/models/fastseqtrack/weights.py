"""Putting weights into a :class:`FastSeqTrackNetwork`: our checkpoints, and timm / MAE ViT weights for the encoder.

Files are read with :func:`lib.utils.checkpoint.load_checkpoint_file`, which never executes pickled code, and loaded
with the shape-checked :func:`lib.utils.state_dict.load_state_dict_report`.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional, Union

from torch import Tensor

from lib.models.fastseqtrack.network import FastSeqTrackNetwork
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file
from lib.utils.state_dict import LoadReport, extract_state_dict, load_state_dict_report

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

_PRETRAINED_PREFIX = re.compile(r"^(module\.|model\.)+")


def load_network_weights(net: FastSeqTrackNetwork, checkpoint: PathLike) -> LoadReport:
    """Load a FastSeqTrack checkpoint (ours, ``<save_dir>/.../FastSeqTrack_ep%04d.pth.tar``) strictly."""
    state_dict = extract_state_dict(load_checkpoint_file(checkpoint))
    report = load_state_dict_report(net, state_dict, strict=True)
    logger.info("loaded %s into %s: %s", os.fspath(checkpoint), net.net_type, report)
    return report


def _patch_position_table(pos_embed: Tensor) -> Tensor:
    """The patch rows of a ViT ``pos_embed`` (1, L, C): drops the class-token row when L - 1 is a square."""
    table = pos_embed.reshape(-1, pos_embed.shape[-1])
    for skip in (0, 1):
        side = int(round((table.shape[0] - skip) ** 0.5))
        if side * side == table.shape[0] - skip:
            return table[skip:]
    raise CheckpointError(f"pos_embed with {table.shape[0]} rows is neither a square grid nor a class token plus one")


def load_pretrained_encoder(net: FastSeqTrackNetwork, path: PathLike) -> LoadReport:
    """Initialise the encoder from a timm or MAE ViT state_dict of the same width and depth.

    ``patch_embed``, ``blocks.*`` and ``norm`` are copied under the same names (timm naming, which MAE uses);
    ``pos_embed`` (with or without its class-token row) is resized bicubically to the template and search grids.
    Everything else in the file (class token, MAE decoder, classifier) is ignored and listed. An entry of the
    encoder with another shape (e.g. ViT-S weights into ViT-Tiny) is an error.
    """
    state = {_PRETRAINED_PREFIX.sub("", k): v for k, v in extract_state_dict(load_checkpoint_file(path)).items()}
    encoder = net.backbone
    own = encoder.state_dict()
    task_specific = {"pos_embed_x", "pos_embed_z", "track_embeddings", "track_pos_embeddings"}
    copied = {k: v for k, v in state.items() if k in own and k not in task_specific}
    if not copied:
        raise CheckpointError(f"{os.fspath(path)} holds no ViT encoder weights (patch_embed / blocks / norm)")
    try:
        report = load_state_dict_report(encoder, copied, strict=True, allow_missing=["*"])
    except CheckpointError as error:
        raise CheckpointError(f"ViT weights {os.fspath(path)} do not fit the encoder:\n{error}") from None
    if "pos_embed" in state:
        encoder.set_position_embeddings(_patch_position_table(state["pos_embed"]))
    else:
        logger.warning("%s has no pos_embed: the search / template position embeddings keep their sin-cos init",
                       os.fspath(path))
    ignored = sorted(k for k in state if k not in copied and k != "pos_embed")
    missing_blocks = sorted({k.split(".")[1] for k in own if k.startswith("blocks.") and k not in copied})
    if missing_blocks:
        logger.warning("%s has no weights for encoder blocks %s; they keep their random init", os.fspath(path),
                       ", ".join(missing_blocks))
    logger.info("encoder weights from %s: %s; ignored %d entries%s", os.fspath(path), report, len(ignored),
                f" ({', '.join(ignored[:6])}{', ...' if len(ignored) > 6 else ''})" if ignored else "")
    return report


def initialise_encoder(net: FastSeqTrackNetwork, pretrain_file: str, pretrained_dir: Path) -> Optional[Path]:
    """Training start: the ViT weights ``pretrain_file`` (relative to ``pretrained_dir`` or absolute) when the file
    exists; otherwise keep the random initialisation (with the sin-cos position table) and warn. Returns the file
    used, or None."""
    if pretrain_file:
        path = Path(pretrain_file)
        path = path if path.is_absolute() else pretrained_dir / path
        if path.is_file():
            load_pretrained_encoder(net, path)
            return path
        logger.warning("ViT weights %s not found: FastSeqTrack starts from a random encoder with the sin-cos "
                       "position table (put the MAE / timm ViT file there to train as the paper does)", path)
    else:
        logger.warning("MODEL.PRETRAIN_FILE is empty: FastSeqTrack starts from a random encoder")
    return None
