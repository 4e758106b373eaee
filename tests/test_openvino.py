"""The OpenVINO backend on the ONNX export: boxes equal to ONNX Runtime's and PyTorch's fast path on a real sequence
(dense and sparse families), the shared file checks, the install hint; and the int8 frame graph of ONNX Runtime."""
from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX extras not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnxscript", reason="ONNX extras not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnxruntime", reason="ONNX extras not installed (pip install -e '.[onnx]')")
pytest.importorskip("openvino", reason="OpenVINO not installed (pip install -e '.[openvino]')")

from lib.api import load_network  # noqa: E402
from lib.config.loader import load_config  # noqa: E402
from lib.export import OnnxBackend, OnnxModelError, OpenVinoBackend, export_onnx, quantize_int8  # noqa: E402
from lib.export.graph_pair import METADATA_PREFIX, QUANTIZATION_KEY  # noqa: E402
from lib.families import OFFICIAL_CONFIGS, get_family  # noqa: E402
from lib.test.evaluation.running import track_sequence  # noqa: E402
from lib.test.tracker.backends import InferenceOptions  # noqa: E402
from lib.test.tracker.fartrack import FARTrackTracker  # noqa: E402
from test_tracker import real_sequence  # noqa: E402

#: Two layers: the runtimes run the same block repeatedly, so depth adds time, not coverage.
DEPTH = 2
NUM_FRAMES = 12
SEQUENCE = "otb_Crossing"
#: OpenVINO and ONNX Runtime sum the same float32 products in other orders: boxes agree to far below a pixel.
BOX_ATOL_PX = 0.05


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One seeded random network per family and its export, made on first use."""
    folder, cache = tmp_path_factory.mktemp("openvino"), {}

    def get(family: str):
        if family not in cache:
            torch.manual_seed(0)
            cfg = load_config(family, OFFICIAL_CONFIGS[family])
            net = load_network(family, OFFICIAL_CONFIGS[family], depth=DEPTH)
            params = get_family(family).tracker_params(cfg)
            cache[family] = (net, params, export_onnx(net, folder / f"{family}.onnx", params).path)
        return cache[family]

    return get


def boxes_of(tracker: FARTrackTracker) -> np.ndarray:
    return np.asarray(track_sequence(tracker, real_sequence(SEQUENCE, NUM_FRAMES))[0])


@pytest.mark.parametrize("family", ["fartrack", "fartrack_sparse"])
def test_openvino_boxes_equal_onnx_runtime_and_the_torch_fast_path(exports, family):
    net, params, path = exports(family)
    backend = OpenVinoBackend(path, num_threads=1)
    assert (backend.family, backend.info.depth, backend.prunes_templates) == (family, DEPTH, family != "fartrack")
    assert backend.describe()["INFERENCE_PRECISION_HINT"] == "f32"  # not the bf16 default of AMX CPUs
    openvino = FARTrackTracker(backend, backend.tracker_params)
    ort_backend = OnnxBackend(path, intra_op_num_threads=1)
    ort = FARTrackTracker(ort_backend, ort_backend.tracker_params)
    fast = FARTrackTracker(net, params, InferenceOptions(attention="sdpa", linear="torch"))
    ov_boxes, ort_boxes, fast_boxes = boxes_of(openvino), boxes_of(ort), boxes_of(fast)
    # seeded random weights whose boxes follow the image (else equal boxes would prove nothing)
    assert len({tuple(np.round(box, 2)) for box in fast_boxes}) >= NUM_FRAMES // 2
    assert np.abs(ov_boxes - ort_boxes).max() <= BOX_ATOL_PX
    assert np.abs(ov_boxes - fast_boxes).max() <= BOX_ATOL_PX
    if family == "fartrack_sparse":  # the same tokens pruned
        assert openvino.template_masks.keys() == fast.template_masks.keys()
        for index, mask in fast.template_masks.items():
            assert torch.equal(mask, openvino.template_masks[index])


def test_openvino_refuses_what_onnx_runtime_refuses(exports, tmp_path):
    _, _, dense = exports("fartrack")
    _, _, sparse = exports("fartrack_sparse")
    with pytest.raises(OnnxModelError, match="frame graph .*absent.onnx not found"):
        OpenVinoBackend(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a protobuf" * 10)
    with pytest.raises(OnnxModelError, match="cannot load .*with OpenVINO"):
        OpenVinoBackend(corrupt)
    with pytest.raises(OnnxModelError, match="is the template graph"):
        OpenVinoBackend(dense.with_suffix(".template.onnx"))
    with pytest.raises(OnnxModelError, match="does not match the frame graph.*export id"):
        OpenVinoBackend(dense, template_path=sparse.with_suffix(".template.onnx"))
    with pytest.raises(ValueError, match="inference precision"):
        OpenVinoBackend(dense, inference_precision="int4")


def test_missing_openvino_names_the_extra(exports, monkeypatch):
    _, _, dense = exports("fartrack")
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[openvino\]'"):
        OpenVinoBackend(dense)


def test_int8_frame_graph_pairs_and_stays_close(exports, tmp_path):
    _, _, sparse = exports("fartrack_sparse")
    int8 = quantize_int8(sparse, tmp_path / "q" / "sparse.int8.onnx")
    assert int8.is_file() and (tmp_path / "q" / "sparse.int8.template.onnx").is_file()
    backend = OnnxBackend(int8, intra_op_num_threads=1)  # the copied template graph pairs with it
    assert "int8 dynamic" in backend.quantization and OnnxBackend(sparse).quantization is None
    import onnx

    model = onnx.load(str(int8))
    ops = {node.op_type for node in model.graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert METADATA_PREFIX + QUANTIZATION_KEY in {entry.key for entry in model.metadata_props}
    fp32 = boxes_of(FARTrackTracker(OnnxBackend(sparse, intra_op_num_threads=1), backend.tracker_params))
    quantised = boxes_of(FARTrackTracker(backend, backend.tracker_params))
    assert not np.array_equal(fp32, quantised) and np.abs(fp32 - quantised).max() < 10.0
    with pytest.raises(FileNotFoundError, match="template graph"):
        quantize_int8(Path(tmp_path / "nothing.onnx"))
