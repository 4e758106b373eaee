"""Public Python API.

>>> from lib.api import load_network
>>> net = load_network("fartrack_sparse", "fartrack_sparse_224_full", checkpoint="FARTrackSparse_ep0015.pth.tar")
>>> out = net(templates, search)   # templates (B, 5, 3, 112, 112) or a list of 5; search (B, 3, 224, 224)
>>> out["logits"].shape            # (B, 4, 605): raw logits of x1, y1, x2, y2 at the final depth
"""
from __future__ import annotations

import logging
import os
from typing import Optional, Sequence, Union

import torch

from lib.config import load_config
from lib.models.fartrack.network import FARTrackNetwork, build_network
from lib.models.fartrack.weights import load_network_weights

logger = logging.getLogger(__name__)

__all__ = ["load_network"]


def load_network(
    script: str,
    config: Union[str, os.PathLike],
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    device: Union[str, torch.device] = "cpu",
    depth: Optional[int] = None,
    opts: Optional[Sequence[object]] = None,
) -> FARTrackNetwork:
    """Build the network of ``script`` from a config and load a checkpoint; returned in eval mode on ``device``.

    Args:
        script: ``fartrack``, ``fartrack_distill`` or ``fartrack_sparse``.
        config: a config name under ``experiments/<script>/`` or a path to a YAML file.
        checkpoint: an official training checkpoint (``.pth.tar``, read without executing pickled code) or one
            of ours, of any family (stage differences are converted); None keeps the random initialisation.
        device: where the network lives.
        depth: number of layers to run (Tiny / Nano / Pico = 15 / 10 / 6); default ``MODEL.DEPTH``.
        opts: config overrides ``[KEY, VALUE, ...]``.

    The forward returns ``logits`` (B, 4, 605); ``fartrack_distill`` adds ``layer_logits`` (depths 5..depth);
    ``fartrack_sparse`` adds ``template_scores`` (B, 5, 49) and ``template_keep`` (B, 49), the keep-mask of the
    newest template at ``MODEL.SPARSE.TEST_PRUNE_RATIO`` (official 0.25: 37 of 49 tokens kept).
    """
    cfg = load_config(script, config, opts)
    net = build_network(cfg, depth=depth)
    if checkpoint is None:
        logger.warning("no checkpoint given: %s keeps its random initialisation", net.net_type)
    else:
        load_network_weights(net, checkpoint)
    return net.to(device).eval()
