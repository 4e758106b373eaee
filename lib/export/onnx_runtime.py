"""Run an exported FARTrack graph with ONNX Runtime: a :class:`NetworkBackend` that needs no PyTorch weights.

    from lib.export import OnnxBackend
    from lib.test.tracker.fartrack import FARTrackTracker

    backend = OnnxBackend("fartrack_sparse_224_full.onnx", intra_op_num_threads=2)
    tracker = FARTrackTracker(backend, backend.tracker_params)
    tracker.initialize(image, {"init_bbox": [x, y, w, h]})
    box = tracker.track(next_image)["target_bbox"]

The ``.onnx`` file is self-describing: :func:`lib.export.onnx_export.export_onnx` writes the family, the backbone
sizes, the depth, the normalisation and the tracker's test parameters into the model's ``metadata_props``
(:class:`OnnxModelInfo`), and this module rebuilds everything from them. The graph contract is:

* inputs ``templates`` (1, T, 3, t, t) float32 and ``search`` (1, 3, s, s) float32, ImageNet-normalised RGB, slot 0
  the oldest template; the sparse family adds ``template_keep`` (1, T, P) bool (True = token kept);
* outputs ``logits`` (1, 4, V) float32 and, sparse family only, ``template_keep_newest`` (1, P) bool, the keep-mask
  of the newest template at the exported inference prune ratio.

Only ``onnxruntime`` is needed here (not the ``onnx`` package): the metadata is read from the session.
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
#: family deciding the graph; the tracker's decode and template schedule in ``tracker_params``).
METADATA_FORMAT = 2
#: Prefix of every metadata key this project writes (other tools may add their own keys).
METADATA_PREFIX = "fartrack."

INPUT_TEMPLATES = "templates"
INPUT_SEARCH = "search"
INPUT_TEMPLATE_KEEP = "template_keep"
OUTPUT_LOGITS = "logits"
OUTPUT_TEMPLATE_KEEP = "template_keep_newest"

INSTALL_HINT = "install the ONNX extras: pip install -e '.[onnx]'"


class OnnxModelError(ValueError):
    """The file is missing, is not a readable ONNX model, or was not written by :func:`export_onnx`."""


def import_onnxruntime() -> Any:
    """Import ``onnxruntime`` with an install hint instead of a bare ImportError (it is an optional extra)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"onnxruntime is not installed; {INSTALL_HINT}") from error
    return onnxruntime


@dataclass(frozen=True)
class OnnxModelInfo:
    """Everything needed to run an exported graph, stored as string ``metadata_props`` in the ``.onnx`` file."""

    family: str
    spec: BackboneSpec
    #: The network option :attr:`FARTrackNetwork.template_scores`: the graph takes the slots' keep-mask and returns
    #: the newest template's.
    template_scores: bool
    depth: int
    opset: int
    attention: str
    test_prune_ratio: float
    tracker_params: TrackerParams


    @property
    def vocab_size(self) -> int:
        return vocab_size(self.spec.bins, self.spec.value_range)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Static shapes of the graph inputs, derived from the spec."""
        spec = self.spec
        shapes = {
            INPUT_TEMPLATES: (1, spec.num_templates, 3, spec.template_size, spec.template_size),
            INPUT_SEARCH: (1, 3, spec.search_size, spec.search_size),
        }
        if self.template_scores:
            shapes[INPUT_TEMPLATE_KEEP] = (1, spec.num_templates, spec.tokens_per_template)
        return shapes

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Static shapes of the graph outputs, derived from the spec."""
        shapes = {OUTPUT_LOGITS: (1, self.spec.num_command_tokens, self.vocab_size)}
        if self.template_scores:
            shapes[OUTPUT_TEMPLATE_KEEP] = (1, self.spec.tokens_per_template)
        return shapes

    def to_metadata(self) -> dict[str, str]:
        """The metadata entries (all strings, as ONNX requires).

        The JSON entries ``backbone_spec`` and ``tracker_params`` are what :meth:`from_metadata` rebuilds from. The
        flat size entries repeat them for tools that only show key/value pairs (Netron, ``onnx`` scripts); the
        reader checks that they agree, so an edited file cannot silently disagree with itself.
        """
        spec, params = self.spec, self.tracker_params
        entries: dict[str, Any] = {
            "format": METADATA_FORMAT,
            "family": self.family,
            "template_scores": int(self.template_scores),
            "depth": self.depth,
            "opset": self.opset,
            "attention": self.attention,
            "test_prune_ratio": self.test_prune_ratio,
            "backbone_spec": json.dumps(dataclasses.asdict(spec), sort_keys=True),
            "tracker_params": json.dumps(dataclasses.asdict(params), sort_keys=True),
            **self._flat_entries(),
        }
        return {METADATA_PREFIX + key: str(value) for key, value in entries.items()}

    def _flat_entries(self) -> dict[str, str]:
        spec, params = self.spec, self.tracker_params
        return {
            "bins": str(spec.bins),
            "value_range": str(spec.value_range),
            "vocab_size": str(self.vocab_size),
            "num_templates": str(spec.num_templates),
            "tokens_per_template": str(spec.tokens_per_template),
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
        required = ("format", "family", "template_scores", "depth", "opset", "attention", "test_prune_ratio", "backbone_spec",
                    "tracker_params")
        missing = [key for key in required if key not in ours]
        if missing:
            raise OnnxModelError(f"{source}: missing metadata {', '.join(METADATA_PREFIX + k for k in missing)}")
        if ours["format"] != str(METADATA_FORMAT):
            raise OnnxModelError(f"{source}: metadata format {ours['format']!r} is not supported "
                                 f"(this code reads format {METADATA_FORMAT}); re-export the model")
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
            )
        except (ValueError, TypeError, KeyError) as error:
            raise OnnxModelError(f"{source}: unreadable metadata ({type(error).__name__}: {error})") from error
        disagree = [key for key, value in info._flat_entries().items() if key in ours and ours[key] != value]
        if disagree:
            raise OnnxModelError(f"{source}: metadata entries {', '.join(METADATA_PREFIX + k for k in disagree)} "
                                 "disagree with backbone_spec / tracker_params (the file was edited?)")
        return info


def default_providers() -> list[str]:
    """ONNX Runtime execution providers used when none are given: the CPU one (always present, deterministic)."""
    return ["CPUExecutionProvider"]


class OnnxBackend:
    """A :class:`~lib.test.tracker.backends.NetworkBackend` running an exported ``.onnx`` graph with ONNX Runtime.

    Per stored template it keeps the normalised float32 (3, t, t) image (``encode_template``), and per frame it
    stacks the slot images, normalises the search crop and runs one session call. The normalisation repeats
    :meth:`TorchBackend.preprocess` operation by operation in float32, so both backends feed the network the same
    bits.

    Args:
        path: the ``.onnx`` file written by :func:`lib.export.onnx_export.export_onnx`.
        providers: ONNX Runtime execution providers, in order of preference (default: the CPU one).
        intra_op_num_threads: threads per operator (0: ONNX Runtime's default, one per physical core).
        graph_optimization_level: an ``onnxruntime.GraphOptimizationLevel`` (default: all optimisations).
        session_options: a prepared ``onnxruntime.SessionOptions``; overrides the two previous arguments.
    """

    def __init__(self, path: Union[str, os.PathLike], providers: Optional[Sequence[Any]] = None,
                 intra_op_num_threads: int = 0, graph_optimization_level: Any = None,
                 session_options: Any = None) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"ONNX model {self.path} not found (export one with tracking/export_onnx.py)")
        if session_options is None:
            session_options = ort.SessionOptions()
            session_options.intra_op_num_threads = int(intra_op_num_threads)
            # ORT's worker threads otherwise spin after every run and starve the tracker's own work between calls
            # (crops, decoding, PyTorch ops), which doubled the end-to-end time at 2 threads.
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session_options.graph_optimization_level = (
                ort.GraphOptimizationLevel.ORT_ENABLE_ALL if graph_optimization_level is None
                else graph_optimization_level)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=session_options,
                                                providers=list(providers or default_providers()))
        except Exception as error:  # noqa: BLE001 - ORT raises its own pybind error types; re-raised with the path
            raise OnnxModelError(f"cannot load {self.path} as an ONNX model: {error}") from error
        self.info = OnnxModelInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        self._check_signature()
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

    @property
    def tracker_params(self) -> TrackerParams:
        """The test-time crop sizes, factors and normalisation of the exported config."""
        return self.info.tracker_params

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses."""
        return list(self.session.get_providers())

    def _check_signature(self) -> None:
        """The graph's inputs and outputs must be the ones the metadata describes (names and static shapes)."""
        problems = []
        for kind, nodes, expected in (("input", self.session.get_inputs(), self.info.input_shapes()),
                                      ("output", self.session.get_outputs(), self.info.output_shapes())):
            found = {node.name: tuple(node.shape) for node in nodes}
            if found != expected:
                problems.append(f"{kind}s {found} (expected {expected})")
        if problems:
            raise OnnxModelError(f"{self.path}: the graph does not match its metadata: {'; '.join(problems)}")

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (3, H, W) float32, /255, ImageNet-normalised, in TorchBackend's operation order."""
        image = np.ascontiguousarray(crop).transpose(2, 0, 1).astype(np.float32)
        return (image / np.float32(255.0) - self.mean) / self.std

    def encode_template(self, crop: np.ndarray) -> np.ndarray:
        """What the tracker stores per template: its normalised (3, t, t) image."""
        return self.preprocess(crop)

    def run(self, templates: Sequence[np.ndarray], search_crop: np.ndarray, template_keep: Optional[Tensor]
            ) -> tuple[Tensor, Optional[Tensor]]:
        """One network call: (1, 4, V) float32 logits and, sparse family, the newest template's (P,) keep-mask."""
        if len(templates) != self.spec.num_templates:
            raise ValueError(f"expected {self.spec.num_templates} templates, got {len(templates)}")
        feeds = {INPUT_TEMPLATES: np.stack(templates)[None], INPUT_SEARCH: self.preprocess(search_crop)[None]}
        if self._all_kept is not None:
            keep = self._all_kept if template_keep is None else template_keep.detach().cpu().numpy().astype(bool)
            feeds[INPUT_TEMPLATE_KEEP] = keep.reshape(self._all_kept.shape)
        elif template_keep is not None:
            raise ValueError(f"template_keep needs a graph with template scores ({self.family} has none)")
        outputs = self.session.run(self._output_names, feeds)
        logits = torch.from_numpy(outputs[0])
        newest_keep = torch.from_numpy(outputs[1][0]) if self.info.template_scores else None
        return logits, newest_keep
