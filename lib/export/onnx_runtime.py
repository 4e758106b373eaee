"""Run an exported FARTrack graph pair with ONNX Runtime: a :class:`NetworkBackend` that needs no PyTorch weights.

    from lib.export import OnnxBackend
    from lib.test.tracker.fartrack import FARTrackTracker

    backend = OnnxBackend("fartrack_sparse_224_full.onnx", intra_op_num_threads=2)  # + .template.onnx next to it
    tracker = FARTrackTracker(backend, backend.tracker_params)
    tracker.initialize(image, {"init_bbox": [x, y, w, h]})
    box = tracker.track(next_image)["target_bbox"]

The graph contract, the metadata and every check on the two files live in :mod:`lib.export.graph_pair`, shared with
the OpenVINO backend; this module adds ONNX Runtime sessions. Only ``onnxruntime`` is needed here (not the ``onnx``
package): the metadata is read from the sessions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from lib.export.graph_pair import (INPUT_TEMPLATE, METADATA_PREFIX, OUTPUT_TEMPLATE_TOKENS, QUANTIZATION_KEY,
                                   GraphPairBackend)

INSTALL_HINT = "install the ONNX extras: pip install -e '.[onnx]'"


def import_onnxruntime() -> Any:
    """Import ``onnxruntime`` with an install hint instead of a bare ImportError (it is an optional extra)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"onnxruntime is not installed; {INSTALL_HINT}") from error
    return onnxruntime


def default_providers() -> list[str]:
    """ONNX Runtime execution providers used when none are given: the CPU one (always present, deterministic)."""
    return ["CPUExecutionProvider"]


class OnnxBackend(GraphPairBackend):
    """A :class:`~lib.test.tracker.backends.NetworkBackend` running an exported graph pair with ONNX Runtime
    (behaviour: :class:`~lib.export.graph_pair.GraphPairBackend`).

    Args:
        path: the frame graph ``.onnx`` written by :func:`lib.export.onnx_export.export_onnx` (or its int8 version,
            :func:`lib.export.quantize.quantize_int8`).
        providers: ONNX Runtime execution providers, in order of preference (default: the CPU one).
        intra_op_num_threads: threads per operator (0: ONNX Runtime's default, one per physical core).
        graph_optimization_level: an ``onnxruntime.GraphOptimizationLevel`` (default: all optimisations).
        session_options: a prepared ``onnxruntime.SessionOptions``; overrides the two previous arguments.
        template_path: the template graph (default: :func:`template_graph_path`, ``<name>.template.onnx``).
    Raises:
        OnnxModelError: a file is missing, unreadable, foreign, of an older metadata format, not the role it is
            passed as, or the two graphs come from different exports.
    """

    runtime = "ONNX Runtime"

    def __init__(self, path: Union[str, os.PathLike], providers: Optional[Sequence[Any]] = None,
                 intra_op_num_threads: int = 0, graph_optimization_level: Any = None, session_options: Any = None,
                 template_path: Optional[Union[str, os.PathLike]] = None) -> None:
        self._ort = import_onnxruntime()
        if session_options is None:
            session_options = self._ort.SessionOptions()
            session_options.intra_op_num_threads = int(intra_op_num_threads)
            # ORT's worker threads otherwise spin after every run and starve the tracker's own work between calls
            # (crops, decoding, PyTorch ops), which doubled the end-to-end time at 2 threads.
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session_options.graph_optimization_level = (
                self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL if graph_optimization_level is None
                else graph_optimization_level)
        self._session_options = session_options
        self._providers = list(providers or default_providers())
        self.session, self.template_session = self._open_pair(path, template_path)
        self._output_names = list(self.info.output_shapes())

    def _load(self, path: Path) -> tuple[Any, Mapping[str, str]]:
        session = self._ort.InferenceSession(str(path), sess_options=self._session_options,
                                             providers=self._providers)
        return session, session.get_modelmeta().custom_metadata_map

    def _signature(self, session: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return ({node.name: tuple(node.shape) for node in session.get_inputs()},
                {node.name: tuple(node.shape) for node in session.get_outputs()})

    def _run_template(self, image: np.ndarray) -> np.ndarray:
        return self.template_session.run([OUTPUT_TEMPLATE_TOKENS], {INPUT_TEMPLATE: image})[0]

    def _run_frame(self, feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]:
        return self.session.run(self._output_names, feeds)

    @property
    def providers(self) -> list[str]:
        """The execution providers the frame session actually uses."""
        return list(self.session.get_providers())

    @property
    def quantization(self) -> Optional[str]:
        """How the frame graph was quantised (its ``fartrack.quantization`` entry), None for a float32 export."""
        return self.session.get_modelmeta().custom_metadata_map.get(METADATA_PREFIX + QUANTIZATION_KEY)

    def describe(self) -> dict:
        """The runtime, its version and the session settings (for profiles and logs)."""
        return {"runtime": "onnxruntime", "version": self._ort.__version__, "providers": self.providers,
                "intra_op_num_threads": self._session_options.intra_op_num_threads,
                "quantization": self.quantization}
