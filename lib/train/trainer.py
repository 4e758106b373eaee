"""The training loop shared by the three stages (official ``LTRTrainer`` / ``LTRSeqTrainerSparse``, spec 6).

Per epoch: the training loader, then (every ``VAL_EPOCH_INTERVAL`` epochs) the validation loader without gradients,
one scheduler step, and a checkpoint when the official schedule says so (epoch % 5 == 0, the last five epochs,
and the last one). One optimiser step per batch: every loss part of the actor is back-propagated (gradients add
up), the gradients are clipped (``actor.grad_clip_norm``: 0.1 frame-level, 100 sequence-level) and AdamW steps.

Exact resume: a checkpoint holds the network, optimiser, scheduler, AMP scaler, every rank's RNG states and the
epoch; samples are pure functions of (seed, epoch, index) (see :mod:`lib.train.data.sampler`), so a run resumed
from epoch E continues with the same batches and the same random draws as an uninterrupted one.

A non-finite loss (or, without AMP, a non-finite gradient norm) on any rank stops every rank before the optimiser
step with :class:`NonFiniteLossError`; the checkpoints on disk stay the last good ones.
"""
from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from lib.train.actors import Actor, unwrap
from lib.train.distributed import DistContext, all_true, gather_objects, reduce_over_ranks
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file, save_checkpoint
from lib.utils.run_layout import checkpoint_name

logger = logging.getLogger(__name__)

#: Per-sample counters the samplers report; summed (not averaged) over the epoch and the ranks.
DATA_COUNTERS = ("failed_reads", "invalid_samples")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN / inf loss or gradient; the run stops without writing a checkpoint."""


def official_save_schedule(epoch: int, max_epochs: int) -> bool:
    """Save when epoch % 5 == 0, in the last five epochs, and at the last epoch."""
    return epoch % 5 == 0 or epoch > max_epochs - 5 or epoch == max_epochs


@dataclass
class TrainerSettings:
    """What the loop needs besides the actor, optimiser and loaders."""

    max_epochs: int
    checkpoint_dir: Path
    val_interval: int = 20
    print_interval: int = 50
    amp: bool = False
    tensorboard_dir: Optional[Path] = None
    use_wandb: bool = False
    run_name: str = "fartrack"
    #: Plain data stored as the checkpoint's ``settings`` entry (config, seed, command line ...).
    settings_record: dict[str, Any] = field(default_factory=dict)


class _Averages:
    """Running means of float stats and sums of the data counters."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.counters: dict[str, float] = {name: 0.0 for name in DATA_COUNTERS}

    def update(self, stats: dict[str, float], weight: int = 1) -> None:
        for key, value in stats.items():
            self.sums[key] += value * weight
            self.counts[key] += weight

    def means(self) -> dict[str, float]:
        return {key: self.sums[key] / self.counts[key] for key in self.sums}


def _batch_counters(batch: Any) -> dict[str, float]:
    """Sum the samplers' per-sample failure counters of a batch (dict of tensors or list of dicts)."""
    samples = batch if isinstance(batch, list) else [batch]
    totals = {name: 0.0 for name in DATA_COUNTERS}
    for sample in samples:
        for name in DATA_COUNTERS:
            if name in sample:
                totals[name] += float(torch.as_tensor(sample[name]).sum())
    return totals


def _batch_size(batch: Any) -> int:
    if isinstance(batch, list):
        return len(batch)
    return int(batch["search_images"].shape[0])


def _set_loader_epoch(loader: Iterable, epoch: int) -> None:
    """Tell the sample source and the distributed index sampler which epoch this is."""
    for owner in (getattr(loader, "dataset", None), getattr(loader, "sampler", None)):
        if owner is not None and hasattr(owner, "set_epoch"):
            owner.set_epoch(epoch)


# ---------------------------------------------------------------------------------------------------- RNG state
def capture_rng_state() -> dict[str, Any]:
    """This process's torch (CPU and CUDA), numpy and Python RNG states as checkpoint-safe plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], np.asarray(numpy_state["keys"], dtype=np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))


# ---------------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Epoch loop, optimisation step, validation, logging and checkpoints (see the module docstring)."""

    def __init__(
        self,
        actor: Actor,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        train_loader: Iterable,
        settings: TrainerSettings,
        ctx: DistContext,
        val_loader: Optional[Iterable] = None,
    ) -> None:
        self.actor = actor
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.settings = settings
        self.ctx = ctx
        self.epoch = 0
        self.history: dict[int, dict[str, dict[str, float]]] = {}
        device_type = ctx.device.type
        # fp16 needs loss scaling (CUDA); on the CPU autocast runs bfloat16, which does not.
        self.amp_dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(device_type, enabled=settings.amp and device_type == "cuda")
        self._writer = None
        self._wandb = None

    # ------------------------------------------------------------------ public
    @property
    def net(self) -> nn.Module:
        return self.actor.net

    @property
    def net_type(self) -> str:
        return unwrap(self.net).net_type

    def fit(self) -> Optional[Path]:
        """Train from ``self.epoch + 1`` to ``max_epochs``; returns the last checkpoint written (None if none)."""
        last_saved = None
        self._open_loggers()
        try:
            for epoch in range(self.epoch + 1, self.settings.max_epochs + 1):
                self.epoch = epoch
                record = {"train": self.run_epoch(self.train_loader, training=True)}
                if self.val_loader is not None and epoch % self.settings.val_interval == 0:
                    record["val"] = self.run_epoch(self.val_loader, training=False)
                self.scheduler.step()
                self.history[epoch] = record
                self._log_epoch(epoch, record)
                if official_save_schedule(epoch, self.settings.max_epochs):
                    last_saved = self.save_checkpoint()
        finally:
            self._close_loggers()
        return last_saved

    def run_epoch(self, loader: Iterable, training: bool) -> dict[str, float]:
        """One pass over ``loader``; returns the epoch means (plus the summed data counters) over all ranks."""
        # Validation always sees the epoch-0 samples: a fixed validation set, comparable across epochs.
        _set_loader_epoch(loader, self.epoch if training else 0)
        self.actor.train(training)
        averages = _Averages()
        phase = "train" if training else "val"
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = tqdm(total=total, desc=f"{phase} epoch {self.epoch}/{self.settings.max_epochs}",
                   disable=not self.ctx.is_main, dynamic_ncols=True, leave=False)
        data_time = step_time = 0.0
        tick = time.perf_counter()
        with bar, (contextlib.nullcontext() if training else torch.no_grad()):
            for iteration, batch in enumerate(loader, start=1):
                loaded = time.perf_counter()
                stats = self.train_step(batch) if training else self.eval_step(batch)
                done = time.perf_counter()
                data_time += loaded - tick
                step_time += done - loaded
                tick = done
                size = _batch_size(batch)
                averages.update(stats, size)
                for name, value in _batch_counters(batch).items():
                    averages.counters[name] += value
                bar.update()
                mean_loss = averages.sums["Loss/total"] / averages.counts["Loss/total"]
                bar.set_postfix(loss=f"{mean_loss:.4f}", data=f"{data_time / iteration:.2f}s",
                                step=f"{step_time / iteration:.2f}s")
                if self.ctx.is_main and iteration % self.settings.print_interval == 0:
                    logger.info("%s epoch %d iter %d/%s: %s", phase, self.epoch, iteration, total,
                                 _format_stats(averages.means()))
        means = reduce_over_ranks(averages.means(), self.ctx)
        iterations = max(1, bar.n)
        means.update(reduce_over_ranks({"Time/data": data_time / iterations, "Time/step": step_time / iterations},
                                       self.ctx))
        counters = reduce_over_ranks(averages.counters, self.ctx, average=False)
        means.update({f"Data/{name}": value for name, value in counters.items()})
        if self.ctx.is_main and any(counters.values()):
            logger.warning("%s epoch %d: %d unreadable images and %d invalid samples were skipped (see the warnings "
                           "above for the files)", phase, self.epoch, counters["failed_reads"],
                           counters["invalid_samples"])
        return means

    def train_step(self, batch: Any) -> dict[str, float]:
        parts = self.actor.loss_parts(batch)
        ddp = isinstance(self.net, nn.parallel.DistributedDataParallel)
        part_stats: list[dict[str, float]] = []
        finite = True
        for index, part in enumerate(parts):
            # Gradients of all parts are summed locally; DDP synchronises them with the last backward.
            sync = contextlib.nullcontext() if not ddp or index == len(parts) - 1 else self.net.no_sync()
            with sync:
                with torch.autocast(self.ctx.device.type, dtype=self.amp_dtype, enabled=self.settings.amp):
                    loss, stats = part()
                finite &= bool(torch.isfinite(loss.detach()).all())
                self.scaler.scale(loss).backward()
            part_stats.append(stats)
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(unwrap(self.net).parameters(), self.actor.grad_clip_norm)
        if not self.scaler.is_enabled():  # the scaler skips steps with inf gradients itself
            finite &= bool(torch.isfinite(grad_norm))
        if not all_true(finite, self.ctx):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"non-finite loss or gradient at epoch {self.epoch} (stats of this step: "
                f"{_format_stats(_mean_stats(part_stats))}); stopped before the optimiser step, so no weights "
                f"were changed and the checkpoints in {self.settings.checkpoint_dir} are the last good ones"
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        stats = _mean_stats(part_stats)
        stats["GradNorm"] = float(grad_norm)
        return stats

    def eval_step(self, batch: Any) -> dict[str, float]:
        with torch.autocast(self.ctx.device.type, dtype=self.amp_dtype, enabled=self.settings.amp):
            return _mean_stats([part()[1] for part in self.actor.loss_parts(batch)])

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Optional[Path]:
        """Write ``<NetClass>_ep%04d.pth.tar`` (rank 0, atomically) with everything an exact resume needs."""
        rng_states = gather_objects(capture_rng_state(), self.ctx)  # every rank's, collective
        if not self.ctx.is_main:
            return None
        path = Path(self.settings.checkpoint_dir) / checkpoint_name(self.net_type, self.epoch)
        return save_checkpoint(
            path,
            net=self.net,
            epoch=self.epoch,
            net_type=self.net_type,
            actor_type=self.actor.actor_type,
            optimizer=self.optimizer,
            extra={
                "stats": {str(epoch): record for epoch, record in self.history.items()},
                "settings": self.settings.settings_record,
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng_states,
                "world_size": self.ctx.world_size,
            },
        )

    def load_checkpoint(self, path: Path) -> None:
        """Resume from ``path`` (ours or an official training checkpoint of the same network)."""
        checkpoint = load_checkpoint_file(path)
        if checkpoint.get("net_type") != self.net_type:
            raise CheckpointError(f"{path} holds a {checkpoint.get('net_type')!r} checkpoint; this run trains "
                                  f"{self.net_type}")
        unwrap(self.net).load_state_dict(checkpoint["net"], strict=True)
        if checkpoint.get("optimizer"):
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.epoch = int(checkpoint["epoch"])
        if "scheduler" in checkpoint:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        else:  # official checkpoints do not store it; the official trainer sets last_epoch instead
            self.scheduler.last_epoch = self.epoch
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.history = {int(k): v for k, v in checkpoint.get("stats", {}).items() if str(k).isdigit()}
        rng_states = checkpoint.get("rng")
        if rng_states and len(rng_states) == self.ctx.world_size:
            restore_rng_state(rng_states[self.ctx.rank])
        else:
            logger.warning("%s has no RNG state for %d process(es): the resumed run is not bit-exact", path,
                           self.ctx.world_size)
        logger.info("resumed from %s at epoch %d", path, self.epoch)

    # ------------------------------------------------------------------ logging
    def _open_loggers(self) -> None:
        if not self.ctx.is_main:
            return
        if self.settings.tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.settings.tensorboard_dir))
        if self.settings.use_wandb:
            try:
                import wandb
            except ImportError as error:
                raise RuntimeError("--use_wandb 1 needs the wandb package: pip install -e '.[wandb]'") from error
            # WANDB_MODE (offline / disabled) and the other WANDB_* variables are honoured by wandb itself.
            self._wandb = wandb.init(project="FARTrack", name=self.settings.run_name,
                                     config=self.settings.settings_record.get("cfg", {}), resume="allow")

    def _close_loggers(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def _log_epoch(self, epoch: int, record: dict[str, dict[str, float]]) -> None:
        if not self.ctx.is_main:
            return
        for phase, stats in record.items():
            logger.info("epoch %d/%d %s: %s", epoch, self.settings.max_epochs, phase, _format_stats(stats))
        lrs = {f"LR/group{i}": group["lr"] for i, group in enumerate(self.optimizer.param_groups)}
        if self._writer is not None:
            for phase, stats in record.items():
                for key, value in stats.items():
                    self._writer.add_scalar(f"{phase}/{key}", value, epoch)
            for key, value in lrs.items():
                self._writer.add_scalar(key, value, epoch)
            self._writer.flush()
        if self._wandb is not None:
            flat = {f"{phase}/{key}": value for phase, stats in record.items() for key, value in stats.items()}
            self._wandb.log({**flat, **lrs, "epoch": epoch}, step=epoch)


def _mean_stats(stats: list[dict[str, float]]) -> dict[str, float]:
    keys = stats[0].keys() if stats else ()
    return {key: sum(s[key] for s in stats) / len(stats) for key in keys}


def _format_stats(stats: dict[str, float]) -> str:
    shown = {k: v for k, v in stats.items() if not re.search(r"_\d+$", k)}  # per-layer terms go to TensorBoard only
    return ", ".join(f"{k}={v:.4g}" for k, v in shown.items())
