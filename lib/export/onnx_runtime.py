"""Run an exported FARTrack graph pair with ONNX Runtime: a :class:`NetworkBackend` that needs no PyTorch weights.

    from lib.export import OnnxBackend
    from lib.test.tracker.fartrack import FARTrackTracker

    backend = OnnxBackend("fartrack_sparse_224_full.onnx", intra_op_num_threads=2)  # + .template.onnx next to it
    tracker = FARTrackTracker(backend, backend.tracker_params)
    tracker.initialize(image, {"init_bbox": [x, y, w, h]})
    box = tracker.track(next_image)["target_bbox"]

An export is two files (:func:`lib.export.onnx_export.export_onnx`), each self-describing: the family, the backbone
sizes, the depth, the normalisation, the tracker's test parameters, the graph's role and the export's id are in
the models' ``metadata_props`` (:class:`OnnxModelInfo`), and this module rebuilds everything from them. The graph
contract (every shape static; N = T templates, P tokens per template, C channels):

* **template graph** ``<name>.template.onnx``, run once per stored template: input ``template`` (1, 3, t, t)
  float32, ImageNet-normalised RGB; output ``template_tokens`` (1, P, C) float32 (patch embedding + template
  position embedding, the network's ``embed_templates``);
* **frame graph** ``<name>.onnx``, run every frame: inputs ``template_tokens`` (1, T, P, C) float32 (the cached
  tokens of the slots, slot 0 the oldest) and ``search`` (1, 3, s, s) float32; the sparse family adds
  ``template_keep`` (1, T, P) bool (True = token kept; the graph drops the pruned tokens from the sequence). Outputs
  ``logits`` (1, 4, V) float32 and, sparse family only, ``template_keep_newest`` (1, P) bool, the keep-mask of the
  newest template at the exported inference prune ratio.

:class:`OnnxBackend` refuses a template graph that does not belong to its frame graph (another export id, spec,
depth, ...). Only ``onnxruntime`` is needed here (not the ``onnx`` package): the metadata is read from the sessions.
"""
from __future__ import annotations

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

INSTALL_HINT = "install the ONNX extras: pip install -e '.[onnx]'"


class OnnxModelError(ValueError):
    """A file is missing, is not a readable ONNX model, was not written by :func:`export_onnx`, or the template
    graph does not belong to the frame graph."""


def import_onnxruntime() -> Any:
    """Import ``onnxruntime`` with an install hint instead of a bare ImportError (it is an optional extra)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"onnxruntime is not installed; {INSTALL_HINT}") from error
    return onnxruntime


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


def default_providers() -> list[str]:
    """ONNX Runtime execution providers used when none are given: the CPU one (always present, deterministic)."""
    return ["CPUExecutionProvider"]


class OnnxBackend:
    """A :class:`~lib.test.tracker.backends.NetworkBackend` running an exported graph pair with ONNX Runtime.

    ``encode_template`` normalises the crop (the same float32 operations as :meth:`TorchBackend.preprocess`, so
    both backends feed the network the same bits) and runs the template graph once: the tracker stores the
    (P, C) tokens it returns. ``run`` stacks the slots' cached tokens, normalises the search crop and runs the frame
    graph once, which drops the pruned tokens of the sparse family (as the PyTorch fast path does).

    Args:
        path: the frame graph ``.onnx`` written by :func:`lib.export.onnx_export.export_onnx`.
        providers: ONNX Runtime execution providers, in order of preference (default: the CPU one).
        intra_op_num_threads: threads per operator (0: ONNX Runtime's default, one per physical core).
        graph_optimization_level: an ``onnxruntime.GraphOptimizationLevel`` (default: all optimisations).
        session_options: a prepared ``onnxruntime.SessionOptions``; overrides the two previous arguments.
        template_path: the template graph (default: :func:`template_graph_path`, ``<name>.template.onnx``).
    Raises:
        OnnxModelError: a file is missing, unreadable, foreign, of an older metadata format, not the role it is
            passed as, or the two graphs come from different exports.
    """

    def __init__(self, path: Union[str, os.PathLike], providers: Optional[Sequence[Any]] = None,
                 intra_op_num_threads: int = 0, graph_optimization_level: Any = None, session_options: Any = None,
                 template_path: Optional[Union[str, os.PathLike]] = None) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        self.template_path = template_graph_path(self.path) if template_path is None else Path(template_path)
        if session_options is None:
            session_options = ort.SessionOptions()
            session_options.intra_op_num_threads = int(intra_op_num_threads)
            # ORT's worker threads otherwise spin after every run and starve the tracker's own work between calls
            # (crops, decoding, PyTorch ops), which doubled the end-to-end time at 2 threads.
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session_options.graph_optimization_level = (
                ort.GraphOptimizationLevel.ORT_ENABLE_ALL if graph_optimization_level is None
                else graph_optimization_level)
        providers = list(providers or default_providers())
        self.session, self.info = self._open(ort, self.path, FRAME_GRAPH, session_options, providers)
        self.template_session, self.template_info = self._open(ort, self.template_path, TEMPLATE_GRAPH,
                                                               session_options, providers)
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
        self._output_names = list(self.info.output_shapes())

    @staticmethod
    def _open(ort: Any, path: Path, role: str, session_options: Any, providers: list) -> tuple[Any, OnnxModelInfo]:
        """A session of ``path`` and its info, checked to be a ``role`` graph whose signature matches its metadata."""
        if not path.is_file():
            raise OnnxModelError(f"ONNX {role} graph {path} not found (export one with tracking/export_onnx.py, "
                                 f"which writes <name>.onnx and <name>{TEMPLATE_SUFFIX})")
        try:
            session = ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
        except Exception as error:  # noqa: BLE001 - ORT raises its own pybind error types; re-raised with the path
            raise OnnxModelError(f"cannot load {path} as an ONNX model: {error}") from error
        info = OnnxModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, str(path))
        if info.graph != role:
            hint = (f"pass the frame graph ({path.name.removesuffix(TEMPLATE_SUFFIX)}.onnx)" if role == FRAME_GRAPH
                    else "expected the template graph of the export")
            raise OnnxModelError(f"{path} is the {info.graph} graph of an export, not its {role} graph; {hint}")
        problems = []
        for kind, nodes, expected in (("input", session.get_inputs(), info.input_shapes()),
                                      ("output", session.get_outputs(), info.output_shapes())):
            found = {node.name: tuple(node.shape) for node in nodes}
            if found != expected:
                problems.append(f"{kind}s {found} (expected {expected})")
        if problems:
            raise OnnxModelError(f"{path}: the graph does not match its metadata: {'; '.join(problems)}")
        return session, info

    @property
    def tracker_params(self) -> TrackerParams:
        """The test-time crop sizes, factors and normalisation of the exported config."""
        return self.info.tracker_params

    @property
    def providers(self) -> list[str]:
        """The execution providers the frame session actually uses."""
        return list(self.session.get_providers())

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (3, H, W) float32, /255, ImageNet-normalised, in TorchBackend's operation order."""
        image = np.ascontiguousarray(crop).transpose(2, 0, 1).astype(np.float32)
        return (image / np.float32(255.0) - self.mean) / self.std

    def encode_template(self, crop: np.ndarray) -> np.ndarray:
        """What the tracker stores per template: its (P, C) float32 tokens from the template graph."""
        tokens = self.template_session.run([OUTPUT_TEMPLATE_TOKENS], {INPUT_TEMPLATE: self.preprocess(crop)[None]})
        return tokens[0][0]

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
        outputs = self.session.run(self._output_names, feeds)
        logits = torch.from_numpy(outputs[0])
        newest_keep = torch.from_numpy(outputs[1][0]) if self.info.template_scores else None
        return logits, newest_keep
