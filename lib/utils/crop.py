"""Square target-centred crops, as the official trackers and frame-level processing take them (spec 6.1, 7).

``sample_target``: side = ceil(sqrt(w*h) * factor), top-left = round(centre - side/2) (Python's round, i.e.
half-to-even), zero padding outside the image, OpenCV bilinear resize to ``output_size``. The right/bottom padding
is computed as ``max(x2 - W + 1, 0)``, one pixel more than needed when the crop ends exactly at the image border
(the crop then loses the image's last column / row to a zero one); kept because the official boxes depend on it.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np


class CropError(ValueError):
    """The box cannot be cropped (zero, negative or non-finite size)."""


def crop_side(box_xywh: Sequence[float], factor: float) -> int:
    """Side of the square crop around ``box_xywh`` in image pixels: ceil(sqrt(w*h) * factor)."""
    w, h = float(box_xywh[2]), float(box_xywh[3])
    if not (math.isfinite(w) and math.isfinite(h)) or w <= 0 or h <= 0:
        raise CropError(f"cannot crop around a box of size {w} x {h}: width and height must be positive")
    side = math.ceil(math.sqrt(w * h) * factor)
    if side < 1:
        raise CropError(f"box {list(box_xywh)} is too small to crop (side {side})")
    return side


def sample_target(image: np.ndarray, box_xywh: Sequence[float], factor: float, output_size: int
                  ) -> tuple[np.ndarray, float]:
    """Crop the square region of side ``ceil(sqrt(w*h)*factor)`` centred on the box, resized to ``output_size``.

    Returns the (output_size, output_size, C) crop (image dtype) and ``resize_factor = output_size / side``.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    side = crop_side(box_xywh, factor)
    x1 = round(x + 0.5 * w - side * 0.5)
    y1 = round(y + 0.5 * h - side * 0.5)
    x2, y2 = x1 + side, y1 + side
    height, width = image.shape[:2]
    x1_pad, y1_pad = max(0, -x1), max(0, -y1)
    x2_pad, y2_pad = max(x2 - width + 1, 0), max(y2 - height + 1, 0)
    patch = image[y1 + y1_pad : y2 - y2_pad, x1 + x1_pad : x2 - x2_pad]
    if patch.size == 0:  # the window misses the image entirely (possible only for a bad initial box)
        patch = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
    else:
        patch = cv2.copyMakeBorder(patch, y1_pad, y2_pad, x1_pad, x2_pad, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(patch, (output_size, output_size)), output_size / side
