"""Deployment exports of the FARTrack network.

* :func:`export_onnx` (``lib.export.onnx_export``): the per-frame network as a static-shape ONNX graph with
  self-describing metadata (``tracking/export_onnx.py`` is the command-line front end);
* :class:`OnnxBackend` (``lib.export.onnx_runtime``): runs such a file with ONNX Runtime behind the tracker's
  ``NetworkBackend`` interface, so ``FARTrackTracker(OnnxBackend(path), ...)`` tracks without PyTorch weights.

``onnx``, ``onnxscript`` and ``onnxruntime`` are optional (``pip install -e '.[onnx]'``); they are imported only
when an export or a session is created.
"""
from lib.export.onnx_export import OPSET, ExportReport, OnnxExportError, export_onnx
from lib.export.onnx_runtime import OnnxBackend, OnnxModelError, OnnxModelInfo

__all__ = ["OPSET", "ExportReport", "OnnxBackend", "OnnxExportError", "OnnxModelError", "OnnxModelInfo",
           "export_onnx"]
