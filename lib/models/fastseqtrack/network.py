"""FastSeqTrack: one-pass sequence decoding with parameter-sharing early exits (Li et al.), in this framework.

Architecture (paper section 3.2; the choices where the paper is vague are config values, see the README):

* **Encoder** (``backbone``): a plain ViT (timm ``PatchEmbed`` and ``Block``) over the token sequence
  ``[search tokens; template tokens (every template); 4 learnable tracking tokens]``, each with a learnable position
  embedding: ``pos_embed_x`` for the search grid, ``pos_embed_z`` shared by all template slots, and
  ``track_pos_embeddings`` for the 4 tracking tokens ``track_embeddings``. A final LayerNorm, then the search
  features (the decoder's memory) and the 4 tracking tokens are projected to the decoder width (``bottleneck``).
* **Decoder**: ``N`` mask-free layers (:class:`~lib.models.fastseqtrack.layers.DecoderLayer`) over the 4 tracking
  tokens: self-attention among them, cross-attention to the search features (keys carry a fixed 2-D sin-cos code of
  the search grid) and an FFN.
* **Embedding-to-word network** (``head``): LayerNorm + MLP to ``n_bins`` logits per token, one instance shared by
  every exit. Token ``i`` predicts coordinate ``i`` of the box ``(cx, cy, w, h)`` in normalised search-crop units;
  word ``k`` is the value ``k / (n_bins - 1)`` in [0, 1] (:func:`lib.utils.tokens.decode_argmax_plain` with range 1).
* **Exits**: exit 0 applies the head to the tracking tokens straight from the encoder (the whole decoder is
  skipped), exit ``l`` applies it after decoder layer ``l``; ``N + 1`` exits in all.

Training (:meth:`FastSeqTrackNetwork.forward`) returns the logits of every exit. Inference
(:meth:`FastSeqTrackNetwork.track`) runs the decoder layer by layer and stops at the first exit whose *score* is
above ``tau``; the last exit is taken when none fires. The score (``MODEL.DECODER.EXIT_SCORE``) is the sum over the 4
coordinates of the largest window-penalised probability, in [0, 4], so the paper's tau = 1.6 asks for an average of
0.4 (its "average softmax score" cannot exceed 1); "mean" gives the literal average, in [0, 1], under which any
``tau >= 1`` always runs the whole decoder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed, build_sincos2d_pos_embed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from lib.models.common import CropGeometry, TemplateInput, stack_templates
from lib.models.fastseqtrack.layers import DecoderLayer, EmbeddingToWord, LayerNorm
from lib.utils.tokens import decode_argmax_plain

#: One tracking token per box coordinate, in this order.
COORDINATES = ("cx", "cy", "w", "h")
NUM_TRACK_TOKENS = len(COORDINATES)

#: Image size of the ViT the position table is defined for (MAE / timm ViTs: 224 px, a 14 x 14 grid at stride 16).
PRETRAIN_IMG_SIZE = 224

@dataclass(frozen=True)
class FastSeqTrackSpec(CropGeometry):
    """Every size of the network, derived from a config by :func:`spec_from_config`."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    template_size: int = 256
    search_size: int = 256
    num_templates: int = 2
    decoder_layers: int = 2
    decoder_dim: int = 256
    decoder_heads: int = 8
    decoder_mlp_ratio: float = 4.0
    n_bins: int = 4000
    head_layers: int = 3
    drop_path_rate: float = 0.1
    #: Exit score compared with tau: "sum" (over cx, cy, w, h of the largest penalised probability, in [0, 4]; the
    #: reading under which the paper's tau = 1.6 is reachable) or "mean" (the literal "average", in [0, 1]).
    exit_score: str = "sum"

    @property
    def num_exits(self) -> int:
        """Exit 0 (before the first decoder layer) plus one after every decoder layer."""
        return self.decoder_layers + 1


@dataclass
class ExitDecision:
    """What one-pass decoding with early exits returns for a batch."""

    box: Tensor  # (B, 4) cx, cy, w, h in normalised search-crop units, from the exit taken
    exit: Tensor  # (B,) int64: 0 = before the first decoder layer, l = after decoder layer l
    score: Tensor  # (B,) the exit score at the exit taken (sum or mean of the 4 largest penalised probabilities)
    logits: Tensor  # (B, 4, n_bins) raw logits at the exit taken


def hanning_window(n_bins: int, weight: float = 1.0, on_size: bool = False,
                   device: Optional[Union[str, torch.device]] = None) -> Tensor:
    """(4, n_bins) multiplicative window over the words of cx, cy, w, h: ``(1 - weight) + weight * hann``.

    ``weight`` 1 multiplies the probabilities by the 1-D Hanning window directly (the paper); 0 leaves them
    unchanged. The window peaks at the centre of the vocabulary, i.e. at the centre of the search crop, where the
    previous box centre lies, so it is a motion prior on ``cx`` and ``cy``; it is applied to ``w`` and ``h`` only
    with ``on_size`` (their natural values are not centred in the vocabulary).
    """
    hann = torch.from_numpy(np.hanning(n_bins)).float()
    penalised = (1.0 - weight) + weight * hann
    ones = torch.ones(n_bins)
    rows = [penalised, penalised, penalised if on_size else ones, penalised if on_size else ones]
    return torch.stack(rows).to(device)


def _sincos_table(grid: int, dim: int) -> Tensor:
    """(grid * grid, dim) fixed 2-D sin-cos position table (the one MAE ViTs carry)."""
    return build_sincos2d_pos_embed([grid, grid], dim)


class FastSeqTrackEncoder(nn.Module):
    """The ViT encoder over ``[search; templates; tracking tokens]`` (parameter names follow timm's ViT)."""

    def __init__(self, spec: FastSeqTrackSpec) -> None:
        super().__init__()
        self.spec = spec
        dim = spec.embed_dim
        self.patch_embed = PatchEmbed(img_size=None, patch_size=spec.patch_size, in_chans=3, embed_dim=dim,
                                      strict_img_size=False)
        self.pos_embed_x = nn.Parameter(torch.zeros(1, spec.num_search_tokens, dim))
        # One position embedding for every template slot: the initial and the dynamic template are a set.
        self.pos_embed_z = nn.Parameter(torch.zeros(1, spec.tokens_per_template, dim))
        self.track_embeddings = nn.Parameter(torch.zeros(1, NUM_TRACK_TOKENS, dim))
        self.track_pos_embeddings = nn.Parameter(torch.zeros(1, NUM_TRACK_TOKENS, dim))
        rates = torch.linspace(0, spec.drop_path_rate, spec.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(dim, spec.num_heads, spec.mlp_ratio, qkv_bias=True, drop_path=rate, norm_layer=LayerNorm)
            for rate in rates)
        self.norm = LayerNorm(dim)

    @torch.no_grad()
    def set_position_embeddings(self, table: Tensor) -> None:
        """Fill ``pos_embed_z`` / ``pos_embed_x`` by bicubic resizing of a square (G*G, C) position table.

        Used with MAE's table (loaded weights) and with the sin-cos table (from scratch), so that both the template
        and the search grid cover the same normalised image extent.
        """
        table = table.reshape(-1, table.shape[-1])
        grid = math.isqrt(table.shape[0])
        if grid * grid != table.shape[0]:
            raise ValueError(f"position table of {table.shape[0]} entries is not a square grid")
        patch_pos = table.T.reshape(1, -1, grid, grid).to(self.pos_embed_x)

        def resized(side: int) -> Tensor:
            out = F.interpolate(patch_pos, size=(side, side), mode="bicubic", align_corners=False)
            return out.flatten(2).transpose(1, 2)

        self.pos_embed_z.copy_(resized(self.spec.template_grid))
        self.pos_embed_x.copy_(resized(self.spec.search_grid))

    def embed_templates(self, templates: Tensor) -> Tensor:
        """(B, T, 3, h, w) images -> (B, T, P, C) patch embeddings plus the template position embedding."""
        batch, num = templates.shape[:2]
        tokens = self.patch_embed(templates.flatten(0, 1)) + self.pos_embed_z
        return tokens.reshape(batch, num, *tokens.shape[1:])

    def forward(self, template_tokens: Tensor, search: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, P, C) template tokens and a (B, 3, H, W) search image -> search features (B, N, C) and the
        4 tracking tokens (B, 4, C), after the final LayerNorm."""
        batch = search.shape[0]
        search_tokens = self.patch_embed(search) + self.pos_embed_x
        track = (self.track_embeddings + self.track_pos_embeddings).expand(batch, -1, -1)
        tokens = torch.cat([search_tokens, template_tokens.flatten(1, 2), track], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        return tokens[:, : search_tokens.shape[1]], tokens[:, -NUM_TRACK_TOKENS:]


class FastSeqTrackNetwork(nn.Module):
    """Encoder, bottleneck, decoder layers and the shared embedding-to-word network (see the module docstring)."""

    def __init__(self, spec: FastSeqTrackSpec, tau: float = 1.6, *, family: str, net_type: str) -> None:
        super().__init__()
        #: Name of the family record that built the network and the checkpoint class name (labels only).
        self.family = family
        self.net_type = net_type
        self.spec = spec
        self.backbone = FastSeqTrackEncoder(spec)
        self.bottleneck = nn.Linear(spec.embed_dim, spec.decoder_dim)
        self.decoder = nn.ModuleList(DecoderLayer(spec.decoder_dim, spec.decoder_heads, spec.decoder_mlp_ratio)
                                     for _ in range(spec.decoder_layers))
        self.head = EmbeddingToWord(spec.decoder_dim, spec.n_bins, spec.head_layers)
        self.register_buffer("memory_pos", _sincos_table(spec.search_grid, spec.decoder_dim).unsqueeze(0),
                             persistent=False)
        values = decode_argmax_plain(torch.arange(spec.n_bins, dtype=torch.float64), spec.n_bins, 1)
        self.register_buffer("bin_values", values.float(), persistent=False)
        #: Default early-exit threshold of :meth:`track` (``MODEL.DECODER.TAU``).
        self.tau = float(tau)
        self.reset_parameters()

    # ------------------------------------------------------------------ initialisation
    def reset_parameters(self) -> None:
        """ViT initialisation (truncated normal 0.02 for Linear layers and the tracking tokens) and the sin-cos
        position table for the search and template grids (what an MAE checkpoint would provide)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        trunc_normal_(self.backbone.track_embeddings, std=0.02)
        trunc_normal_(self.backbone.track_pos_embeddings, std=0.02)
        grid = PRETRAIN_IMG_SIZE // self.spec.patch_size
        self.backbone.set_position_embeddings(_sincos_table(grid, self.spec.embed_dim))

    # ------------------------------------------------------------------ inputs
    def embed_templates(self, templates: TemplateInput) -> Tensor:
        """(B, T, P, C) template tokens; a tracker computes them once per stored template."""
        spec = self.spec
        return self.backbone.embed_templates(stack_templates(templates, spec.num_templates, spec.template_size))

    def encode(self, templates: Optional[TemplateInput], search: Tensor,
               template_tokens: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Run the encoder: the decoder memory (B, N, Cd) and the 4 tracking tokens (B, 4, Cd) at decoder width."""
        spec = self.spec
        if template_tokens is None:
            if templates is None:
                raise ValueError("give templates or template_tokens")
            template_tokens = self.embed_templates(templates)
        expected_tokens = (spec.num_templates, spec.tokens_per_template, spec.embed_dim)
        if template_tokens.dim() != 4 or tuple(template_tokens.shape[1:]) != expected_tokens:
            raise ValueError(f"template_tokens must be (B, {', '.join(map(str, expected_tokens))}), "
                             f"got {tuple(template_tokens.shape)}")
        expected_search = (template_tokens.shape[0], 3, spec.search_size, spec.search_size)
        if tuple(search.shape) != expected_search:
            raise ValueError(f"search must be {expected_search}, got {tuple(search.shape)}")
        features, track = self.backbone(template_tokens, search)
        return self.bottleneck(features), self.bottleneck(track)

    # ------------------------------------------------------------------ training forward
    def forward(self, templates: Optional[TemplateInput], search: Tensor,
                template_tokens: Optional[Tensor] = None) -> dict[str, Any]:
        """Every exit's prediction.

        Args:
            templates: (B, T, 3, ts, ts) or a list of T (B, 3, ts, ts), ImageNet-normalised; ignored when
                ``template_tokens`` (from :meth:`embed_templates`) is given.
            search: (B, 3, ss, ss).
        Returns:
            ``exit_logits``: list of ``num_exits`` (B, 4, n_bins) logits, exit 0 (encoder tokens) first;
            ``logits``: the last one (the whole decoder).
        """
        memory, tokens = self.encode(templates, search, template_tokens)
        exit_logits = [self.head(tokens)]
        for layer in self.decoder:
            tokens = layer(tokens, memory, self.memory_pos)
            exit_logits.append(self.head(tokens))
        return {"exit_logits": exit_logits, "logits": exit_logits[-1]}

    # ------------------------------------------------------------------ inference
    def decode_logits(self, logits: Tensor, window: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """(B, 4, n_bins) logits -> the box (B, 4) of the most likely penalised words, and the exit score (B,).

        The probabilities are multiplied by ``window`` (4, n_bins) without renormalising, as the paper describes;
        the score is the sum (``exit_score`` "sum", in [0, 4]) or the mean ("mean", in [0, 1]) over the 4
        coordinates of the largest penalised probability.
        """
        probs = logits.float().softmax(dim=-1)
        if window is not None:
            probs = probs * window
        top, words = probs.max(dim=-1)
        score = top.sum(dim=-1) if self.spec.exit_score == "sum" else top.mean(dim=-1)
        return self.bin_values[words], score

    @torch.no_grad()
    def track(self, templates: Optional[TemplateInput], search: Tensor, *, tau: Optional[float] = None,
              window: Optional[Tensor] = None, template_tokens: Optional[Tensor] = None) -> ExitDecision:
        """Encode, then decode with early exits (:meth:`decode_with_exits`)."""
        memory, tokens = self.encode(templates, search, template_tokens)
        return self.decode_with_exits(memory, tokens, tau=tau, window=window)

    @torch.no_grad()
    def decode_with_exits(self, memory: Tensor, tokens: Tensor, tau: Optional[float] = None,
                          window: Optional[Tensor] = None) -> ExitDecision:
        """One-pass decoding (paper Algorithm 1, with the extra exit before the first layer).

        At exit ``e`` = 0, 1, .., N the shared head decodes the current tracking tokens; a sample stops at the first
        exit whose score is strictly above ``tau`` (default ``self.tau``), or at exit N. Only the samples still
        running go through the next decoder layer, so a batch costs what its samples need. ``tau`` at or above the
        score's maximum (4 for "sum", 1 for "mean") never stops early.
        """
        tau = self.tau if tau is None else float(tau)
        batch, last = tokens.shape[0], len(self.decoder)
        box = tokens.new_zeros(batch, NUM_TRACK_TOKENS, dtype=torch.float32)
        exit_taken = torch.full((batch,), -1, dtype=torch.long, device=tokens.device)
        score = tokens.new_zeros(batch, dtype=torch.float32)
        logits_taken = tokens.new_zeros(batch, NUM_TRACK_TOKENS, self.spec.n_bins)
        active = torch.arange(batch, device=tokens.device)
        for index in range(last + 1):
            if index:
                tokens = self.decoder[index - 1](tokens, memory, self.memory_pos)
            logits = self.head(tokens)
            exit_box, exit_score = self.decode_logits(logits, window)
            stop = exit_score > tau if index < last else torch.ones_like(exit_score, dtype=torch.bool)
            done = active[stop]
            box[done], score[done], logits_taken[done] = exit_box[stop], exit_score[stop], logits[stop]
            exit_taken[done] = index
            if bool(stop.all()):
                break
            running = ~stop
            active, tokens, memory = active[running], tokens[running], memory[running]
        return ExitDecision(box=box, exit=exit_taken, score=score, logits=logits_taken)


def spec_from_config(cfg: Any) -> FastSeqTrackSpec:
    """Every size of the network from a loaded ``fastseqtrack`` config."""
    model, data = cfg.MODEL, cfg.DATA
    return FastSeqTrackSpec(
        embed_dim=model.BACKBONE.EMBED_DIM,
        depth=model.BACKBONE.DEPTH,
        num_heads=model.BACKBONE.NUM_HEADS,
        mlp_ratio=model.BACKBONE.MLP_RATIO,
        patch_size=model.BACKBONE.STRIDE,
        template_size=data.TEMPLATE.SIZE,
        search_size=data.SEARCH.SIZE,
        num_templates=data.TEMPLATE.NUMBER,
        decoder_layers=model.DECODER.LAYERS,
        decoder_dim=model.DECODER.EMBED_DIM,
        decoder_heads=model.DECODER.NUM_HEADS,
        decoder_mlp_ratio=model.DECODER.MLP_RATIO,
        n_bins=model.HEAD.N_BINS,
        head_layers=model.HEAD.NUM_LAYERS,
        drop_path_rate=cfg.TRAIN.DROP_PATH_RATE,
        exit_score=model.DECODER.EXIT_SCORE,
    )
