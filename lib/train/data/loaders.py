"""Build the training / validation loaders of a stage from its config (official ``build_dataloaders``, spec 6.1/6.3).

The family record (:mod:`lib.families`) says which of the two a stage uses:

* :func:`build_frame_loaders` (stages 1 and 2, FastSeqTrack): :class:`FrameSampler` (causal, 5 templates + 1 search
  frame, max gap ``DATA.MAX_SAMPLE_INTERVAL``) with :class:`FrameProcessing` over ``DATA.TRAIN``; validation on
  ``DATA.VAL`` every ``TRAIN.VAL_EPOCH_INTERVAL`` epochs (an empty ``DATA.VAL.DATASETS_NAME`` disables it).
* :func:`build_sequence_loaders` (stage 3): :class:`SequenceSampler` (5 sorted templates, ``DATA.SEARCH.NUMBER``
  consecutive search frames, max gap ``DATA.MAX_GAP``), raw images in lists; the official sequence trainer does not
  validate.

Every process reads its own slice of the sample indices (``DistributedSampler`` without shuffling); samples are
functions of (seed, epoch, index), so the data do not depend on the number of processes or workers.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Optional

import torch
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from lib.train.admin.environment import TrainEnvSettings
from lib.train.data.processing import FrameProcessing
from lib.train.data.sampler import FrameSampler, SequenceSampler, collate_sequences
from lib.train.dataset import build_dataset
from lib.train.dataset.base import TrackingDataset, TrainDatasetError
from lib.train.distributed import DistContext

logger = logging.getLogger(__name__)

DatasetWrapper = Callable[[TrackingDataset], TrackingDataset]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(requested: int, ctx: DistContext) -> int:
    """TRAIN.NUM_WORKER, capped at the CPUs available to each process (more workers only add memory)."""
    cap = max(1, available_cpus() // ctx.world_size)
    if requested > cap:
        logger.info("TRAIN.NUM_WORKER %d capped at %d (the CPUs available to each of %d process(es))", requested, cap,
                    ctx.world_size)
    return min(requested, cap)


def build_datasets(names: list[str], ratios: list[float], env: TrainEnvSettings, use_lmdb: bool, section: str,
                   wrap: Optional[DatasetWrapper] = None) -> list[TrackingDataset]:
    if len(names) != len(ratios):
        raise TrainDatasetError(f"{section}.DATASETS_NAME has {len(names)} entries but {section}.DATASETS_RATIO has "
                                f"{len(ratios)}")
    datasets = [build_dataset(name, env, use_lmdb=use_lmdb) for name in names]
    if wrap is not None:
        datasets = [wrap(dataset) for dataset in datasets]
    for name, dataset in zip(names, datasets):
        logger.info("%s: %s with %d sequences", section, name, len(dataset))
    return datasets


def _loader(dataset: torch.utils.data.Dataset, batch_size: int, workers: int, ctx: DistContext, training: bool,
            collate: Any = None) -> DataLoader:
    if ctx.distributed:
        index_sampler: torch.utils.data.Sampler = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=False, drop_last=training)
    else:
        index_sampler = SequentialSampler(dataset)
    return DataLoader(dataset, batch_size=batch_size, sampler=index_sampler, num_workers=workers,
                      collate_fn=collate, drop_last=training, pin_memory=ctx.device.type == "cuda")


def build_sequence_loaders(cfg: Any, env: TrainEnvSettings, ctx: DistContext, *, seed: int, use_lmdb: bool = False,
                           wrap: Optional[DatasetWrapper] = None) -> tuple[DataLoader, None]:
    """(train loader of whole sequences, None): the official sequence trainer does not validate."""
    data, train = cfg.DATA, cfg.TRAIN
    datasets = build_datasets(list(data.TRAIN.DATASETS_NAME), list(data.TRAIN.DATASETS_RATIO), env, use_lmdb,
                              "DATA.TRAIN", wrap)
    sampler = SequenceSampler(datasets, list(data.TRAIN.DATASETS_RATIO), data.TRAIN.SAMPLE_PER_EPOCH,
                              num_search_frames=data.SEARCH.NUMBER, num_template_frames=data.TEMPLATE.NUMBER,
                              max_gap=data.MAX_GAP, seed=seed)
    return _loader(sampler, train.BATCH_SIZE, worker_count(train.NUM_WORKER, ctx), ctx, True, collate_sequences), None


def build_frame_loaders(cfg: Any, env: TrainEnvSettings, ctx: DistContext, *, seed: int, use_lmdb: bool = False,
                        wrap: Optional[DatasetWrapper] = None) -> tuple[DataLoader, Optional[DataLoader]]:
    """(train loader, validation loader or None) of frame samples; ``wrap`` decorates every dataset (profiling)."""
    data, train = cfg.DATA, cfg.TRAIN
    workers = worker_count(train.NUM_WORKER, ctx)
    datasets = build_datasets(list(data.TRAIN.DATASETS_NAME), list(data.TRAIN.DATASETS_RATIO), env, use_lmdb,
                              "DATA.TRAIN", wrap)
    processing = FrameProcessing.from_config(cfg)

    def frame_sampler(section: Any, section_seed: int, section_datasets: list[TrackingDataset]) -> FrameSampler:
        return FrameSampler(section_datasets, list(section.DATASETS_RATIO), section.SAMPLE_PER_EPOCH, processing,
                            num_template_frames=data.TEMPLATE.NUMBER, num_search_frames=data.SEARCH.NUMBER,
                            max_gap=data.MAX_SAMPLE_INTERVAL, seed=section_seed,
                            template_order=data.TEMPLATE.ORDER)

    train_loader = _loader(frame_sampler(data.TRAIN, seed, datasets), train.BATCH_SIZE, workers, ctx, True)
    val_loader = None
    if data.VAL.DATASETS_NAME:
        val_datasets = build_datasets(list(data.VAL.DATASETS_NAME), list(data.VAL.DATASETS_RATIO), env, use_lmdb,
                                      "DATA.VAL", wrap)
        # A different seed keeps validation samples distinct from the training ones of the same datasets.
        val_loader = _loader(frame_sampler(data.VAL, seed + 1, val_datasets), train.BATCH_SIZE, workers, ctx, False)
    return train_loader, val_loader
