"""Official optimiser and learning-rate schedule of the three stages (spec 6.1).

AdamW over three parameter groups, weight decay ``TRAIN.WEIGHT_DECAY`` on every parameter:

* group 0: parameters whose name lacks ``backbone`` (only ``identity``) at ``TRAIN.LR``;
* group 1: the rest of the backbone at ``TRAIN.LR * TRAIN.BACKBONE_MULTIPLIER``;
* group 2: backbone parameters named ``output_bias``, ``*embeddings*`` (word / command / previous-box
  embeddings) or inside ``extension`` at ``TRAIN.LR``.

StepLR with step ``TRAIN.LR_DROP_EPOCH`` and gamma 0.1 (the official scheduler ignores
``TRAIN.SCHEDULER.DECAY_RATE``), stepped once per epoch.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Official StepLR factor, whatever TRAIN.SCHEDULER.DECAY_RATE says.
OFFICIAL_LR_GAMMA = 0.1


def _full_lr_backbone_param(name: str) -> bool:
    return "output_bias" in name or "embeddings" in name or "extension" in name


def parameter_groups(net: nn.Module, lr: float, backbone_multiplier: float) -> list[dict[str, Any]]:
    """The three official AdamW groups (trainable parameters only; empty groups are kept so the layout is fixed)."""
    named = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    head = [p for name, p in named if "backbone" not in name]
    backbone_slow = [p for name, p in named if "backbone" in name and not _full_lr_backbone_param(name)]
    backbone_full = [p for name, p in named if "backbone" in name and _full_lr_backbone_param(name)]
    return [
        {"params": head, "lr": lr},
        {"params": backbone_slow, "lr": lr * backbone_multiplier},
        {"params": backbone_full, "lr": lr},
    ]


def build_optimizer(net: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """AdamW (default betas / eps) over :func:`parameter_groups`."""
    train = cfg.TRAIN
    if train.OPTIMIZER != "ADAMW":
        raise ValueError(f"TRAIN.OPTIMIZER {train.OPTIMIZER!r} is not supported (the official recipe uses ADAMW)")
    groups = parameter_groups(net, train.LR, train.BACKBONE_MULTIPLIER)
    return torch.optim.AdamW(groups, lr=train.LR, weight_decay=train.WEIGHT_DECAY)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Any) -> torch.optim.lr_scheduler.LRScheduler:
    """StepLR(LR_DROP_EPOCH, gamma 0.1), as the official trainers build it for ``TRAIN.SCHEDULER.TYPE == step``."""
    if cfg.TRAIN.SCHEDULER.TYPE != "step":
        raise ValueError(f"TRAIN.SCHEDULER.TYPE {cfg.TRAIN.SCHEDULER.TYPE!r} is not supported (official: step)")
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.TRAIN.LR_DROP_EPOCH, gamma=OFFICIAL_LR_GAMMA)
