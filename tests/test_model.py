"""The FARTrack network: official state_dict layout, parity with a literal spec transcription, sparsification."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lib.config.loader import load_config

from lib.families import OFFICIAL_CONFIGS

FAMILIES = tuple(OFFICIAL_CONFIGS)  # the FARTrack families
from lib.families import build_network
from lib.models.fartrack.sparsify import training_keep_mask
from spec_reference import count_block_params, reference_forward

SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "spec"
EXPERIMENTS = sorted(p for p in (Path(__file__).resolve().parents[1] / "experiments").glob("*/*.yaml")
                     if p.parent.name in FAMILIES)  # the FARTrack families (fastseqtrack: tests/test_fastseqtrack.py)


def make_net(family: str, depth: int | None = None, seed: int = 0):
    torch.manual_seed(seed)
    net = build_network(load_config(family, OFFICIAL_CONFIGS[family]), depth=depth)
    # Spread the weights so attention is far from uniform (random init gives near-ties in the pruning scores).
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith("qkv.weight"):
                param.normal_(0, 0.15)
            elif "norm" in name and name.endswith("weight"):
                param.uniform_(0.5, 1.5)
            elif "norm" in name and name.endswith("bias"):
                param.normal_(0, 0.1)
        net.backbone.output_bias.normal_(0, 0.5)
    return net.eval()


def make_inputs(batch: int = 2, seed: int = 1, dtype=torch.float32, template_size: int = 112, search_size: int = 224):
    gen = torch.Generator().manual_seed(seed)
    templates = torch.randn(batch, 5, 3, template_size, template_size, generator=gen, dtype=dtype)
    search = torch.randn(batch, 3, search_size, search_size, generator=gen, dtype=dtype)
    return templates, search


def read_official_keys(family: str) -> list[tuple[str, list[int]]]:
    rows = []
    for line in (SPEC_DIR / f"official-keys-{family}.txt").read_text().splitlines():
        name, shape = line.split("\t")
        rows.append((name, [int(x) for x in shape.strip("[]").split(",") if x.strip()]))
    return rows


@pytest.mark.parametrize("family", FAMILIES)
def test_state_dict_equals_official_keys_in_order(family):
    net = build_network(load_config(family, OFFICIAL_CONFIGS[family]))
    ours = [(k, list(v.shape)) for k, v in net.state_dict().items()]
    assert ours == read_official_keys(family)


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_literal_spec_forward_float64(family):
    net = make_net(family).double()
    templates, search = make_inputs(dtype=torch.float64)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        ours = net(templates, search)
        ref = reference_forward(state, list(templates.unbind(1)), search, family)
    torch.testing.assert_close(ours["logits"], ref["logits"], rtol=0, atol=1e-10)
    if family == "fartrack_distill":
        assert len(ours["layer_logits"]) == 11
        for a, b in zip(ours["layer_logits"], ref["layer_logits"]):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    if family == "fartrack_sparse":
        torch.testing.assert_close(ours["template_scores"], ref["template_scores"], rtol=0, atol=1e-12)
        assert torch.equal(ours["template_keep"], ref["template_keep"])
        assert ours["template_keep"].sum(-1).tolist() == [37, 37]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("attention", ["explicit", "sdpa"])
def test_logits_match_literal_spec_forward_float32(family, attention):
    net = make_net(family)
    net.attention = attention
    templates, search = make_inputs()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        ours = net(list(templates.unbind(1)), search)  # the list form is accepted too
        ref = reference_forward(state, list(templates.unbind(1)), search, family)
    # float32 rounding differs between the two code paths (fused LayerNorm vs the literal formula); these test
    # weights make attention very peaky, which amplifies it. The float64 test above checks exactness.
    scale = ref["logits"].abs().max().item()
    assert (ours["logits"] - ref["logits"]).abs().max().item() <= 1e-4 * scale


def test_sparse_keymask_matches_reference_and_drop_path_matches_mask_path():
    net = make_net("fartrack_sparse").double()
    templates, search = make_inputs(dtype=torch.float64)
    with torch.no_grad():
        first = net(templates, search)
    template_keep = training_keep_mask(first["template_scores"], 0.25)
    assert template_keep.sum(dim=(1, 2)).tolist() == [4 * 37 + 49] * 2
    keep_vector = torch.cat([template_keep.flatten(1), torch.ones(2, 200, dtype=torch.bool)], dim=1)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        ref = reference_forward(state, list(templates.unbind(1)), search, "fartrack_sparse", keep=keep_vector)
        net.drop_pruned_tokens = False
        masked = net(templates, search, template_keep=template_keep)
        net.drop_pruned_tokens = True
        dropped = net(templates, search, template_keep=template_keep)
    torch.testing.assert_close(masked["logits"], ref["logits"], rtol=0, atol=1e-10)
    torch.testing.assert_close(masked["template_scores"], ref["template_scores"], rtol=0, atol=1e-12)
    torch.testing.assert_close(dropped["logits"], masked["logits"], rtol=0, atol=1e-10)
    torch.testing.assert_close(dropped["template_scores"], masked["template_scores"], rtol=0, atol=1e-12)
    assert torch.equal(dropped["template_keep"], masked["template_keep"])
    # pruned tokens receive no attention
    assert (masked["template_scores"][~template_keep] == 0).all()


@pytest.mark.parametrize("drop", [False, True])
def test_perturbing_pruned_template_pixels_changes_nothing(drop):
    net = make_net("fartrack_sparse")
    net.drop_pruned_tokens = drop
    templates, search = make_inputs(batch=1)
    gen = torch.Generator().manual_seed(5)
    keep = torch.rand(1, 5, 49, generator=gen) > 0.3
    keep[:, :, :3] = True  # same count is not required for the masked path; make it uniform anyway for drop
    with torch.no_grad():
        base = net(templates, search, template_keep=keep)
        perturbed = templates.clone()
        for slot in range(5):
            for token in (~keep[0, slot]).nonzero().flatten().tolist():
                row, col = divmod(token, 7)
                perturbed[0, slot, :, row * 16 : row * 16 + 16, col * 16 : col * 16 + 16] += 10 * torch.randn(3, 16, 16)
        again = net(perturbed, search, template_keep=keep)
        changed_kept = templates.clone()
        slot, token = 2, int(keep[0, 2].nonzero()[0])
        row, col = divmod(token, 7)
        changed_kept[0, slot, :, row * 16 : row * 16 + 16, col * 16 : col * 16 + 16] += 10
        moved = net(changed_kept, search, template_keep=keep)
    assert torch.equal(base["logits"], again["logits"])
    assert torch.equal(base["template_scores"], again["template_scores"])
    assert not torch.equal(base["logits"], moved["logits"])  # kept tokens do matter


def test_sparse_forward_renormalises_command_embeddings_in_place():
    net = make_net("fartrack_sparse")
    with torch.no_grad():
        net.backbone.word_embeddings.weight[600:604] *= 3
        other_rows = net.backbone.word_embeddings.weight[:600].clone()
        net(*make_inputs(batch=1))
    norms = net.backbone.word_embeddings.weight[600:604].norm(dim=1)
    assert torch.all(norms <= 1.0) and torch.all(norms > 0.999)
    assert torch.equal(net.backbone.word_embeddings.weight[:600], other_rows)


def test_dense_families_do_not_renormalise():
    net = make_net("fartrack")
    with torch.no_grad():
        net.backbone.word_embeddings.weight[600:604] *= 3
        before = net.backbone.word_embeddings.weight.clone()
        net(*make_inputs(batch=1))
    assert torch.equal(net.backbone.word_embeddings.weight, before)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("depth", [10, 6])
def test_depth_runs_the_first_layers(family, depth):
    net = make_net(family)
    templates, search = make_inputs(batch=1, dtype=torch.float32)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.depth = depth
    with torch.no_grad():
        ours = net(templates, search)
        ref = reference_forward(state, list(templates.unbind(1)), search, family, depth=depth)
    scale = ref["logits"].abs().max().item()
    assert (ours["logits"] - ref["logits"]).abs().max().item() <= 1e-4 * scale
    if family == "fartrack_distill":
        assert len(ours["layer_logits"]) == depth - 4
        full = make_net(family)
        with torch.no_grad():
            deep = full(templates, search)
        # the depth-L model's output is the full model's intermediate prediction at depth L
        torch.testing.assert_close(ours["logits"], deep["layer_logits"][depth - 5], rtol=0, atol=1e-5)


def test_paper_parameter_counts():
    net = build_network(load_config("fartrack", "fartrack_tiny_224_full"))
    state = net.state_dict()
    counts = {depth: count_block_params(state, depth) for depth in (15, 10, 6)}
    assert counts == {15: 6_820_608, 10: 4_596_288, 6: 2_816_832}
    assert [f"{counts[d] / 1e6:.2f}" for d in (15, 10, 6)] == ["6.82", "4.60", "2.82"]
    # the paper's 6.82 / 4.59 / 2.81 M are these numbers truncated to two decimals
    assert [int(counts[d] / 1e4) / 100 for d in (15, 10, 6)] == [6.82, 4.59, 2.81]
    assert sum(v.numel() for v in state.values()) == 7_034_141


def test_template_position_embedding_aliases_share_one_parameter():
    net = build_network(load_config("fartrack_sparse", "fartrack_sparse_224_full"))
    backbone = net.backbone
    assert backbone.pos_embed_z0 is backbone.pos_embed_z1 is backbone.pos_embed_z
    state = net.state_dict()
    state["backbone.pos_embed_z1"] = torch.full_like(state["backbone.pos_embed_z1"], 0.5)
    net.load_state_dict(state)
    assert torch.all(backbone.pos_embed_z0 == 0.5)  # as in the official model, the last alias loaded wins


def test_wrong_input_shapes_are_clear_errors():
    net = make_net("fartrack")
    templates, search = make_inputs(batch=1)
    with pytest.raises(ValueError, match="templates must be"):
        net(templates[:, :4], search)
    with pytest.raises(ValueError, match="search must be"):
        net(templates, search[..., :200])
    with pytest.raises(ValueError, match="template_keep needs a network with template_scores"):
        net(templates, search, template_keep=torch.ones(1, 5, 49, dtype=torch.bool))
    with pytest.raises(ValueError, match="depth"):
        net.depth = 16


@pytest.mark.parametrize("yaml_path", EXPERIMENTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_experiment_builds_and_trains_one_step(yaml_path):
    family = yaml_path.parent.name
    cfg = load_config(family, yaml_path)
    torch.manual_seed(0)
    net = build_network(cfg).train()
    templates, search = make_inputs(batch=2, template_size=cfg.DATA.TEMPLATE.SIZE, search_size=cfg.DATA.SEARCH.SIZE)
    keep = None
    if family == "fartrack_sparse":
        tokens = net.spec.tokens_per_template
        keep = torch.ones(2, 5, tokens, dtype=torch.bool)
        keep[:, :4, : tokens // 4] = False
    out = net(templates, search, template_keep=keep)
    logits = out.get("layer_logits", [out["logits"]])
    loss = sum(l.logsumexp(-1).mean() - l[..., :600].mean() for l in logits)
    loss.backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    assert grads["backbone.patch_embed.proj.weight"].abs().sum() > 0
    assert grads["identity"].abs().sum() > 0
    last_layer = f"backbone.{'extension.' + str(cfg.MODEL.DEPTH - 13) if cfg.MODEL.DEPTH > 12 else 'blocks.' + str(cfg.MODEL.DEPTH - 1)}"
    assert grads[f"{last_layer}.mlp.fc2.weight"].abs().sum() > 0
    if family == "fartrack_sparse":
        assert grads[f"{last_layer}.masknorm1.norm.weight"].abs().sum() > 0
        assert grads[f"{last_layer}.norm1.weight"] is None  # norm1/norm2 are not used by the sparse forward


@pytest.mark.parametrize("depth", [15, 10, 6])
def test_mac_count_matches_analytic_linear_layer_count(depth):
    from lib.models.fartrack.complexity import count_macs, paper_param_count

    net = build_network(load_config("fartrack_sparse", "fartrack_sparse_224_full"), depth=depth)
    per_token_per_block = 192 * 576 + 192 * 192 + 192 * 768 + 768 * 192  # qkv, proj, fc1, fc2 = 442,368
    patch_embed = 441 * 16 * 16 * 3 * 192  # 5 * 49 + 196 patches
    head = 4 * 192 * 605
    for kept, tokens in ((None, 445), ([37, 37, 37, 37, 49], 397)):
        macs = count_macs(net, kept)
        assert macs.tokens == tokens
        assert macs.projection_macs == tokens * per_token_per_block * depth + patch_embed + head
        assert macs.attention_macs == 2 * 3 * tokens * tokens * 64 * depth  # q k^T and attn v, 3 heads of 64
    assert paper_param_count(net) == count_block_params(net.state_dict(), depth)
