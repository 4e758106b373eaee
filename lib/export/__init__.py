"""Deployment exports of the FARTrack network.

* :func:`export_onnx` (``lib.export.onnx_export``): the network as two static-shape ONNX graphs with
  self-describing metadata, a template graph (template crop -> template tokens, run once per stored template) and
  a frame graph (cached template tokens + search crop -> logits) (``tracking/export_onnx.py`` is the command-line
  front end);
* :class:`OnnxBackend` (``lib.export.onnx_runtime``): runs such a pair with ONNX Runtime behind the tracker's
  ``NetworkBackend`` interface, so ``FARTrackTracker(OnnxBackend(path), ...)`` tracks without PyTorch weights.

``onnx``, ``onnxscript`` and ``onnxruntime`` are optional (``pip install -e '.[onnx]'``); they are imported only
when an export or a session is created.
"""
from lib.export.onnx_export import OPSET, ExportReport, OnnxExportError, export_onnx
from lib.export.onnx_runtime import OnnxBackend, OnnxModelError, OnnxModelInfo, template_graph_path

__all__ = ["OPSET", "ExportReport", "OnnxBackend", "OnnxExportError", "OnnxModelError", "OnnxModelInfo",
           "export_onnx", "template_graph_path"]
