"""FastSeqTrack training: the loss at every exit and the actor the shared trainer runs (paper section 3.3, Eq. 1).

``L = sum over exits e of (lambda_ce * CE_e + lambda_iou * GIoU_e)`` with lambda_ce = ``TRAIN.CE_WEIGHT`` (paper 1)
and lambda_iou = ``TRAIN.GIOU_WEIGHT`` (paper 5). Every exit -- the one before the first decoder layer included,
since inference can stop there -- is supervised with the same targets through the one shared head.

* CE: cross-entropy of each of the 4 tokens against the word of its coordinate, ``floor(c * (n_bins - 1))`` of the
  GT ``(cx, cy, w, h)`` clamped to [0, 1] (:func:`lib.utils.tokens.quantize` with range 1), mean over the tokens.
* GIoU: ``torchvision.ops.generalized_box_iou_loss`` between the GT and the expectation of each coordinate under
  the softmax (differentiable, unlike the argmax); the prediction is ``(cx, cy, w, h)`` with w, h >= 0, so the
  corner box is always valid.

Batches come from the frame-level :class:`~lib.train.data.sampler.FrameSampler` and
:class:`~lib.train.data.processing.FrameProcessing` exactly as for FARTrack stage 1, with ``DATA.TEMPLATE.NUMBER``
templates.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert, box_iou, generalized_box_iou_loss

from lib.models.fastseqtrack.network import FastSeqTrackNetwork
from lib.train.actors import LossPart, unwrap
from lib.utils.box_ops import box_cxcywh_to_xyxy
from lib.utils.tokens import decode_argmax_plain, quantize


def exit_terms(logits: Tensor, target_words: Tensor, target_xyxy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(CE, GIoU loss, per-box IoU) of one exit's (B, 4, n_bins) logits."""
    n_bins = logits.shape[-1]
    logits = logits.float()
    ce = F.cross_entropy(logits.reshape(-1, n_bins), target_words.reshape(-1))
    values = decode_argmax_plain(torch.arange(n_bins, device=logits.device, dtype=torch.float64), n_bins, 1)
    pred_xyxy = box_cxcywh_to_xyxy(logits.softmax(dim=-1) @ values.float())
    giou = generalized_box_iou_loss(pred_xyxy, target_xyxy, reduction="mean")
    iou = box_iou(pred_xyxy.detach(), target_xyxy).diagonal()
    return ce, giou, iou


def fastseqtrack_loss(exit_logits: Sequence[Tensor], gt_cxcywh: Tensor, *, ce_weight: float = 1.0,
                      giou_weight: float = 5.0) -> tuple[Tensor, dict[str, float]]:
    """Eq. 1 of the paper summed over every exit; returns ``(loss, stats)``.

    ``exit_logits``: the (B, 4, n_bins) logits of exits 0..N; ``gt_cxcywh`` (B, 4): the GT box in normalised
    search-crop units. Stats: ``Loss/total``, ``Loss/ce`` and ``Loss/giou`` (sums over the exits, as in the total),
    ``IoU`` of the last exit, and per exit ``Loss/ce_<e>``, ``Loss/giou_<e>``, ``IoU_<e>``.
    """
    if not exit_logits:
        raise ValueError("fastseqtrack_loss needs the logits of at least one exit")
    n_bins = exit_logits[0].shape[-1]
    target = gt_cxcywh.float().clamp(0.0, 1.0)  # the vocabulary spans the crop: [0, 1] for every coordinate
    target_words = quantize(target, n_bins, 1)
    target_xyxy = box_cxcywh_to_xyxy(target)
    terms = [exit_terms(logits, target_words, target_xyxy) for logits in exit_logits]
    ces = torch.stack([t[0] for t in terms])
    gious = torch.stack([t[1] for t in terms])
    total = ce_weight * ces.sum() + giou_weight * gious.sum()
    stats = {"Loss/total": total.item(), "Loss/ce": ces.sum().item(), "Loss/giou": gious.sum().item(),
             "IoU": terms[-1][2].mean().item()}
    for index, (ce, giou, iou) in enumerate(terms):
        stats.update({f"Loss/ce_{index}": ce.item(), f"Loss/giou_{index}": giou.item(),
                      f"IoU_{index}": iou.mean().item()})
    return total, stats


class FastSeqTrackActor:
    """Turns a frame-level batch into the FastSeqTrack loss; the same interface as :class:`lib.train.actors.Actor`
    (``net``, ``actor_type``, ``grad_clip_norm``, ``train``, ``loss_parts``), which the trainer relies on.

    Not a subclass: the FARTrack actors' constructor reads FARTrack's vocabulary keys, which this schema lacks.
    """

    def __init__(self, net: nn.Module, cfg: Any, device: torch.device, *, actor_type: str) -> None:
        if not isinstance(unwrap(net), FastSeqTrackNetwork):
            raise ValueError(f"{actor_type} trains a FastSeqTrackNetwork, not {type(unwrap(net)).__name__}")
        self.actor_type = actor_type
        self.net = net
        self.cfg = cfg
        self.device = torch.device(device)
        self.ce_weight = float(cfg.TRAIN.CE_WEIGHT)
        self.giou_weight = float(cfg.TRAIN.GIOU_WEIGHT)

    @property
    def grad_clip_norm(self) -> float:
        return float(self.cfg.TRAIN.GRAD_CLIP_NORM)

    def train(self, mode: bool = True) -> None:
        self.net.train(mode)

    def loss_parts(self, batch: dict[str, Tensor]) -> list[LossPart]:
        return [lambda: self.compute_loss(batch)]

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        templates = batch["template_images"].to(self.device, non_blocking=True)
        search = batch["search_images"][:, 0].to(self.device, non_blocking=True)
        gt = box_convert(batch["search_anno"][:, 0].to(self.device, non_blocking=True), "xywh", "cxcywh")
        out = self.net(templates, search)
        return fastseqtrack_loss(out["exit_logits"], gt, ce_weight=self.ce_weight, giou_weight=self.giou_weight)
