"""oneDNN kernels for CPU inference: the tracker's linear layers and attention products.

Why: PyTorch runs a float32 ``nn.Linear`` on the CPU through the BLAS it was built with (MKL on x86), while
oneDNN picks its JIT kernels from the instruction set the CPU reports. On the AMD EPYC (Zen 5 class) this project
is developed on, MKL's sgemm reaches about half the AVX-512 peak and oneDNN about twice MKL on the tracker's
products (445 x 192 x 768 and the like; ``tracking/profile_model.py`` measures the whole effect); on an Intel Xeon
with AMX the two are equal in fp32, so the fast path's ``auto`` times both on the machine at hand
(``lib.test.tracker.calibration``) rather than assuming either. The kernel is
``torch.ops.mkldnn._linear_pointwise``, the op ``torch.compile``'s inductor emits for CPU linears; it takes plain
strided tensors, so nothing is converted to oneDNN's own tensor layout. Outputs equal ``nn.Linear``'s up to float
rounding (about 1e-6 relative), so boxes match the faithful path as closely as the fast path's do.

:func:`use_onednn_linears` swaps every ``nn.Linear`` of a network for :class:`OneDNNLinear` (fusing the exact GELU
of timm's ``Mlp`` into the first layer; :func:`use_torch_linears` undoes it); :func:`onednn_attention` computes
softmax(q k^T * scale) v with two oneDNN products per (sample, head) pair.
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import Tensor, nn


@functools.lru_cache(maxsize=None)
def onednn_available() -> bool:
    """Whether this PyTorch build runs ``mkldnn._linear_pointwise`` on the CPU (probed once on a tiny product)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        x = torch.ones(2, 3)
        out = torch.ops.mkldnn._linear_pointwise(x, torch.ones(4, 3), None, "none", [], "")
    except (RuntimeError, AttributeError, NotImplementedError):
        return False
    return bool(torch.equal(out, torch.full((2, 4), 3.0)))


def _linear_pointwise_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of one ``mkldnn._linear_pointwise`` (2 per multiply-add; the fused activation is not counted)."""
    rows = 1
    for size in x_shape[:-1]:
        rows *= size
    return 2 * rows * w_shape[0] * w_shape[1]


def flop_formulas() -> dict:
    """``custom_mapping`` for ``torch.utils.flop_counter.FlopCounterMode`` so it counts the oneDNN products too."""
    if not onednn_available():
        return {}
    return {torch.ops.mkldnn._linear_pointwise: _linear_pointwise_flops}


def onednn_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, gelu: bool = False) -> Tensor:
    """``F.linear(x, weight, bias)`` (optionally followed by the exact, erf-based GELU) through oneDNN."""
    if gelu:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "none")
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class OneDNNLinear(nn.Module):
    """An ``nn.Linear`` whose forward runs through oneDNN; it shares (not copies) the layer's parameters, under the
    same names, so the state_dict is unchanged. ``gelu=True`` fuses an exact GELU after the product."""

    def __init__(self, linear: nn.Linear, gelu: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.gelu = gelu

    def forward(self, x: Tensor) -> Tensor:
        return onednn_linear(x, self.weight, self.bias, gelu=self.gelu)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, gelu={self.gelu}"


def use_onednn_linears(net: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` in ``net`` (in place) by a :class:`OneDNNLinear` over the same parameters.

    An MLP whose activation is the exact ``nn.GELU`` (timm's ``Mlp``: ``fc1``, ``act``, ...) gets the GELU fused into
    ``fc1`` and its ``act`` replaced by ``nn.Identity``. Returns ``net``.
    """
    if not onednn_available():
        raise RuntimeError("this PyTorch build has no usable oneDNN CPU kernels (torch.backends.mkldnn)")
    for module in list(net.modules()):
        fc1, act = getattr(module, "fc1", None), getattr(module, "act", None)
        if isinstance(fc1, nn.Linear) and isinstance(act, nn.GELU) and act.approximate == "none":
            module.fc1 = OneDNNLinear(fc1, gelu=True)
            module.act = nn.Identity()
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, OneDNNLinear(child))
    return net


def use_torch_linears(net: nn.Module) -> nn.Module:
    """Undo :func:`use_onednn_linears` in place (for export and other consumers of plain ``nn.Linear`` layers)."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, OneDNNLinear):
                linear = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None,
                                   device=child.weight.device, dtype=child.weight.dtype)
                linear.weight, linear.bias = child.weight, child.bias
                setattr(module, name, linear)
                if child.gelu:
                    module.act = nn.GELU()
    return net


def onednn_attention(q: Tensor, k: Tensor, v: Tensor, scale: float, key_keep: Optional[Tensor] = None,
                     score_query: Optional[int] = None) -> tuple[Tensor, Optional[Tensor]]:
    """softmax(q k^T * scale) v for (B, H, N, D) ``q`` / ``k`` / ``v`` with two oneDNN products per (sample, head).

    Args:
        key_keep: optional (B, N) bool, False = never attended to.
        score_query: index of a query token whose post-softmax attention row is returned.
    Returns:
        the output with heads merged, (B, N, H*D), and the (B, H, N) attention row of ``score_query`` (or None).
    """
    batch, heads, num_tokens, head_dim = q.shape
    out = q.new_empty(batch, num_tokens, heads * head_dim)
    score_row = q.new_empty(batch, heads, num_tokens) if score_query is not None else None
    for b in range(batch):
        masked = None if key_keep is None else ~key_keep[b]
        for h in range(heads):
            logits = onednn_linear(q[b, h] * scale, k[b, h].contiguous())  # (N, N) = (q * scale) k^T
            if masked is not None:
                logits = logits.masked_fill(masked, float("-inf"))
            attn = logits.softmax(dim=-1)
            if score_row is not None:
                score_row[b, h] = attn[score_query]
            out[b, :, h * head_dim : (h + 1) * head_dim] = onednn_linear(attn, v[b, h].t().contiguous())
    return out, score_row
