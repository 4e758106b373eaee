"""Run an exported FARTrack graph pair with OpenVINO: the same two ONNX files as ONNX Runtime, no conversion step.

    from lib.export.openvino_runtime import OpenVinoBackend
    from lib.test.tracker.fartrack import FARTrackTracker

    backend = OpenVinoBackend("fartrack_sparse_224_full.onnx", num_threads=2)   # + .template.onnx next to it
    tracker = FARTrackTracker(backend, backend.tracker_params)

OpenVINO reads the ``.onnx`` files directly (its ONNX front end) and keeps their ``metadata_props`` in the model's
``rt_info["framework"]``, so every check of :class:`~lib.export.graph_pair.GraphPairBackend` (format, roles,
signatures, pairing) runs on the same entries as for ONNX Runtime.

Choices, and why:

* **float32 by default** (``inference_precision="f32"``). On CPUs with AMX or avx512_bf16, OpenVINO's CPU plugin
  runs in bfloat16 unless told otherwise, which moves the boxes; f32 runs the exported arithmetic, so the boxes are
  the PyTorch ones and speed comparisons are like for like. ``"bf16"`` asks for the plugin's default there.
* **Latency hint** (``PERFORMANCE_HINT=LATENCY``): one request at a time, as a tracker calls it.
* ``openvino`` is optional (``pip install -e '.[openvino]'``); it is imported only when a backend is created.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from lib.export.graph_pair import (INPUT_SEARCH, INPUT_TEMPLATE, INPUT_TEMPLATE_KEEP, INPUT_TEMPLATE_TOKENS,
                                   OUTPUT_LOGITS, OUTPUT_TEMPLATE_KEEP, OUTPUT_TEMPLATE_TOKENS, GraphPairBackend)

INSTALL_HINT = "install the OpenVINO extra: pip install -e '.[openvino]'"
#: Inference precisions of the CPU plugin this backend accepts (``INFERENCE_PRECISION_HINT``).
INFERENCE_PRECISIONS = ("f32", "bf16", "f16")
#: The input and output names of the graph contract.
CONTRACT_NAMES = frozenset({INPUT_TEMPLATE, OUTPUT_TEMPLATE_TOKENS, INPUT_TEMPLATE_TOKENS, INPUT_SEARCH,
                            INPUT_TEMPLATE_KEEP, OUTPUT_LOGITS, OUTPUT_TEMPLATE_KEEP})


def import_openvino() -> Any:
    """Import ``openvino`` with an install hint instead of a bare ImportError (it is an optional extra)."""
    try:
        import openvino
    except ImportError as error:
        raise ImportError(f"openvino is not installed; {INSTALL_HINT}") from error
    return openvino


class OpenVinoBackend(GraphPairBackend):
    """A :class:`~lib.test.tracker.backends.NetworkBackend` running an exported graph pair with OpenVINO
    (behaviour and refused files: :class:`~lib.export.graph_pair.GraphPairBackend`).

    Args:
        path: the frame graph ``.onnx`` written by :func:`lib.export.onnx_export.export_onnx`.
        device: the OpenVINO device (default ``CPU``).
        num_threads: ``INFERENCE_NUM_THREADS`` (0: OpenVINO's default, one stream over the physical cores).
        inference_precision: one of :data:`INFERENCE_PRECISIONS` (default ``f32``, see the module docstring).
        config: more compile properties, which override the ones above.
        template_path: the template graph (default ``<name>.template.onnx``).
    Raises:
        ImportError: ``openvino`` is not installed (the message names the extra).
        ValueError: an unknown inference precision.
        OnnxModelError: a file is missing, unreadable, foreign, of an older metadata format, not the role it is
            passed as, or the two graphs come from different exports.
    """

    runtime = "OpenVINO"

    def __init__(self, path: Union[str, os.PathLike], device: str = "CPU", num_threads: int = 0,
                 inference_precision: str = "f32", config: Optional[Mapping[str, Any]] = None,
                 template_path: Optional[Union[str, os.PathLike]] = None) -> None:
        if inference_precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"unknown inference precision {inference_precision!r}; choose one of "
                             f"{INFERENCE_PRECISIONS}")
        self._ov = import_openvino()
        self.core = self._ov.Core()
        self.device = device
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": inference_precision,
                       **({"INFERENCE_NUM_THREADS": int(num_threads)} if num_threads else {}), **(config or {})}
        self.compiled, self.template_compiled = self._open_pair(path, template_path)
        self.request = self.compiled.create_infer_request()
        self.template_request = self.template_compiled.create_infer_request()
        self._output_names = list(self.info.output_shapes())

    def _load(self, path: Path) -> tuple[Any, Mapping[str, str]]:
        model = self.core.read_model(str(path))
        rt_info = model.get_rt_info()
        # The ONNX front end keeps metadata_props as rt_info["framework"][key]; a model without any has no entry.
        framework = rt_info["framework"] if "framework" in rt_info else {}
        props = {key: value.astype(str) for key, value in framework.items()}
        return self.core.compile_model(model, self.device, self.config), props

    def _signature(self, compiled: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        def shapes(ports: Sequence[Any]) -> dict[str, Any]:
            found = {}
            for port in ports:
                # A port can carry several tensor names (a graph output also keeps its producer's); the contract's
                # name is the one that counts when present.
                names = port.get_names()
                name = next((n for n in names if n in CONTRACT_NAMES), port.get_any_name())
                shape = port.get_partial_shape()
                found[name] = tuple(shape.to_shape()) if shape.is_static else str(shape)
            return found

        return shapes(compiled.inputs), shapes(compiled.outputs)

    def _run_template(self, image: np.ndarray) -> np.ndarray:
        return self.template_request.infer({INPUT_TEMPLATE: image})[OUTPUT_TEMPLATE_TOKENS]

    def _run_frame(self, feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]:
        # infer() copies the outputs out of the request's buffers (share_outputs=False): the template tokens the
        # tracker keeps must not change at the next call.
        results = self.request.infer(feeds)
        return [results[name] for name in self._output_names]

    def describe(self) -> dict:
        """The runtime, its version and the compiled model's settings (for profiles and logs)."""
        properties = {}
        for name in ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT"):
            value = self.compiled.get_property(name)
            # the precision comes back as an openvino Type ("f32"), the others as plain values
            properties[name] = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
        return {"runtime": "openvino", "version": self._ov.__version__, "device": self.device, **properties}
