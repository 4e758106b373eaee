"""Unit tests of the training machinery: optimiser groups, schedule, checkpoint names, stage chaining, RNG state,
the sequence-exploration geometry and the trainer's non-finite-loss stop."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.config.loader import load_config
from lib.families import build_network, get_family
from lib.train.actors import FrameActor, SequenceActor, gt_in_crop
from lib.train.distributed import DistContext
from lib.train.optim import build_optimizer, build_scheduler, parameter_groups
from lib.train.run import TrainingSetupError, find_previous_checkpoint, resume_checkpoint
from lib.train.trainer import (
    NonFiniteLossError,
    Trainer,
    TrainerSettings,
    capture_rng_state,
    official_save_schedule,
    restore_rng_state,
)
from lib.utils.run_layout import checkpoint_name, list_checkpoints
from lib.utils.checkpoint import load_checkpoint_file, save_checkpoint

SMALL = ["MODEL.DEPTH", 2]


def _cfg(script: str, *opts):
    names = {"fartrack": "fartrack_tiny_224_full", "fartrack_distill": "fartrack_distill_224_full",
             "fartrack_sparse": "fartrack_sparse_224_full"}
    return load_config(script, names[script], list(opts))


# ---------------------------------------------------------------------------------------------------- optimiser
def test_parameter_groups_follow_the_official_split() -> None:
    net = build_network(_cfg("fartrack_sparse"))
    groups = parameter_groups(net, lr=4e-6, backbone_multiplier=0.1)
    names = {id(p): n for n, p in net.named_parameters()}
    group_names = [{names[id(p)] for p in g["params"]} for g in groups]
    assert group_names[0] == {"identity"}
    assert "backbone.pos_embed_x" in group_names[1] and "backbone.blocks.0.attn.qkv.weight" in group_names[1]
    assert "backbone.patch_embed.proj.weight" in group_names[1]
    for name in ("backbone.word_embeddings.weight", "backbone.position_embeddings.weight",
                 "backbone.prev_position_embeddings.weight", "backbone.output_bias",
                 "backbone.extension.2.mlp.fc2.bias"):
        assert name in group_names[2]
    assert not any(n.startswith("backbone.extension") or "embeddings" in n for n in group_names[1])
    assert sum(map(len, group_names)) == len(list(net.parameters()))
    assert [g["lr"] for g in groups] == pytest.approx([4e-6, 4e-7, 4e-6])


def test_optimizer_and_step_scheduler_use_gamma_point_one() -> None:
    cfg = _cfg("fartrack", "TRAIN.LR_DROP_EPOCH", 2, "TRAIN.SCHEDULER.DECAY_RATE", 0.5)
    net = build_network(cfg)
    optimizer = build_optimizer(net, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert all(g["weight_decay"] == pytest.approx(1e-4) for g in optimizer.param_groups)
    lrs = []
    for _ in range(3):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([4e-4, 4e-4, 4e-5])  # DECAY_RATE is ignored, as officially


# ---------------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_names_and_schedule(tmp_path: Path) -> None:
    assert checkpoint_name("FARTrackSparse", 15) == "FARTrackSparse_ep0015.pth.tar"
    assert [e for e in range(1, 21) if official_save_schedule(e, 20)] == [5, 10, 15, 16, 17, 18, 19, 20]
    assert [e for e in range(1, 4) if official_save_schedule(e, 3)] == [1, 2, 3]
    for epoch in (10, 2, 100):
        (tmp_path / checkpoint_name("FARTrack", epoch)).write_bytes(b"x")
    (tmp_path / "FARTrackDistill_ep0200.pth.tar").write_bytes(b"x")
    assert [p.name for p in list_checkpoints(tmp_path, "FARTrack")] == [
        "FARTrack_ep0002.pth.tar", "FARTrack_ep0010.pth.tar", "FARTrack_ep0100.pth.tar"]


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_previous_stage_checkpoint_resolution(tmp_path: Path) -> None:
    pth = "checkpoints/train/fartrack/fartrack_tiny_224_full/FARTrack_ep0500.pth.tar"
    with pytest.raises(TrainingSetupError, match="fartrack.*checkpoint.*Train the fartrack stage first"):
        find_previous_checkpoint("fartrack_distill", pth, tmp_path)
    run = tmp_path / "checkpoints/train/fartrack/small"
    _touch(run / "FARTrack_ep0003.pth.tar")
    latest = _touch(run / "FARTrack_ep0012.pth.tar")
    assert find_previous_checkpoint("fartrack_distill", pth, tmp_path) == latest  # the only run found
    other = _touch(tmp_path / "checkpoints/train/fartrack/other/FARTrack_ep0001.pth.tar")
    with pytest.raises(TrainingSetupError, match="several runs.*--pretrained"):
        find_previous_checkpoint("fartrack_distill", pth, tmp_path)
    assert find_previous_checkpoint("fartrack_distill", pth, tmp_path, explicit=other) == other
    named = _touch(tmp_path / pth)
    assert find_previous_checkpoint("fartrack_distill", pth, tmp_path) == named
    # stage 3 looks for FARTrackDistill checkpoints, not FARTrack ones
    with pytest.raises(TrainingSetupError, match="fartrack_distill"):
        find_previous_checkpoint("fartrack_sparse", "", tmp_path)
    with pytest.raises(TrainingSetupError, match="does not exist"):
        find_previous_checkpoint("fartrack_sparse", "", tmp_path, explicit=tmp_path / "nope.pth.tar")


def test_resume_choice(tmp_path: Path) -> None:
    assert resume_checkpoint(None, tmp_path, "FARTrack") is None
    with pytest.raises(TrainingSetupError, match="no FARTrack_ep"):
        resume_checkpoint("latest", tmp_path, "FARTrack")
    last = _touch(tmp_path / "FARTrack_ep0002.pth.tar")
    with pytest.raises(TrainingSetupError, match="--resume"):
        resume_checkpoint(None, tmp_path, "FARTrack")  # never silently overwrite a run
    assert resume_checkpoint("latest", tmp_path, "FARTrack") == last


def test_rng_state_survives_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    net = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "c.pth.tar", net=net, epoch=1, net_type="X", actor_type="Y",
                           extra={"rng": [state]})
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    restore_rng_state(load_checkpoint_file(path)["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


# ---------------------------------------------------------------------------------------------------- actors
def test_gt_in_crop_geometry() -> None:
    # window of side 100 centred on (50, 60), crop 224: scale 2.24, window centre -> 112
    assert gt_in_crop(np.array([40.0, 50.0, 20.0, 20.0]), (50.0, 60.0), 100, 224) == pytest.approx(
        [112 - 22.4, 112 - 22.4, 44.8, 44.8])
    assert gt_in_crop(np.array([1.0, 2.0, 0.0, 5.0]), (50.0, 60.0), 100, 224) == [0.0, 0.0, 0.0, 0.0]
    assert gt_in_crop(np.array([np.nan, 2.0, 3.0, 5.0]), (50.0, 60.0), 100, 224) == [0.0, 0.0, 0.0, 0.0]


def _sequence(rng: np.random.Generator, frames: int, size=(120, 160)) -> dict:
    boxes = np.array([[40 + 2 * i, 30 + i, 30, 24] for i in range(5 + frames)], dtype=np.float64)
    images = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(5 + frames)]
    return {"template_images": images[:5], "template_boxes": boxes[:5], "search_images": images[5:],
            "search_boxes": boxes[5:]}


def test_sequence_actor_explores_and_returns_one_loss_per_sequence() -> None:
    cfg = _cfg("fartrack_sparse", *SMALL)
    net = build_network(cfg).train()
    actor = get_family("fartrack_sparse").build_actor(net, cfg, torch.device("cpu"))
    assert isinstance(actor, SequenceActor)
    rng = np.random.default_rng(0)
    batch = [_sequence(rng, 4), _sequence(rng, 4)]
    explored = actor.explore(batch)
    assert net.training  # exploration runs in eval mode and restores the mode
    assert len(explored) == 2
    seq = explored[0]
    assert seq.search.shape == (3, 3, 224, 224) and seq.templates.shape == (5, 3, 112, 112)
    assert seq.template_keep[0].all()  # frame 1 runs with every token
    kept = seq.template_keep[1:].flatten(1).sum(-1)
    assert (kept == 4 * 37 + 49).all() and torch.equal(seq.template_keep[1], seq.template_keep[2])
    assert seq.gt_crop_xywh.shape == (3, 4) and ((seq.iou >= 0) & (seq.iou <= 1)).all()
    parts = actor.loss_parts(batch)
    assert len(parts) == 2
    loss, stats = parts[0]()
    assert loss.requires_grad and np.isfinite(stats["Loss/total"])
    assert stats["Loss/total"] == pytest.approx(2 * stats["Loss/siou"], rel=1e-5)  # CE weight 0 officially
    assert actor.grad_clip_norm == 100.0


@pytest.mark.parametrize("script", ["fartrack", "fartrack_distill"])
def test_frame_actor_loss(script: str) -> None:
    cfg = _cfg(script, "MODEL.DEPTH", 6)
    net = build_network(cfg)
    actor = get_family(script).build_actor(net, cfg, torch.device("cpu"))
    assert isinstance(actor, FrameActor)
    batch = {"template_images": torch.randn(2, 5, 3, 112, 112), "search_images": torch.randn(2, 1, 3, 224, 224),
             "search_anno": torch.tensor([[[0.375, 0.375, 0.25, 0.25]], [[0.3, 0.4, 0.2, 0.3]]])}
    (part,) = actor.loss_parts(batch)
    loss, stats = part()
    loss.backward()
    assert np.isfinite(stats["Loss/total"]) and actor.grad_clip_norm == pytest.approx(0.1)
    if script == "fartrack_distill":
        assert "Loss/kl" in stats and "Loss/siou_1" in stats  # depths 5 and 6
    assert actor.actor_type == {"fartrack": "FARTrackActor", "fartrack_distill": "FARTrackDistillActor"}[script]


# ---------------------------------------------------------------------------------------------------- trainer
class _NaNActor:
    actor_type = "FARTrackActor"
    grad_clip_norm = 0.1

    def __init__(self, net):
        self.net = net

    def train(self, mode=True):
        self.net.train(mode)

    def loss_parts(self, batch):
        def part():
            loss = (self.net.identity * float("nan")).sum()
            return loss, {"Loss/total": float(loss.detach())}
        return [part]


def test_non_finite_loss_stops_without_touching_weights_or_checkpoints(tmp_path: Path) -> None:
    cfg = _cfg("fartrack", *SMALL)
    net = build_network(cfg)
    before = net.identity.detach().clone()
    optimizer = build_optimizer(net, cfg)
    settings = TrainerSettings(max_epochs=2, checkpoint_dir=tmp_path / "ckpt")
    loader = [{"search_images": torch.zeros(1, 1, 3, 8, 8)}]
    trainer = Trainer(_NaNActor(net), optimizer, build_scheduler(optimizer, cfg), loader, settings, DistContext())
    with pytest.raises(NonFiniteLossError, match="non-finite loss.*epoch 1.*last good"):
        trainer.fit()
    assert torch.equal(net.identity, before)
    assert not (tmp_path / "ckpt").exists()


# ---------------------------------------------------------------------------------------------------- init options
def test_sincos_initialisations() -> None:
    from timm.layers import build_sincos2d_pos_embed

    net = build_network(_cfg("fartrack"))
    backbone = net.backbone
    special = backbone.word_embeddings.weight[600:].detach().clone()
    backbone.init_sincos_position_embeddings()
    table = build_sincos2d_pos_embed([14, 14], 192)
    assert torch.allclose(backbone.pos_embed[0, 1:], table)
    assert torch.allclose(backbone.pos_embed_x[0], table, atol=1e-5)  # 14x14 -> 14x14 bicubic is the identity
    backbone.init_sincos_coordinate_embeddings()
    rows = backbone.word_embeddings.weight.detach()
    assert torch.allclose(rows[:600].norm(dim=1), torch.full((600,), 2 ** 0.5), atol=1e-5)
    assert torch.equal(rows[600:], special)  # command and padding rows untouched
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(rows[100], rows[101], dim=0) > cosine(rows[100], rows[130], dim=0) > cosine(rows[100], rows[400], dim=0)


def test_unknown_init_or_order_is_a_config_error() -> None:
    from lib.config.loader import ConfigError

    with pytest.raises(ConfigError, match="COORD_EMBED_INIT must be one of kaiming, sincos"):
        _cfg("fartrack", "MODEL.COORD_EMBED_INIT", "xavier")
    with pytest.raises(ConfigError, match="DATA.TEMPLATE.ORDER must be one of"):
        _cfg("fartrack", "DATA.TEMPLATE.ORDER", "random")
