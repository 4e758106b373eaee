"""An independent, literal transcription of the official forward (spec sections 3.1-3.5) for parity tests.

Written from the spec text with plain tensor operations on a state_dict, sharing no code with ``lib.models``,
so that a mistake in the real network cannot hide in both. Slow and simple on purpose.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EMBED, HEADS, PATCH = 192, 3, 16
NUM_TEMPLATES, TEMPLATE_TOKENS, SEARCH_GRID = 5, 49, 14
COMMAND_IDS = [600, 601, 602, 603]


def _layer_names(depth: int) -> list[str]:
    names = [f"backbone.blocks.{i}." for i in range(12)] + [f"backbone.extension.{i}." for i in range(3)]
    return names[:depth]


def _patches(sd: dict, image: torch.Tensor) -> torch.Tensor:
    out = F.conv2d(image, sd["backbone.patch_embed.proj.weight"], sd["backbone.patch_embed.proj.bias"], stride=PATCH)
    return out.flatten(2).transpose(1, 2)


def _literal_masked_layer_norm(x, keep, weight, bias, eps=1e-5):
    x = x * keep[:, :, None].to(x.dtype)
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


def _renorm_rows_in_place(weight: torch.Tensor, rows: list[int], max_norm: float = 1.0) -> None:
    """torch.embedding_renorm_ semantics: rows with norm > max_norm scaled by max_norm / (norm + 1e-7)."""
    for row in rows:
        norm = weight[row].norm()
        if norm > max_norm:
            weight[row] *= max_norm / (norm + 1e-7)


def reference_forward(sd: dict, templates: list, search: torch.Tensor, family: str, depth: int = 15,
                      keep: torch.Tensor | None = None) -> dict:
    """Official forward. ``keep``: optional (B, 445) bool key mask (sparse only; None = all True).

    ``sd`` is modified in place for the sparse family (max-norm renorm of the command rows), as the official
    parameter is.
    """
    sparse = family == "fartrack_sparse"
    batch = search.shape[0]
    word = sd["backbone.word_embeddings.weight"]
    if sparse:
        _renorm_rows_in_place(word, COMMAND_IDS)
    identity = sd["identity"]
    parts = []
    for slot, template in enumerate(templates):
        parts.append(_patches(sd, template) + sd["backbone.pos_embed_z0"] + identity[:, slot])
    parts.append(_patches(sd, search) + sd["backbone.pos_embed_x"] + identity[:, -1])
    command = word[COMMAND_IDS].unsqueeze(0).expand(batch, -1, -1) + sd["backbone.position_embeddings.weight"]
    parts.append(command)
    x = torch.cat(parts, dim=1)
    num_tokens = x.shape[1]
    if sparse and keep is None:
        keep = torch.ones(batch, num_tokens, dtype=torch.bool)

    def final_head(h):
        cmd = F.layer_norm(h[:, -4:], (EMBED,), sd["backbone.norm.weight"], sd["backbone.norm.bias"], eps=1e-6)
        return cmd @ word.t() + sd["backbone.output_bias"]

    attention_sum = None
    extra = []
    for index, name in enumerate(_layer_names(depth)):
        p = lambda key: sd[name + key]  # noqa: E731
        if sparse:
            h = _literal_masked_layer_norm(x, keep, p("masknorm1.norm.weight"), p("masknorm1.norm.bias"))
        else:
            h = F.layer_norm(x, (EMBED,), p("norm1.weight"), p("norm1.bias"), eps=1e-6)
        qkv = (h @ p("attn.qkv.weight").t() + p("attn.qkv.bias")).reshape(batch, num_tokens, 3, HEADS, EMBED // HEADS)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        logits = (q @ k.transpose(-2, -1)) * (EMBED // HEADS) ** -0.5
        if sparse:
            logits = logits.masked_fill(~keep[:, None, None, :], float("-inf"))
        attn = logits.softmax(-1)
        attention_sum = attn if attention_sum is None else attention_sum + attn
        out = (attn @ v).transpose(1, 2).reshape(batch, num_tokens, EMBED)
        x = x + out @ p("attn.proj.weight").t() + p("attn.proj.bias")
        if sparse:
            h = _literal_masked_layer_norm(x, keep, p("masknorm2.norm.weight"), p("masknorm2.norm.bias"))
        else:
            h = F.layer_norm(x, (EMBED,), p("norm2.weight"), p("norm2.bias"), eps=1e-6)
        h = F.gelu(h @ p("mlp.fc1.weight").t() + p("mlp.fc1.bias"))
        x = x + h @ p("mlp.fc2.weight").t() + p("mlp.fc2.bias")
        if family == "fartrack_distill" and 5 <= index + 1 < depth:
            extra.append(final_head(x))
    result = {"logits": final_head(x)}
    if family == "fartrack_distill":
        result["layer_logits"] = extra + [result["logits"]]
    if sparse:
        scores = attention_sum.mean(dim=1)  # sum over layers, then mean over heads
        centre = NUM_TEMPLATES * TEMPLATE_TOKENS + (SEARCH_GRID // 2) * SEARCH_GRID + SEARCH_GRID // 2
        row = scores[:, centre, : NUM_TEMPLATES * TEMPLATE_TOKENS].reshape(batch, NUM_TEMPLATES, TEMPLATE_TOKENS)
        result["template_scores"] = row
        # inference: 12 lowest of the newest template removed
        removed = int(TEMPLATE_TOKENS * 0.25)
        newest = row[:, -1]
        keep_newest = torch.ones_like(newest, dtype=torch.bool)
        order = newest.argsort(dim=-1)
        for b in range(batch):
            keep_newest[b, order[b, :removed]] = False
        result["template_keep"] = keep_newest
    return result


def count_block_params(state: dict, depth: int) -> int:
    """Paper-style parameter count: patch embedding plus the blocks that run (spec 10)."""
    total = sum(v.numel() for k, v in state.items() if k.startswith("backbone.patch_embed."))
    for name in _layer_names(depth):
        total += sum(v.numel() for k, v in state.items() if k.startswith(name) and "masknorm" not in k)
    return total


assert math.isclose((EMBED // HEADS) ** -0.5, 0.125)
