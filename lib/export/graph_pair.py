"""The contract of an exported FARTrack graph pair, and what every runtime that runs one shares.

An export (:func:`lib.export.onnx_export.export_onnx`) is two ONNX files, each self-describing: the family, the
backbone sizes, the depth, the normalisation, the tracker's test parameters, the graph's role and the export's id
are in the models' ``metadata_props`` (:class:`OnnxModelInfo`). The graph contract (every shape static; T templates,
P tokens per template, C channels):

* **template graph** ``<name>.template.onnx``, run once per stored template: input ``template`` (1, 3, t, t)
  float32, ImageNet-normalised RGB; output ``template_tokens`` (1, P, C) float32 (patch embedding + template
  position embedding, the network's ``embed_templates``);
* **frame graph** ``<name>.onnx``, run every frame: inputs ``template_tokens`` (1, T, P, C) float32 (the cached
  tokens of the slots, slot 0 the oldest) and ``search`` (1, 3, s, s) float32; the sparse family adds
  ``template_keep`` (1, T, P) bool (True = token kept; the graph drops the pruned tokens from the sequence). Outputs
  ``logits`` (1, 4, V) float32 and, sparse family only, ``template_keep_newest`` (1, P) bool, the keep-mask of the
  newest template at the exported inference prune ratio.

:class:`GraphPairBackend` is the runtime-independent half of a
:class:`~lib.test.tracker.backends.NetworkBackend` running such a pair: it checks both files (present, loadable,
written by this project in the current metadata format, each in its role, signatures equal to what the metadata
says, the template graph from the same export as the frame graph), normalises crops on the host exactly as
PyTorch does, caches template tokens and feeds the frame graph. A runtime adds how to load a file, read its
metadata and signature, and run it: ONNX Runtime (:class:`lib.export.onnx_runtime.OnnxBackend`) and OpenVINO
(:class:`lib.export.openvino_runtime.OpenVinoBackend`).
"""
from __future__ import annotations

import abc
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from lib.models.fartrack.backbone import BackboneSpec
from lib.test.tracker.fartrack import TrackerParams
from lib.utils.tokens import vocab_size

#: Version of the metadata layout below; bumped when a key changes meaning (2: network options instead of the
#: family deciding the graph; 3: an export is a template graph and a frame graph, with ``graph`` and ``export_id``).
METADATA_FORMAT = 3
#: Prefix of every metadata key this project writes (other tools may add their own keys).
METADATA_PREFIX = "fartrack."

#: Roles of the two graphs of an export (metadata ``graph``).
TEMPLATE_GRAPH = "template"
FRAME_GRAPH = "frame"

INPUT_TEMPLATE = "template"
OUTPUT_TEMPLATE_TOKENS = "template_tokens"
INPUT_TEMPLATE_TOKENS = "template_tokens"
INPUT_SEARCH = "search"
INPUT_TEMPLATE_KEEP = "template_keep"
OUTPUT_LOGITS = "logits"
OUTPUT_TEMPLATE_KEEP = "template_keep_newest"

#: File-name suffix of the template graph next to its frame graph: ``x.onnx`` -> ``x.template.onnx``.
TEMPLATE_SUFFIX = ".template.onnx"
#: Optional metadata entry (``fartrack.quantization``) of a quantised frame graph (:mod:`lib.export.quantize`): how
#: it was quantised. Absent from float32 exports; not part of the export id, so the unchanged template graph of the
#: export still pairs with it.
QUANTIZATION_KEY = "quantization"


class OnnxModelError(ValueError):
    """A file is missing, is not a readable ONNX model, was not written by :func:`export_onnx`, or the template
    graph does not belong to the frame graph."""


def template_graph_path(frame_path: Union[str, os.PathLike]) -> Path:
    """Where the template graph of the frame graph ``frame_path`` lives: ``x.onnx`` -> ``x.template.onnx``."""
    return Path(frame_path).with_suffix(TEMPLATE_SUFFIX)


@dataclass(frozen=True)
class OnnxModelInfo:
    """Everything needed to run an exported graph, stored as string ``metadata_props`` in each ``.onnx`` file.

    Both graphs of one export carry the same entries except ``graph`` (their role)."""

    family: str
    spec: BackboneSpec
    #: The network option :attr:`FARTrackNetwork.template_scores`: the frame graph takes the slots' keep-mask and
    #: returns the newest template's.
    template_scores: bool
    depth: int
    opset: int
    attention: str
    test_prune_ratio: float
    tracker_params: TrackerParams
    #: :data:`FRAME_GRAPH` or :data:`TEMPLATE_GRAPH`.
    graph: str = FRAME_GRAPH
    #: Fingerprint of the exported weights and of the other entries, the same in both graphs of an export.
    export_id: str = ""

    def __post_init__(self) -> None:
        if self.graph not in (FRAME_GRAPH, TEMPLATE_GRAPH):
            raise ValueError(f"graph must be {FRAME_GRAPH!r} or {TEMPLATE_GRAPH!r}, got {self.graph!r}")

    @property
    def vocab_size(self) -> int:
        return vocab_size(self.spec.bins, self.spec.value_range)

    def as_graph(self, graph: str) -> "OnnxModelInfo":
        """The same export's info for the other graph role."""
        return dataclasses.replace(self, graph=graph)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Static shapes of the graph inputs, derived from the spec."""
        spec = self.spec
        if self.graph == TEMPLATE_GRAPH:
            return {INPUT_TEMPLATE: (1, 3, spec.template_size, spec.template_size)}
        shapes = {
            INPUT_TEMPLATE_TOKENS: (1, spec.num_templates, spec.tokens_per_template, spec.embed_dim),
            INPUT_SEARCH: (1, 3, spec.search_size, spec.search_size),
        }
        if self.template_scores:
            shapes[INPUT_TEMPLATE_KEEP] = (1, spec.num_templates, spec.tokens_per_template)
        return shapes

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Static shapes of the graph outputs, derived from the spec."""
        spec = self.spec
        if self.graph == TEMPLATE_GRAPH:
            return {OUTPUT_TEMPLATE_TOKENS: (1, spec.tokens_per_template, spec.embed_dim)}
        shapes = {OUTPUT_LOGITS: (1, spec.num_command_tokens, self.vocab_size)}
        if self.template_scores:
            shapes[OUTPUT_TEMPLATE_KEEP] = (1, spec.tokens_per_template)
        return shapes

    def describing_entries(self) -> dict[str, str]:
        """The entries that describe the export (all but ``graph`` and ``export_id``), as strings."""
        entries: dict[str, Any] = {
            "format": METADATA_FORMAT,
            "family": self.family,
            "template_scores": int(self.template_scores),
            "depth": self.depth,
            "opset": self.opset,
            "attention": self.attention,
            "test_prune_ratio": self.test_prune_ratio,
            "backbone_spec": json.dumps(dataclasses.asdict(self.spec), sort_keys=True),
            "tracker_params": json.dumps(dataclasses.asdict(self.tracker_params), sort_keys=True),
            **self._flat_entries(),
        }
        return {key: str(value) for key, value in entries.items()}

    def to_metadata(self) -> dict[str, str]:
        """The metadata entries (all strings, as ONNX requires).

        The JSON entries ``backbone_spec`` and ``tracker_params`` are what :meth:`from_metadata` rebuilds from. The
        flat size entries repeat them for tools that only show key/value pairs (Netron, ``onnx`` scripts); the
        reader checks that they agree, so an edited file cannot silently disagree with itself.
        """
        entries = {**self.describing_entries(), "graph": self.graph, "export_id": self.export_id}
        return {METADATA_PREFIX + key: value for key, value in entries.items()}

    def _flat_entries(self) -> dict[str, str]:
        spec, params = self.spec, self.tracker_params
        return {
            "bins": str(spec.bins),
            "value_range": str(spec.value_range),
            "vocab_size": str(self.vocab_size),
            "num_templates": str(spec.num_templates),
            "tokens_per_template": str(spec.tokens_per_template),
            "embed_dim": str(spec.embed_dim),
            "template_size": str(spec.template_size),
            "search_size": str(spec.search_size),
            "mean": json.dumps(list(params.mean)),
            "std": json.dumps(list(params.std)),
        }

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], source: str = "the model") -> "OnnxModelInfo":
        """Rebuild the info from ``metadata_props``; :class:`OnnxModelError` names what is missing or wrong."""
        ours = {key[len(METADATA_PREFIX):]: value for key, value in props.items() if key.startswith(METADATA_PREFIX)}
        if not ours:
            raise OnnxModelError(f"{source} has no '{METADATA_PREFIX}*' metadata: it was not written by "
                                 "tracking/export_onnx.py (lib.export.export_onnx)")
        if "format" in ours and ours["format"] != str(METADATA_FORMAT):
            raise OnnxModelError(f"{source}: metadata format {ours['format']!r} is not supported "
                                 f"(this code reads format {METADATA_FORMAT}: a template graph and a frame graph); "
                                 "re-export the model with tracking/export_onnx.py")
        required = ("format", "family", "template_scores", "depth", "opset", "attention", "test_prune_ratio",
                    "backbone_spec", "tracker_params", "graph", "export_id")
        missing = [key for key in required if key not in ours]
        if missing:
            raise OnnxModelError(f"{source}: missing metadata {', '.join(METADATA_PREFIX + k for k in missing)}")
        try:
            params = json.loads(ours["tracker_params"])
            for key in ("mean", "std"):
                params[key] = tuple(params[key])
            info = cls(
                family=ours["family"],
                spec=BackboneSpec(**json.loads(ours["backbone_spec"])),
                template_scores=bool(int(ours["template_scores"])),
                depth=int(ours["depth"]),
                opset=int(ours["opset"]),
                attention=ours["attention"],
                test_prune_ratio=float(ours["test_prune_ratio"]),
                tracker_params=TrackerParams(**params),
                graph=ours["graph"],
                export_id=ours["export_id"],
            )
        except (ValueError, TypeError, KeyError) as error:
            raise OnnxModelError(f"{source}: unreadable metadata ({type(error).__name__}: {error})") from error
        disagree = [key for key, value in info._flat_entries().items() if key in ours and ours[key] != value]
        if disagree:
            raise OnnxModelError(f"{source}: metadata entries {', '.join(METADATA_PREFIX + k for k in disagree)} "
                                 "disagree with backbone_spec / tracker_params (the file was edited?)")
        return info


def pair_mismatches(frame: OnnxModelInfo, template: OnnxModelInfo) -> list[str]:
    """What differs between a frame graph's info and a template graph's (empty: they belong together)."""
    problems = []
    if frame.graph != FRAME_GRAPH:
        problems.append(f"the first is a {frame.graph} graph, not a frame graph")
    if template.graph != TEMPLATE_GRAPH:
        problems.append(f"the second is a {template.graph} graph, not a template graph")
    if frame.export_id != template.export_id:
        problems.append(f"export id {template.export_id} != {frame.export_id}")
    for field in ("family", "depth", "spec", "template_scores", "test_prune_ratio", "tracker_params", "opset",
                  "attention"):
        ours, theirs = getattr(frame, field), getattr(template, field)
        if ours != theirs:
            problems.append(f"{field} {theirs} != {ours}")
    return problems


class GraphPairBackend(abc.ABC):
    """A :class:`~lib.test.tracker.backends.NetworkBackend` running an exported graph pair, whatever the runtime.

    ``encode_template`` normalises the crop (the same float32 operations as :meth:`TorchBackend.preprocess`, so
    every backend feeds the network the same bits) and runs the template graph once: the tracker stores the (P, C)
    tokens it returns. ``run`` stacks the slots' cached tokens, normalises the search crop and runs the frame graph
    once, which drops the pruned tokens of the sparse family (as the PyTorch fast path does).

    A subclass prepares its runtime, then calls :meth:`_open_pair`, and implements :meth:`_load`,
    :meth:`_signature`, :meth:`_run_template` and :meth:`_run_frame`. Attributes after ``_open_pair``: ``path``,
    ``template_path``, ``info`` / ``template_info`` (:class:`OnnxModelInfo`), ``family``, ``spec``,
    ``prunes_templates`` and ``tracker_params``.
    """

    #: The runtime's name in messages.
    runtime = "the runtime"

    @abc.abstractmethod
    def _load(self, path: Path) -> tuple[Any, Mapping[str, str]]:
        """The runtime's loaded graph of ``path`` and the file's ``metadata_props``; any exception is reported as
        an unloadable file."""

    @abc.abstractmethod
    def _signature(self, graph: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The graph's input and output shapes by name (tuples of ints where static)."""

    @abc.abstractmethod
    def _run_template(self, image: np.ndarray) -> np.ndarray:
        """The template graph on one normalised (1, 3, t, t) image: its (1, P, C) tokens."""

    @abc.abstractmethod
    def _run_frame(self, feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]:
        """The frame graph on ``feeds``: its outputs in the order of ``info.output_shapes()``."""

    def _open_pair(self, path: Union[str, os.PathLike], template_path: Optional[Union[str, os.PathLike]]
                   ) -> tuple[Any, Any]:
        """Load and check the frame graph ``path`` and its template graph (default :func:`template_graph_path`);
        returns the runtime's (frame, template) graphs. Raises :class:`OnnxModelError` (see :class:`OnnxBackend`)."""
        self.path = Path(path)
        self.template_path = template_graph_path(self.path) if template_path is None else Path(template_path)
        frame, self.info = self._open(self.path, FRAME_GRAPH)
        template, self.template_info = self._open(self.template_path, TEMPLATE_GRAPH)
        problems = pair_mismatches(self.info, self.template_info)
        if problems:
            raise OnnxModelError(f"the template graph {self.template_path} does not match the frame graph "
                                 f"{self.path} (re-export both together): {'; '.join(problems)}")
        self.family = self.info.family
        self.spec = self.info.spec
        self.prunes_templates = self.info.template_scores
        params = self.info.tracker_params
        self.mean = np.asarray(params.mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(params.std, dtype=np.float32).reshape(3, 1, 1)
        # Sparse family: the keep-mask fed when the caller gives none (every template token kept).
        keep_shape = self.info.input_shapes().get(INPUT_TEMPLATE_KEEP)
        self._all_kept = None if keep_shape is None else np.ones(keep_shape, dtype=bool)
        return frame, template

    def _open(self, path: Path, role: str) -> tuple[Any, OnnxModelInfo]:
        """The runtime's graph of ``path`` and its info, checked to be a ``role`` graph whose signature matches its
        metadata."""
        if not path.is_file():
            raise OnnxModelError(f"ONNX {role} graph {path} not found (export one with tracking/export_onnx.py, "
                                 f"which writes <name>.onnx and <name>{TEMPLATE_SUFFIX})")
        try:
            graph, props = self._load(path)
        except Exception as error:  # noqa: BLE001 - runtime binding errors, re-raised with the path
            raise OnnxModelError(f"cannot load {path} as an ONNX model with {self.runtime}: {error}") from error
        info = OnnxModelInfo.from_metadata(props, str(path))
        if info.graph != role:
            hint = (f"pass the frame graph ({path.name.removesuffix(TEMPLATE_SUFFIX)}.onnx)" if role == FRAME_GRAPH
                    else "expected the template graph of the export")
            raise OnnxModelError(f"{path} is the {info.graph} graph of an export, not its {role} graph; {hint}")
        inputs, outputs = self._signature(graph)
        problems = [f"{kind}s {found} (expected {expected})"
                    for kind, found, expected in (("input", inputs, info.input_shapes()),
                                                  ("output", outputs, info.output_shapes())) if found != expected]
        if problems:
            raise OnnxModelError(f"{path}: the graph does not match its metadata: {'; '.join(problems)}")
        return graph, info

    @property
    def tracker_params(self) -> TrackerParams:
        """The test-time crop sizes, factors and normalisation of the exported config."""
        return self.info.tracker_params

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (3, H, W) float32, /255, ImageNet-normalised, in TorchBackend's operation order."""
        image = np.ascontiguousarray(crop).transpose(2, 0, 1).astype(np.float32)
        return (image / np.float32(255.0) - self.mean) / self.std

    def encode_template(self, crop: np.ndarray) -> np.ndarray:
        """What the tracker stores per template: its (P, C) float32 tokens from the template graph."""
        return self._run_template(self.preprocess(crop)[None])[0]

    def run(self, templates: Sequence[np.ndarray], search_crop: np.ndarray, template_keep: Optional[Tensor]
            ) -> tuple[Tensor, Optional[Tensor]]:
        """One frame-graph call on the slots' cached tokens: (1, 4, V) float32 logits and, sparse family, the
        newest template's (P,) keep-mask."""
        if len(templates) != self.spec.num_templates:
            raise ValueError(f"expected {self.spec.num_templates} templates, got {len(templates)}")
        feeds = {INPUT_TEMPLATE_TOKENS: np.stack(templates)[None], INPUT_SEARCH: self.preprocess(search_crop)[None]}
        if self._all_kept is not None:
            keep = self._all_kept if template_keep is None else template_keep.detach().cpu().numpy().astype(bool)
            feeds[INPUT_TEMPLATE_KEEP] = keep.reshape(self._all_kept.shape)
        elif template_keep is not None:
            raise ValueError(f"template_keep needs a graph with template scores ({self.family} has none)")
        outputs = self._run_frame(feeds)
        logits = torch.from_numpy(np.asarray(outputs[0], dtype=np.float32))
        newest_keep = torch.from_numpy(np.asarray(outputs[1][0], dtype=bool)) if self.info.template_scores else None
        return logits, newest_keep
