"""The FARTrack network: one class for the three official families and every depth.

``state_dict()`` equals the official one of the family (``identity`` first, then ``backbone.*``). The forward
takes 5 templates and a search crop (ImageNet-normalised) and returns the raw logits of the four command tokens
(x1, y1, x2, y2) over the shared 605-token vocabulary. What differs between the families are options of the network,
not its family name (the family records in :mod:`lib.families` set them):

* ``layer_heads_from`` (``fartrack_distill``: 5): ``layer_logits``, the shared head applied after depths
  ``layer_heads_from`` .. depth (shallow -> deep, the last entry is ``logits``) -- 11 predictions for the 15-layer
  model, as supervised by the distillation stage;
* ``template_scores`` (``fartrack_sparse``): ``template_scores`` (B, T, P), the attention every template token
  receives from the centre search token summed over layers and averaged over heads, and ``template_keep`` (B, P),
  the keep-mask of the newest template at the configured inference prune ratio (official: 37 of 49 kept). Such a
  network also accepts ``template_keep`` (B, T, P) bool: pruned template tokens are removed as keys (official
  key-masking with masked LayerNorm) or, in eval mode with ``drop_pruned_tokens``, physically dropped from the
  sequence (numerically equivalent, faster);
* the backbone's :class:`BackboneSpec` options ``masked_norm`` and ``command_renorm`` (``fartrack_sparse``).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from lib.models.common import TemplateInput, stack_templates
from lib.models.fartrack.backbone import BackboneSpec, FARTrackViT
from lib.models.fartrack.layers import ATTENTION_IMPLS
from lib.models.fartrack.sparsify import inference_keep_mask, token_keep_vector


class FARTrackNetwork(nn.Module):
    """``identity`` (per-slot embeddings: templates 0..T-1, then the search) and the ViT ``backbone``."""

    def __init__(
        self,
        spec: BackboneSpec,
        *,
        family: str,
        net_type: str,
        depth: Optional[int] = None,
        test_prune_ratio: float = 0.25,
        template_scores: bool = False,
        layer_heads_from: Optional[int] = None,
    ) -> None:
        super().__init__()
        #: Name of the family record that built the network and the official class name (checkpoint ``net_type``);
        #: labels only, the forward never branches on them.
        self.family = family
        self.net_type = net_type
        self.identity = nn.Parameter(torch.zeros(1, spec.num_templates + 1, spec.embed_dim))
        self.backbone = FARTrackViT(spec)
        nn.init.trunc_normal_(self.identity, std=0.02)
        self.depth = spec.num_layers if depth is None else depth
        self.test_prune_ratio = test_prune_ratio
        #: Return the centre search token's attention to the template tokens and the newest template's keep-mask,
        #: and accept ``template_keep`` (template sparsification).
        self.template_scores = template_scores
        #: Also apply the shared head after every depth from this one (1-based) on: ``layer_logits``.
        self.layer_heads_from = layer_heads_from
        #: ``explicit`` reproduces the official attention arithmetic; ``sdpa`` is the fused fast path.
        self.attention = "explicit"
        #: In eval mode, physically drop pruned template tokens instead of masking them.
        self.drop_pruned_tokens = True

    # ------------------------------------------------------------------ properties
    @property
    def spec(self) -> BackboneSpec:
        return self.backbone.spec

    @property
    def depth(self) -> int:
        return self._depth

    @depth.setter
    def depth(self, value: int) -> None:
        if not 1 <= int(value) <= self.spec.num_layers:
            raise ValueError(f"depth must be in 1..{self.spec.num_layers}, got {value}")
        self._depth = int(value)

    @property
    def attention(self) -> str:
        return self._attention

    @attention.setter
    def attention(self, value: str) -> None:
        if value not in ATTENTION_IMPLS:
            raise ValueError(f"unknown attention implementation {value!r}; choose one of {ATTENTION_IMPLS}")
        self._attention = value

    # ------------------------------------------------------------------ forward
    def embed_templates(self, templates: TemplateInput) -> Tensor:
        """(B, T, P, C) slot-independent template tokens; trackers may cache them per stored template."""
        spec = self.spec
        return self.backbone.embed_templates(stack_templates(templates, spec.num_templates, spec.template_size))

    def forward(
        self,
        templates: TemplateInput,
        search: Tensor,
        template_keep: Optional[Tensor] = None,
        template_tokens: Optional[Tensor] = None,
    ) -> dict[str, Any]:
        """Run the network.

        Args:
            templates: (B, T, 3, 112, 112) or a list of T (B, 3, 112, 112), slot 0 oldest .. slot T-1 newest.
                Ignored when ``template_tokens`` (from :meth:`embed_templates`) is given.
            search: (B, 3, 224, 224).
            template_keep: sparse family only, optional (B, T, P) bool keep-mask of the template tokens.
        """
        spec = self.spec
        if template_tokens is None:
            template_tokens = self.embed_templates(templates)
        batch = template_tokens.shape[0]
        expected_search = (batch, 3, spec.search_size, spec.search_size)
        if tuple(search.shape) != expected_search:
            raise ValueError(f"search must be {expected_search}, got {tuple(search.shape)}")
        if template_keep is not None and not self.template_scores:
            raise ValueError(f"template_keep needs a network with template_scores ({self.family} has none)")

        slot_ids = self.identity[:, : spec.num_templates].unsqueeze(2)
        template_tokens = (template_tokens + slot_ids).flatten(1, 2)
        search_tokens = self.backbone.embed_search(search) + self.identity[:, -1:]
        command_tokens = self.backbone.command_tokens(batch)

        key_keep = None
        if template_keep is not None:
            template_keep = template_keep.to(device=search.device, dtype=torch.bool)
            # Dropping needs the same token count in every sample (always true for one sequence: no device sync).
            kept_counts = template_keep.flatten(1).sum(dim=1)
            uniform = batch == 1 or bool((kept_counts == kept_counts[0]).all())
            if not self.training and self.drop_pruned_tokens and uniform:
                # Removing masked keys from every layer removes them entirely: drop the tokens.
                template_tokens = template_tokens[template_keep.flatten(1)].reshape(batch, -1, spec.embed_dim)
            else:
                key_keep = token_keep_vector(template_keep, spec.num_search_tokens + spec.num_command_tokens)

        num_template_tokens = template_tokens.shape[1]
        tokens = torch.cat([template_tokens, search_tokens, command_tokens], dim=1)
        score_query = num_template_tokens + spec.centre_search_index if self.template_scores else None
        head_depths = () if self.layer_heads_from is None else tuple(range(self.layer_heads_from, self.depth))
        tokens, scores, layer_logits = self.backbone.run_layers(
            tokens, self.depth, key_keep=key_keep, score_query=score_query, head_depths=head_depths,
            attention=self.attention,
        )
        logits = self.backbone.head(tokens[:, -spec.num_command_tokens :])
        out: dict[str, Any] = {"logits": logits}
        if self.layer_heads_from is not None:
            out["layer_logits"] = [*layer_logits, logits]
        if self.template_scores:
            assert scores is not None
            out["template_scores"] = self._template_scores(scores[:, :num_template_tokens], template_keep, key_keep)
            out["template_keep"] = inference_keep_mask(out["template_scores"][:, -1], self.test_prune_ratio)
        return out

    def _template_scores(self, scores: Tensor, template_keep: Optional[Tensor], key_keep: Optional[Tensor]) -> Tensor:
        """Scores of the template tokens as (B, T, P); dropped tokens score 0, as masked keys do."""
        spec = self.spec
        shape = (scores.shape[0], spec.num_templates, spec.tokens_per_template)
        if template_keep is None or key_keep is not None:
            return scores.reshape(shape)
        full = scores.new_zeros(shape)
        full[template_keep] = scores.flatten()
        return full


def spec_from_config(cfg: Any, *, masked_norm: bool = False, command_renorm: bool = False) -> BackboneSpec:
    """Derive every size of the network from a loaded config (no magic shapes)."""
    model, data = cfg.MODEL, cfg.DATA
    if model.BACKBONE.TYPE != "vit_tiny_patch16_224":
        raise ValueError(f"only vit_tiny_patch16_224 is supported (the official model hard-wires width 192), got {model.BACKBONE.TYPE}")
    return BackboneSpec(
        patch_size=model.BACKBONE.STRIDE,
        num_extension=model.EXTENSION,
        template_size=data.TEMPLATE.SIZE,
        search_size=data.SEARCH.SIZE,
        num_templates=data.TEMPLATE.NUMBER,
        bins=model.BINS,
        value_range=model.RANGE,
        prenum=model.get("PRENUM", 3),
        drop_path_rate=cfg.TRAIN.DROP_PATH_RATE,
        masked_norm=masked_norm,
        command_renorm=command_renorm,
    )
