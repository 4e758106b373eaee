"""The interface every training dataset implements (LaSOT, GOT-10k, TrackingNet, COCO and their LMDB variants).

A dataset is a list of sequences indexed ``0 .. len(dataset) - 1``. Image datasets (COCO) are lists of one-frame
sequences. Images come back as ``(H, W, 3)`` uint8 **RGB** arrays; boxes are float64 ``x, y, w, h`` in pixels.

``valid`` and ``visible`` follow the official (pytracking) loaders:

* LaSOT: valid = w > 0 and h > 0; visible = valid and not fully occluded and not out of view;
* GOT-10k: valid = w > 0 and h > 0; visible = valid and ``absence.label`` == 0 and ``cover.label`` > 0;
* TrackingNet: visible = valid = w > 0 and h > 0;
* COCO: visible = valid = w > 50 and h > 50 (samplers do not filter image datasets by it).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np


class TrainDatasetError(RuntimeError):
    """A training dataset root that is missing or does not follow the expected layout."""


class ImageReadError(RuntimeError):
    """An image file that is missing, truncated or cannot be decoded. Samplers count it and draw another sample."""


@dataclass(frozen=True)
class SequenceInfo:
    """Annotations of one sequence: ``bbox`` (N, 4) float64 x, y, w, h; ``valid`` and ``visible`` (N,) bool."""

    bbox: np.ndarray
    valid: np.ndarray
    visible: np.ndarray

    def __len__(self) -> int:
        return len(self.bbox)


class TrackingDataset(ABC):
    """A training dataset: sequences with per-frame boxes and images."""

    #: Short name used in logs and errors, e.g. ``"LaSOT"`` or ``"GOT-10k(vottrain)"``.
    name: str = ""
    #: False for image datasets (every sequence has one frame that samplers repeat).
    is_video: bool = True

    @abstractmethod
    def __len__(self) -> int:
        """Number of sequences."""

    @abstractmethod
    def sequence_name(self, seq_id: int) -> str:
        """A human-readable name of sequence ``seq_id`` (for logs and error messages)."""

    @abstractmethod
    def sequence_info(self, seq_id: int) -> SequenceInfo:
        """Boxes and visibility flags of every frame of sequence ``seq_id`` (may be cached)."""

    @abstractmethod
    def frames(self, seq_id: int, frame_ids: Sequence[int], info: SequenceInfo | None = None
               ) -> tuple[list[np.ndarray], np.ndarray]:
        """The RGB images of ``frame_ids`` and their boxes ``(len(frame_ids), 4)``.

        Raises :class:`ImageReadError` when an image cannot be read. Image datasets ignore the ids and return
        their single image (and box) once per requested id.
        """
