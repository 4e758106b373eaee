"""Export a FARTrack network to ONNX as a template graph and a per-frame graph (static shapes, pinned opset,
self-describing metadata).

    from lib.api import load_network
    from lib.export import export_onnx

    net = load_network("fartrack_sparse", "fartrack_sparse_224_full", checkpoint="FARTrackSparse_ep0015.pth.tar")
    export_onnx(net, "fartrack_sparse.onnx", tracker_params=get_family("fartrack_sparse").tracker_params(cfg))
    # -> fartrack_sparse.onnx (frame graph) and fartrack_sparse.template.onnx (template graph)

What the graphs compute is the network's own eval forward, split where the PyTorch fast path caches:

* :class:`TemplateGraph`, run once per stored template: a template crop (1, 3, t, t) -> its tokens (1, P, C), the
  backbone's ``embed_templates`` (patch embedding + template position embedding);
* :class:`FrameGraph`, run every frame: ``FARTrackNetwork.forward(template_tokens=...)`` on the slots' cached tokens
  (1, T, P, C) and the search crop (1, 3, s, s) and, for the sparse family, the slots' keep-mask (1, T, P); out
  the command-token logits (1, 4, V) and, sparse family, the newest template's keep-mask (1, P).

Every size comes from the network's :class:`BackboneSpec`; the names, shapes and metadata keys are defined in
:mod:`lib.export.graph_pair`.

Choices, and why:

* **Two graphs, not one.** The template embedding depends only on the template crop, so it runs once per stored
  template (a tracker stores one per frame) instead of for all T slots every frame, as the PyTorch fast path does.
  The frame graph takes the cached tokens; the host only stacks T arrays.
* **Static inputs and outputs, pruned tokens dropped inside the graph.** The sparse family's frame graph runs the
  network's eval default, ``drop_pruned_tokens``: the boolean gather of the kept tokens (ONNX ``NonZero`` +
  ``GatherND``) and the scatter of their scores back into (T, P) are the network's own code. Only the sequence
  length inside the graph depends on the mask; every graph input and output keeps a fixed shape, so the host never
  gathers tokens or bookkeeps indices, and the metadata can describe every shape.
* **Exporter: the dynamo exporter** (``torch.onnx.export(..., dynamo=True)``, needs ``onnxscript``). The TorchScript
  exporter is deprecated in torch 2.x and cannot export the sparse family's keep-mask (it has no symbolic for the
  in-place boolean ``scatter_`` of :func:`~lib.models.fartrack.sparsify.keep_highest`) nor the data-dependent gather.
* **Opset** :data:`OPSET` = 18, the dynamo exporter's native opset in torch 2.14 (no version conversion pass).
* **Attention:** ``explicit`` (the official arithmetic; ``sdpa`` exports too and is decomposed into the same
  MatMul / Softmax nodes at this opset).
* **The sparse word-embedding quirk.** ``word_embeddings`` is ``nn.Embedding(max_norm=1)``: each lookup renormalises
  the command rows *in place*, and the tied output head reads the same matrix. The export works on a copy: it runs
  that lookup once (the renorm is idempotent afterwards) and then switches ``max_norm`` off, so the graph carries the
  steady-state rows as constants and has no side effect. The caller's network is not modified; its own first
  forward applies the same renorm, so both give the same logits.
* **One rewrite for ONNX Runtime.** :func:`reorder_gelu_for_fusion` moves the GELU's exact ``* 0.5`` so that ONNX
  Runtime fuses the MLP activation (bias + GELU) into one kernel; the arithmetic is unchanged.
* **Pairing.** Both files carry the same metadata and an ``export_id``, a fingerprint of the exported weights and of
  that metadata; :class:`OnnxBackend` refuses a template graph whose id, spec, depth, ... differ from its frame
  graph's.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
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

from lib.export.graph_pair import (FRAME_GRAPH, INPUT_TEMPLATE, OUTPUT_TEMPLATE_TOKENS, TEMPLATE_GRAPH, OnnxModelInfo,
                                   template_graph_path)
from lib.export.onnx_runtime import INSTALL_HINT, OnnxBackend
from lib.models.fartrack.network import FARTrackNetwork
from lib.models.fartrack.sparsify import training_keep_mask
from lib.models.onednn import use_torch_linears
from lib.test.tracker.fartrack import TrackerParams

logger = logging.getLogger(__name__)

#: The ONNX opset every export uses unless told otherwise (the one the tests cover).
OPSET = 18
#: Attention implementation of the exported graph (see the module docstring).
EXPORT_ATTENTION = "explicit"
#: Largest tolerated |difference| of template tokens and logits between ONNX Runtime and PyTorch in the
#: post-export check.
LOGIT_ATOL = 1e-4


class OnnxExportError(RuntimeError):
    """The export produced a graph that is invalid or disagrees with the PyTorch network."""


class TemplateGraph(nn.Module):
    """One template crop (1, 3, t, t) -> its (1, P, C) tokens: the backbone's ``embed_templates``, which the
    PyTorch fast path caches per stored template."""

    def __init__(self, net: FARTrackNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, template: Tensor) -> Tensor:
        return self.net.backbone.embed_templates(template.unsqueeze(1))[:, 0]


class FrameGraph(nn.Module):
    """The network's own eval forward for one frame on cached template tokens, reduced to what the tracker reads
    (the logits and, with template scores, the newest template's keep-mask). The network comes from
    :func:`export_ready_copy`: pruned tokens are dropped (the eval default) and no intermediate heads run."""

    def __init__(self, net: FARTrackNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, template_tokens: Tensor, search: Tensor, template_keep: Optional[Tensor] = None
                ) -> Union[Tensor, tuple[Tensor, Tensor]]:
        if not self.net.template_scores:
            return self.net(None, search, template_tokens=template_tokens)["logits"]
        if template_keep is None:
            raise ValueError("a graph with template scores needs template_keep (1, T, P)")
        out = self.net(None, search, template_keep=template_keep, template_tokens=template_tokens)
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

    #: The frame graph (what :class:`OnnxBackend` is given).
    path: Path
    #: The template graph next to it (``<name>.template.onnx``).
    template_path: Path
    #: The frame graph's info (``info.as_graph("template")`` is the template graph's).
    info: OnnxModelInfo
    seconds: float
    #: Template graph then frame graph in ONNX Runtime vs the network's forward on the same images.
    max_logit_diff: Optional[float]
    #: Template graph tokens vs the network's ``embed_templates``.
    max_token_diff: Optional[float]


def export_ready_copy(net: FARTrackNetwork, attention: str = EXPORT_ATTENTION) -> FARTrackNetwork:
    """A float32 CPU eval copy of ``net`` that drops pruned tokens, runs no intermediate heads and has the
    word-embedding renorm baked in (and plain ``nn.Linear`` layers where a fast-path network runs oneDNN ones)."""
    ready = use_torch_linears(copy.deepcopy(net)).cpu().float().eval()
    ready.attention = attention
    ready.drop_pruned_tokens = True
    ready.layer_heads_from = None
    ready.backbone.bake_command_renorm()
    return ready


def example_inputs(net: FARTrackNetwork, seed: int = 0) -> tuple[Tensor, ...]:
    """Deterministic template images (1, T, 3, t, t), a search crop and, with template scores, a keep-mask that
    prunes slots 0..T-2 as in training."""
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


def export_fingerprint(net: FARTrackNetwork, info: OnnxModelInfo) -> str:
    """16 hex digits of a SHA-256 over the exported weights and the describing metadata: the same network exported
    the same way gets the same id, any other export (weights, depth, config) another one."""
    digest = hashlib.sha256()
    for key, value in sorted(info.describing_entries().items()):
        digest.update(f"{key}={value}\n".encode())
    for name, tensor in net.state_dict().items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype}:{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _model_info(net: FARTrackNetwork, opset: int, attention: str, tracker_params: TrackerParams) -> OnnxModelInfo:
    spec = net.spec
    if (tracker_params.template_size, tracker_params.search_size) != (spec.template_size, spec.search_size):
        raise ValueError(f"tracker crop sizes {tracker_params.template_size}/{tracker_params.search_size} differ from "
                         f"the network's {spec.template_size}/{spec.search_size}")
    info = OnnxModelInfo(family=net.family, spec=spec, template_scores=net.template_scores, depth=net.depth,
                         opset=opset, attention=attention, test_prune_ratio=float(net.test_prune_ratio),
                         tracker_params=tracker_params, graph=FRAME_GRAPH)
    return dataclasses.replace(info, export_id=export_fingerprint(net, info))


def _scalar_value(model: Any, name: str) -> Optional[float]:
    """The value of a one-element initializer or ``Constant`` output ``name`` of ``model`` (None otherwise)."""
    from onnx import numpy_helper

    for tensor in model.graph.initializer:
        if tensor.name == name:
            array = numpy_helper.to_array(tensor)
            return float(array.reshape(-1)[0]) if array.size == 1 else None
    for node in model.graph.node:
        if node.op_type == "Constant" and name in node.output and node.attribute and node.attribute[0].name == "value":
            array = numpy_helper.to_array(node.attribute[0].t)
            return float(array.reshape(-1)[0]) if array.size == 1 else None
    return None


def reorder_gelu_for_fusion(model: Any) -> int:
    """Rewrite every exact GELU ``x * (0.5 * (1 + erf(x / sqrt 2)))`` of ``model`` as ``(x * (1 + erf(x / sqrt 2)))
    * 0.5`` in place; returns how many.

    The exporter writes the first form (opset 18 has no Gelu operator); ONNX Runtime's graph optimiser fuses only
    the second, into one Gelu / BiasGelu kernel instead of five element-wise passes over the MLP activations.
    Multiplying by 0.5 is exact in floating point, so both forms give the same bits; only the runtime's fusion
    differs.
    """
    nodes = list(model.graph.node)
    producer = {output: node for node in nodes for output in node.output}
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for erf in (node for node in nodes if node.op_type == "Erf"):
        div = producer.get(erf.input[0])
        after_erf = consumers.get(erf.output[0], [])
        if div is None or div.op_type != "Div" or len(after_erf) != 1 or after_erf[0].op_type != "Add":
            continue
        x, add = div.input[0], after_erf[0]
        halves = consumers.get(add.output[0], [])
        if len(halves) != 1 or halves[0].op_type != "Mul" or len(consumers.get(halves[0].output[0], [])) != 1:
            continue
        mul_half = halves[0]
        half = [name for name in mul_half.input if name != add.output[0]]
        mul_x = consumers[mul_half.output[0]][0]
        if (len(half) != 1 or _scalar_value(model, half[0]) != 0.5 or mul_x.op_type != "Mul"
                or sorted(mul_x.input) != sorted([x, mul_half.output[0]])):
            continue
        del mul_half.input[:]
        mul_half.input.extend([x, add.output[0]])  # x * (1 + erf(...))
        del mul_x.input[:]
        mul_x.input.extend([mul_half.output[0], half[0]])  # ... * 0.5, still the GELU's output name
        rewritten += 1
    return rewritten


def _export_graph(onnx: Any, module: nn.Module, inputs: tuple[Tensor, ...], info: OnnxModelInfo) -> Any:
    """``module`` traced on ``inputs`` as a checked ModelProto with ``info``'s names, opset and metadata."""
    with warnings.catch_warnings(), _quiet_exporter_logs():
        # The exporter warns about internals (deprecated torch.export options, onnxscript notes) we cannot act on.
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module.eval(), inputs, None, input_names=list(info.input_shapes()),
                                    output_names=list(info.output_shapes()), opset_version=info.opset, dynamo=True,
                                    external_data=False, optimize=True, verbose=False)
    model = program.model_proto
    versions = {entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")}
    if versions != {info.opset}:
        raise OnnxExportError(f"the exporter produced opset {sorted(versions)}, not the requested {info.opset}")
    reorder_gelu_for_fusion(model)
    for key, value in info.to_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = (f"FARTrack {info.family} {info.graph} graph, depth {info.depth}, export {info.export_id}: "
                        f"inputs {info.input_shapes()}, outputs {info.output_shapes()}")
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise OnnxExportError(f"the exported {info.graph} graph fails the ONNX checker: {error}") from error
    return model


def export_onnx(
    net: FARTrackNetwork,
    path: Union[str, os.PathLike],
    tracker_params: TrackerParams = TrackerParams(),
    opset: int = OPSET,
    attention: str = EXPORT_ATTENTION,
    verify: bool = True,
) -> ExportReport:
    """Export ``net`` (any family, at its current ``depth``) as the frame graph ``path`` and the template graph
    ``<name>.template.onnx`` next to it and, by default, check the pair with ONNX Runtime.

    Args:
        net: the network; it is copied, never modified.
        path: the frame graph ``.onnx`` to write (both files are written atomically; parent folders are created).
        tracker_params: the tracker's test parameters (the family record's ``tracker_params(cfg)``), stored in the
            metadata so :class:`OnnxBackend` can rebuild the tracker from the files alone.
        opset: the ONNX opset (default and tested: :data:`OPSET`).
        attention: ``explicit`` or ``sdpa``.
        verify: run both files with ONNX Runtime on deterministic inputs and require template tokens and logits
            within :data:`LOGIT_ATOL` of the network's and a keep-mask that is a valid top-k of its scores.
    Raises:
        OnnxExportError: a graph fails the ONNX checker, has another opset, or disagrees with PyTorch.
    """
    onnx = _import_onnx()
    start = time.perf_counter()
    path = Path(path)
    template_path = template_graph_path(path)
    ready = export_ready_copy(net, attention)
    info = _model_info(ready, opset, attention, tracker_params)
    inputs = example_inputs(ready)
    with torch.no_grad():
        tokens = ready.embed_templates(inputs[0])
    models = {
        template_path: _export_graph(onnx, TemplateGraph(ready), (inputs[0][:, 0],), info.as_graph(TEMPLATE_GRAPH)),
        path: _export_graph(onnx, FrameGraph(ready), (tokens, *inputs[1:]), info),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = {target: target.with_name(f".{target.name}.{os.getpid()}.tmp") for target in models}
    try:
        for target, model in models.items():
            onnx.save_model(model, str(temporary[target]))
        for target in models:  # the template graph first: a frame graph never sits next to a stale template graph
            os.replace(temporary[target], target)
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)
    token_diff, logit_diff = check_against_torch(ready, path, inputs) if verify else (None, None)
    report = ExportReport(path=path, template_path=template_path, info=info, seconds=time.perf_counter() - start,
                          max_logit_diff=logit_diff, max_token_diff=token_diff)
    logger.info("exported %s + %s (%s, depth %d, opset %d, export %s) in %.1f s%s", path, template_path.name,
                info.family, info.depth, opset, info.export_id, report.seconds,
                "" if logit_diff is None else f", max |logit diff| {logit_diff:.2e}")
    return report


def check_against_torch(net: FARTrackNetwork, path: Union[str, os.PathLike], inputs: tuple[Tensor, ...],
                        atol: float = LOGIT_ATOL) -> tuple[float, float]:
    """Run the pair at ``path`` with ONNX Runtime as a tracker does (the template graph on each slot's image, the
    frame graph on the tokens it returned) and ``net.forward`` on the same images (``inputs`` of
    :func:`example_inputs`); return the max |token difference| and the max |logit difference|.

    Raises :class:`OnnxExportError` when either exceeds ``atol`` or, for the sparse family, when the ONNX keep-mask
    is not a top-k of the PyTorch scores (tokens it keeps must not score lower, beyond ``atol``, than tokens it
    drops: near-ties may legitimately resolve either way under float rounding).
    """
    backend = OnnxBackend(path)
    templates, search = inputs[0], inputs[1]
    keep = inputs[2] if len(inputs) > 2 else None
    onnx_tokens = [backend.template_session.run([OUTPUT_TEMPLATE_TOKENS], {INPUT_TEMPLATE: image[None].numpy()})[0][0]
                   for image in templates[0]]
    with torch.no_grad():
        reference_tokens = net.embed_templates(templates)[0].numpy()
        reference = net(templates, search, template_keep=keep)
    token_diff = float(np.abs(np.stack(onnx_tokens) - reference_tokens).max())
    if not token_diff <= atol:
        raise OnnxExportError(f"ONNX Runtime template tokens differ from PyTorch by {token_diff:.3g} (> {atol:g})")
    feeds = {name: value for name, value in zip(backend.info.input_shapes(),
                                                (np.stack(onnx_tokens)[None], search.numpy(),
                                                 *([] if keep is None else [keep.numpy()])))}
    outputs = backend.session.run(list(backend.info.output_shapes()), feeds)
    logit_diff = float(np.abs(outputs[0] - reference["logits"].numpy()).max())
    if not logit_diff <= atol:
        raise OnnxExportError(f"ONNX Runtime logits differ from PyTorch by {logit_diff:.3g} (> {atol:g})")
    if backend.info.template_scores:
        onnx_keep = torch.from_numpy(outputs[1][0])
        scores = reference["template_scores"][0, -1]
        kept, dropped = scores[onnx_keep], scores[~onnx_keep]
        same_count = int(onnx_keep.sum()) == int(reference["template_keep"][0].sum())
        if not same_count or (dropped.numel() and kept.numel() and float(kept.min()) < float(dropped.max()) - atol):
            raise OnnxExportError("the ONNX keep-mask of the newest template is not a top-k of the PyTorch scores")
    return token_diff, logit_diff


__all__ = ["OPSET", "EXPORT_ATTENTION", "LOGIT_ATOL", "ExportReport", "FrameGraph", "OnnxExportError",
           "TemplateGraph", "check_against_torch", "example_inputs", "export_fingerprint", "export_onnx",
           "export_ready_copy", "reorder_gelu_for_fusion"]
