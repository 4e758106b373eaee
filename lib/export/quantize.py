"""int8 inference through a maintained API: ONNX Runtime's dynamic quantisation of an exported frame graph.

    from lib.export import OnnxBackend, export_onnx, quantize_int8

    report = export_onnx(net, "fartrack.onnx", tracker_params)
    int8_path = quantize_int8(report.path)              # fartrack.int8.onnx + fartrack.int8.template.onnx
    backend = OnnxBackend(int8_path, intra_op_num_threads=2)

What it does, and why:

* **Dynamic int8, like the PyTorch ``int8`` path.** ``onnxruntime.quantization.quantize_dynamic`` stores the
  weights of every matrix product with a constant right-hand side (the qkv, projection and MLP layers) in int8 and
  quantises their input activations on the fly, per call (``DynamicQuantizeLinear`` + ``MatMulInteger``). The
  attention products (both sides are activations), the LayerNorms, the softmax and the output head tied to the word
  embedding stay float32, as with ``torch.ao``'s ``quantize_dynamic`` of the ``nn.Linear`` layers, which is
  deprecated (torchao replaces it; torchao's eager int8 ran slower than float32 on our CPUs, see docs/speed.md).
* **The frame graph only.** The template graph (one patch-embedding convolution per stored template) is copied
  unchanged: it runs once per frame on a 112 px crop, and keeping it float32 keeps the template tokens exact.
* **Still a pair.** The quantised frame graph keeps every ``fartrack.*`` metadata entry, export id included, and
  gains ``fartrack.quantization``; the copied template graph therefore pairs with it in
  :class:`~lib.export.onnx_runtime.OnnxBackend`. OpenVINO can read the file but runs ``MatMulInteger`` slower than
  its own float32 (measured), so int8 is an ONNX Runtime path here.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Union

from lib.export.graph_pair import METADATA_PREFIX, QUANTIZATION_KEY, template_graph_path
from lib.export.onnx_runtime import INSTALL_HINT

logger = logging.getLogger(__name__)

#: File-name infix of a quantised pair: ``x.onnx`` -> ``x.int8.onnx`` (and ``x.int8.template.onnx``).
INT8_INFIX = ".int8"


def _import_quantization() -> Any:
    try:
        import onnx
        from onnxruntime import quantization
    except ImportError as error:
        raise ImportError(f"int8 quantisation needs onnx and onnxruntime; {INSTALL_HINT}") from error
    return onnx, quantization


def int8_path(frame_path: Union[str, os.PathLike]) -> Path:
    """Where :func:`quantize_int8` writes the int8 frame graph of ``frame_path``: ``x.onnx`` -> ``x.int8.onnx``."""
    path = Path(frame_path)
    return path.with_name(f"{path.stem}{INT8_INFIX}{path.suffix}")


def quantize_int8(frame_path: Union[str, os.PathLike], output: Optional[Union[str, os.PathLike]] = None,
                  per_channel: bool = True) -> Path:
    """Write the dynamically quantised int8 version of the exported pair at ``frame_path`` (see the module
    docstring) and return its frame graph's path (default :func:`int8_path`; the template graph is copied next to
    it as ``<name>.template.onnx``).

    Args:
        frame_path: a frame graph written by :func:`lib.export.onnx_export.export_onnx`, its template graph next
            to it.
        output: where to write the int8 frame graph.
        per_channel: one weight scale per output channel (default; on the quickstart checkpoints it lost less AUC
            than one scale per tensor, at the same speed: docs/speed.md) instead of per tensor.
    Raises:
        FileNotFoundError: either graph of the pair is missing.
        ImportError: the ONNX extras are not installed.
    """
    onnx, quantization = _import_quantization()
    source, source_template = Path(frame_path), template_graph_path(frame_path)
    for path in (source, source_template):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: quantize_int8 needs an export's frame graph and its template "
                                    "graph (tracking/export_onnx.py)")
    target = int8_path(source) if output is None else Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        quantization.quantize_dynamic(str(source), str(temporary), weight_type=quantization.QuantType.QInt8,
                                      per_channel=per_channel, op_types_to_quantize=["MatMul", "Gemm"])
        model = onnx.load(str(temporary))
        entry = model.metadata_props.add()
        entry.key = METADATA_PREFIX + QUANTIZATION_KEY
        entry.value = (f"int8 dynamic (onnxruntime.quantization.quantize_dynamic, QInt8 weights "
                       f"{'per channel' if per_channel else 'per tensor'}, MatMul/Gemm with constant weights)")
        onnx.save_model(model, str(temporary))
        shutil.copyfile(source_template, template_graph_path(target))
        os.replace(temporary, target)  # the frame graph last: it never sits next to a stale template graph
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("quantised %s -> %s (int8 dynamic, %s)", source, target, "per channel" if per_channel else "per tensor")
    return target


__all__ = ["INT8_INFIX", "int8_path", "quantize_int8"]
