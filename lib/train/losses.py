"""Training losses of the three FARTrack stages (official actors, spec section 5).

All logits are batch-major ``(B, 4, V)`` (our network's layout; the official model returns ``(4, B, V)`` and the
actors reorder it to batch-major before every loss).  Boxes are ``(..., 4)`` x1, y1, x2, y2 in normalised
search-crop units.  The stage functions return ``(loss, stats)`` where ``stats`` maps names to python floats.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lib.utils.tokens import (
    DEFAULT_BINS,
    DEFAULT_RANGE,
    decode_argmax_plain,
    decode_expectation,
    num_coord_classes,
    quantize,
    quantize_continuous,
    vocab_size,
)


def class_weights(bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE, special_weight: float = 0.1, *,
                  dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """Per-class CE weights of the official actors: 1 for coordinate ids, ``special_weight`` for ids 600..604."""
    weights = torch.ones(vocab_size(bins, value_range), dtype=dtype, device=device)
    weights[num_coord_classes(bins, value_range):] = special_weight
    return weights


def weighted_cross_entropy(logits: Tensor, targets: Tensor, bins: int = DEFAULT_BINS,
                           value_range: int = DEFAULT_RANGE, special_weight: float = 0.1) -> Tensor:
    """``CrossEntropyLoss(weight=class_weights)`` with mean reduction: sum_t w_t*nll_t / sum_t w_t.

    ``logits`` (..., V) and int64 ``targets`` (...) are flattened to (N, V) / (N,).  The official targets are always
    coordinate ids, so this equals the plain mean over the B*4 tokens; no label smoothing.
    """
    weights = class_weights(bins, value_range, special_weight, dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), weight=weights)


def siou_loss(pred_xyxy: Tensor, target_xyxy: Tensor, theta: float = 4, eps: float = 1e-7) -> tuple[Tensor, Tensor]:
    """SIoU loss of the official actors; returns (mean loss over all boxes, per-box IoU).

    loss = 1 - IoU + (Omega + Delta)/2 with
    * angle  Lambda = 1 - 2 sin^2(arcsin(|dcy| / (sigma + eps)) - pi/4), sigma = centre distance
      (as specified: always the vertical sine, no switch to the horizontal one past 45 degrees as in the paper);
    * distance Delta = sum_{x,y} (1 - exp(-gamma * rho)), rho = (dc / (enclosing side + eps))^2, gamma = 2 - Lambda;
    * shape Omega = sum_{w,h} (1 - exp(-|p - g| / (max(p, g) + eps)))^theta;
    * IoU: each overlap side clamped at 0, union = area_p + area_g - overlap without eps.
    Degenerate inputs behave as officially (e.g. NaN gradient when both centres coincide exactly).
    """
    px1, py1, px2, py2 = pred_xyxy.unbind(-1)
    gx1, gy1, gx2, gy2 = target_xyxy.unbind(-1)
    pw, ph, gw, gh = px2 - px1, py2 - py1, gx2 - gx1, gy2 - gy1
    dcx = (gx1 + gx2) / 2 - (px1 + px2) / 2
    dcy = (gy1 + gy2) / 2 - (py1 + py2) / 2

    sigma = torch.sqrt(dcx ** 2 + dcy ** 2)
    sin_alpha = dcy.abs() / (sigma + eps)
    angle = 1 - 2 * torch.sin(torch.arcsin(sin_alpha) - math.pi / 4) ** 2

    enclose_w = torch.maximum(px2, gx2) - torch.minimum(px1, gx1)
    enclose_h = torch.maximum(py2, gy2) - torch.minimum(py1, gy1)
    gamma = 2 - angle
    rho_x = (dcx / (enclose_w + eps)) ** 2
    rho_y = (dcy / (enclose_h + eps)) ** 2
    distance = (1 - torch.exp(-gamma * rho_x)) + (1 - torch.exp(-gamma * rho_y))

    omega_w = (pw - gw).abs() / (torch.maximum(pw, gw) + eps)
    omega_h = (gh - ph).abs() / (torch.maximum(gh, ph) + eps)
    shape = (1 - torch.exp(-omega_h)) ** theta + (1 - torch.exp(-omega_w)) ** theta

    overlap_w = (torch.minimum(px2, gx2) - torch.maximum(px1, gx1)).clamp(min=0)
    overlap_h = (torch.minimum(py2, gy2) - torch.maximum(py1, gy1)).clamp(min=0)
    overlap = overlap_w * overlap_h
    iou = overlap / (pw * ph + gw * gh - overlap)

    loss = 1 - iou + (shape + distance) / 2
    return loss.mean(), iou


def layer_kl(student_logits: Tensor, teacher_logits: Tensor,
             num_coord_classes: int = num_coord_classes()) -> Tensor:
    """Adjacent-layer distillation term of FARTrackDistillActor: KL(teacher || student), 'batchmean', T = 1.

    Both distributions use only the coordinate logits ``[..., :num_coord_classes]``; the teacher (deeper layer) is
    detached.  'batchmean' sums over tokens and classes and divides by the first dim, which must be the batch
    (B, 4, V) -- passing flattened (B*4, V) logits would divide by B*4 instead.
    """
    log_student = student_logits[..., :num_coord_classes].log_softmax(dim=-1)
    teacher = teacher_logits[..., :num_coord_classes].detach().softmax(dim=-1)
    return F.kl_div(log_student, teacher, reduction="batchmean")


def _siou_and_ce(logits: Tensor, ce_targets: Tensor, box_targets: Tensor, bins: int, value_range: int,
                 special_weight: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(SIoU, CE, per-box IoU, expectation-decoded box) of one (B, 4, V) prediction."""
    pred = decode_expectation(logits, bins, value_range)
    siou, iou = siou_loss(pred, box_targets)
    ce = weighted_cross_entropy(logits, ce_targets, bins, value_range, special_weight)
    return siou, ce, iou, pred


def _frame_level_targets(gt_xyxy: Tensor, bins: int, value_range: int) -> tuple[Tensor, Tensor]:
    """Stage-1/2 targets: tokens floor((clamp(c) + 0.5)*299) and the *quantised* box token/299 - 0.5 for SIoU."""
    tokens = quantize(gt_xyxy, bins, value_range)
    return tokens, decode_argmax_plain(tokens, bins, value_range).to(gt_xyxy.dtype)


def stage1_loss(logits: Tensor, gt_xyxy: Tensor, *, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE,
                giou_weight: float = 2.0, ce_weight: float = 2.0, special_weight: float = 0.1
                ) -> tuple[Tensor, dict[str, float]]:
    """FARTrackActor (frame-level pretraining): total = giou_weight*SIoU + ce_weight*CE = 2*SIoU + 2*CE.

    ``gt_xyxy`` (B, 4) is the search-crop box in normalised units.  The SIoU target is the quantised GT, decoded
    with the argmax-plain convention; the prediction is the expectation decode.
    """
    tokens, box_targets = _frame_level_targets(gt_xyxy, bins, value_range)
    siou, ce, iou, _ = _siou_and_ce(logits, tokens, box_targets, bins, value_range, special_weight)
    total = giou_weight * siou + ce_weight * ce
    stats = {"Loss/total": total.item(), "Loss/siou": siou.item(), "Loss/ce": ce.item(), "IoU": iou.mean().item()}
    return total, stats


def stage2_loss(layer_logits: Sequence[Tensor], gt_xyxy: Tensor, *, bins: int = DEFAULT_BINS,
                value_range: int = DEFAULT_RANGE, giou_weight: float = 2.0, ce_weight: float = 2.0,
                kl_weight: float = 0.01, special_weight: float = 0.1) -> tuple[Tensor, dict[str, float]]:
    """FARTrackDistillActor (layer-wise self-distillation).

    ``layer_logits``: the per-depth predictions ordered shallow -> deep, the final prediction last (officially 11:
    depths 5..14 from ``extra_list`` and then depth 15).  Each gets SIoU_i and CE_i with the stage-1 targets;
    KL_j = :func:`layer_kl` (student j, detached teacher j+1) for each adjacent pair.
    total = giou_weight*mean(SIoU) + ce_weight*mean(CE) + kl_weight*mean(KL) = 2*.. + 2*.. + 0.01*..
    (the actor's ``loss_weight['KL'] = 100`` is unused officially, so 0.01 is the effective weight).
    Stats hold the means, every per-layer term and the IoU of the deepest prediction.
    """
    if len(layer_logits) < 2:
        raise ValueError("stage2_loss needs at least two predictions (shallow -> deep)")
    tokens, box_targets = _frame_level_targets(gt_xyxy, bins, value_range)
    terms = [_siou_and_ce(logits, tokens, box_targets, bins, value_range, special_weight) for logits in layer_logits]
    sious = torch.stack([t[0] for t in terms])
    ces = torch.stack([t[1] for t in terms])
    kls = torch.stack([layer_kl(student, teacher, num_coord_classes(bins, value_range))
                       for student, teacher in zip(layer_logits[:-1], layer_logits[1:])])
    siou, ce, kl = sious.mean(), ces.mean(), kls.mean()
    total = giou_weight * siou + ce_weight * ce + kl_weight * kl
    stats = {"Loss/total": total.item(), "Loss/siou": siou.item(), "Loss/ce": ce.item(), "Loss/kl": kl.item(),
             "IoU": terms[-1][2].mean().item()}
    stats.update({f"Loss/siou_{i}": v for i, v in enumerate(sious.tolist())})
    stats.update({f"Loss/ce_{i}": v for i, v in enumerate(ces.tolist())})
    stats.update({f"Loss/kl_{j}": v for j, v in enumerate(kls.tolist())})
    return total, stats


def stage3_loss(logits: Tensor, gt_xyxy: Tensor, *, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE,
                giou_weight: float = 2.0, l1_weight: float = 0.0, ce_weight: float = 0.0,
                special_weight: float = 0.1) -> tuple[Tensor, dict[str, float]]:
    """FARTrackSparseActor sequence loss: total = giou_weight*SIoU + l1_weight*L1 + ce_weight*CE = 2*SIoU.

    ``gt_xyxy`` (B, 4): GT of each trained frame in normalised crop units (crop-pixel box / search size), *not*
    clamped -- the continuous target (c + 0.5)*299 is clamped to [0, 599.9999] instead (:func:`quantize_continuous`).
    CE uses its int cast; SIoU and L1 use the continuous value /299 - 0.5.  Official quirks kept as defaults:
    the CE weight is forced to 0 every step (set ``ce_weight`` to train with it) and L1_WEIGHT is 0; both terms are
    still computed and reported.  Invisible frames (all-zero GT) are not masked out, as officially.
    """
    continuous = quantize_continuous(gt_xyxy, bins, value_range)
    box_targets = decode_argmax_plain(continuous, bins, value_range)
    siou, ce, iou, pred = _siou_and_ce(logits, continuous.long(), box_targets, bins, value_range, special_weight)
    l1 = F.l1_loss(pred, box_targets)
    total = giou_weight * siou + l1_weight * l1 + ce_weight * ce
    stats = {"Loss/total": total.item(), "Loss/siou": siou.item(), "Loss/l1": l1.item(), "Loss/ce": ce.item(),
             "IoU": iou.mean().item()}
    return total, stats
