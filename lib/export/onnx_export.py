"""Export the FARTrack per-frame network to ONNX (static shapes, pinned opset, self-describing metadata).

    from lib.api import load_network
    from lib.export import export_onnx

    net = load_network("fartrack_sparse", "fartrack_sparse_224_full", checkpoint="FARTrackSparse_ep0015.pth.tar")
    export_onnx(net, "fartrack_sparse.onnx", tracker_params=TrackerParams.from_config(cfg))

What the graph computes (:class:`FrameGraph`) is one tracker step of the network's own forward: templates (1, T, 3, t, t), the
search crop (1, 3, s, s) and, for the sparse family, the per-slot keep-mask (1, T, P) in; the command-token logits
(1, 4, V) and, sparse family, the newest template's keep-mask (1, P) out. Every size comes from the network's
:class:`BackboneSpec`; the names, shapes and metadata keys are defined in :mod:`lib.export.onnx_runtime`.

Choices, and why:

* **Exporter: the dynamo exporter** (``torch.onnx.export(..., dynamo=True)``, needs ``onnxscript``). The TorchScript
  exporter is deprecated in torch 2.x and cannot export the sparse family's keep-mask (it has no symbolic for the
  in-place boolean ``scatter_`` of :func:`~lib.models.fartrack.sparsify.keep_highest`).
* **Opset** :data:`OPSET` = 18, the dynamo exporter's native opset in torch 2.14 (no version conversion pass).
* **Static shapes, masked sparse path.** The network's eval-mode default physically drops pruned template tokens,
  which makes the sequence length depend on the mask. The graph instead keeps all T*P template tokens and masks the
  pruned ones as attention keys with the masked LayerNorm (the official training arithmetic), which is numerically
  the same (spec 3.5) and keeps every shape static.
* **Attention:** ``explicit`` (the official arithmetic; ``sdpa`` exports too and is decomposed into the same
  MatMul / Softmax nodes at this opset).
* **The sparse word-embedding quirk.** ``word_embeddings`` is ``nn.Embedding(max_norm=1)``: each lookup renormalises
  the command rows *in place*, and the tied output head reads the same matrix. The export works on a copy: it runs
  that lookup once (the renorm is idempotent afterwards) and then switches ``max_norm`` off, so the graph carries the
  steady-state rows as constants and has no side effect. The caller's network is not modified; its own first
  forward applies the same renorm, so both give the same logits.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from lib.export.onnx_runtime import INSTALL_HINT, OnnxBackend, OnnxModelInfo
from lib.models.fartrack.network import FARTrackNetwork
from lib.models.fartrack.sparsify import training_keep_mask
from lib.models.onednn import use_torch_linears
from lib.test.tracker.fartrack import TrackerParams

logger = logging.getLogger(__name__)

#: The ONNX opset every export uses unless told otherwise (the one the tests cover).
OPSET = 18
#: Attention implementation of the exported graph (see the module docstring).
EXPORT_ATTENTION = "explicit"
#: Largest tolerated |logit difference| between ONNX Runtime and PyTorch in the post-export check.
LOGIT_ATOL = 1e-4


class OnnxExportError(RuntimeError):
    """The export produced a graph that is invalid or disagrees with the PyTorch network."""


class FrameGraph(nn.Module):
    """The exported computation: the network's own eval forward for one frame, reduced to what the tracker reads
    (the logits and, with template scores, the newest template's keep-mask). The network comes from
    :func:`export_ready_copy`, so pruned tokens are masked rather than dropped and no intermediate heads run."""

    def __init__(self, net: FARTrackNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, templates: Tensor, search: Tensor, template_keep: Optional[Tensor] = None
                ) -> Union[Tensor, tuple[Tensor, Tensor]]:
        if not self.net.template_scores:
            return self.net(templates, search)["logits"]
        if template_keep is None:
            raise ValueError("a graph with template scores needs template_keep (1, T, P)")
        out = self.net(templates, search, template_keep=template_keep)
        return out["logits"], out["template_keep"]


@contextlib.contextmanager
def _quiet_exporter_logs() -> Iterator[None]:
    """Raise the exporter's optimiser loggers to WARNING: under an INFO root logger they print hundreds of lines
    per export (every constant they fold or deduplicate)."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger_.level for logger_ in loggers]
    for logger_ in loggers:
        logger_.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger_, level in zip(loggers, levels):
            logger_.setLevel(level)


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and how well it matched PyTorch."""

    path: Path
    info: OnnxModelInfo
    seconds: float
    max_logit_diff: Optional[float]


def export_ready_copy(net: FARTrackNetwork, attention: str = EXPORT_ATTENTION) -> FARTrackNetwork:
    """A float32 CPU eval copy of ``net`` with the masked sparse path, no intermediate heads and the word-embedding
    renorm baked in (and plain ``nn.Linear`` layers where a fast-path network runs oneDNN ones)."""
    ready = use_torch_linears(copy.deepcopy(net)).cpu().float().eval()
    ready.attention = attention
    ready.drop_pruned_tokens = False
    ready.layer_heads_from = None
    ready.backbone.bake_command_renorm()
    return ready


def example_inputs(net: FARTrackNetwork, seed: int = 0) -> tuple[Tensor, ...]:
    """Deterministic inputs of the graph's shapes; the sparse keep-mask prunes slots 0..T-2 as in training."""
    spec = net.spec
    generator = torch.Generator().manual_seed(seed)
    templates = torch.randn(1, spec.num_templates, 3, spec.template_size, spec.template_size, generator=generator)
    search = torch.randn(1, 3, spec.search_size, spec.search_size, generator=generator)
    if not net.template_scores:
        return templates, search
    scores = torch.rand(1, spec.num_templates, spec.tokens_per_template, generator=generator)
    return templates, search, training_keep_mask(scores, net.test_prune_ratio)


def _import_onnx() -> Any:
    try:
        import onnx
        import onnxscript  # noqa: F401 - the dynamo exporter needs it; fail here with the install hint
    except ImportError as error:
        raise ImportError(f"ONNX export needs onnx and onnxscript; {INSTALL_HINT}") from error
    return onnx


def _model_info(net: FARTrackNetwork, opset: int, attention: str, tracker_params: TrackerParams) -> OnnxModelInfo:
    spec = net.spec
    if (tracker_params.template_size, tracker_params.search_size) != (spec.template_size, spec.search_size):
        raise ValueError(f"tracker crop sizes {tracker_params.template_size}/{tracker_params.search_size} differ from "
                         f"the network's {spec.template_size}/{spec.search_size}")
    return OnnxModelInfo(family=net.family, spec=spec, template_scores=net.template_scores, depth=net.depth, opset=opset, attention=attention,
                         test_prune_ratio=float(net.test_prune_ratio), tracker_params=tracker_params)


def export_onnx(
    net: FARTrackNetwork,
    path: Union[str, os.PathLike],
    tracker_params: TrackerParams = TrackerParams(),
    opset: int = OPSET,
    attention: str = EXPORT_ATTENTION,
    verify: bool = True,
) -> ExportReport:
    """Export ``net`` (any family, at its current ``depth``) to ``path`` and, by default, check it with ONNX Runtime.

    Args:
        net: the network; it is copied, never modified.
        path: the ``.onnx`` file to write (atomically; parent folders are created).
        tracker_params: the tracker's test parameters (``TrackerParams.from_config(cfg)``), stored in the metadata
            so :class:`OnnxBackend` can rebuild the tracker from the file alone.
        opset: the ONNX opset (default and tested: :data:`OPSET`).
        attention: ``explicit`` or ``sdpa``.
        verify: run the file with ONNX Runtime on deterministic inputs and require logits within
            :data:`LOGIT_ATOL` of the network's forward and a keep-mask that is a valid top-k of its scores.
    Raises:
        OnnxExportError: the graph fails the ONNX checker, has another opset, or disagrees with PyTorch.
    """
    onnx = _import_onnx()
    start = time.perf_counter()
    path = Path(path)
    ready = export_ready_copy(net, attention)
    info = _model_info(ready, opset, attention, tracker_params)
    inputs = example_inputs(ready)
    input_names = list(info.input_shapes())
    output_names = list(info.output_shapes())
    with warnings.catch_warnings(), _quiet_exporter_logs():
        # The exporter warns about internals (deprecated torch.export options, onnxscript notes) we cannot act on.
        warnings.simplefilter("ignore")
        program = torch.onnx.export(FrameGraph(ready).eval(), inputs, None, input_names=input_names,
                                    output_names=output_names, opset_version=opset, dynamo=True,
                                    external_data=False, optimize=True, verbose=False)
    model = program.model_proto
    versions = {entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")}
    if versions != {opset}:
        raise OnnxExportError(f"the exporter produced opset {sorted(versions)}, not the requested {opset}")
    for key, value in info.to_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = (f"FARTrack {info.family} per-frame network, depth {info.depth}: inputs {info.input_shapes()}, "
                        f"outputs {info.output_shapes()}")
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise OnnxExportError(f"the exported graph fails the ONNX checker: {error}") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        onnx.save_model(model, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    max_diff = check_against_torch(ready, path, inputs) if verify else None
    report = ExportReport(path=path, info=info, seconds=time.perf_counter() - start, max_logit_diff=max_diff)
    logger.info("exported %s (%s, depth %d, opset %d) in %.1f s%s", path, info.family, info.depth, opset,
                report.seconds, "" if max_diff is None else f", max |logit diff| {max_diff:.2e}")
    return report


def check_against_torch(net: FARTrackNetwork, path: Union[str, os.PathLike], inputs: tuple[Tensor, ...],
                        atol: float = LOGIT_ATOL) -> float:
    """Run ``path`` with ONNX Runtime and ``net.forward`` on ``inputs``; return the max |logit difference|.

    Raises :class:`OnnxExportError` when the logits differ by more than ``atol`` or, for the sparse family, when the
    ONNX keep-mask is not a top-k of the PyTorch scores (tokens it keeps must not score lower, beyond ``atol``, than
    tokens it drops: near-ties may legitimately resolve either way under float rounding).
    """
    backend = OnnxBackend(path)
    feeds = {name: tensor.numpy() for name, tensor in zip(backend.info.input_shapes(), inputs)}
    outputs = backend.session.run(list(backend.info.output_shapes()), feeds)
    with torch.no_grad():
        reference = net(inputs[0], inputs[1], template_keep=inputs[2] if len(inputs) > 2 else None)
    max_diff = float(np.abs(outputs[0] - reference["logits"].numpy()).max())
    if not max_diff <= atol:
        raise OnnxExportError(f"ONNX Runtime logits differ from PyTorch by {max_diff:.3g} (> {atol:g})")
    if backend.info.template_scores:
        onnx_keep = torch.from_numpy(outputs[1][0])
        scores = reference["template_scores"][0, -1]
        kept, dropped = scores[onnx_keep], scores[~onnx_keep]
        same_count = int(onnx_keep.sum()) == int(reference["template_keep"][0].sum())
        if not same_count or (dropped.numel() and kept.numel() and float(kept.min()) < float(dropped.max()) - atol):
            raise OnnxExportError("the ONNX keep-mask of the newest template is not a top-k of the PyTorch scores")
    return max_diff


__all__ = ["OPSET", "EXPORT_ATTENTION", "LOGIT_ATOL", "ExportReport", "FrameGraph", "OnnxExportError",
           "check_against_torch", "example_inputs", "export_onnx", "export_ready_copy"]
