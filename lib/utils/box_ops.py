"""Pure box helpers.

Tensor conversions accept any leading shape ``(..., 4)``.  Formats: ``xyxy`` (corners), ``xywh`` (top-left corner,
width, height) and ``cxcywh`` (centre, width, height).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor
from torchvision.ops import box_convert


def box_xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(x, y, w, h) -> (x1, y1, x2, y2) with x2 = x + w, y2 = y + h."""
    return box_convert(boxes, "xywh", "xyxy")


def box_xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """(x1, y1, x2, y2) -> (x1, y1, x2 - x1, y2 - y1)."""
    return box_convert(boxes, "xyxy", "xywh")


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(cx, cy, w, h) -> (cx - w/2, cy - h/2, cx + w/2, cy + h/2)."""
    return box_convert(boxes, "cxcywh", "xyxy")


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """(x1, y1, x2, y2) -> ((x1 + x2)/2, (y1 + y2)/2, x2 - x1, y2 - y1)."""
    return box_convert(boxes, "xyxy", "cxcywh")


def checked_init_box(box_xywh: Sequence[float]) -> list[float]:
    """A tracker's initial box (x, y, w, h) as 4 Python floats; ValueError unless finite with positive w and h."""
    box = [float(v) for v in box_xywh]
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"initial box must be [x, y, w, h] with positive finite w and h, got {list(box_xywh)}")
    return box


def overlaps_image(box_xywh: Sequence[float], width: float, height: float) -> bool:
    """Whether an (x, y, w, h) box shares any area with a width x height image."""
    x, y, w, h = (float(v) for v in box_xywh)
    return x < width and y < height and x + w > 0 and y + h > 0


def clip_box(box_xywh: Sequence[float], H: float, W: float, margin: float = 10) -> list[float]:
    """Clip a tracker state box (x, y, w, h) to an H x W image, as the official trackers do after every frame.

    x1 is clamped to [0, W - margin] and x2 = x1 + w (computed before clamping) to [margin, W], likewise in y;
    the returned size is w = max(margin, x2 - x1), h = max(margin, y2 - y1), so the box keeps at least ``margin``
    pixels of extent and stays inside the image.  Python floats in, a new list of 4 floats out.
    """
    x1, y1, w, h = (float(v) for v in box_xywh)
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0.0, x1), W - margin)
    x2 = min(max(float(margin), x2), W)
    y1 = min(max(0.0, y1), H - margin)
    y2 = min(max(float(margin), y2), H)
    return [x1, y1, max(float(margin), x2 - x1), max(float(margin), y2 - y1)]


def map_box_back(state_xywh: Sequence[float], pred_cxcywh: Sequence[float], resize_factor: float,
                 search_size: int) -> list[float]:
    """A box predicted in a search crop centred on the previous state -> image (x, y, w, h), as the official trackers.

    ``pred_cxcywh`` is in crop pixels rescaled to image units (``pred * search_size / resize_factor``); the crop's
    top-left corner sits half a crop side (``0.5 * search_size / resize_factor``) before the previous centre.
    """
    cx_prev = state_xywh[0] + 0.5 * state_xywh[2]
    cy_prev = state_xywh[1] + 0.5 * state_xywh[3]
    cx, cy, w, h = pred_cxcywh
    half_side = 0.5 * search_size / resize_factor
    cx_real = cx + (cx_prev - half_side)
    cy_real = cy + (cy_prev - half_side)
    return [cx_real - 0.5 * w, cy_real - 0.5 * h, w, h]
