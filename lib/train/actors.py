"""Actors: turn a batch into the losses of one training stage (official ``FARTrack*Actor``, spec 5 and 6.3).

An actor returns its work as a list of *loss parts* (:meth:`Actor.loss_parts`): callables that each run a forward
pass and return ``(loss, stats)``. The trainer calls ``backward`` on each part in turn and then takes one optimiser
step, so gradients of the parts add up. Frame-level actors (stages 1 and 2) have one part per batch; the sequence
actor (stage 3) first explores the batch of sequences with the model's own predictions and then has one part per
sequence (the official update sums the gradients of the 8 sequences).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import box_iou

from lib.models.fartrack.network import FARTrackNetwork
from lib.models.fartrack.sparsify import training_keep_mask
from lib.train.losses import stage1_loss, stage2_loss, stage3_loss
from lib.utils.box_ops import box_xywh_to_xyxy
from lib.utils.crop import image_mean_colour, siamfc_crop
from lib.utils.tokens import decode_argmax_plain, greedy_tokens

LossPart = Callable[[], tuple[Tensor, dict[str, float]]]

#: Official gradient-clipping norms: frame-level trainers use TRAIN.GRAD_CLIP_NORM (0.1), the sequence trainer 100.
SEQUENCE_GRAD_CLIP_NORM = 100.0
#: Smallest box side the sequence exploration lets a prediction shrink to (official clip of w, h to [10, size]).
MIN_EXPLORE_BOX_SIDE = 10.0


def unwrap(net: nn.Module) -> FARTrackNetwork:
    """The FARTrack network inside a DistributedDataParallel / DataParallel wrapper."""
    while isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        net = net.module
    return net  # type: ignore[return-value]


class Actor:
    """Base class: holds the (possibly DDP-wrapped) network, the config, the device and the official actor class
    name (``actor_type``, stored in checkpoints; given by the family record)."""

    def __init__(self, net: nn.Module, cfg: Any, device: torch.device, *, actor_type: str) -> None:
        self.actor_type = actor_type
        self.net = net
        self.cfg = cfg
        self.device = torch.device(device)
        self.bins = cfg.MODEL.BINS
        self.value_range = cfg.MODEL.RANGE

    @property
    def grad_clip_norm(self) -> float:
        return float(self.cfg.TRAIN.GRAD_CLIP_NORM)

    def train(self, mode: bool = True) -> None:
        self.net.train(mode)

    def loss_parts(self, batch: Any) -> list[LossPart]:
        raise NotImplementedError


class FrameActor(Actor):
    """Stage 1 (``FARTrackActor``: 2*SIoU + 2*CE) and, with ``layer_losses``, stage 2 (``FARTrackDistillActor``:
    per-depth terms + KL over the network's ``layer_logits``)."""

    def __init__(self, net: nn.Module, cfg: Any, device: torch.device, *, actor_type: str,
                 layer_losses: bool) -> None:
        super().__init__(net, cfg, device, actor_type=actor_type)
        self.layer_losses = layer_losses
        if layer_losses and unwrap(net).layer_heads_from is None:
            raise ValueError(f"{actor_type} needs a network with intermediate heads (layer_heads_from)")

    def loss_parts(self, batch: dict[str, Tensor]) -> list[LossPart]:
        return [lambda: self.compute_loss(batch)]

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        templates = batch["template_images"].to(self.device, non_blocking=True)
        search = batch["search_images"][:, 0].to(self.device, non_blocking=True)
        gt_xyxy = box_xywh_to_xyxy(batch["search_anno"][:, 0].to(self.device, non_blocking=True))
        out = self.net(templates, search)
        weights = dict(bins=self.bins, value_range=self.value_range, giou_weight=self.cfg.TRAIN.GIOU_WEIGHT)
        if self.layer_losses:
            return stage2_loss(out["layer_logits"], gt_xyxy, **weights)
        return stage1_loss(out["logits"], gt_xyxy, **weights)


@dataclass
class ExploredSequence:
    """What the exploration of one sequence stores for the update (official ``explore`` output, spec 6.3)."""

    templates: Tensor  # (T, 3, ts, ts) normalised crops around the GT of the template frames
    search: Tensor  # (F, 3, ss, ss) normalised search crops of frames 1..F (F = num search frames - 1)
    template_keep: Tensor  # (F, T, P) keep-mask *input* at each frame: all True at frame 1, the pruned mask after
    gt_crop_xywh: Tensor  # (F, 4) GT box in search-crop pixels (zeros where the GT is empty)
    iou: Tensor  # (F,) IoU of the explored prediction with the GT, in image coordinates


class SequenceActor(Actor):
    """Stage 3 (``FARTrackSparseActor``): explore a batch of sequences with the model, then one loss per sequence.

    Exploration (no gradients, eval mode): templates are SiamFC crops (side ceil(sqrt(2w*2h)), mean-colour padding)
    around the GT of the template frames; frame 0 of the search frames initialises the state with its GT; every
    later frame is cropped (side ceil(sqrt(4w*4h))) around the previous *predicted* centre. The template keep-mask
    is computed once per batch from the frame-1 attention (:func:`training_keep_mask`) and reused for frames 2..
    The argmax prediction (c = token/299 - 0.5) drives the next crop; its centre is clipped to the image and its
    size to [10, image size].

    Update (train mode): for each sequence, its frames as one batch with the stored crops and keep-masks, loss
    :func:`stage3_loss` (2*SIoU; CE weight ``TRAIN.SEQ_CE_WEIGHT``, officially forced to 0) on the GT in crop
    pixels / search size.
    """

    def __init__(self, net: nn.Module, cfg: Any, device: torch.device, *, actor_type: str) -> None:
        super().__init__(net, cfg, device, actor_type=actor_type)
        if not unwrap(net).template_scores:
            raise ValueError(f"{actor_type} needs a network with template scores (template sparsification)")
        data = cfg.DATA
        self.template_size = data.TEMPLATE.SIZE
        self.search_size = data.SEARCH.SIZE
        self.template_factor = data.TEMPLATE.FACTOR
        self.search_factor = data.SEARCH.FACTOR
        self.mean = torch.tensor(data.MEAN, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(data.STD, dtype=torch.float32).view(3, 1, 1)
        self.train_prune_ratio = cfg.MODEL.SPARSE.TRAIN_PRUNE_RATIO

    @property
    def grad_clip_norm(self) -> float:
        return SEQUENCE_GRAD_CLIP_NORM

    def loss_parts(self, batch: list[dict[str, Any]]) -> list[LossPart]:
        explored = self.explore(batch)
        mean_iou = float(torch.cat([seq.iou for seq in explored]).mean())
        return [lambda seq=seq: self.sequence_loss(seq, explore_iou=mean_iou) for seq in explored]

    # ------------------------------------------------------------------ exploration
    def _normalise(self, crop: np.ndarray) -> Tensor:
        image = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div_(255.0)
        return (image - self.mean) / self.std

    def _crop(self, image: np.ndarray, centre: tuple[float, float], side: float, size: int) -> Tensor:
        return self._normalise(siamfc_crop(image, centre, side, size, image_mean_colour(image)))

    @torch.no_grad()
    def explore(self, batch: list[dict[str, Any]]) -> list[ExploredSequence]:
        net = unwrap(self.net)
        was_training = net.training
        net.eval()
        try:
            return self._explore(net, batch)
        finally:
            net.train(was_training)

    def _explore(self, net: FARTrackNetwork, batch: list[dict[str, Any]]) -> list[ExploredSequence]:
        templates = torch.stack([
            torch.stack([
                self._crop(image, _centre(box), _crop_side(box[2], box[3], self.template_factor), self.template_size)
                for image, box in zip(seq["template_images"], np.asarray(seq["template_boxes"], dtype=np.float64))
            ])
            for seq in batch
        ]).to(self.device)
        num_frames = len(batch[0]["search_images"])
        if num_frames < 2 or any(len(seq["search_images"]) != num_frames for seq in batch):
            raise ValueError("every sequence of a batch needs the same number (>= 2) of search frames")
        gt = [np.asarray(seq["search_boxes"], dtype=np.float64) for seq in batch]
        state = [[*_centre(boxes[0]), boxes[0][2], boxes[0][3]] for boxes in gt]  # cx, cy, w, h of frame 0's GT
        spec = net.spec
        full = torch.ones(len(batch), spec.num_templates, spec.tokens_per_template, dtype=torch.bool, device=self.device)

        keep: Optional[Tensor] = None
        crops, inputs_keep, gt_crop, ious = [], [], [], []
        for frame in range(1, num_frames):
            windows = [(s[0], s[1], _crop_side(s[2], s[3], self.search_factor)) for s in state]
            search = torch.stack([
                self._crop(seq["search_images"][frame], (cx, cy), side, self.search_size)
                for seq, (cx, cy, side) in zip(batch, windows)
            ]).to(self.device)
            out = net(templates, search, template_keep=keep)
            inputs_keep.append(full if keep is None else keep)
            if keep is None:  # official: only an all-True input mask produces a new one, i.e. once, at frame 1
                keep = training_keep_mask(out["template_scores"], self.train_prune_ratio)
            tokens, _ = greedy_tokens(out["logits"])
            coords = decode_argmax_plain(tokens, self.bins, self.value_range).double().cpu().numpy()
            frame_gt, frame_pred = [], []
            for b, (seq, (cx, cy, side)) in enumerate(zip(batch, windows)):
                height, width = seq["search_images"][frame].shape[:2]
                x1, y1, x2, y2 = coords[b] * side + np.array([cx, cy, cx, cy]) - side / 2
                frame_pred.append([x1, y1, x2, y2])
                state[b] = [
                    min(max((x1 + x2) / 2, 0.0), width),
                    min(max((y1 + y2) / 2, 0.0), height),
                    min(max(x2 - x1, MIN_EXPLORE_BOX_SIDE), width),
                    min(max(y2 - y1, MIN_EXPLORE_BOX_SIDE), height),
                ]
                frame_gt.append(gt_in_crop(gt[b][frame], (cx, cy), side, self.search_size))
            crops.append(search)
            gt_crop.append(torch.tensor(frame_gt, dtype=torch.float32))
            frame_gt_image = box_xywh_to_xyxy(torch.from_numpy(np.stack([boxes[frame] for boxes in gt])))
            ious.append(_paired_iou(torch.tensor(frame_pred), frame_gt_image))
        return [
            ExploredSequence(
                templates=templates[b],
                search=torch.stack([c[b] for c in crops]),
                template_keep=torch.stack([k[b] for k in inputs_keep]),
                gt_crop_xywh=torch.stack([g[b] for g in gt_crop]),
                iou=torch.stack([i[b] for i in ious]),
            )
            for b in range(len(batch))
        ]

    # ------------------------------------------------------------------ update
    def sequence_loss(self, seq: ExploredSequence, explore_iou: Optional[float] = None
                      ) -> tuple[Tensor, dict[str, float]]:
        """The official per-sequence update loss: the sequence's frames as one batch, stored crops and masks."""
        frames = seq.search.shape[0]
        templates = seq.templates.unsqueeze(0).expand(frames, *seq.templates.shape)
        out = self.net(templates, seq.search, template_keep=seq.template_keep)
        gt_xyxy = box_xywh_to_xyxy(seq.gt_crop_xywh.to(self.device)) / self.search_size
        train = self.cfg.TRAIN
        loss, stats = stage3_loss(out["logits"], gt_xyxy, bins=self.bins, value_range=self.value_range,
                                  giou_weight=train.GIOU_WEIGHT, l1_weight=train.L1_WEIGHT,
                                  ce_weight=train.SEQ_CE_WEIGHT)
        stats["IoU/explore"] = float(seq.iou.mean()) if explore_iou is None else explore_iou
        return loss, stats


def gt_in_crop(box_xywh: np.ndarray, centre: tuple[float, float], side: float, size: int) -> list[float]:
    """The GT box in search-crop pixels (official: (corner - window centre) * size / side + size / 2), as x, y, w, h.

    An empty or non-finite GT (invisible target) becomes all zeros, as officially (spec 6.3). The official centre
    is ``size / 2`` (112), not ``(size - 1) / 2`` as in the frame-level crops.
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    if not all(map(math.isfinite, (x, y, w, h))) or w <= 0 or h <= 0:
        return [0.0, 0.0, 0.0, 0.0]
    scale = size / side
    x1 = (x - centre[0]) * scale + size / 2
    y1 = (y - centre[1]) * scale + size / 2
    return [x1, y1, w * scale, h * scale]


def _paired_iou(pred_xyxy: Tensor, gt_xyxy: Tensor) -> Tensor:
    """IoU of each predicted box with its GT (0 where the GT is empty)."""
    valid = (gt_xyxy[:, 2] > gt_xyxy[:, 0]) & (gt_xyxy[:, 3] > gt_xyxy[:, 1])
    ordered = torch.stack([pred_xyxy[:, :2].minimum(pred_xyxy[:, 2:]), pred_xyxy[:, :2].maximum(pred_xyxy[:, 2:])],
                          dim=1).flatten(1)
    iou = box_iou(ordered.double(), gt_xyxy.double()).diagonal()
    return torch.where(valid, iou, torch.zeros_like(iou)).float()


def _centre(box_xywh: np.ndarray) -> tuple[float, float]:
    x, y, w, h = (float(v) for v in box_xywh[:4])
    return x + w / 2, y + h / 2


def _crop_side(w: float, h: float, factor: float) -> int:
    """Official sequence-training window side ceil(sqrt(factor*w * factor*h))."""
    return math.ceil(math.sqrt(factor * w * factor * h))
