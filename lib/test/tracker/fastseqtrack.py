"""Online FastSeqTrack tracker (paper section 3.3, "Inference"), pytracking contract, RGB uint8 frames:

    tracker.initialize(image, {"init_bbox": [x, y, w, h]})
    out = tracker.track(image)   # {"target_bbox": [x, y, w, h], "best_score": float, "exit": int}

Per frame: crop the search region (``TEST.SEARCH_FACTOR``, ``TEST.SEARCH_SIZE``) around the current box; encode it
with the templates -- the initial one and, with ``DATA.TEMPLATE.NUMBER`` 2, a dynamic one; decode the 4 tracking
tokens layer by layer and stop at the first exit whose score is above ``MODEL.DECODER.TAU``
(:meth:`~lib.models.fastseqtrack.network.FastSeqTrackNetwork.track`), with the probabilities multiplied by the 1-D
Hanning window (``TEST.WINDOW_WEIGHT``; a motion prior on the centre); map the ``(cx, cy, w, h)`` words back to the
image and clip the box (``clip_box``, margin 10) as the FARTrack trackers do; every ``TEST.UPDATE_INTERVAL`` frames
(paper: 1) replace the dynamic template with a crop (``TEST.TEMPLATE_FACTOR``, ``TEST.TEMPLATE_SIZE``) around the
new box.

``best_score`` is the confidence of the exit taken: the mean over the 4 coordinates of the largest penalised
probability, in [0, 1], whichever ``MODEL.DECODER.EXIT_SCORE`` reading compares it with tau (the "sum" exit score
is 4 x this mean), so confidence thresholds such as the OpenCV-style wrapper's keep their scale; ``exit`` is its index: 0 = before the first decoder layer, ``l`` = after layer ``l``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from lib.models.fastseqtrack.network import NUM_TRACK_TOKENS, FastSeqTrackNetwork, hanning_window
from lib.test.tracker.backends import normalise_crop
from lib.utils.box_ops import checked_init_box, clip_box, map_box_back
from lib.utils.crop import sample_target


@dataclass(frozen=True)
class FastSeqTrackParams:
    """Test-time settings, from ``cfg.TEST``, ``cfg.DATA`` and ``cfg.MODEL.DECODER.TAU``."""

    template_factor: float = 4.0
    template_size: int = 256
    search_factor: float = 4.0
    search_size: int = 256
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    num_templates: int = 2
    update_interval: int = 1
    tau: float = 1.6
    window_weight: float = 1.0
    window_on_size: bool = False
    clip_margin: int = 10

    @classmethod
    def from_config(cls, cfg: Any) -> "FastSeqTrackParams":
        test = cfg.TEST
        return cls(template_factor=test.TEMPLATE_FACTOR, template_size=test.TEMPLATE_SIZE,
                   search_factor=test.SEARCH_FACTOR, search_size=test.SEARCH_SIZE, mean=tuple(cfg.DATA.MEAN),
                   std=tuple(cfg.DATA.STD), num_templates=cfg.DATA.TEMPLATE.NUMBER,
                   update_interval=test.UPDATE_INTERVAL, tau=cfg.MODEL.DECODER.TAU,
                   window_weight=test.WINDOW_WEIGHT, window_on_size=test.WINDOW_ON_SIZE)


class FastSeqTrackTracker:
    """The FastSeqTrack tracker around a :class:`FastSeqTrackNetwork` (run in eval mode where it lives)."""

    #: ``lib.test.evaluation.running`` writes the per-frame ``exit`` of trackers that set this.
    records_exits = True

    def __init__(self, net: FastSeqTrackNetwork, params: FastSeqTrackParams = FastSeqTrackParams()) -> None:
        spec = net.spec
        if params.num_templates != spec.num_templates:
            raise ValueError(f"the tracker uses {params.num_templates} templates but the network takes "
                             f"{spec.num_templates}")
        if (params.template_size, params.search_size) != (spec.template_size, spec.search_size):
            raise ValueError(f"crop sizes {params.template_size} / {params.search_size} differ from the network's "
                             f"{spec.template_size} / {spec.search_size}")
        self.net = net.eval()
        self.params = params
        self.device = next(net.parameters()).device
        self.window = hanning_window(spec.n_bins, params.window_weight, params.window_on_size, self.device)
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(params.mean, dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(params.std, dtype=torch.float32, device=self.device).view(shape)
        self.state: list[float] = []
        self.frame_id = 0
        self.initial_template: Optional[Tensor] = None  # (P, C) tokens of the first frame's template
        self.dynamic_template: Optional[Tensor] = None  # (P, C) tokens of the latest template

    # ------------------------------------------------------------------ helpers
    def _preprocess(self, crop: np.ndarray) -> Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, H, W) float, /255, ImageNet-normalised (as the training processing)."""
        return normalise_crop(crop, self.mean, self.std)

    @torch.inference_mode()
    def _template_tokens(self, image: np.ndarray, box: Sequence[float]) -> Tensor:
        """Crop a template around ``box`` and embed it once: its (P, C) patch tokens with position embedding."""
        crop, _ = sample_target(image, box, self.params.template_factor, self.params.template_size)
        return self.net.backbone.embed_templates(self._preprocess(crop).unsqueeze(1))[0, 0]

    def _slot_tokens(self) -> Tensor:
        """(1, T, P, C) template tokens: the initial template, then the dynamic one when two are used."""
        assert self.initial_template is not None and self.dynamic_template is not None
        slots = [self.initial_template, self.dynamic_template][: self.params.num_templates]
        return torch.stack(slots).unsqueeze(0)

    # ------------------------------------------------------------------ pytracking contract
    def initialize(self, image: np.ndarray, info: dict) -> dict:
        box = checked_init_box(info["init_bbox"])
        self.initial_template = self._template_tokens(image, box)
        self.dynamic_template = self.initial_template  # the dynamic slot starts as a copy of the initial template
        self.state = box
        self.frame_id = 0
        return {"target_bbox": list(box)}

    @torch.inference_mode()
    def track(self, image: np.ndarray, info: Optional[dict] = None) -> dict:
        """Track one frame (``info`` is part of the pytracking signature and not used)."""
        if self.initial_template is None:
            raise RuntimeError("call initialize() before track()")
        height, width = image.shape[:2]
        self.frame_id += 1
        params = self.params
        crop, resize_factor = sample_target(image, self.state, params.search_factor, params.search_size)
        decision = self.net.track(None, self._preprocess(crop), tau=params.tau, window=self.window,
                                  template_tokens=self._slot_tokens())
        pred = (decision.box[0] * params.search_size / resize_factor).tolist()  # cx, cy, w, h in image pixels
        self.state = clip_box(map_box_back(self.state, pred, resize_factor, params.search_size), height, width,
                              margin=params.clip_margin)
        if params.num_templates > 1 and self.frame_id % params.update_interval == 0:
            self.dynamic_template = self._template_tokens(image, self.state)
        confidence = float(decision.score[0]) / (NUM_TRACK_TOKENS if self.net.spec.exit_score == "sum" else 1)
        return {"target_bbox": list(self.state), "best_score": confidence,
                "exit": int(decision.exit[0])}
