"""Deployment exports of the FARTrack network.

* :func:`export_onnx` (``lib.export.onnx_export``): the network as two static-shape ONNX graphs with
  self-describing metadata, a template graph (template crop -> template tokens, run once per stored template) and
  a frame graph (cached template tokens + search crop -> logits) (``tracking/export_onnx.py`` is the command-line
  front end); the contract and the checks of such a pair are in ``lib.export.graph_pair``;
* :class:`OnnxBackend` (``lib.export.onnx_runtime``) and :class:`OpenVinoBackend` (``lib.export.openvino_runtime``):
  run such a pair with ONNX Runtime or OpenVINO behind the tracker's ``NetworkBackend`` interface, so
  ``FARTrackTracker(OnnxBackend(path), ...)`` tracks without PyTorch weights;
* :func:`quantize_int8` (``lib.export.quantize``): the frame graph with int8 weights and dynamically quantised
  activations (ONNX Runtime's ``quantize_dynamic``), run by :class:`OnnxBackend`.

``onnx``, ``onnxscript`` and ``onnxruntime`` are optional (``pip install -e '.[onnx]'``), and so is ``openvino``
(``'.[openvino]'``); they are imported only when an export, a quantisation or a backend is created.
"""
from lib.export.graph_pair import GraphPairBackend, OnnxModelError, OnnxModelInfo, template_graph_path
from lib.export.onnx_export import OPSET, ExportReport, OnnxExportError, export_onnx
from lib.export.onnx_runtime import OnnxBackend
from lib.export.openvino_runtime import OpenVinoBackend
from lib.export.quantize import quantize_int8

__all__ = ["OPSET", "ExportReport", "GraphPairBackend", "OnnxBackend", "OnnxExportError", "OnnxModelError",
           "OnnxModelInfo", "OpenVinoBackend", "export_onnx", "quantize_int8", "template_graph_path"]
