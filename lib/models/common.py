"""What the FARTrack and FastSeqTrack networks share: the token grids of the crops and the template input check."""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor

TemplateInput = Union[Tensor, Sequence[Tensor]]


class CropGeometry:
    """Token grids of square template / search crops; mixed into the frozen spec dataclasses of both networks,
    which define ``patch_size``, ``template_size`` and ``search_size``."""

    patch_size: int
    template_size: int
    search_size: int

    @property
    def template_grid(self) -> int:
        return self.template_size // self.patch_size

    @property
    def search_grid(self) -> int:
        return self.search_size // self.patch_size

    @property
    def tokens_per_template(self) -> int:
        return self.template_grid**2

    @property
    def num_search_tokens(self) -> int:
        return self.search_grid**2


def stack_templates(templates: TemplateInput, num_templates: int, template_size: int) -> Tensor:
    """Accept (B, T, 3, h, w) or a list of T tensors (B, 3, h, w); check T and the crop size against the spec."""
    if not isinstance(templates, Tensor):
        templates = torch.stack(list(templates), dim=1)
    expected = (num_templates, 3, template_size, template_size)
    if templates.dim() != 5 or tuple(templates.shape[1:]) != expected:
        raise ValueError(f"templates must be (B, {', '.join(map(str, expected))}), got {tuple(templates.shape)}")
    return templates
