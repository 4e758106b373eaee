"""A benchmark sequence: frame paths plus ground truth, the pytracking record the runner and the analysis share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np


@dataclass
class Sequence:
    """One test sequence.

    ``ground_truth_rect`` is ``(N, 4)`` float64 ``x, y, w, h`` (top-left corner), frame 0 first; NaN rows are
    kept (UAV123). On test splits (GOT-10k test, TrackingNet) only row 0 is known, so it is ``(1, 4)``.
    ``target_visible`` is set for LaSOT and LaSOT_ext only: ``full_occlusion == 0 and out_of_view == 0``.
    """

    name: str
    frames: list[str]
    ground_truth_rect: np.ndarray
    dataset: str
    target_visible: Optional[np.ndarray] = None
    object_class: Optional[str] = None

    def init_bbox(self) -> list[float]:
        """The ground-truth box of frame 0 as python floats ``[x, y, w, h]``."""
        return [float(v) for v in self.ground_truth_rect[0]]

    def __len__(self) -> int:
        return len(self.frames)


class SequenceList(list):
    """A list of :class:`Sequence` that can be narrowed down by name."""

    def names(self) -> list[str]:
        """The sequence names, in order."""
        return [seq.name for seq in self]

    def select(self, names: Iterable[str]) -> "SequenceList":
        """The sequences called ``names``, in the given order; ``KeyError`` names the unknown ones."""
        by_name = {seq.name: seq for seq in self}
        wanted = list(names)
        unknown = [name for name in wanted if name not in by_name]
        if unknown:
            raise KeyError(f"unknown sequence(s): {', '.join(unknown)}")
        return SequenceList(by_name[name] for name in wanted)
