"""oneDNN CPU kernels of the fast path: same products as PyTorch's, same parameters, and how ``auto`` picks them."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lib.test.tracker.backends as backends
from lib.api import load_network
from lib.families import OFFICIAL_CONFIGS
from lib.models.fartrack.complexity import count_macs
from lib.models.onednn import (OneDNNLinear, onednn_attention, onednn_available, onednn_linear, use_onednn_linears,
                               use_torch_linears)
from lib.models.fartrack.layers import ATTENTION_IMPLS
from lib.test.tracker.backends import LINEAR_KERNELS, InferenceOptions, TorchBackend

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN CPU kernels")
CPU = torch.device("cpu")


@needs_onednn
@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_onednn_linear_equals_torch_linear(gelu, bias):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 37, 48, generator=generator)
    weight = torch.randn(80, 48, generator=generator) / 7
    b = torch.randn(80, generator=generator) if bias else None
    expected = F.linear(x, weight, b)
    expected = F.gelu(expected) if gelu else expected
    out = onednn_linear(x, weight, b, gelu=gelu)
    assert out.shape == (2, 37, 80)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_onednn_attention_equals_softmax_attention_with_masks_and_score_row():
    generator = torch.Generator().manual_seed(1)
    batch, heads, tokens, dim = 2, 3, 29, 16
    q, k, v = (torch.randn(batch, heads, tokens, dim, generator=generator) for _ in range(3))
    keep = torch.rand(batch, tokens, generator=generator) > 0.3
    keep[:, -4:] = True
    scale = dim**-0.5
    logits = (q @ k.transpose(-2, -1)) * scale
    attn = logits.masked_fill(~keep[:, None, None, :], float("-inf")).softmax(-1)
    expected = (attn @ v).transpose(1, 2).reshape(batch, tokens, heads * dim)
    out, row = onednn_attention(q, k, v, scale, key_keep=keep, score_query=tokens - 2)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(row, attn[:, :, tokens - 2], rtol=1e-5, atol=1e-6)
    assert torch.all(row[~keep[:, None, :].expand_as(row)] == 0)  # masked keys get no weight at all
    plain, no_row = onednn_attention(q, k, v, scale)
    assert no_row is None
    torch.testing.assert_close(plain, F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2),
                               rtol=1e-5, atol=1e-5)


@needs_onednn
@pytest.mark.parametrize("family", list(OFFICIAL_CONFIGS))
def test_onednn_linears_share_parameters_and_keep_outputs(family):
    torch.manual_seed(0)
    net = load_network(family, OFFICIAL_CONFIGS[family], depth=3).eval()
    spec = net.spec
    templates = torch.randn(1, spec.num_templates, 3, spec.template_size, spec.template_size)
    search = torch.randn(1, 3, spec.search_size, spec.search_size)
    with torch.inference_mode():
        expected = net(templates, search)["logits"]  # (the sparse renorm happens on this first forward)
        state = {name: tensor.data_ptr() for name, tensor in net.state_dict().items()}
        use_onednn_linears(net)
        assert not any(type(m) is nn.Linear for m in net.modules())
        mlp = net.backbone.blocks[0].mlp
        assert isinstance(mlp.fc1, OneDNNLinear) and mlp.fc1.gelu and isinstance(mlp.act, nn.Identity)
        assert {name: tensor.data_ptr() for name, tensor in net.state_dict().items()} == state
        torch.testing.assert_close(net(templates, search)["logits"], expected, rtol=1e-4, atol=1e-4)
        use_torch_linears(net)
        assert isinstance(mlp.fc1, nn.Linear) and isinstance(mlp.act, nn.GELU)
        assert torch.equal(net(templates, search)["logits"], expected)
        assert {name: tensor.data_ptr() for name, tensor in net.state_dict().items()} == state


@needs_onednn
def test_auto_kernels_on_a_cpu_and_the_callers_network_untouched():
    # auto is decided by timing the candidates on this machine (tests/test_kernel_choice.py covers the choice)
    resolved = {p: InferenceOptions(precision=p).resolved(CPU) for p in ("fp32", "bf16", "int8")}
    assert all(r.attention in ATTENTION_IMPLS and r.linear in LINEAR_KERNELS for r in resolved.values())
    assert resolved["int8"].linear == "torch"  # its quantised linears
    chosen = InferenceOptions(attention="sdpa", linear="torch")
    assert chosen.resolved(CPU) == chosen and chosen.name == "fast+sdpa+torch-linear"
    assert InferenceOptions.faithful().resolved(CPU) == InferenceOptions.faithful()
    net = load_network("fartrack", OFFICIAL_CONFIGS["fartrack"], depth=2)
    backend = TorchBackend(net)
    assert backend.kernels == resolved["fp32"]
    assert isinstance(backend.net.backbone.blocks[0].attn.qkv, OneDNNLinear) == (resolved["fp32"].linear == "onednn")
    backend = TorchBackend(net, InferenceOptions(linear="onednn"))
    assert isinstance(backend.net.backbone.blocks[0].attn.qkv, OneDNNLinear)
    assert type(net.backbone.blocks[0].attn.qkv) is nn.Linear and isinstance(net.backbone.blocks[0].mlp.act, nn.GELU)
    assert backend.net.backbone.blocks[0].attn.qkv.weight is net.backbone.blocks[0].attn.qkv.weight
    assert count_macs(backend.net) == count_macs(net)  # the flop counter sees the oneDNN products


def test_kernel_options_validate(monkeypatch):
    with pytest.raises(ValueError, match="attention"):
        InferenceOptions(attention="flash")
    with pytest.raises(ValueError, match="linear"):
        InferenceOptions(linear="mkl")
    with pytest.raises(ValueError, match="int8"):
        InferenceOptions(linear="onednn", precision="int8")
    # Other CPU architectures (not measured) keep PyTorch's kernels under auto; oneDNN can still be asked for.
    monkeypatch.setattr(backends, "onednn_available", lambda: True)
    monkeypatch.setattr(backends.platform, "machine", lambda: "aarch64")
    assert (InferenceOptions().resolved(CPU).attention, InferenceOptions().resolved(CPU).linear) == ("sdpa", "torch")
    assert InferenceOptions(linear="onednn").resolved(CPU).linear == "onednn"
    # Without oneDNN (another build, or a GPU), auto falls back to PyTorch's kernels and explicit oneDNN is refused.
    monkeypatch.setattr(backends, "onednn_available", lambda: False)
    fallback = InferenceOptions().resolved(CPU)
    assert (fallback.attention, fallback.linear) == ("sdpa", "torch")
    with pytest.raises(ValueError, match="oneDNN"):
        InferenceOptions(linear="onednn").resolved(CPU)
    with pytest.raises(ValueError, match="oneDNN"):
        InferenceOptions(attention="onednn").resolved(CPU)
