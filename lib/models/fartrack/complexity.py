"""Parameter and MAC counts of a FARTrack network (what is counted is stated next to every number).

* ``paper_param_count``: the paper's way (thop on the executed Conv / Linear / LayerNorm modules): the patch
  embedding plus the blocks that run; embeddings, position embeddings, ``identity`` and ``output_bias`` excluded.
* ``count_macs``: one forward (batch 1) under ``torch.utils.flop_counter.FlopCounterMode``, split into the
  projections (Linear layers, patch-embedding conv, vocabulary head) -- what thop and the paper count -- and the
  attention products (q k^T and attn v), which thop does not see.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from lib.models.fartrack.network import FARTrackNetwork
from lib.models.onednn import flop_formulas

_PROJECTION_OPS = {"mm", "addmm", "convolution", "_convolution", "_linear_pointwise"}
_ATTENTION_OPS = {"bmm", "baddbmm"}


def paper_param_count(net: FARTrackNetwork, depth: Optional[int] = None) -> int:
    """Patch embedding + the first ``depth`` layers (one LayerNorm pair per block, as executed)."""
    depth = net.depth if depth is None else depth
    total = sum(p.numel() for p in net.backbone.patch_embed.parameters())
    for layer in net.backbone.layers[:depth]:
        total += sum(p.numel() for name, p in layer.named_parameters() if not name.startswith("masknorm"))
    return total


@dataclass
class MacCount:
    """Multiply-accumulates of one forward, batch 1."""

    tokens: int  # sequence length entering the first block
    projection_macs: int  # Linear layers + patch-embedding conv + vocabulary head (the paper's / thop's count)
    attention_macs: int  # q k^T and attn v
    other_macs: int  # anything else the counter saw

    @property
    def total_macs(self) -> int:
        return self.projection_macs + self.attention_macs + self.other_macs

    def as_dict(self) -> dict:
        return {**asdict(self), "total_macs": self.total_macs}


def count_macs(net: FARTrackNetwork, kept_per_template: Optional[list[int]] = None) -> MacCount:
    """MACs of one forward at batch 1; ``kept_per_template`` (sparse family) = tokens kept in each slot.

    Pruned tokens are physically dropped (eval mode), so the count reflects the shorter sequence. Attention
    is counted with the explicit implementation (same arithmetic as any fused kernel, which the counter may not
    see on every device).
    """
    spec = net.spec
    param = next(net.parameters())
    templates = torch.zeros(1, spec.num_templates, 3, spec.template_size, spec.template_size, device=param.device)
    search = torch.zeros(1, 3, spec.search_size, spec.search_size, device=param.device)
    keep = None
    template_tokens = spec.num_templates * spec.tokens_per_template
    if kept_per_template is not None:
        if len(kept_per_template) != spec.num_templates:
            raise ValueError(f"kept_per_template needs {spec.num_templates} entries")
        keep = torch.zeros(1, spec.num_templates, spec.tokens_per_template, dtype=torch.bool, device=param.device)
        for slot, kept in enumerate(kept_per_template):
            keep[0, slot, :kept] = True
        template_tokens = sum(kept_per_template)
    was_training, attention, drop = net.training, net.attention, net.drop_pruned_tokens
    net.eval()
    net.attention = "explicit"
    net.drop_pruned_tokens = True
    counter = FlopCounterMode(display=False, custom_mapping=flop_formulas())
    try:
        with torch.no_grad(), counter:
            net(templates, search, template_keep=keep)
    finally:
        net.train(was_training)
        net.attention = attention
        net.drop_pruned_tokens = drop
    by_op = {str(op).split(".")[-1]: flops for op, flops in counter.get_flop_counts()["Global"].items()}
    projection = sum(f for op, f in by_op.items() if op in _PROJECTION_OPS) // 2
    attention = sum(f for op, f in by_op.items() if op in _ATTENTION_OPS) // 2
    other = sum(by_op.values()) // 2 - projection - attention
    tokens = template_tokens + spec.num_search_tokens + spec.num_command_tokens
    return MacCount(tokens=tokens, projection_macs=projection, attention_macs=attention, other_macs=other)
