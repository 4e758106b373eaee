"""The family records: one registration per network family / training stage / tracker.

A *family* is what a ``--script`` names: a config schema (``experiments/<name>/*.yaml``), a network, the actor and
the sampler that train it, the tracker that runs it, its official checkpoint class name and the stage it starts
from. The trainer, the test runner, the profiler, the exporter, the API and the CLIs ask these records instead of
comparing family names; what the network does differently per family is set here through explicit options of the
network (masked norm, command-row renorm, template scores, intermediate heads).

Adding a family means writing its pieces and one :class:`Family` entry in :data:`FAMILIES`.

This module imports the pieces it names and nothing imports it back from those pieces (the config loader, the
runners and the CLIs sit above it), so there is no import cycle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from lib.config.defaults import (fartrack_errors, fartrack_schema, fartrack_sparse_schema, fastseqtrack_errors,
                                 fastseqtrack_schema)
from lib.models.fartrack.network import FARTrackNetwork, spec_from_config
from lib.models.fartrack.weights import load_network_weights as load_fartrack_weights
from lib.models.fastseqtrack.network import FastSeqTrackNetwork
from lib.models.fastseqtrack.network import spec_from_config as fastseqtrack_spec
from lib.models.fastseqtrack.weights import load_network_weights as load_fastseqtrack_weights
from lib.test.tracker.backends import InferenceOptions
from lib.test.tracker.fartrack import FARTrackTracker, TrackerParams
from lib.test.tracker.fastseqtrack import FastSeqTrackParams, FastSeqTrackTracker
from lib.train.actors import FrameActor, SequenceActor
from lib.train.data.loaders import build_frame_loaders, build_sequence_loaders
from lib.train.fastseqtrack import FastSeqTrackActor
from lib.train.initialise import initialise_fastseqtrack, initialise_stage1

PathLike = Union[str, "os.PathLike[str]"]

#: First depth (1-based) whose prediction the distillation stage supervises (official: depths 5..15).
FIRST_DISTILLED_DEPTH = 5


@dataclass(frozen=True)
class Family:
    """Everything that differs between families; see the module docstring."""

    #: The script name: ``experiments/<name>/``, ``checkpoints/train/<name>/``, ``tracking_results/<name>/``.
    name: str
    summary: str
    #: Official network class name: checkpoint ``net_type`` and file prefix ``<NetClass>_ep%04d.pth.tar``.
    net_class_name: str
    #: Official actor class name, stored in checkpoints as ``actor_type``.
    actor_class_name: str
    #: Fresh defaults of every config key (:mod:`lib.config.defaults`); YAML files only override them.
    config_schema: Callable[[], dict[str, Any]]
    #: Messages for invalid values of the family's own keys (the loader checks the shared ones).
    config_errors: Callable[[Any], list[str]]
    #: ``(cfg, depth)`` -> randomly initialised network (depth None: the config's).
    network: Callable[[Any, Optional[int]], nn.Module]
    #: ``(net, path)``: load a checkpoint strictly (stage differences converted), returns the load report.
    load_weights: Callable[[nn.Module, PathLike], Any]
    #: ``(net, cfg, actor_type=...)`` -> actor returning ``(loss, stats)`` parts.
    actor: Callable[..., Any]
    #: ``(cfg, env, ctx, seed=, use_lmdb=, wrap=)`` -> (train loader, validation loader or None).
    loaders: Callable[..., tuple[Any, Any]]
    #: ``cfg`` -> the tracker's test-time parameters (crops, normalisation, the family's decode and schedule).
    tracker_params: Callable[[Any], Any]
    #: ``(net, params, options)`` -> online tracker (``initialize`` / ``track``) over a network with loaded weights.
    tracker: Callable[[nn.Module, Any, InferenceOptions], Any]
    #: The family whose checkpoint a training run starts from; None: :attr:`initialise` prepares a fresh network.
    previous_stage: Optional[str] = None
    #: ``(net, cfg, pretrained_dir)``: initial weights of a fresh run without a previous stage.
    initialise: Optional[Callable[[nn.Module, Any, Path], None]] = None
    #: The official experiment of the family, the default config of the API.
    official_config: Optional[str] = None
    #: Whether the family runs through :class:`InferenceOptions` paths (faithful / precision / CUDA graphs) and
    #: can run fewer layers (``depth``).
    inference_paths: bool = True
    #: ``(dotted config key, label)``: a tracker whose value differs from the config file's writes its results to
    #: ``<config>_<label><value>`` (:func:`lib.utils.run_layout.results_label`).
    results_variant: tuple[str, str] = ("MODEL.DEPTH", "depth")
    #: Whether the tracker can advance several sequences in one network call (``prepare`` / ``complete``,
    #: :mod:`lib.test.tracker.lockstep`; ``tracking/test.py --batch``).
    lockstep: bool = True
    #: Whether the training batches are whole sequences (sequence-level training) rather than frames.
    sequence_batches: bool = False

    def build_network(self, cfg: Any, depth: Optional[int] = None) -> nn.Module:
        if depth is not None and not self.inference_paths:
            raise ValueError(f"{self.name} has no depth option")
        return self.network(cfg, depth)

    def build_actor(self, net: nn.Module, cfg: Any, device: torch.device) -> Any:
        return self.actor(net, cfg, device, actor_type=self.actor_class_name)

    def build_tracker(self, net: nn.Module, cfg: Any, options: InferenceOptions = InferenceOptions()) -> Any:
        return self.tracker(net, self.tracker_params(cfg), options)

    def variant_value(self, cfg: Any) -> Any:
        """The value of :attr:`results_variant`'s key in ``cfg``."""
        node = cfg
        for part in self.results_variant[0].split("."):
            node = node[part]
        return node


def _fartrack_network(cfg: Any, depth: Optional[int], *, family: str, net_type: str, sparse: bool = False,
                      distilled: bool = False) -> FARTrackNetwork:
    return FARTrackNetwork(
        spec_from_config(cfg, masked_norm=sparse, command_renorm=sparse),
        family=family,
        net_type=net_type,
        depth=cfg.MODEL.DEPTH if depth is None else depth,
        test_prune_ratio=cfg.MODEL.SPARSE.TEST_PRUNE_RATIO,
        template_scores=sparse,
        layer_heads_from=FIRST_DISTILLED_DEPTH if distilled else None,
    )


def _fastseqtrack_network(cfg: Any, depth: Optional[int], *, family: str, net_type: str) -> FastSeqTrackNetwork:
    return FastSeqTrackNetwork(fastseqtrack_spec(cfg), tau=cfg.MODEL.DECODER.TAU, family=family, net_type=net_type)


def _fastseqtrack_tracker(net: FastSeqTrackNetwork, params: FastSeqTrackParams, options: InferenceOptions
                          ) -> FastSeqTrackTracker:
    if options != InferenceOptions():
        raise ValueError("fastseqtrack runs in fp32 on its one path (no faithful / precision / CUDA-graph options)")
    return FastSeqTrackTracker(net, params)


def _family(name: str, net_class_name: str, network: Callable[..., nn.Module], **fields: Any) -> Family:
    return Family(name=name, net_class_name=net_class_name,
                  network=partial(network, family=name, net_type=net_class_name), **fields)


FAMILIES: dict[str, Family] = {family.name: family for family in (
    _family(
        "fartrack", "FARTrack", _fartrack_network,
        summary="stage 1: frame-level pretraining (2 SIoU + 2 CE on the final depth)",
        actor_class_name="FARTrackActor",
        config_schema=fartrack_schema, config_errors=fartrack_errors,
        load_weights=load_fartrack_weights,
        actor=partial(FrameActor, layer_losses=False),
        loaders=build_frame_loaders,
        tracker_params=partial(TrackerParams.from_config, decode="plain", template_schedule="mode1"),
        tracker=FARTrackTracker,
        initialise=initialise_stage1,
        official_config="fartrack_tiny_224_full",
    ),
    _family(
        "fartrack_distill", "FARTrackDistill", partial(_fartrack_network, distilled=True),
        summary="stage 2: layer-wise self-distillation with trajectory KL",
        actor_class_name="FARTrackDistillActor",
        config_schema=fartrack_schema, config_errors=fartrack_errors,
        load_weights=load_fartrack_weights,
        actor=partial(FrameActor, layer_losses=True),
        loaders=build_frame_loaders,
        tracker_params=partial(TrackerParams.from_config, decode="plain", template_schedule="distill"),
        tracker=FARTrackTracker,
        previous_stage="fartrack",
        official_config="fartrack_distill_224_full",
    ),
    _family(
        "fartrack_sparse", "FARTrackSparse", partial(_fartrack_network, sparse=True),
        summary="stage 3: sequence-level training with inter-frame template sparsification",
        actor_class_name="FARTrackSparseActor",
        config_schema=fartrack_sparse_schema, config_errors=fartrack_errors,
        load_weights=load_fartrack_weights,
        actor=SequenceActor,
        loaders=build_sequence_loaders,
        tracker_params=partial(TrackerParams.from_config, decode="sparse", template_schedule="mode1"),
        tracker=FARTrackTracker,
        previous_stage="fartrack_distill",
        official_config="fartrack_sparse_224_full",
        sequence_batches=True,
    ),
    _family(
        "fastseqtrack", "FastSeqTrack", _fastseqtrack_network,
        summary="FastSeqTrack: one-pass sequence decoding with early exits (the framework's second tracker)",
        actor_class_name="FastSeqTrackActor",
        config_schema=fastseqtrack_schema, config_errors=fastseqtrack_errors,
        load_weights=load_fastseqtrack_weights,
        actor=FastSeqTrackActor,
        loaders=build_frame_loaders,
        tracker_params=FastSeqTrackParams.from_config,
        tracker=_fastseqtrack_tracker,
        initialise=initialise_fastseqtrack,
        inference_paths=False,
        lockstep=False,  # each frame's early exit is decided per sequence
        results_variant=("MODEL.DECODER.TAU", "tau"),
    ),
)}

FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


class UnknownFamilyError(ValueError):
    """A script / family name or checkpoint class name that no record registers."""


def get_family(name: str) -> Family:
    """The record of the family (script) ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(f"unknown script {name!r}; choose one of {', '.join(FAMILY_NAMES)}") from None


def family_of_net_type(net_type: Any) -> Family:
    """The record whose official class name is ``net_type`` (a checkpoint's ``net_type`` entry)."""
    for family in FAMILIES.values():
        if family.net_class_name == net_type:
            return family
    raise UnknownFamilyError(f"its net_type is {net_type!r}, not one of "
                             f"{', '.join(f.net_class_name for f in FAMILIES.values())}")


def build_network(cfg: Any, depth: Optional[int] = None) -> nn.Module:
    """A randomly initialised network of the config's family (``cfg.script``)."""
    return get_family(cfg.script).build_network(cfg, depth)


#: Family -> its official experiment, for the families that have one (a view of the records).
OFFICIAL_CONFIGS: dict[str, str] = {name: family.official_config for name, family in FAMILIES.items()
                                    if family.official_config is not None}


def family_summaries() -> str:
    """One ``name: summary`` line per family (command-line help)."""
    return "\n".join(f"{name}: {family.summary}" for name, family in FAMILIES.items())
