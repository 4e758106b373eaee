"""Template-token keep-masks of the sparse family (inter-frame autoregressive sparsification).

The network scores every template token by the attention it receives from the centre search token, summed
over all layers run and averaged over heads (``template_scores``, shape (B, T, P)). These pure functions turn
scores into boolean keep-masks (True = token kept) exactly as the official code does (spec 3.5):

* training (once per sequence): in template slots ``0 .. T-2`` the ``int(P * prune_ratio)`` lowest-scoring
  tokens are removed, the newest slot ``T-1`` is kept whole (official: 12 of 49 removed, 197 tokens left);
* inference (every frame): a mask for the newest template only, the ``int(P * prune_ratio)`` lowest removed
  (official: ratio 0.25 -> 37 of 49 kept). The tracker stores it with that template and reuses it whenever the
  template sits in a slot later on.
"""
from __future__ import annotations

import torch
from torch import Tensor

def num_pruned(num_tokens: int, prune_ratio: float) -> int:
    """Number of tokens removed from a template of ``num_tokens`` tokens (official ``int(P * ratio)``)."""
    if not 0.0 <= prune_ratio < 1.0:
        raise ValueError(f"prune ratio must be in [0, 1), got {prune_ratio}")
    return int(num_tokens * prune_ratio)


def keep_highest(scores: Tensor, prune_ratio: float) -> Tensor:
    """Keep-mask over the last dim of ``scores``: the ``int(P * prune_ratio)`` lowest entries are False."""
    removed = num_pruned(scores.shape[-1], prune_ratio)
    keep = torch.ones_like(scores, dtype=torch.bool)
    if removed:
        lowest = scores.topk(removed, dim=-1, largest=False).indices
        keep.scatter_(-1, lowest, False)
    return keep


def training_keep_mask(template_scores: Tensor, prune_ratio: float = 0.25) -> Tensor:
    """(B, T, P) scores -> (B, T, P) keep-mask: slots 0..T-2 pruned, the newest slot T-1 kept whole."""
    keep = keep_highest(template_scores, prune_ratio)
    keep[:, -1] = True
    return keep


def inference_keep_mask(newest_scores: Tensor, prune_ratio: float = 0.25) -> Tensor:
    """(B, P) scores of the newest template -> its (B, P) keep-mask."""
    return keep_highest(newest_scores, prune_ratio)


def token_keep_vector(template_keep: Tensor, num_other_tokens: int) -> Tensor:
    """(B, T, P) template keep-mask -> (B, T*P + num_other_tokens) per-token key mask (search/command kept)."""
    batch = template_keep.shape[0]
    others = template_keep.new_ones(batch, num_other_tokens)
    return torch.cat([template_keep.reshape(batch, -1), others], dim=1)
