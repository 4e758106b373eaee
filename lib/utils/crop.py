"""Square target-centred crops, as the official trackers and frame-level processing take them (spec 6.1, 7).

``sample_target``: side = ceil(sqrt(w*h) * factor), top-left = round(centre - side/2) (Python's round, i.e.
half-to-even), zero padding outside the image, OpenCV bilinear resize to ``output_size``. The right/bottom padding
is computed as ``max(x2 - W + 1, 0)``, one pixel more than needed when the crop ends exactly at the image border
(the crop then loses the image's last column / row to a zero one); kept because the official boxes depend on it.
``sample_target_with_mask`` adds the padding mask the frame-level training processing checks (spec 6.1).

``siamfc_crop``: the sequence-training crop (spec 6.3), a SiamFC ``get_subwindow`` with mean-colour padding.
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


def sample_target_with_mask(image: np.ndarray, box_xywh: Sequence[float], factor: float, output_size: int
                            ) -> tuple[np.ndarray, float, np.ndarray]:
    """:func:`sample_target` plus the padding mask of the crop, as the official training processing builds it.

    The mask is a (side x side) float64 array, 1 on padding and 0 on image pixels (with the same one-pixel-too-many
    right/bottom padding as the crop), resized with OpenCV bilinear to ``output_size`` and cast to bool, so pixels
    next to the padding border count as padding too. Returns ``(crop, resize_factor, mask)``.
    """
    crop, resize_factor = sample_target(image, box_xywh, factor, output_size)
    x, y, w, h = (float(v) for v in box_xywh)
    side = crop_side(box_xywh, factor)
    x1 = round(x + 0.5 * w - side * 0.5)
    y1 = round(y + 0.5 * h - side * 0.5)
    height, width = image.shape[:2]
    x1_pad, y1_pad = max(0, -x1), max(0, -y1)
    x2_pad, y2_pad = max(x1 + side - width + 1, 0), max(y1 + side - height + 1, 0)
    mask = np.ones((side, side), dtype=np.float64)
    # An empty slice (window entirely outside the image) leaves the mask all padding, which is the truth.
    mask[y1_pad : side - y2_pad, x1_pad : side - x2_pad] = 0
    return crop, resize_factor, cv2.resize(mask, (output_size, output_size)).astype(bool)


def image_mean_colour(image: np.ndarray) -> np.ndarray:
    """Per-channel mean of an (H, W, C) image as a float64 (C,) array: the padding colour of :func:`siamfc_crop`."""
    return image.mean(axis=(0, 1))


def siamfc_crop(image: np.ndarray, centre_xy: Sequence[float], side: float, output_size: int,
                pad_value: Sequence[float] | np.ndarray) -> np.ndarray:
    """The sequence-training crop (spec 6.3): the classic SiamFC ``get_subwindow``.

    ``side`` is rounded to an integer ``sz`` (the official sides are already integers, ``ceil(...)``). With
    ``c = (sz + 1) / 2`` the window spans columns ``xmin = floor(cx - c + 0.5)`` .. ``xmax = xmin + sz - 1``
    (inclusive), likewise rows; e.g. ``sz = 4`` centred on ``cx = 10`` covers columns 8..11. Pixels outside the image
    take ``pad_value`` (the per-channel mean colour, :func:`image_mean_colour`), cast to the image dtype like the
    official assignment into a uint8 array (truncation). The (sz, sz) window is resized with OpenCV bilinear to
    ``output_size`` when the sizes differ. Returns an (output_size, output_size, C) array of the image dtype.
    """
    sz = round(float(side))
    if sz < 1:
        raise CropError(f"cannot take a SiamFC crop of side {side}")
    c = (sz + 1) / 2
    xmin = math.floor(float(centre_xy[0]) - c + 0.5)
    ymin = math.floor(float(centre_xy[1]) - c + 0.5)
    height, width = image.shape[:2]
    # Filling the window with the pad colour and pasting the overlapping image part is equivalent to the official
    # pad-the-whole-image-then-slice, without copying the full image.
    patch = np.empty((sz, sz, *image.shape[2:]), dtype=image.dtype)
    patch[...] = np.asarray(pad_value, dtype=np.float64).astype(image.dtype)
    ix1, iy1 = max(xmin, 0), max(ymin, 0)
    ix2, iy2 = min(xmin + sz, width), min(ymin + sz, height)
    if ix1 < ix2 and iy1 < iy2:
        patch[iy1 - ymin : iy2 - ymin, ix1 - xmin : ix2 - xmin] = image[iy1:iy2, ix1:ix2]
    if sz != output_size:
        patch = cv2.resize(patch, (output_size, output_size))
    return patch
