"""Initial weights of a training run that does not start from a previous stage (the family record's
``initialise``); stages with a previous stage load its checkpoint instead (:mod:`lib.train.run`).

* stage 1 (``fartrack``): MAE ViT-Tiny weights ``MODEL.PRETRAIN_FILE`` (under ``pretrained_models/`` of the
  repository, or an absolute path) when present, otherwise from scratch with the MAE sin-cos position table and a
  warning; ``MODEL.COORD_EMBED_INIT sincos`` also gives the coordinate rows a sin-cos ruler;
* ``fastseqtrack``: timm / MAE ViT weights ``MODEL.PRETRAIN_FILE`` for the encoder when present, otherwise from
  scratch with a warning (:mod:`lib.models.fastseqtrack.weights`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lib.models.fartrack.network import FARTrackNetwork
from lib.models.fartrack.weights import load_mae_weights
from lib.models.fastseqtrack.network import FastSeqTrackNetwork
from lib.models.fastseqtrack.weights import initialise_encoder

logger = logging.getLogger(__name__)


def initialise_stage1(net: FARTrackNetwork, cfg: Any, pretrained_dir: Path) -> None:
    if cfg.MODEL.COORD_EMBED_INIT == "sincos":
        net.backbone.init_sincos_coordinate_embeddings()
    mae = Path(cfg.MODEL.PRETRAIN_FILE)
    mae = mae if mae.is_absolute() else pretrained_dir / mae
    if mae.is_file():
        load_mae_weights(net, mae)
    else:
        logger.warning("MAE weights %s not found: stage 1 starts from a random initialisation, with the MAE sin-cos "
                       "position table (put the MAE-Lite ViT-Tiny file there to reproduce the paper)", mae)
        net.backbone.init_sincos_position_embeddings()


def initialise_fastseqtrack(net: FastSeqTrackNetwork, cfg: Any, pretrained_dir: Path) -> None:
    initialise_encoder(net, cfg.MODEL.PRETRAIN_FILE, pretrained_dir)
