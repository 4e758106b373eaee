"""One training run of a stage: config, data, network initialisation, actor, optimiser, trainer.

Everything that differs between stages comes from the family record (:mod:`lib.families`): the network, the actor,
the loaders and where the weights start. Outputs under ``save_dir`` follow the official layout
(:mod:`lib.utils.run_layout`): checkpoints in ``checkpoints/train/<script>/<config>/``, TensorBoard scalars in
``tensorboard/train/<script>/<config>/`` and the log in ``logs/<script>-<config>.log``.

Initialisation (skipped when resuming): a stage with a previous stage (2: ``fartrack_distill``, 3:
``fartrack_sparse``) loads that stage's checkpoint (:func:`find_previous_checkpoint`): ``--pretrained PATH`` if
given, else ``MODEL.PRETRAIN_PTH`` (relative to ``save_dir``) if it exists, else the latest checkpoint of the
previous stage found under ``save_dir``. The others run the record's ``initialise`` (:mod:`lib.train.initialise`).
"""
from __future__ import annotations

import logging
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.contrib.logging import logging_redirect_tqdm

from lib.config.loader import load_config
from lib.families import Family, get_family
from lib.train.admin.environment import train_env_settings
from lib.train.distributed import DistContext, barrier, init_distributed, shutdown
from lib.train.optim import build_optimizer, build_scheduler
from lib.train.trainer import Trainer, TrainerSettings
from lib.utils import run_layout
from lib.utils.local_paths import REPO_ROOT
from lib.utils.run_layout import list_checkpoints

logger = logging.getLogger(__name__)

#: Official default seed (each process adds its rank).
DEFAULT_SEED = 1008
PRETRAINED_DIR = REPO_ROOT / "pretrained_models"


class TrainingSetupError(RuntimeError):
    """The run cannot start: missing previous-stage checkpoint, existing checkpoints without --resume, ..."""


@dataclass
class TrainOptions:
    """Everything ``tracking/train.py`` passes on."""

    script: str
    config: str
    save_dir: Path = Path("output")
    opts: Sequence[Any] = ()
    seed: int = DEFAULT_SEED
    use_lmdb: bool = False
    use_wandb: bool = False
    #: None: start fresh (refused when checkpoints exist); "latest": the last checkpoint of this run; or a path.
    resume: Optional[str] = None
    #: Previous-stage checkpoint (stages 2 and 3); None: found automatically.
    pretrained: Optional[Path] = None
    device: Optional[str] = None
    argv: list[str] = field(default_factory=list)


def find_previous_checkpoint(script: str, pretrain_pth: str, save_dir: Path, explicit: Optional[Path] = None
                             ) -> Path:
    """The previous stage's checkpoint a stage-2/3 run starts from (see the module docstring)."""
    previous = get_family(script).previous_stage
    if previous is None:
        raise TrainingSetupError(f"{script} does not start from a previous stage")
    net_type = get_family(previous).net_class_name
    if explicit is not None:
        if not Path(explicit).is_file():
            raise TrainingSetupError(f"--pretrained {explicit} does not exist")
        return Path(explicit)
    if pretrain_pth:
        named = Path(pretrain_pth) if Path(pretrain_pth).is_absolute() else save_dir / pretrain_pth
        if named.is_file():
            return named
        found = list_checkpoints(named.parent, net_type)
        if found:
            logger.info("MODEL.PRETRAIN_PTH %s does not exist; using the latest %s checkpoint next to it", named,
                        net_type)
            return found[-1]
    root = run_layout.stage_checkpoint_root(save_dir, previous)
    runs = {d: list_checkpoints(d, net_type) for d in sorted(root.glob("*")) if d.is_dir()}
    runs = {d: found for d, found in runs.items() if found}
    if len(runs) == 1:
        return next(iter(runs.values()))[-1]
    if len(runs) > 1:
        raise TrainingSetupError(
            f"{script} starts from a {previous} checkpoint and {root} holds several runs "
            f"({', '.join(d.name for d in runs)}); choose one with --pretrained PATH")
    raise TrainingSetupError(
        f"{script} starts from a {previous} ({net_type}_ep*.pth.tar) checkpoint, but none was found "
        f"(MODEL.PRETRAIN_PTH {pretrain_pth or '(empty)'} relative to --save_dir {save_dir}, and nothing under "
        f"{root}). Train the {previous} stage first with the same --save_dir, or pass --pretrained PATH.")


def initialise_weights(net: nn.Module, cfg: Any, options: TrainOptions, family: Family) -> None:
    """The previous stage's checkpoint, or the family's own initialisation (see the module docstring)."""
    if family.previous_stage is not None:
        path = find_previous_checkpoint(cfg.script, cfg.MODEL.PRETRAIN_PTH, options.save_dir, options.pretrained)
        logger.info("%s starts from %s", cfg.script, path)
        family.load_weights(net, path)
    elif family.initialise is not None:
        family.initialise(net, cfg, PRETRAINED_DIR)


def resume_checkpoint(resume: Optional[str], checkpoint_dir: Path, net_type: str) -> Optional[Path]:
    existing = list_checkpoints(checkpoint_dir, net_type)
    if resume is None:
        if existing:
            raise TrainingSetupError(
                f"{checkpoint_dir} already holds {len(existing)} checkpoint(s) (latest {existing[-1].name}); pass "
                "--resume to continue that run or choose another --save_dir")
        return None
    if resume == "latest":
        if not existing:
            raise TrainingSetupError(f"--resume: no {net_type}_ep*.pth.tar checkpoint in {checkpoint_dir}")
        return existing[-1]
    if not Path(resume).is_file():
        raise TrainingSetupError(f"--resume {resume} does not exist")
    return Path(resume)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_logging(ctx: DistContext, log_file: Optional[Path]) -> None:
    """Rank 0 logs INFO to the console and the run's log file; other ranks only warnings.

    Handlers of an earlier run in the same process are replaced, so each run logs to its own file.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO if ctx.is_main else logging.WARNING)
    for handler in [h for h in root.handlers if getattr(h, "_fartrack", False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(logging.Formatter(f"%(asctime)s [rank {ctx.rank}] %(levelname)s %(message)s",
                                               "%H:%M:%S"))
    if ctx.is_main and log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
        handlers[1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for handler in handlers:
        handler._fartrack = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def build_trainer(options: TrainOptions, ctx: DistContext) -> Trainer:
    """Everything of a run, ready to :meth:`Trainer.fit` (used by the CLI and the throughput script)."""
    cfg = load_config(options.script, options.config, list(options.opts))
    save_dir = Path(options.save_dir).resolve()
    options.save_dir = save_dir
    family = get_family(cfg.script)
    checkpoint_dir = run_layout.checkpoint_dir(save_dir, cfg.script, cfg.name)
    configure_logging(ctx, run_layout.log_file(save_dir, cfg.script, cfg.name))
    seed_everything(options.seed + ctx.rank)
    resume_from = resume_checkpoint(options.resume, checkpoint_dir, family.net_class_name)

    train_loader, val_loader = family.loaders(cfg, train_env_settings(), ctx, seed=options.seed,
                                              use_lmdb=options.use_lmdb)
    net = family.build_network(cfg)
    if resume_from is None:
        initialise_weights(net, cfg, options, family)
    net.to(ctx.device)
    if ctx.distributed:
        # Unused parameters exist by design (MAE remnants, sparse norm1/norm2, the previous-box embedding).
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None, find_unused_parameters=True)
    actor = family.build_actor(net, cfg, ctx.device)
    optimizer = build_optimizer(net, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    settings = TrainerSettings(
        max_epochs=cfg.TRAIN.EPOCH,
        checkpoint_dir=checkpoint_dir,
        val_interval=cfg.TRAIN.VAL_EPOCH_INTERVAL,
        print_interval=cfg.TRAIN.PRINT_INTERVAL,
        amp=cfg.TRAIN.AMP,
        tensorboard_dir=run_layout.tensorboard_dir(save_dir, cfg.script, cfg.name),
        use_wandb=options.use_wandb,
        run_name=f"{cfg.script}-{cfg.name}",
        settings_record={"script": cfg.script, "config": cfg.name, "cfg": cfg.to_dict(), "seed": options.seed,
                         "use_lmdb": options.use_lmdb, "world_size": ctx.world_size, "argv": list(options.argv)},
    )
    trainer = Trainer(actor, optimizer, scheduler, train_loader, settings, ctx, val_loader=val_loader)
    if resume_from is not None:
        trainer.load_checkpoint(resume_from)
    return trainer


def run_training(options: TrainOptions) -> Optional[Path]:
    """Train one stage in this process (single process, or one rank of a torchrun job); returns the last checkpoint."""
    ctx = init_distributed(options.device)
    try:
        trainer = build_trainer(options, ctx)
        if trainer.epoch >= trainer.settings.max_epochs:
            logger.info("nothing to do: the run already reached epoch %d of %d", trainer.epoch,
                        trainer.settings.max_epochs)
            return None
        with logging_redirect_tqdm():  # log lines above the progress bar instead of through it
            last = trainer.fit()
        barrier(ctx)
        if ctx.is_main:
            logger.info("training finished at epoch %d; last checkpoint: %s", trainer.epoch, last)
        return last
    finally:
        shutdown(ctx)
