"""The FARTrack ViT: one backbone for every family and depth (official spec, section 3).

Parameter names and registration order reproduce the official ``backbone.*`` state_dict exactly, including the
entries the official forward never uses (``cls_token``, ``pos_embed``, ``pos_embed_z1``, ``pos_embed_z``,
``prev_position_embeddings``, and ``norm1`` / ``norm2`` in the sparse family) so released checkpoints load
strictly and our checkpoints load into the official code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed, build_sincos2d_pos_embed, trunc_normal_
from torch import Tensor, nn

from lib.models.common import CropGeometry
from lib.models.fartrack.layers import FARTrackBlock, block_drop_path_rates
from lib.utils.tokens import command_ids, padding_id, vocab_size


@dataclass(frozen=True)
class BackboneSpec(CropGeometry):
    """Every size the backbone needs, derived from the config (see ``network.spec_from_config``)."""

    embed_dim: int = 192
    num_heads: int = 3
    mlp_ratio: float = 4.0
    patch_size: int = 16
    num_blocks: int = 12
    num_extension: int = 3
    pretrain_img_size: int = 224
    template_size: int = 112
    search_size: int = 224
    num_templates: int = 5
    bins: int = 300
    value_range: int = 2
    prenum: int = 3
    drop_path_rate: float = 0.1
    #: Blocks normalise with masked LayerNorm (``masknorm1`` / ``masknorm2``: statistics over the kept tokens only),
    #: as in the official sparse stage. Its builder also registers ``pos_embed_z`` and ``prev_position_embeddings``,
    #: which the forward never uses; they come with this option so the checkpoint layout matches.
    masked_norm: bool = False
    #: The vocabulary is ``nn.Embedding(max_norm=1)`` with its default N(0, 1) init, as the official sparse builder
    #: makes it: every lookup renormalises the command rows in place, and the tied head reads the renormed rows.
    #: False: the dense families' plain embedding, re-initialised with Kaiming normal (padding row included).
    command_renorm: bool = False

    @property
    def num_command_tokens(self) -> int:
        return 4

    @property
    def num_layers(self) -> int:
        return self.num_blocks + self.num_extension

    @property
    def centre_search_index(self) -> int:
        """Index of the centre search token within the search tokens (official grid position (7, 7) of 14x14)."""
        grid = self.search_grid
        return (grid // 2) * grid + grid // 2


class FARTrackViT(nn.Module):
    """Patch embedding, position embeddings, tied token vocabulary, 12 + 3 blocks and the final LayerNorm."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        self.spec = spec
        dim, vocab = spec.embed_dim, vocab_size(spec.bins, spec.value_range)
        pretrain_grid = spec.pretrain_img_size // spec.patch_size

        # Registration order = official state_dict order.
        self.output_bias = nn.Parameter(torch.zeros(vocab))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))  # MAE remnant, unused in forward
        self.pos_embed = nn.Parameter(torch.zeros(1, pretrain_grid**2 + 1, dim))  # source of the task embeddings
        pos_embed_z = nn.Parameter(torch.zeros(1, spec.tokens_per_template, dim))
        # The official model builds pos_embed_z / z0 / z1 from one tensor, so they share storage: one
        # parameter registered under every name reproduces that (loading copies each key into it in turn,
        # so the last one, pos_embed_z1, wins, exactly as in the official code).
        if spec.masked_norm:
            self.pos_embed_z = pos_embed_z
        self.pos_embed_z0 = pos_embed_z
        self.pos_embed_z1 = pos_embed_z
        self.pos_embed_x = nn.Parameter(torch.zeros(1, spec.num_search_tokens, dim))
        # command_renorm: max_norm=1 renormalises the looked-up command rows in place on every forward;
        # because the head is tied to this matrix, that also changes the logits of the command ids.
        self.word_embeddings = nn.Embedding(
            vocab, dim, padding_idx=padding_id(spec.bins, spec.value_range),
            max_norm=1.0 if spec.command_renorm else None,
        )
        self.position_embeddings = nn.Embedding(spec.num_command_tokens, dim)
        if spec.masked_norm:
            # Sized for PRENUM previous boxes; never used in forward (kept for the checkpoint layout).
            self.prev_position_embeddings = nn.Embedding(spec.num_command_tokens * spec.prenum, dim)
        self.patch_embed = PatchEmbed(
            img_size=None, patch_size=spec.patch_size, in_chans=3, embed_dim=dim, strict_img_size=False
        )
        rates = block_drop_path_rates(spec.num_blocks, spec.num_extension, spec.drop_path_rate)

        def make_block(rate: float) -> FARTrackBlock:
            return FARTrackBlock(dim, spec.num_heads, spec.mlp_ratio, drop_path=rate, masked_norm=spec.masked_norm)

        self.blocks = nn.ModuleList(make_block(r) for r in rates[: spec.num_blocks])
        self.extension = nn.ModuleList(make_block(r) for r in rates[spec.num_blocks :])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.register_buffer(
            "command_ids", torch.tensor(command_ids(spec.bins, spec.value_range)), persistent=False
        )
        self.reset_parameters()

    # ------------------------------------------------------------------ initialisation
    def reset_parameters(self) -> None:
        """Official initialisation (spec 3.1 / 3.7), then the task position embeddings from ``pos_embed``."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        if self.spec.command_renorm:
            nn.init.normal_(self.word_embeddings.weight)
            with torch.no_grad():
                self.word_embeddings.weight[self.word_embeddings.padding_idx].zero_()
        else:
            # Official dense families re-initialise the whole matrix, padding row included.
            nn.init.kaiming_normal_(self.word_embeddings.weight)
        self.derive_task_position_embeddings()

    @torch.no_grad()
    def init_sincos_position_embeddings(self) -> None:
        """Fill ``pos_embed`` with the fixed 2-D sin-cos table MAE ViTs carry, then re-derive the task embeddings.

        Used when training starts without MAE weights: the official random ``pos_embed`` (std 0.02) gives the
        tokens almost no position information, which a tracker must learn from scratch; the MAE checkpoint would
        have provided this table.
        """
        grid = int(round((self.pos_embed.shape[1] - 1) ** 0.5))
        table = build_sincos2d_pos_embed([grid, grid], self.spec.embed_dim, dtype=self.pos_embed.dtype)
        self.pos_embed[0, 1:].copy_(table)
        self.pos_embed[0, 0].zero_()
        self.derive_task_position_embeddings()

    @torch.no_grad()
    def init_sincos_coordinate_embeddings(self) -> None:
        """Give the coordinate rows (ids 0 .. 2*bins-1) of the tied vocabulary a 1-D sin-cos encoding of the bin.

        Neighbouring bins then start with similar embeddings, so the tied head produces smooth distributions over
        the bins from the first step (the official Kaiming rows are unrelated to each other and the "ruler" must
        be learnt). Rows are scaled to the Kaiming init's expected norm; the command and padding rows are kept.
        """
        weight = self.word_embeddings.weight
        num_bins, dim = weight.shape[0] - 5, weight.shape[1]
        bins = torch.arange(num_bins, dtype=torch.float64)[:, None]
        omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
        table = torch.cat([torch.sin(bins * omega), torch.cos(bins * omega)], dim=1)
        table *= (2.0 ** 0.5) / table.norm(dim=1, keepdim=True)  # kaiming_normal_ rows: E|row|^2 = 2
        weight[:num_bins].copy_(table.to(weight.dtype))

    @torch.no_grad()
    def derive_task_position_embeddings(self) -> None:
        """Bicubically resize the patch part of ``pos_embed`` to the template and search grids (build time only)."""
        dim = self.spec.embed_dim
        grid = int(round((self.pos_embed.shape[1] - 1) ** 0.5))
        patch_pos = self.pos_embed[:, 1:].transpose(1, 2).reshape(1, dim, grid, grid)

        def resized(side: int) -> Tensor:
            out = F.interpolate(patch_pos, size=(side, side), mode="bicubic", align_corners=False)
            return out.flatten(2).transpose(1, 2)

        self.pos_embed_z0.copy_(resized(self.spec.template_grid))
        self.pos_embed_x.copy_(resized(self.spec.search_grid))

    @torch.no_grad()
    def bake_command_renorm(self) -> None:
        """Apply the sparse family's in-place ``max_norm`` renorm of the command rows once, then switch it off.

        Each lookup renormalises the looked-up rows in place (official quirk); after one lookup it is idempotent, so
        static graphs (ONNX export, CUDA graph capture) carry the renormed rows as constants instead. No-op for the
        dense families. This writes to ``word_embeddings.weight`` exactly as the first forward would.
        """
        if self.word_embeddings.max_norm is not None:
            self.word_embeddings(self.command_ids)
            self.word_embeddings.max_norm = None

    # ------------------------------------------------------------------ pieces of the forward
    @property
    def layers(self) -> list[FARTrackBlock]:
        """All blocks in execution order: ``blocks.0..11`` then ``extension.0..2``."""
        return [*self.blocks, *self.extension]

    def embed_templates(self, templates: Tensor) -> Tensor:
        """(B, T, 3, h, w) images -> (B, T, P, C) patch embeddings plus the shared template position embedding."""
        batch, num = templates.shape[:2]
        tokens = self.patch_embed(templates.flatten(0, 1)) + self.pos_embed_z0
        return tokens.reshape(batch, num, *tokens.shape[1:])

    def embed_search(self, search: Tensor) -> Tensor:
        """(B, 3, H, W) image -> (B, N, C) patch embeddings plus the search position embedding."""
        return self.patch_embed(search) + self.pos_embed_x

    def command_tokens(self, batch: int) -> Tensor:
        """(B, 4, C) command tokens x1, y1, x2, y2 (word embedding + command position embedding)."""
        ids = self.command_ids.unsqueeze(0).expand(batch, -1)
        return self.word_embeddings(ids) + self.position_embeddings.weight

    def head(self, command_features: Tensor) -> Tensor:
        """Final LayerNorm, then the weight-tied vocabulary projection with its free bias -> (B, 4, V) logits."""
        return self.norm(command_features) @ self.word_embeddings.weight.t() + self.output_bias

    def run_layers(
        self,
        tokens: Tensor,
        depth: int,
        key_keep: Optional[Tensor] = None,
        score_query: Optional[int] = None,
        head_depths: tuple[int, ...] = (),
        attention: str = "explicit",
    ) -> tuple[Tensor, Optional[Tensor], list[Tensor]]:
        """Run the first ``depth`` layers over ``tokens`` (B, N, C).

        Returns the final tokens, the attention of token ``score_query`` summed over layers and averaged over
        heads (B, N) (or None), and the head logits after each depth listed in ``head_depths`` (1-based).
        """
        score_sum: Optional[Tensor] = None
        head_logits: list[Tensor] = []
        num_cmd = self.spec.num_command_tokens
        for index, layer in enumerate(self.layers[:depth]):
            tokens, row = layer(tokens, key_keep=key_keep, score_query=score_query, impl=attention)
            if row is not None:
                row = row.detach()
                score_sum = row if score_sum is None else score_sum + row
            if index + 1 in head_depths:
                head_logits.append(self.head(tokens[:, -num_cmd:]))
        scores = None if score_sum is None else score_sum.mean(dim=1)
        return tokens, scores, head_logits
