"""Frame-level training processing (stages 1 and 2): the official ``STARKProcessing`` in mode 'sequence' (spec 6.1).

One call turns the full-resolution template and search frames of a sample into normalised crops and boxes:

1. joint transform, one roll shared by every template and search image: grayscale (p = 0.05), then horizontal flip
   of the full image and its box (p = 0.5, pytracking corner convention ``x' = (W - 1) - (x + w)``);
2. per image: jitter the GT box (templates use the TEMPLATE jitters, search images the SEARCH ones), crop around the
   jittered box (:func:`lib.utils.crop.sample_target_with_mask`) and map the *GT* box into the crop;
3. per image, each with its own roll: brightness jitter, horizontal flip of the crop and its normalised box
   (p = 0.5), ImageNet mean/std normalisation;
4. validity: the sample is rejected (``None``) when a crop side is < 1, or a crop's padding mask, or the mask's
   nearest downsampling to the token grid, is entirely padding. The checks run on the (possibly flipped) mask as the
   official code does.

All randomness comes from the ``numpy.random.Generator`` passed in, so a sample is reproducible from its seed.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lib.utils.crop import sample_target_with_mask


class FrameProcessing:
    """Crops, boxes and augmentations of one frame-level training sample (see the module docstring).

    ``__call__`` returns a dict with ``template_images`` (T, 3, ts, ts) and ``search_images`` (S, 3, ss, ss) float32
    normalised images, ``template_anno`` (T, 4) and ``search_anno`` (S, 4) float32 GT boxes ``x, y, w, h`` in
    units of the crop size, or ``None`` for an invalid sample (the sampler then draws another one).
    """

    def __init__(self, template_size: int, search_size: int, template_factor: float, search_factor: float,
                 template_center_jitter: float, template_scale_jitter: float, search_center_jitter: float,
                 search_scale_jitter: float, mean: Sequence[float], std: Sequence[float], patch_size: int = 16,
                 grayscale_prob: float = 0.05, joint_flip_prob: float = 0.5, brightness_jitter: float = 0.2,
                 crop_flip_prob: float = 0.5) -> None:
        self.template_size = int(template_size)
        self.search_size = int(search_size)
        self.template_factor = float(template_factor)
        self.search_factor = float(search_factor)
        self.template_center_jitter = float(template_center_jitter)
        self.template_scale_jitter = float(template_scale_jitter)
        self.search_center_jitter = float(search_center_jitter)
        self.search_scale_jitter = float(search_scale_jitter)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.patch_size = int(patch_size)
        self.grayscale_prob = float(grayscale_prob)
        self.joint_flip_prob = float(joint_flip_prob)
        self.brightness_jitter = float(brightness_jitter)
        self.crop_flip_prob = float(crop_flip_prob)

    @classmethod
    def from_config(cls, cfg: Any) -> "FrameProcessing":
        """Build from ``cfg.DATA.{TEMPLATE,SEARCH}.*``, ``cfg.DATA.MEAN/STD`` and ``cfg.MODEL.BACKBONE.STRIDE``."""
        data = cfg.DATA
        return cls(template_size=data.TEMPLATE.SIZE, search_size=data.SEARCH.SIZE,
                   template_factor=data.TEMPLATE.FACTOR, search_factor=data.SEARCH.FACTOR,
                   template_center_jitter=data.TEMPLATE.CENTER_JITTER,
                   template_scale_jitter=data.TEMPLATE.SCALE_JITTER,
                   search_center_jitter=data.SEARCH.CENTER_JITTER, search_scale_jitter=data.SEARCH.SCALE_JITTER,
                   mean=data.MEAN, std=data.STD, patch_size=cfg.MODEL.BACKBONE.STRIDE)

    def __call__(self, template_images: Sequence[np.ndarray], template_boxes: np.ndarray,
                 search_images: Sequence[np.ndarray], search_boxes: np.ndarray, rng: np.random.Generator
                 ) -> dict[str, Tensor] | None:
        """Process one sample: RGB uint8 (H, W, 3) images and their (N, 4) pixel boxes ``x, y, w, h``."""
        # The joint roll is drawn once and applied to the templates and reused for the search images.
        grayscale = rng.random() < self.grayscale_prob
        flip = rng.random() < self.joint_flip_prob
        out: dict[str, Tensor] = {}
        groups = (("template", template_images, template_boxes, self.template_size, self.template_factor,
                   self.template_center_jitter, self.template_scale_jitter),
                  ("search", search_images, search_boxes, self.search_size, self.search_factor,
                   self.search_center_jitter, self.search_scale_jitter))
        for name, images, boxes, size, factor, center_jitter, scale_jitter in groups:
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            images, boxes = zip(*(joint_transform(image, box, grayscale, flip) for image, box in zip(images, boxes)))
            jittered = [jitter_box(box, center_jitter, scale_jitter, rng) for box in boxes]
            # All sides are checked before any crop, as officially (a degenerate box invalidates the sample).
            if not all(_croppable(box, factor) for box in jittered):
                return None
            crops, annos = [], []
            for image, box, jittered_box in zip(images, boxes, jittered):
                crop, resize_factor, mask = sample_target_with_mask(image, jittered_box, factor, size)
                anno = box_in_crop(box, jittered_box, resize_factor, size)
                tensor, anno, mask = self._transform_crop(crop, anno, mask, rng)
                if not self._mask_ok(mask, size):
                    return None
                crops.append(tensor)
                annos.append(anno)
            out[f"{name}_images"] = torch.stack(crops)
            out[f"{name}_anno"] = torch.from_numpy(np.stack(annos).astype(np.float32))
        return out

    def _transform_crop(self, crop: np.ndarray, anno: np.ndarray, mask: np.ndarray, rng: np.random.Generator
                        ) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """Per-image transforms with an independent roll: brightness, flip (crop, box and mask), normalisation."""
        low = max(0.0, 1.0 - self.brightness_jitter)
        brightness = rng.uniform(low, 1.0 + self.brightness_jitter)
        image = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float()
        image = image.mul(brightness / 255.0).clamp(0.0, 1.0)
        if rng.random() < self.crop_flip_prob:
            image = image.flip(-1)
            anno = flip_normalised_box(anno)
            mask = mask[:, ::-1]
        return (image - self.mean) / self.std, anno, mask

    def _mask_ok(self, mask: np.ndarray, size: int) -> bool:
        """False when the crop, or its nearest downsampling to the token grid, is entirely padding."""
        if mask.all():
            return False
        grid = size // self.patch_size
        mask_t = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
        return not F.interpolate(mask_t, size=grid).bool().all().item()


def joint_transform(image: np.ndarray, box: np.ndarray, grayscale: bool, flip: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The joint (per-sample) transform of one full image and its box: grayscale, then horizontal flip."""
    if grayscale:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        image = np.stack([gray, gray, gray], axis=2)
    if flip:
        # pytracking flips the corners x and x + w to W - 1 - c, so the new left corner is W - 1 - (x + w).
        image = np.ascontiguousarray(image[:, ::-1])
        box = np.array([image.shape[1] - 1 - (box[0] + box[2]), box[1], box[2], box[3]])
    return image, box


def jitter_box(box: np.ndarray, center_jitter: float, scale_jitter: float, rng: np.random.Generator
               ) -> np.ndarray:
    """Official ``_get_jittered_box``: size * exp(N(0,1) * scale_jitter), centre + (U - 0.5) * sqrt(w'h') * cj."""
    size = box[2:4] * np.exp(rng.standard_normal(2) * scale_jitter)
    area = size[0] * size[1]
    # A negative area (bad GT box) gives a NaN box, which the side check then rejects.
    max_offset = math.sqrt(area) * center_jitter if area >= 0 else math.nan
    centre = box[0:2] + 0.5 * box[2:4] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([centre - 0.5 * size, size])


def box_in_crop(box: np.ndarray, crop_box: np.ndarray, resize_factor: float, output_size: int) -> np.ndarray:
    """Official ``transform_image_to_crop`` (normalised): the GT ``box`` in a crop centred on ``crop_box``.

    The crop centre sits at ``(output_size - 1) / 2``; the result is divided by ``output_size``.
    """
    crop_centre = crop_box[0:2] + 0.5 * crop_box[2:4]
    centre = (output_size - 1) / 2 + (box[0:2] + 0.5 * box[2:4] - crop_centre) * resize_factor
    wh = box[2:4] * resize_factor
    return np.concatenate([centre - 0.5 * wh, wh]) / output_size


def flip_normalised_box(box: np.ndarray) -> np.ndarray:
    """Horizontal flip of a normalised box: the corners x and x + w map to 1 - c, so x' = 1 - x - w."""
    return np.array([1.0 - box[0] - box[2], box[1], box[2], box[3]])


def _croppable(box: np.ndarray, factor: float) -> bool:
    """True when ``ceil(sqrt(w*h) * factor)`` is a finite side >= 1 (and the box is finite with w, h > 0; the
    official code only checks the side, which would accept a box with both w and h negative)."""
    w, h = float(box[2]), float(box[3])
    if not np.isfinite(box).all() or w <= 0 or h <= 0:
        return False
    side = math.sqrt(w * h) * factor
    return math.isfinite(side) and math.ceil(side) >= 1
