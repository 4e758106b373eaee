"""End-to-end training on CPU: every stage, every dataset layout (and an LMDB), stage chaining, exact resume,
torchrun with two processes, and bad input (missing roots, corrupt images, short sequences, non-finite losses)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.api import load_network
from lib.config.loader import load_config
from lib.families import build_network
from lib.models.fartrack.weights import load_network_weights
from lib.train import trainer as trainer_module
from lib.train.admin.environment import LOCAL_FILE_ENV
from lib.train.dataset.storage import build_lmdb
from lib.train.dataset.base import TrainDatasetError
from lib.train.run import TrainOptions, run_training
from lib.train.trainer import NonFiniteLossError
from lib.utils.checkpoint import load_checkpoint_file
from train_fixtures import write_coco, write_got10k_train, write_lasot_train, write_trackingnet_train

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"fartrack": "fartrack_tiny_224_full", "fartrack_distill": "fartrack_distill_224_full",
           "fartrack_sparse": "fartrack_sparse_224_full"}
FRAMES = 24  # the causal sampler needs > 12 visible frames and at least 20


def fast_opts(script: str, datasets: str = "[GOT10K_all]", depth: int = 2) -> list:
    """A few tiny iterations: 2 batches of 2 per epoch, no workers, few layers, validation every epoch."""
    opts = ["TRAIN.EPOCH", 1, "TRAIN.BATCH_SIZE", 2, "DATA.TRAIN.SAMPLE_PER_EPOCH", 4, "TRAIN.NUM_WORKER", 0,
            "MODEL.DEPTH", depth, "DATA.TRAIN.DATASETS_NAME", datasets,
            "DATA.TRAIN.DATASETS_RATIO", "[" + ", ".join("1" * len(datasets.strip("[]").split(","))) + "]"]
    if script == "fartrack_sparse":
        return opts + ["DATA.SEARCH.NUMBER", 3, "DATA.TRAIN.SAMPLE_PER_EPOCH", 2]
    return opts + ["DATA.VAL.DATASETS_NAME", "[GOT10K_official_val]", "DATA.VAL.SAMPLE_PER_EPOCH", 2,
                   "TRAIN.VAL_EPOCH_INTERVAL", 1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    write_lasot_train(root / "lasot", num_frames=FRAMES)
    write_got10k_train(root / "got10k" / "train", num_sequences=3, num_frames=FRAMES)
    write_got10k_train(root / "got10k" / "val", num_sequences=2, num_frames=FRAMES, prefix="GOT-10k_Val")
    write_trackingnet_train(root / "trackingnet", chunks=(0,), num_sequences=2, num_frames=FRAMES)
    write_coco(root / "coco", num_images=3)
    build_lmdb(root / "lasot", root / "lasot_lmdb", progress=False)
    build_lmdb(root / "got10k" / "val", root / "got10k_lmdb" / "val", progress=False)  # validation reads LMDB too
    return root


@pytest.fixture
def train_env(data_dir, tmp_path, monkeypatch) -> Path:
    for name in list(os.environ):
        if name.startswith("FARTRACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(LOCAL_FILE_ENV, str(tmp_path / "absent_local.py"))
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(data_dir))
    return data_dir


def train(script: str, save_dir: Path, opts: list, **kwargs) -> Path:
    last = run_training(TrainOptions(script=script, config=CONFIGS[script], save_dir=save_dir, opts=opts, **kwargs))
    assert last is not None
    return last


def checkpoint_stats(path: Path) -> dict:
    return load_checkpoint_file(path)["stats"]


# ---------------------------------------------------------------------------------------------------- stages
@pytest.mark.parametrize("datasets, lmdb", [("[LASOT]", False), ("[GOT10K_all]", False), ("[TRACKINGNET]", False),
                                            ("[COCO17]", False), ("[LASOT]", True)])
def test_stage1_trains_on_every_layout(train_env, tmp_path, datasets, lmdb) -> None:
    last = train("fartrack", tmp_path / "out", fast_opts("fartrack", datasets), use_lmdb=lmdb)
    assert last == tmp_path / "out/checkpoints/train/fartrack/fartrack_tiny_224_full/FARTrack_ep0001.pth.tar"
    checkpoint = load_checkpoint_file(last)
    assert checkpoint["net_type"] == "FARTrack" and checkpoint["actor_type"] == "FARTrackActor"
    assert len(checkpoint["optimizer"]["param_groups"]) == 3
    stats = checkpoint["stats"]["1"]
    assert np.isfinite(stats["train"]["Loss/total"]) and "val" in stats
    net = build_network(load_config("fartrack", CONFIGS["fartrack"]))
    load_network_weights(net, last)  # strict
    assert (tmp_path / "out/logs/fartrack-fartrack_tiny_224_full.log").is_file()
    assert list((tmp_path / "out/tensorboard/train/fartrack/fartrack_tiny_224_full").glob("events.*"))


def test_three_stages_chain_without_yaml_edits(train_env, tmp_path) -> None:
    out = tmp_path / "out"
    every_layout = "[LASOT, GOT10K_all, TRACKINGNET, COCO17]"
    stage1 = train("fartrack", out, fast_opts("fartrack", every_layout))
    stage2 = train("fartrack_distill", out, fast_opts("fartrack_distill", every_layout, depth=6))  # finds stage 1
    assert stage2.name == "FARTrackDistill_ep0001.pth.tar"
    assert "Loss/kl" in checkpoint_stats(stage2)["1"]["train"]
    # stage 2 started from stage 1: the untouched MAE remnant equals stage 1's
    assert torch.equal(load_checkpoint_file(stage1)["net"]["backbone.cls_token"],
                       load_checkpoint_file(stage2)["net"]["backbone.cls_token"])
    stage3 = train("fartrack_sparse", out, fast_opts("fartrack_sparse", "[LASOT, GOT10K_all, TRACKINGNET]"))
    assert stage3.name == "FARTrackSparse_ep0001.pth.tar"
    stats = checkpoint_stats(stage3)["1"]["train"]
    assert np.isfinite(stats["Loss/total"]) and 0 <= stats["IoU/explore"] <= 1
    sparse = load_checkpoint_file(stage3)["net"]
    distill = load_checkpoint_file(stage2)["net"]
    assert torch.equal(sparse["backbone.blocks.5.masknorm1.norm.weight"], distill["backbone.blocks.5.norm1.weight"])
    net = load_network("fartrack_sparse", CONFIGS["fartrack_sparse"], checkpoint=stage3)
    out_dict = net(torch.zeros(1, 5, 3, 112, 112), torch.zeros(1, 3, 224, 224))
    assert out_dict["logits"].shape == (1, 4, 605)


def test_missing_previous_stage_is_a_clear_error(train_env, tmp_path) -> None:
    with pytest.raises(Exception, match="starts from a fartrack .*checkpoint.*--pretrained"):
        train("fartrack_distill", tmp_path / "out", fast_opts("fartrack_distill", depth=6))


# ---------------------------------------------------------------------------------------------------- resume
def test_killed_run_resumes_exactly(train_env, tmp_path, monkeypatch) -> None:
    opts = fast_opts("fartrack") + ["TRAIN.EPOCH", 3, "TRAIN.LR_DROP_EPOCH", 2]
    full = train("fartrack", tmp_path / "full", opts)

    calls = {"n": 0}
    original = trainer_module.Trainer.train_step

    def dies_in_epoch_three(self, batch):
        if self.epoch == 3:
            calls["n"] += 1
            if calls["n"] == 2:  # one optimiser step of epoch 3 is done, then the process "dies"
                raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train("fartrack", tmp_path / "killed", opts)
    monkeypatch.setattr(trainer_module.Trainer, "train_step", original)
    run_dir = tmp_path / "killed/checkpoints/train/fartrack/fartrack_tiny_224_full"
    assert sorted(p.name for p in run_dir.iterdir()) == ["FARTrack_ep0001.pth.tar", "FARTrack_ep0002.pth.tar"]
    with pytest.raises(Exception, match="--resume"):
        train("fartrack", tmp_path / "killed", opts)  # never silently restarts over an existing run
    resumed = train("fartrack", tmp_path / "killed", opts, resume="latest")

    def losses(path: Path) -> dict:  # every stat but the timings, epochs 1..3
        return {epoch: {phase: {k: v for k, v in stats.items() if not k.startswith("Time/")}
                        for phase, stats in record.items()} for epoch, record in checkpoint_stats(path).items()}

    assert losses(resumed) == losses(full)
    full_net, resumed_net = load_checkpoint_file(full)["net"], load_checkpoint_file(resumed)["net"]
    assert all(torch.equal(full_net[k], resumed_net[k]) for k in full_net)
    assert load_checkpoint_file(resumed)["scheduler"] == load_checkpoint_file(full)["scheduler"]


# ---------------------------------------------------------------------------------------------------- bad input
def test_missing_dataset_root_names_dataset_and_layout(train_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FARTRACK_LASOT_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(TrainDatasetError, match=r"(?s)LaSOT.*nowhere.*groundtruth.txt.*FARTRACK_LASOT_DIR"):
        train("fartrack", tmp_path / "out", fast_opts("fartrack", "[LASOT]"))


def test_corrupt_images_are_skipped_and_counted(train_env, tmp_path, monkeypatch) -> None:
    root = tmp_path / "got10k_corrupt"
    write_got10k_train(root, num_sequences=2, num_frames=FRAMES)
    for frame in (root / "GOT-10k_Train_000001").glob("*.jpg"):
        frame.write_bytes(frame.read_bytes()[:200])  # truncated JPEGs
    monkeypatch.setenv("FARTRACK_GOT10K_DIR", str(root))
    last = train("fartrack", tmp_path / "out", fast_opts("fartrack") + ["DATA.TRAIN.SAMPLE_PER_EPOCH", 8])
    stats = checkpoint_stats(last)["1"]["train"]
    assert stats["Data/failed_reads"] > 0 and np.isfinite(stats["Loss/total"])


def test_too_short_sequences_fail_fast(train_env, tmp_path, monkeypatch) -> None:
    root = tmp_path / "got10k_short"
    write_got10k_train(root, num_sequences=2, num_frames=8)
    monkeypatch.setenv("FARTRACK_GOT10K_DIR", str(root))
    with pytest.raises(TrainDatasetError, match="needs > 12 visible frames"):
        train("fartrack", tmp_path / "out", fast_opts("fartrack"))


def test_non_finite_loss_keeps_the_last_good_checkpoint(train_env, tmp_path, monkeypatch) -> None:
    original = trainer_module.Trainer.train_step

    def poisoned(self, batch):
        if self.epoch == 2:
            with torch.no_grad():
                trainer_module.unwrap(self.net).identity.fill_(float("nan"))
        return original(self, batch)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", poisoned)
    with pytest.raises(NonFiniteLossError, match="epoch 2"):
        train("fartrack", tmp_path / "out", fast_opts("fartrack") + ["TRAIN.EPOCH", 2])
    run_dir = tmp_path / "out/checkpoints/train/fartrack/fartrack_tiny_224_full"
    assert [p.name for p in run_dir.iterdir()] == ["FARTrack_ep0001.pth.tar"]
    net = build_network(load_config("fartrack", CONFIGS["fartrack"]))
    load_network_weights(net, run_dir / "FARTrack_ep0001.pth.tar")
    assert torch.isfinite(net.identity).all()


# ---------------------------------------------------------------------------------------------------- CLI
def _cli(args: list[str], env_dir: Path, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARTRACK_")}
    env.update({"FARTRACK_DATA_DIR": str(env_dir), LOCAL_FILE_ENV: str(tmp_path / "absent_local.py"),
                "OMP_NUM_THREADS": "1"})
    return subprocess.run([sys.executable, str(REPO / "tracking/train.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_torchrun_two_processes_on_cpu(train_env, tmp_path) -> None:
    opts = [str(v) for v in fast_opts("fartrack") + ["DATA.TRAIN.SAMPLE_PER_EPOCH", 8]]
    result = _cli(["--script", "fartrack", "--config", CONFIGS["fartrack"], "--save_dir", "out", "--mode", "multiple",
                   "--nproc_per_node", "2", "--opts", *opts], train_env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    path = tmp_path / "out/checkpoints/train/fartrack/fartrack_tiny_224_full/FARTrack_ep0001.pth.tar"
    checkpoint = load_checkpoint_file(path)
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng"]) == 2
    assert not any(k.startswith("module.") for k in checkpoint["net"])
    net = build_network(load_config("fartrack", CONFIGS["fartrack"]))
    load_network_weights(net, path)


def test_cli_errors_exit_non_zero(train_env, tmp_path) -> None:
    result = _cli(["--script", "fartrack", "--config", CONFIGS["fartrack"], "--opts", "TRAIN.NOPE", "1"],
                  train_env, tmp_path, timeout=120)
    assert result.returncode == 1 and "TRAIN.NOPE" in result.stderr
    result = _cli(["--script", "fartrack_sparse", "--config", CONFIGS["fartrack_sparse"], "--save_dir", "empty",
                   "--opts", *[str(v) for v in fast_opts("fartrack_sparse")]], train_env, tmp_path, timeout=120)
    assert result.returncode == 1 and "fartrack_distill" in result.stderr and "--pretrained" in result.stderr
