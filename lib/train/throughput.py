"""Where training time goes: data loading vs the model step, in samples per second (``tracking/train_throughput.py``).

* **Data, in process**: samples produced one after another in this process, split into image reading/decoding
  (time inside ``dataset.frames``) and everything else (frame choice, crops, augmentation, normalisation).
* **Data, loader**: the DataLoader of the run with its worker count, the rate the trainer would see.
* **Model step**: forward, backward and AdamW step on real batches; for the sequence stage split into exploration
  (crops and 31 no-grad forwards per sequence) and update (per-sequence forward + backward).
"""
from __future__ import annotations

import itertools
import platform
import time
from typing import Any, Optional, Sequence

import numpy as np
import torch

from lib.config.loader import load_config
from lib.families import get_family
from lib.train.actors import SequenceActor
from lib.train.admin.environment import train_env_settings
from lib.train.dataset.image_io import decoder_name
from lib.train.dataset.base import SequenceInfo, TrackingDataset
from lib.train.distributed import DistContext
from lib.train.optim import build_optimizer


class TimedDataset(TrackingDataset):
    """Delegates to ``dataset`` and accumulates the time spent reading images."""

    def __init__(self, dataset: TrackingDataset) -> None:
        self.dataset = dataset
        self.name = dataset.name
        self.is_video = dataset.is_video
        self.read_seconds = 0.0
        self.images_read = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def sequence_name(self, seq_id: int) -> str:
        return self.dataset.sequence_name(seq_id)

    def sequence_info(self, seq_id: int) -> SequenceInfo:
        return self.dataset.sequence_info(seq_id)

    def frames(self, seq_id: int, frame_ids: Sequence[int], info: SequenceInfo | None = None
               ) -> tuple[list[np.ndarray], np.ndarray]:
        start = time.perf_counter()
        try:
            return self.dataset.frames(seq_id, frame_ids, info)
        finally:
            self.read_seconds += time.perf_counter() - start
            self.images_read += len(frame_ids)


def _batch_samples(batch: Any) -> int:
    return len(batch) if isinstance(batch, list) else int(batch["search_images"].shape[0])


def measure(script: str, config: str, opts: Sequence[Any] = (), *, samples: int = 32, batches: int = 8,
            steps: int = 3, workers: Optional[int] = None, use_lmdb: bool = False, seed: int = 1008
            ) -> dict[str, Any]:
    """Measure the data side and the model side of one training stage on this machine (see the module docstring)."""
    cfg = load_config(script, config, list(opts))
    family = get_family(script)
    if workers is not None:
        cfg = cfg.clone(["TRAIN.NUM_WORKER", workers])
    ctx = DistContext()
    timed: list[TimedDataset] = []

    def wrap(dataset: TrackingDataset) -> TrackingDataset:
        timed.append(TimedDataset(dataset))
        return timed[-1]

    loader, _ = family.loaders(cfg, train_env_settings(), ctx, seed=seed, use_lmdb=use_lmdb, wrap=wrap)
    sampler = loader.dataset
    sampler.set_epoch(0)
    start = time.perf_counter()
    for index in range(samples):
        sampler[index]
    in_process = time.perf_counter() - start
    read = sum(d.read_seconds for d in timed)
    images = sum(d.images_read for d in timed)

    sampler.set_epoch(1)
    iterator = iter(loader)
    first = next(iterator)
    # While the first batch was awaited (worker start-up), the workers prefetched further batches; skip them so the
    # timed batches are produced at the steady-state rate.
    prefetched = [next(iterator) for _ in range(loader.num_workers * (loader.prefetch_factor or 0))]
    start = time.perf_counter()
    loaded = [next(iterator) for _ in range(batches)]
    loader_seconds = time.perf_counter() - start
    loader_samples = sum(map(_batch_samples, loaded))
    loaded = prefetched + loaded

    net = family.build_network(cfg).train()
    actor = family.build_actor(net, cfg, ctx.device)
    optimizer = build_optimizer(net, cfg)
    model: dict[str, float] = {"explore_seconds": 0.0, "update_seconds": 0.0}
    step_samples = 0
    for index, batch in enumerate(itertools.islice(itertools.cycle([first, *loaded]), steps + 1)):
        tick = time.perf_counter()
        if isinstance(actor, SequenceActor):
            explored = actor.explore(batch)
            explored_at = time.perf_counter()
            for sequence in explored:
                actor.sequence_loss(sequence)[0].backward()
        else:
            explored_at = tick
            for part in actor.loss_parts(batch):
                part()[0].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), actor.grad_clip_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = time.perf_counter()
        if index == 0:  # warm-up step (allocator, first-call overheads)
            continue
        model["explore_seconds"] += explored_at - tick
        model["update_seconds"] += done - explored_at
        step_samples += _batch_samples(batch)
    step_seconds = model["explore_seconds"] + model["update_seconds"]
    return {
        "script": script,
        "sequence_batches": family.sequence_batches,
        "config": cfg.name,
        "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "device": str(ctx.device), "image_decoder": decoder_name()},
        "workers": loader.num_workers,
        "batch_size": cfg.TRAIN.BATCH_SIZE,
        "data_in_process": {"samples": samples, "samples_per_s": samples / in_process,
                            "read_fraction": read / in_process, "images_per_s": images / max(read, 1e-9)},
        "data_loader": {"samples": loader_samples, "samples_per_s": loader_samples / loader_seconds},
        "model_step": {"samples": step_samples, "samples_per_s": step_samples / step_seconds,
                       "explore_fraction": model["explore_seconds"] / step_seconds},
    }


def format_report(result: dict[str, Any]) -> str:
    data_in, data_loader, step = result["data_in_process"], result["data_loader"], result["model_step"]
    unit = "sequences" if result["sequence_batches"] else "samples"
    lines = [
        f"{result['script']} / {result['config']}  (batch {result['batch_size']}, torch threads "
        f"{result['machine']['torch_threads']}, decoder {result['machine']['image_decoder']})",
        f"  data, in process     : {data_in['samples_per_s']:8.2f} {unit}/s  "
        f"({100 * data_in['read_fraction']:.0f}% reading images at {data_in['images_per_s']:.0f} images/s, "
        f"the rest sampling + crops + augmentation)",
        f"  data, {result['workers']:2d} worker(s)   : {data_loader['samples_per_s']:8.2f} {unit}/s",
        f"  model step           : {step['samples_per_s']:8.2f} {unit}/s"
        + (f"  ({100 * step['explore_fraction']:.0f}% exploration)" if result["sequence_batches"] else ""),
        f"  loader / model ratio : {data_loader['samples_per_s'] / step['samples_per_s']:8.2f} "
        f"({'data-bound' if data_loader['samples_per_s'] < step['samples_per_s'] else 'compute-bound'})",
    ]
    return "\n".join(lines)
