"""Public Python API.

>>> from lib.api import load_network
>>> net = load_network("fartrack_sparse", "fartrack_sparse_224_full", checkpoint="FARTrackSparse_ep0015.pth.tar")
>>> out = net(templates, search)   # templates (B, 5, 3, 112, 112) or a list of 5; search (B, 3, 224, 224)
>>> out["logits"].shape            # (B, 4, 605): raw logits of x1, y1, x2, y2 at the final depth

>>> from lib.api import build_tracker
>>> tracker = build_tracker(checkpoint="FARTrackSparse_ep0015.pth.tar")   # family read from the checkpoint
>>> tracker.initialize(rgb_frame, {"init_bbox": [x, y, w, h]})
>>> out = tracker.track(next_rgb_frame)   # {"target_bbox": [x, y, w, h], "best_score": float in [0, 1]}
"""
from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

import torch

from lib.config.loader import load_config
from lib.families import FAMILY_NAMES, UnknownFamilyError, family_of_net_type, get_family
from lib.test.evaluation.running import TrackerSpec
from lib.test.evaluation.running import build_tracker as build_tracker_from_spec
from lib.test.tracker.backends import PRECISIONS, InferenceOptions
from lib.test.tracker.lockstep import MultiTargetTracker
from lib.test.tracker.opencv_style import DEFAULT_LOST_THRESHOLD, OpenCVStyleTracker
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file

logger = logging.getLogger(__name__)

__all__ = ["load_network", "build_tracker", "build_opencv_tracker", "track_many", "checkpoint_family"]

def load_network(
    script: str,
    config: Union[str, os.PathLike],
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    device: Union[str, torch.device] = "cpu",
    depth: Optional[int] = None,
    opts: Optional[Sequence[object]] = None,
) -> torch.nn.Module:
    """Build the network of ``script`` from a config and load a checkpoint; returned in eval mode on ``device``.

    Args:
        script: a family (:data:`lib.families.FAMILY_NAMES`): ``fartrack``, ``fartrack_distill``,
            ``fartrack_sparse`` or ``fastseqtrack``.
        config: a config name under ``experiments/<script>/`` or a path to a YAML file.
        checkpoint: an official training checkpoint (``.pth.tar``, read without executing pickled code) or one
            of ours, of any family (stage differences are converted); None keeps the random initialisation.
        device: where the network lives.
        depth: FARTrack families: number of layers to run (Tiny / Nano / Pico = 15 / 10 / 6); default
            ``MODEL.DEPTH``.
        opts: config overrides ``[KEY, VALUE, ...]``.

    The forward returns ``logits`` (B, 4, 605); ``fartrack_distill`` adds ``layer_logits`` (depths 5..depth);
    ``fartrack_sparse`` adds ``template_scores`` (B, 5, 49) and ``template_keep`` (B, 49), the keep-mask of the
    newest template at ``MODEL.SPARSE.TEST_PRUNE_RATIO`` (official 0.25: 37 of 49 tokens kept).
    """
    family = get_family(script)
    cfg = load_config(script, config, opts)
    net = family.build_network(cfg, depth=depth)
    if checkpoint is None:
        logger.warning("no checkpoint given: %s keeps its random initialisation", net.net_type)
    else:
        family.load_weights(net, checkpoint)
    return net.to(device).eval()


def checkpoint_family(checkpoint: Union[str, os.PathLike]) -> str:
    """The family (script) a checkpoint was saved from, read from its ``net_type`` entry.

    The file is read with :func:`lib.utils.checkpoint.load_checkpoint_file`, which never executes pickled code.
    Raises :class:`~lib.utils.checkpoint.CheckpointError` when the file cannot be read or its ``net_type`` is not
    the class name of a registered family (``FARTrack``, ``FARTrackDistill``, ``FARTrackSparse``, ``FastSeqTrack``).
    """
    net_type = load_checkpoint_file(checkpoint).get("net_type")
    try:
        return family_of_net_type(net_type).name
    except UnknownFamilyError as error:
        raise CheckpointError(f"cannot tell the family of {os.fspath(checkpoint)}: {error}; pass the script "
                              f"({', '.join(FAMILY_NAMES)}) explicitly") from None


def _checked_device(device: Union[str, torch.device]) -> torch.device:
    """``device`` as a torch.device, refusing CUDA when none is available (torch would fail later, less clearly)."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"invalid device {device!r}: {error}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA device is available")
    return resolved


def build_tracker(
    script: Optional[str] = None,
    config: Optional[Union[str, os.PathLike]] = None,
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    *,
    device: Union[str, torch.device] = "cpu",
    depth: Optional[int] = None,
    precision: str = "fp32",
    faithful: bool = False,
    cuda_graphs: bool = False,
    opts: Optional[Sequence[object]] = None,
    threads: Optional[int] = None,
) -> Any:
    """Build a ready online tracker in one call: config, network, weights, test parameters and inference path.

    Args:
        script: a family (:data:`lib.families.FAMILY_NAMES`). Default: the family the checkpoint was
            saved from (its ``net_type``). When both are given and differ, the checkpoint is converted to
            ``script``'s family (as stage chaining does).
        config: a config name under ``experiments/<script>/`` or a YAML path; default the family's official config
            (``official_config`` of its :class:`~lib.families.Family` record; FastSeqTrack has none).
        checkpoint: an official or our own checkpoint (read without executing pickled code); None keeps the random
            initialisation, with a warning (smoke runs only: the boxes are meaningless).
        device: where the network runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        depth: layers to run (Tiny / Nano / Pico = 15 / 10 / 6); default ``MODEL.DEPTH`` of the config.
        precision: ``fp32`` (default), ``bf16``, ``fp16`` (CUDA only) or ``int8`` (CPU only); see
            :mod:`lib.test.tracker.backends`.
        faithful: run the official per-frame work and attention arithmetic (same boxes, slower); fp32 only.
        cuda_graphs: replay each frame's network call from a CUDA graph (CUDA device, not with ``faithful``).
        opts: config overrides ``[KEY, VALUE, ...]``.
        threads: if given, sets ``torch.set_num_threads`` (process-wide) before building.

    Returns:
        The family's tracker (:class:`~lib.test.tracker.fartrack.FARTrackTracker` for the FARTrack families) with
        the ``initialize`` / ``track`` contract:
        ``track`` returns ``{"target_bbox": [x, y, w, h], "best_score": float}`` (RGB uint8 frames).

    Raises:
        ValueError: no script and no checkpoint, an unknown script or precision, ``faithful`` with a precision
            other than fp32 or with ``cuda_graphs``, ``cuda_graphs`` without a CUDA device, an unavailable device,
            or an invalid thread count.
        CheckpointError: the checkpoint cannot be read, its family cannot be inferred, or it does not fit.
        FileNotFoundError / ConfigError: the config cannot be found or is invalid.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if faithful and precision != "fp32":
        raise ValueError(f"the faithful path runs in fp32; drop precision={precision!r} or faithful=True")
    if cuda_graphs and faithful:
        raise ValueError("CUDA graphs replay the fast path; drop faithful=True or cuda_graphs=True")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        torch.set_num_threads(threads)
    resolved_device = _checked_device(device)
    if script is None:
        if checkpoint is None:
            raise ValueError("build_tracker needs a script, a checkpoint, or both")
        script = checkpoint_family(checkpoint)
        logger.info("%s holds a %s network: using the %s family", os.fspath(checkpoint),
                    get_family(script).net_class_name, script)
    family = get_family(script)
    if config is None:
        if family.official_config is None:
            raise ValueError(f"{script} has no official config: pass config=")
        config = family.official_config
    if checkpoint is None:
        logger.warning("no checkpoint given: the %s tracker keeps its random initialisation", script)
    options = (InferenceOptions.faithful() if faithful
               else InferenceOptions(precision=precision, cuda_graphs=cuda_graphs))
    spec = TrackerSpec(script, os.fspath(config), None if checkpoint is None else os.fspath(checkpoint), depth,
                       tuple(opts or ()), options)
    return build_tracker_from_spec(spec, str(resolved_device))



def build_opencv_tracker(
    script: Optional[str] = None,
    config: Optional[Union[str, os.PathLike]] = None,
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    *,
    threshold: Optional[float] = DEFAULT_LOST_THRESHOLD,
    bgr: bool = True,
    **options: Any,
) -> OpenCVStyleTracker:
    """:func:`build_tracker` behind OpenCV's tracker interface (``init`` / ``update -> (ok, (x, y, w, h))`` /
    ``score``), BGR frames by default; ``ok`` is False when the score is below ``threshold`` (None: never).

    ``options`` are :func:`build_tracker`'s keyword arguments (``device``, ``depth``, ``precision``, ...). See
    :mod:`lib.test.tracker.opencv_style` and docs/opencv-tracker.md for the default threshold.

    >>> tracker = build_opencv_tracker(checkpoint="FARTrackSparse_ep0015.pth.tar")
    >>> tracker.init(bgr_frame, (x, y, w, h))
    >>> ok, (x, y, w, h) = tracker.update(next_bgr_frame)   # tracker.score: the confidence in [0, 1]
    """
    return OpenCVStyleTracker(build_tracker(script, config, checkpoint, **options), threshold, bgr=bgr)


def track_many(
    frames: Iterable[np.ndarray],
    init_boxes: Sequence[Sequence[float]],
    script: Optional[str] = None,
    config: Optional[Union[str, os.PathLike]] = None,
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    **options: Any,
) -> Iterator[list[dict]]:
    """Track several targets of one video with one network call per frame (FARTrack families).

    ``frames`` are RGB uint8 images, the first one holding ``init_boxes`` (one ``[x, y, w, h]`` per target).
    Yields, for every frame (the first included: the initial boxes), one ``{"target_bbox", "best_score"}`` per
    target in the order of ``init_boxes``. Each target is tracked exactly as a tracker of its own would track it
    (own template memory and keep-masks); only the network call is shared
    (:class:`~lib.test.tracker.lockstep.MultiTargetTracker`). ``script`` / ``config`` / ``checkpoint`` /
    ``options`` are :func:`build_tracker`'s.

    >>> for outs in track_many(rgb_frames, [[x1, y1, w1, h1], [x2, y2, w2, h2]], checkpoint="FARTrackSparse.pth.tar"):
    ...     boxes = [out["target_bbox"] for out in outs]
    """
    multi = MultiTargetTracker(build_tracker(script, config, checkpoint, **options))
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("track_many needs at least one frame")
    yield [{"target_bbox": out["target_bbox"], "best_score": 1.0} for out in multi.initialize(first, init_boxes)]
    for frame in frames:
        yield multi.track(frame)
