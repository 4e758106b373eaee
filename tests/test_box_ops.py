"""Box conversions and the tracker's clip_box (spec section 7.2, step 6)."""
import numpy as np
import pytest
import torch

from lib.utils.box_ops import (box_cxcywh_to_xyxy, box_xywh_to_xyxy, box_xyxy_to_cxcywh, box_xyxy_to_xywh,
                               checked_init_box, clip_box, map_box_back)


def test_conversions_round_trip_with_leading_dims():
    xywh = torch.tensor([[[10.0, 20.0, 30.0, 40.0]], [[0.0, 0.0, 1.0, 2.0]]])
    xyxy = box_xywh_to_xyxy(xywh)
    assert xyxy.shape == (2, 1, 4)
    assert xyxy[0, 0].tolist() == [10.0, 20.0, 40.0, 60.0]
    assert torch.equal(box_xyxy_to_xywh(xyxy), xywh)
    assert box_xyxy_to_cxcywh(xyxy)[0, 0].tolist() == [25.0, 40.0, 30.0, 40.0]
    assert torch.equal(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(xyxy)), xyxy)


def test_clip_box_inside_is_unchanged():
    assert clip_box([10.0, 20.0, 30.0, 40.0], H=100, W=200) == [10.0, 20.0, 30.0, 40.0]


def test_clip_box_clamps_corners_and_keeps_margin():
    # x2 = 250 -> 200, y1 = -5 -> 0
    assert clip_box([150.0, -5.0, 100.0, 50.0], H=100, W=200) == [150.0, 0.0, 50.0, 45.0]
    # box completely right of / below the image: x1 -> W - 10, x2 -> W, size margin
    assert clip_box([500.0, 300.0, 20.0, 20.0], H=100, W=200) == [190.0, 90.0, 10.0, 10.0]
    # tiny box at the origin: x2 raised to the margin
    assert clip_box([0.0, 0.0, 2.0, 3.0], H=100, W=200) == [0.0, 0.0, 10.0, 10.0]
    # inverted box (x2 < x1) gets width margin
    assert clip_box([50.0, 50.0, -20.0, 5.0], H=100, W=200, margin=4) == [50.0, 50.0, 4.0, 5.0]


def test_map_box_back_is_relative_to_the_previous_centre():
    # previous centre (30, 50); crop side 8 / 2 = 4 image px, so its top-left corner is at (28, 48)
    assert map_box_back([10, 20, 40, 60], [3, 4, 2, 2], resize_factor=2.0, search_size=8) == [30.0, 51.0, 2, 2]
    # a prediction at the crop centre keeps the previous centre
    x, y, w, h = map_box_back([10, 20, 40, 60], [2, 2, 6, 8], resize_factor=2.0, search_size=8)
    assert (x + w / 2, y + h / 2) == (30.0, 50.0)


def test_checked_init_box_accepts_valid_boxes_and_rejects_the_rest():
    assert checked_init_box((1, 2.5, 3, 4)) == [1.0, 2.5, 3.0, 4.0]
    assert all(type(v) is float for v in checked_init_box(np.array([1, 2, 3, 4])))
    for bad in ([1, 2, 3], [1, 2, 0, 4], [1, 2, 3, -1], [float("nan"), 2, 3, 4], [1, 2, float("inf"), 4]):
        with pytest.raises(ValueError, match="initial box"):
            checked_init_box(bad)
