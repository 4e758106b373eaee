"""Online FARTrack trackers for the three families, equivalent to the official ones (spec section 7).

pytracking contract, RGB uint8 frames:

    tracker.initialize(image, {"init_bbox": [x, y, w, h]})
    out = tracker.track(image)   # {"target_bbox": [x, y, w, h], "best_score": float}

Per frame: crop the search region (factor 4, 224) around the current box; run the network on the 5 template slots
and the crop; decode the four coordinate tokens (family-specific, see ``DECODES``); map the box back to the image and
clip it (``clip_box``, margin 10); crop a new template (factor 2, 112) around it and store it; refill the slots
(``template_memory``). The sparse family also stores, with each template, the keep-mask the network computed when
that template was the newest, and prunes the template tokens with it whenever the template is in a slot.

``best_score`` is ours (the official trackers return none): the mean over the four coordinates of the largest
softmax probability over the vocabulary, i.e. the mean confidence of the greedy tokens, in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from lib.models.fartrack.network import FARTrackNetwork
from lib.test.tracker.backends import InferenceOptions, NetworkBackend, TorchBackend
from lib.test.tracker.template_memory import oldest_needed, slot_indices
from lib.utils.box_ops import checked_init_box, clip_box, map_box_back
from lib.utils.crop import sample_target
from lib.utils.tokens import decode_argmax_plain, decode_sparse_tracker, greedy_tokens


def decode_plain(logits: Tensor, bins: int, value_range: int) -> Tensor:
    """fartrack / distill trackers: greedy token over all ids, c = token / (bins - 1) - 0.5."""
    tokens, _ = greedy_tokens(logits)
    return decode_argmax_plain(tokens, bins, value_range)


#: Decodes of (B, 4, V) logits to normalised x1 y1 x2 y2: ``plain`` (official fartrack / distill trackers) and
#: ``sparse`` (the official sparse tracker's, spec 7).
DECODES: dict[str, Callable[[Tensor, int, int], Tensor]] = {"plain": decode_plain, "sparse": decode_sparse_tracker}


@dataclass(frozen=True)
class TrackerParams:
    """Test-time sizes (``cfg.TEST``), normalisation (``cfg.DATA``), and the family's decode and early-frame
    template schedule (:data:`DECODES`, :func:`~lib.test.tracker.template_memory.slot_indices`; set by the family
    record)."""

    template_factor: float = 2.0
    template_size: int = 112
    search_factor: float = 4.0
    search_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    template_sampling: str = "exponential"
    clip_margin: int = 10
    decode: str = "plain"
    template_schedule: str = "mode1"

    def __post_init__(self) -> None:
        if self.decode not in DECODES:
            raise ValueError(f"unknown decode {self.decode!r}; choose one of {', '.join(DECODES)}")

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> "TrackerParams":
        test = cfg.TEST
        return cls(**{**dict(template_factor=test.TEMPLATE_FACTOR, template_size=test.TEMPLATE_SIZE,
                             search_factor=test.SEARCH_FACTOR, search_size=test.SEARCH_SIZE,
                             mean=tuple(cfg.DATA.MEAN), std=tuple(cfg.DATA.STD)), **overrides})


@dataclass
class FrameRequest:
    """What one tracker asks the network for one frame (:meth:`FARTrackTracker.prepare`)."""

    image: np.ndarray
    #: What the backend keeps for the template in each slot, oldest first.
    templates: list[Any]
    search_crop: np.ndarray
    #: Sparse family: the (1, T, P) keep-mask of the slots' templates; None otherwise.
    template_keep: Optional[Tensor]
    resize_factor: float


class FARTrackTracker:
    """One tracker for every family: ``params`` carries the decode and template schedule, the backend says whether
    template tokens are pruned.

    ``net`` is a :class:`FARTrackNetwork` (run by a :class:`TorchBackend` with ``options``; default the fast path)
    or any :class:`NetworkBackend`, such as the ONNX Runtime one.
    """

    def __init__(self, net: Union[FARTrackNetwork, NetworkBackend], params: TrackerParams = TrackerParams(),
                 options: InferenceOptions = InferenceOptions()) -> None:
        if isinstance(net, FARTrackNetwork):
            net = TorchBackend(net, options, mean=params.mean, std=params.std)
        self.backend = net
        self.params = params
        self.decode = DECODES[params.decode]
        self.sparse = net.prunes_templates
        self.spec = net.spec
        self.num_slots = net.spec.num_templates
        self.state: list[float] = []
        self.frame_id = 0
        # stored index -> what the backend keeps for that template and, sparse only, its keep-mask
        self.templates: dict[int, Any] = {}
        self.template_masks: dict[int, Tensor] = {}
        self.num_stored = 0
        self.slots: list[int] = []

    # ------------------------------------------------------------------ helpers
    def _store_template(self, image: np.ndarray, box: Sequence[float]) -> None:
        crop, _ = sample_target(image, box, self.params.template_factor, self.params.template_size)
        self.templates[self.num_stored] = self.backend.encode_template(crop)
        self.num_stored += 1
        self.slots = slot_indices(self.num_stored, self.num_slots, self.params.template_schedule,
                                  self.params.template_sampling)
        # Forget templates no later frame can select (slot indices never decrease); keeps memory bounded by use.
        keep_from = oldest_needed(self.num_stored, self.num_slots, self.params.template_sampling)
        for index in [i for i in self.templates if 0 < i < keep_from]:
            del self.templates[index]
            self.template_masks.pop(index, None)

    def slot_keep(self) -> Optional[Tensor]:
        """Sparse family: the (1, T, P) keep-mask of the templates in the slots (all-True until known)."""
        if not self.sparse:
            return None
        known = [self.template_masks[i] for i in self.slots if i in self.template_masks]
        # Masks stay where the backend made them (no per-frame host/device copies).
        full = torch.ones(self.spec.tokens_per_template, dtype=torch.bool, device=known[0].device if known else None)
        return torch.stack([self.template_masks.get(i, full) for i in self.slots]).unsqueeze(0)

    # ------------------------------------------------------------------ pytracking contract
    def initialize(self, image: np.ndarray, info: dict) -> dict:
        box = checked_init_box(info["init_bbox"])
        self.templates.clear()
        self.template_masks.clear()
        self.num_stored = 0
        self.frame_id = 0
        self._store_template(image, box)
        self.state = box
        return {"target_bbox": list(box)}

    def track(self, image: np.ndarray, info: Optional[dict] = None) -> dict:
        """Track one frame (``info`` is part of the pytracking signature and not used)."""
        request = self.prepare(image)
        logits, newest_keep = self.backend.run(request.templates, request.search_crop, request.template_keep)
        return self.complete(request, logits, newest_keep)

    # ------------------------------------------------------------------ one frame in two halves (lockstep batches)
    def prepare(self, image: np.ndarray) -> FrameRequest:
        """First half of :meth:`track`: the network inputs of the next frame (the search crop around the current
        box, the slots' templates and keep-mask). :mod:`lib.test.tracker.lockstep` batches them across trackers."""
        self.frame_id += 1
        params = self.params
        crop, resize_factor = sample_target(image, self.state, params.search_factor, params.search_size)
        return FrameRequest(image, [self.templates[i] for i in self.slots], crop, self.slot_keep(), resize_factor)

    @torch.no_grad()
    def complete(self, request: FrameRequest, logits: Tensor, newest_keep: Optional[Tensor]) -> dict:
        """Second half of :meth:`track`: decode this tracker's (1, 4, V) ``logits``, update the box and the template
        memory (``newest_keep``: the sparse family's keep-mask of the newest slot's template)."""
        height, width = request.image.shape[:2]
        params, spec = self.params, self.spec
        box = self.decode(logits, spec.bins, spec.value_range).view(-1, 4).mean(dim=0)  # x1 y1 x2 y2, crop units
        confidence = logits.softmax(dim=-1).amax(dim=-1).mean()
        resize_factor = request.resize_factor
        # One device-to-host transfer per frame for the box and the score.
        *pred, confidence = torch.cat([self._official_cxcywh(box) * params.search_size / resize_factor,
                                       confidence.view(1)]).tolist()
        self.state = clip_box(map_box_back(self.state, pred, resize_factor, params.search_size), height, width,
                              margin=params.clip_margin)
        if self.sparse:
            # The mask belongs to the template that sat in the newest slot during this forward.
            self.template_masks.setdefault(self.slots[-1], newest_keep)
        self._store_template(request.image, self.state)
        return {"target_bbox": list(self.state), "best_score": confidence}

    def sibling(self) -> "FARTrackTracker":
        """A new tracker over the same backend and parameters (one per sequence of a lockstep batch)."""
        return FARTrackTracker(self.backend, self.params)

    @staticmethod
    def _official_cxcywh(box: Tensor) -> Tensor:
        """x1 y1 x2 y2 -> cx cy w h with the official float32 operation order (w = x2 - x1, cx = x1 + w / 2)."""
        w, h = box[2] - box[0], box[3] - box[1]
        return torch.stack([box[0] + w / 2, box[1] + h / 2, w, h])
