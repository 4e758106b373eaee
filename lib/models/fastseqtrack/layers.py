"""Decoder pieces of FastSeqTrack: the mask-free decoder layer and the shared embedding-to-word network.

The self-attention and the feed-forward network are timm's ``Attention`` and ``Mlp``; only the cross-attention,
whose queries (the 4 tracking tokens) and keys / values (the search features) are different sequences, is written
here, with the same projection layout and the fused ``scaled_dot_product_attention`` that timm uses.
"""
from __future__ import annotations

from functools import partial

import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Attention
from torch import Tensor, nn

#: LayerNorm of every FastSeqTrack module (timm / MAE ViTs use eps 1e-6).
LayerNorm = partial(nn.LayerNorm, eps=1e-6)


class CrossAttention(nn.Module):
    """Multi-head attention of the tracking tokens (queries) over the search features (keys and values).

    ``memory_pos`` (a fixed position code of the search grid) is added to the keys only, as in DETR-style
    decoders: it tells the queries *where* a feature is without changing *what* is read from it.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        """``x`` (B, Nq, C) queries, ``memory`` (B, Nk, C), ``memory_pos`` (1 or B, Nk, C) -> (B, Nq, C)."""
        batch, num_queries, dim = x.shape
        num_keys = memory.shape[1]

        def heads(t: Tensor, length: int) -> Tensor:
            return t.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

        q = heads(self.q(x), num_queries)
        k = heads(self.k(memory + memory_pos), num_keys)
        v = heads(self.v(memory), num_keys)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, num_queries, dim))


class DecoderLayer(nn.Module):
    """One pre-norm FastSeqTrack decoder layer over the 4 tracking tokens.

    1. mask-free self-attention among the 4 tracking tokens (every token sees the other three: the box is decoded
       in one pass, so there is no causal mask);
    2. cross-attention from the tracking tokens to the search features;
    3. a feed-forward network.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.self_attn = Attention(dim, num_heads, qkv_bias=True)
        self.norm2 = LayerNorm(dim)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm3 = LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.cross_attn(self.norm2(x), memory, memory_pos)
        return x + self.mlp(self.norm3(x))


class EmbeddingToWord(nn.Module):
    """The embedding-to-word network: LayerNorm, then an MLP from a token to the logits of the ``n_bins`` words.

    FastSeqTrack has *one* instance, applied at every exit (parameter-sharing exits); the softmax over the words is
    taken by the caller (training losses work on logits).
    """

    def __init__(self, dim: int, n_bins: int, num_layers: int = 3) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.norm = LayerNorm(dim)
        layers: list[nn.Module] = []
        for _ in range(num_layers - 1):
            layers += [nn.Linear(dim, dim), nn.ReLU()]
        layers.append(nn.Linear(dim, n_bins))
        self.mlp = nn.Sequential(*layers)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, 4, C) tracking tokens -> (B, 4, n_bins) logits."""
        return self.mlp(self.norm(tokens))
