"""Checkpoints into the real network: official-format files, stage conversions, truncated depth, MAE weights."""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pytest
import torch

from lib.api import load_network
from lib.config.loader import load_config
from lib.families import OFFICIAL_CONFIGS, build_network, get_family
from lib.models.fartrack.weights import load_mae_weights
from lib.utils.checkpoint import CheckpointError, save_checkpoint
from test_checkpoint import OFFICIAL_MODULES, save_as_official
from test_model import make_inputs, make_net


def official_checkpoint(net, path, epoch=500):
    """A checkpoint as the official trainer writes it, pickled objects of the official repo included."""
    settings = OFFICIAL_MODULES["lib.train.admin.settings"]["Settings"]()
    settings.env = OFFICIAL_MODULES["lib.train.admin.local"]["EnvironmentSettings"]()
    settings.env.workspace_dir = "/somewhere/FARTrack"
    settings.script_name, settings.config_name, settings.device = "x", "y", torch.device("cpu")
    meter = OFFICIAL_MODULES["lib.train.admin.stats"]["AverageMeter"](np.float64(0.5))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    ckpt = {
        "epoch": epoch, "actor_type": get_family(net.family).actor_class_name,
        "net_type": get_family(net.family).net_class_name,
        "net": net.state_dict(), "net_info": None, "constructor": None, "optimizer": optimizer.state_dict(),
        "stats": OrderedDict(train=OrderedDict(Loss=meter)), "settings": settings,
    }
    return save_as_official(ckpt, path)


@pytest.mark.parametrize("family", list(OFFICIAL_CONFIGS))
def test_official_checkpoint_with_pickled_settings_loads_strictly_and_reproduces_outputs(family, tmp_path):
    source = make_net(family, seed=3)
    path = official_checkpoint(source, tmp_path / f"{get_family(family).net_class_name}_ep0500.pth.tar")
    loaded = load_network(family, OFFICIAL_CONFIGS[family], checkpoint=path)
    templates, search = make_inputs(batch=1)
    with torch.no_grad():
        expected, got = source(templates, search), loaded(templates, search)
    assert torch.equal(expected["logits"], got["logits"])
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_fartrack_checkpoint_loads_into_distill(tmp_path):
    path = official_checkpoint(make_net("fartrack", seed=4), tmp_path / "FARTrack_ep0500.pth.tar")
    net = load_network("fartrack_distill", "fartrack_distill_224_full", checkpoint=path)
    assert len(net(*make_inputs(batch=1))["layer_logits"]) == 11


def test_distill_checkpoint_into_sparse_copies_norms_and_keeps_prev_position_init(tmp_path):
    distill = make_net("fartrack_distill", seed=5)
    with torch.no_grad():  # command rows inside the unit ball: the sparse max-norm lookup leaves them alone
        rows = distill.backbone.word_embeddings.weight[600:604]
        rows *= 0.9 / rows.norm(dim=1, keepdim=True)
    path = official_checkpoint(distill, tmp_path / "FARTrackDistill_ep0435.pth.tar")
    torch.manual_seed(123)
    sparse = load_network("fartrack_sparse", "fartrack_sparse_224_full", checkpoint=path)
    for name, layer in zip(["blocks.0", "extension.2"], [sparse.backbone.blocks[0], sparse.backbone.extension[2]]):
        source = distill.backbone.get_submodule(name)
        assert torch.equal(layer.masknorm1.norm.weight, source.norm1.weight)
        assert torch.equal(layer.masknorm2.norm.bias, source.norm2.bias)
    torch.manual_seed(123)
    fresh = build_network(load_config("fartrack_sparse", "fartrack_sparse_224_full"))
    assert torch.equal(sparse.backbone.prev_position_embeddings.weight, fresh.backbone.prev_position_embeddings.weight)
    # Same weights and an all-kept mask: only the block LayerNorm eps differs (1e-5 vs 1e-6).
    templates, search = make_inputs(batch=1)
    with torch.no_grad():
        dense_logits = distill(templates, search)["logits"]
        sparse_logits = sparse(templates, search)["logits"]
    assert (dense_logits - sparse_logits).abs().max() < 1e-2 * dense_logits.abs().max()
    assert not torch.equal(dense_logits, sparse_logits)


def test_sparse_checkpoint_into_dense_drops_sparse_only_entries(tmp_path):
    path = official_checkpoint(make_net("fartrack_sparse", seed=6), tmp_path / "FARTrackSparse_ep0015.pth.tar")
    net = load_network("fartrack", "fartrack_tiny_224_full", checkpoint=path)
    assert net(*make_inputs(batch=1))["logits"].shape == (1, 4, 605)


def test_ddp_prefixed_checkpoint_loads(tmp_path):
    source = make_net("fartrack", seed=7)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save({"net": state, "epoch": 1}, tmp_path / "ddp.pth.tar")
    net = load_network("fartrack", "fartrack_tiny_224_full", checkpoint=tmp_path / "ddp.pth.tar")
    assert torch.equal(net.identity, source.identity)


def test_our_checkpoint_round_trip(tmp_path):
    source = make_net("fartrack_sparse", seed=8)
    path = save_checkpoint(tmp_path / "FARTrackSparse_ep0001.pth.tar", net=source, epoch=1,
                           net_type=source.net_type, actor_type="FARTrackSparseActor")
    net = load_network("fartrack_sparse", "fartrack_sparse_224_full", checkpoint=path)
    assert torch.equal(net.backbone.blocks[3].attn.qkv.weight, source.backbone.blocks[3].attn.qkv.weight)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    state = make_net("fartrack").state_dict()
    torch.save({"net": state, "settings": _Payload(marker)}, tmp_path / "evil.pth.tar")
    with pytest.raises(CheckpointError, match="system"):
        load_network("fartrack", "fartrack_tiny_224_full", checkpoint=tmp_path / "evil.pth.tar")
    assert not marker.exists()


def test_mis_shaped_checkpoint_is_refused_with_a_readable_report(tmp_path):
    state = make_net("fartrack").state_dict()
    state["backbone.pos_embed_x"] = torch.zeros(1, 256, 192)
    del state["backbone.blocks.3.mlp.fc1.bias"]
    torch.save({"net": state}, tmp_path / "bad.pth.tar")
    with pytest.raises(CheckpointError) as error:
        load_network("fartrack", "fartrack_tiny_224_full", checkpoint=tmp_path / "bad.pth.tar")
    message = str(error.value)
    assert "backbone.pos_embed_x" in message and "256" in message and "blocks.3.mlp.fc1.bias" in message


def test_checkpoint_with_fewer_layers_loads_when_it_covers_the_depth(tmp_path):
    source = make_net("fartrack_distill", seed=9)
    state = {k: v for k, v in source.state_dict().items() if ".extension." not in k
             and not any(f".blocks.{i}." in k for i in range(10, 12))}
    torch.save({"net": state}, tmp_path / "nano.pth.tar")
    net = load_network("fartrack_distill", "fartrack_distill_nano_224_full", checkpoint=tmp_path / "nano.pth.tar")
    source.depth = 10
    templates, search = make_inputs(batch=1)
    with torch.no_grad():
        assert torch.equal(net(templates, search)["logits"], source(templates, search)["logits"])
    with pytest.raises(CheckpointError, match="depth 15"):
        load_network("fartrack_distill", "fartrack_distill_224_full", checkpoint=tmp_path / "nano.pth.tar")


def test_mae_weights_initialise_backbone_and_extension(tmp_path):
    torch.manual_seed(0)
    mae = {}
    reference = build_network(load_config("fartrack", "fartrack_tiny_224_full"))
    for key, value in reference.backbone.state_dict().items():
        if key.startswith(("blocks.", "patch_embed.", "pos_embed", "cls_token", "norm.")) and not key.startswith(
            ("pos_embed_",)
        ):
            mae[f"module.model.{key}"] = torch.randn_like(value)
    mae["module.model.decoder_pred.weight"] = torch.randn(10, 10)
    torch.save({"model": mae}, tmp_path / "mae_tiny_distill_400e.pth.tar")
    for family in OFFICIAL_CONFIGS:
        net = build_network(load_config(family, OFFICIAL_CONFIGS[family]))
        load_mae_weights(net, tmp_path / "mae_tiny_distill_400e.pth.tar")
        backbone = net.backbone
        assert torch.equal(backbone.blocks[0].attn.qkv.weight, mae["module.model.blocks.0.attn.qkv.weight"])
        for j in range(3):
            assert torch.equal(backbone.extension[j].mlp.fc1.weight, mae[f"module.model.blocks.{9 + j}.mlp.fc1.weight"])
        # the search grid equals the MAE grid, so its embedding is the patch part of pos_embed unchanged
        torch.testing.assert_close(backbone.pos_embed_x, mae["module.model.pos_embed"][:, 1:], rtol=0, atol=1e-6)
        if family == "fartrack_sparse":
            assert torch.equal(backbone.blocks[4].masknorm1.norm.weight, mae["module.model.blocks.4.norm1.weight"])


def test_mae_weights_with_wrong_shapes_are_refused(tmp_path):
    torch.save({"model": {"pos_embed": torch.zeros(1, 50, 192)}}, tmp_path / "mae.pth")
    net = build_network(load_config("fartrack", "fartrack_tiny_224_full"))
    with pytest.raises(CheckpointError, match="pos_embed"):
        load_mae_weights(net, tmp_path / "mae.pth")


def test_check_checkpoint_cli_reports_and_fails_clearly(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "tracking" / "check_checkpoint.py"
    good = official_checkpoint(make_net("fartrack_distill", seed=10), tmp_path / "FARTrackDistill_ep0435.pth.tar")
    run = subprocess.run([sys.executable, str(script), str(good), "--script", "fartrack_sparse"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "net_type: FARTrackDistill" in run.stdout and "lib.train.admin.settings.Settings" in run.stdout
    assert "loads into FARTrackSparse" in run.stdout
    marker = tmp_path / "pwned"
    torch.save({"net": {}, "settings": _Payload(marker)}, tmp_path / "evil.pth.tar")
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "evil.pth.tar")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "refused" in run.stderr and not marker.exists()
