"""Transformer layers of the FARTrack ViT, built on timm's ``Block`` / ``Attention`` / ``Mlp``.

One block class serves every family. What differs per family is passed in:

* dense families (``fartrack``, ``fartrack_distill``) use ``norm1`` / ``norm2`` (LayerNorm, eps 1e-6) and no mask;
* the sparse family owns two extra LayerNorms, ``masknorm1`` / ``masknorm2`` (eps 1e-5, parameters at
  ``masknormK.norm.*`` as in the official state_dict) and uses them *instead of* ``norm1`` / ``norm2`` on every
  forward, with a per-token key mask (official spec, section 3.5).

Attention can run three ways with the same parameters:

* ``explicit``: softmax(q k^T / sqrt(d)) v written out, the official arithmetic (default: faithful outputs);
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` (fast path);
* ``onednn``: two oneDNN products per head (``lib.models.onednn``; CPU fast path).

Each can also return the attention row of one query token (the sparse family's pruning score), which is
all the official code uses of the full attention maps it accumulates.
"""
from __future__ import annotations

from functools import partial
from typing import Optional

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Attention, Block
from torch import Tensor, nn

from lib.models.onednn import onednn_attention

ATTENTION_IMPLS = ("explicit", "sdpa", "onednn")


class MaskedLayerNorm(nn.Module):
    """LayerNorm over ``x * keep``: kept tokens get a plain LayerNorm, removed tokens get exactly ``bias``.

    The official sparse blocks wrap an ``nn.LayerNorm`` (default eps 1e-5) this way; the wrapped module is
    called ``norm`` so the parameters load from ``masknormK.norm.weight`` / ``.bias``.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: Tensor, keep: Optional[Tensor] = None) -> Tensor:
        if keep is not None:
            x = x * keep.unsqueeze(-1).to(x.dtype)
        return self.norm(x)


class FARTrackAttention(Attention):
    """timm ``Attention`` (qkv / proj Linear layers) with key masking and an optional attention row output."""

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        key_keep: Optional[Tensor] = None,
        score_query: Optional[int] = None,
        impl: str = "explicit",
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Attend over ``x`` (B, N, C).

        Args:
            key_keep: optional (B, N) bool, False = this token is never attended to (logit set to -inf).
            score_query: index of a query token whose post-softmax attention row (B, heads, N) is returned.
            impl: ``explicit`` (official arithmetic), ``sdpa`` or ``onednn``.
        Returns:
            the attention output (B, N, C) and the requested attention row (or None).
        """
        batch, num_tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, num_tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        score_row = None
        if impl == "onednn":
            if self.training and self.attn_drop.p > 0:
                raise ValueError("onednn attention is an inference path: it has no attention dropout")
            out, score_row = onednn_attention(q, k, v, self.scale, key_keep=key_keep, score_query=score_query)
            return self.proj_drop(self.proj(out)), score_row
        if impl == "explicit":
            # scale is 1/8 for head_dim 64, a power of two: scaling q first is bit-identical to scaling q k^T.
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if key_keep is not None:
                attn = attn.masked_fill(~key_keep[:, None, None, :], float("-inf"))
            attn = attn.softmax(dim=-1)
            if score_query is not None:
                score_row = attn[:, :, score_query]
            out = self.attn_drop(attn) @ v
        elif impl == "sdpa":
            mask = None if key_keep is None else key_keep[:, None, None, :]
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.attn_drop.p if self.training else 0.0
            )
            if score_query is not None:
                logits = (q[:, :, score_query : score_query + 1] * self.scale) @ k.transpose(-2, -1)
                if mask is not None:
                    logits = logits.masked_fill(~mask, float("-inf"))
                score_row = logits.softmax(dim=-1).squeeze(2)
        else:
            raise ValueError(f"unknown attention implementation {impl!r}; choose one of {ATTENTION_IMPLS}")
        out = out.transpose(1, 2).reshape(batch, num_tokens, dim)
        return self.proj_drop(self.proj(out)), score_row


class FARTrackBlock(Block):
    """Pre-norm ViT block: h + DropPath(Attn(LN1(h))), then h + DropPath(MLP(LN2(h))).

    With ``masked_norm=True`` (sparse family) the block also owns ``masknorm1`` / ``masknorm2`` and uses them in
    place of ``norm1`` / ``norm2``; ``norm1`` / ``norm2`` stay in the state_dict (checkpoint layout) unused.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        drop_path: float,
        masked_norm: bool,
        norm_eps: float = 1e-6,
        masked_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__(
            dim,
            num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            drop_path=drop_path,
            norm_layer=partial(nn.LayerNorm, eps=norm_eps),
            mlp_layer=Mlp,
            attn_layer=FARTrackAttention,
        )
        self.masked_norm = masked_norm
        if masked_norm:
            self.masknorm1 = MaskedLayerNorm(dim, eps=masked_norm_eps)
            self.masknorm2 = MaskedLayerNorm(dim, eps=masked_norm_eps)
            # Official state_dict order puts each masknormK right after normK.
            names = list(self._modules)
            for k in (1, 2):
                names.remove(f"masknorm{k}")
                names.insert(names.index(f"norm{k}") + 1, f"masknorm{k}")
            for name in names:
                self._modules[name] = self._modules.pop(name)

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        key_keep: Optional[Tensor] = None,
        score_query: Optional[int] = None,
        impl: str = "explicit",
    ) -> tuple[Tensor, Optional[Tensor]]:
        if self.masked_norm:
            h1, h2 = partial(self.masknorm1, keep=key_keep), partial(self.masknorm2, keep=key_keep)
        else:
            if key_keep is not None:
                raise ValueError("key masking needs the masked LayerNorms of the sparse family")
            h1, h2 = self.norm1, self.norm2
        attn_out, score_row = self.attn(h1(x), key_keep=key_keep, score_query=score_query, impl=impl)
        x = x + self.drop_path1(self.ls1(attn_out))
        x = x + self.drop_path2(self.ls2(self.mlp(h2(x))))
        return x, score_row


def block_drop_path_rates(num_blocks: int, num_extension: int, drop_path_rate: float) -> list[float]:
    """Stochastic-depth rates: linspace over the main blocks; the extension blocks reuse the *first* rates.

    That reuse is an official quirk (spec 9) kept for training fidelity.
    """
    main = torch.linspace(0, drop_path_rate, num_blocks).tolist()
    return main + main[:num_extension]
