"""Adapter from a FARTrack tracker to the ``got10k`` toolkit's ``Tracker`` interface.

    from got10k.experiments import ExperimentGOT10k
    from lib.api import build_tracker
    from lib.test.tracker.got10k_adapter import GOT10kTracker

    tracker = GOT10kTracker(build_tracker(checkpoint="FARTrackSparse_ep0015.pth.tar"))
    experiment = ExperimentGOT10k("data/got10k", subset="val", result_dir="results", report_dir="reports")
    experiment.run(tracker)
    experiment.report([tracker.name])

The toolkit opens every frame with PIL and calls ``init(image, box)`` on the first one and ``update(image)`` on the
others; ``box`` and the returned boxes are ``[x, y, w, h]`` (top-left corner, pixels). The tracker is deterministic,
so the toolkit runs each sequence once instead of three times. The toolkit itself is an optional dependency
(``pip install got10k six``, part of the ``dev`` extra).
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

try:
    from got10k.trackers import Tracker as _Got10kTracker
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the got10k adapter needs the got10k toolkit: pip install got10k==0.1.3 six (or pip install -e '.[dev]')"
    ) from _error

from lib.families import get_family
from lib.test.tracker.fartrack import FARTrackTracker

__all__ = ["GOT10kTracker", "default_name", "to_rgb_array"]


def default_name(tracker: FARTrackTracker) -> str:
    """A results-folder-safe name describing ``tracker``: the network class, the depth run and the inference path.

    For example ``FARTrackSparse_depth15_fast``; the depth is left out when the backend does not expose it (ONNX).
    """
    net = getattr(tracker.backend, "net", None)
    parts = [net.net_type if net is not None else get_family(tracker.backend.family).net_class_name]
    if net is not None and hasattr(net, "depth"):
        parts.append(f"depth{net.depth}")
    options = getattr(tracker.backend, "options", None)
    if options is not None:
        parts.append(options.name.replace("+", "-"))
    return "_".join(parts)


def to_rgb_array(image: object) -> np.ndarray:
    """A PIL image (any mode) or an (H, W, 3) uint8 RGB array as a contiguous (H, W, 3) uint8 RGB array."""
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL.Image without importing PIL here
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image, dtype=np.uint8)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got shape {image.shape} dtype {image.dtype}")
        return np.ascontiguousarray(image)
    raise TypeError(f"expected a PIL image or an (H, W, 3) uint8 RGB array, got {type(image).__name__}")


class GOT10kTracker(_Got10kTracker):
    """A :class:`FARTrackTracker` behind the got10k toolkit's ``init`` / ``update`` interface.

    Args:
        tracker: the tracker to run, e.g. from :func:`lib.api.build_tracker`.
        name: the name the toolkit files the results under; default :func:`default_name`.

    ``last_score`` holds the ``best_score`` of the latest ``update`` (NaN after ``init``), since the toolkit's
    interface has no place for it.
    """

    def __init__(self, tracker: FARTrackTracker, name: Optional[str] = None) -> None:
        if not hasattr(tracker, "initialize") or not hasattr(tracker, "track"):
            raise TypeError(f"expected a tracker with initialize / track (FARTrackTracker), "
                            f"got {type(tracker).__name__}")
        resolved = default_name(tracker) if name is None else str(name)
        if not resolved or any(sep in resolved for sep in ("/", "\\")):
            raise ValueError(f"the tracker name is used as a folder name and must be non-empty without slashes, "
                             f"got {resolved!r}")
        super().__init__(name=resolved, is_deterministic=True)
        self.tracker = tracker
        self.last_score = float("nan")

    def init(self, image: object, box: Union[np.ndarray, list, tuple]) -> None:
        """Start tracking the target at ``box`` ``[x, y, w, h]`` in ``image`` (PIL image or RGB array)."""
        values = np.asarray(box, dtype=np.float64).reshape(-1)
        if values.shape != (4,):
            raise ValueError(f"the initial box must have 4 values x, y, w, h, got {box!r}")
        self.tracker.initialize(to_rgb_array(image), {"init_bbox": values.tolist()})
        self.last_score = float("nan")

    def update(self, image: object) -> np.ndarray:
        """Track one frame; returns the box ``[x, y, w, h]`` as a float64 array of shape (4,)."""
        out = self.tracker.track(to_rgb_array(image))
        self.last_score = float(out.get("best_score", float("nan")))
        return np.asarray(out["target_bbox"], dtype=np.float64)
