"""Several FARTrack trackers advanced one frame per step with one network call (lockstep batches).

Each tracker keeps its own box, template memory and keep-masks; only the network call is shared.
:meth:`FARTrackTracker.prepare` gives the inputs of each tracker's next frame. :func:`run_network` stacks them
into one batch. :meth:`FARTrackTracker.complete` decodes each tracker's row. A batch of one is exactly
:meth:`FARTrackTracker.track`.

Two users:

* :class:`MultiTargetTracker`: several targets of one video (``lib.api.track_many``);
* :func:`lib.test.evaluation.lockstep.track_lockstep`: many benchmark sequences at once (``tracking/test.py
  --batch N``).

Backends without ``run_batch`` (the ONNX Runtime graph has a batch of 1) run the rows one after another, with the
same results.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from lib.test.tracker.fartrack import FARTrackTracker, FrameRequest


def run_network(backend, requests: Sequence[FrameRequest]) -> tuple[Tensor, list[Optional[Tensor]]]:
    """The network outputs of ``requests`` (one per tracker, all over ``backend``): (B, 4, V) logits and the B
    newest keep-masks (None for families without template sparsification)."""
    templates = [request.templates for request in requests]
    crops = [request.search_crop for request in requests]
    keeps = [request.template_keep for request in requests]
    sparse = keeps[0] is not None
    run_batch = getattr(backend, "run_batch", None)
    if run_batch is None:
        outputs = [backend.run(*inputs) for inputs in zip(templates, crops, keeps)]
        return torch.cat([logits for logits, _ in outputs]), [keep for _, keep in outputs]
    logits, newest = run_batch(templates, crops, [keep[0] for keep in keeps] if sparse else None)
    return logits, newest if newest is not None else [None] * len(requests)


def step(trackers: Sequence[FARTrackTracker], images: Sequence[np.ndarray]) -> list[dict]:
    """Advance each tracker by its frame in ``images`` with one network call; their ``track`` outputs."""
    if len(trackers) != len(images):
        raise ValueError(f"{len(trackers)} trackers but {len(images)} frames")
    backend = trackers[0].backend
    if any(tracker.backend is not backend for tracker in trackers):
        raise ValueError("trackers of one lockstep step must share one backend (FARTrackTracker.sibling)")
    requests = [tracker.prepare(image) for tracker, image in zip(trackers, images)]
    logits, newest = run_network(backend, requests)
    return [tracker.complete(request, logits[row : row + 1], newest[row])
            for row, (tracker, request) in enumerate(zip(trackers, requests))]


class MultiTargetTracker:
    """Several targets of one video, tracked with one network call per frame.

    >>> multi = MultiTargetTracker(tracker)            # any FARTrackTracker: its backend and parameters are shared
    >>> multi.initialize(frame, [[x, y, w, h], ...])   # one box per target
    >>> outs = multi.track(next_frame)                 # one {"target_bbox", "best_score"} per target, same order

    Every target is tracked exactly as a single tracker would track it alone (each has its own template memory).
    """

    def __init__(self, tracker: FARTrackTracker) -> None:
        if not isinstance(tracker, FARTrackTracker):
            raise TypeError(f"lockstep tracking needs a FARTrackTracker, got {type(tracker).__name__} (FastSeqTrack's "
                            "early exits run one sequence per call)")
        self.prototype = tracker
        self.trackers: list[FARTrackTracker] = []

    def initialize(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> list[dict]:
        if len(boxes) == 0:
            raise ValueError("give at least one target box")
        self.trackers = [self.prototype.sibling() for _ in boxes]
        return [tracker.initialize(image, {"init_bbox": list(box)}) for tracker, box in zip(self.trackers, boxes)]

    def track(self, image: np.ndarray) -> list[dict]:
        if not self.trackers:
            raise RuntimeError("call initialize() before track()")
        return step(self.trackers, [image] * len(self.trackers))
