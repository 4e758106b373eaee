"""ONNX export and the ONNX Runtime tracker: logits and box parity with PyTorch, metadata, errors, the CLI."""
from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX extras not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnxscript", reason="ONNX extras not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnxruntime", reason="ONNX extras not installed (pip install -e '.[onnx]')")

import onnx  # noqa: E402

from lib.api import load_network  # noqa: E402
from lib.config.loader import load_config  # noqa: E402
from lib.families import OFFICIAL_CONFIGS, get_family
from lib.export import OPSET, OnnxBackend, OnnxModelError, OnnxModelInfo, export_onnx  # noqa: E402
from lib.export.onnx_runtime import METADATA_PREFIX  # noqa: E402
from lib.models.fartrack.sparsify import training_keep_mask  # noqa: E402
from lib.test.evaluation.running import read_rgb, track_sequence  # noqa: E402
from lib.test.tracker.backends import InferenceOptions, TorchBackend  # noqa: E402
from lib.test.tracker.fartrack import FARTrackTracker, TrackerParams  # noqa: E402
from lib.utils.crop import sample_target  # noqa: E402
from test_tracker import REAL, real_sequence  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Pico depth keeps the exports and the faithful PyTorch tracking fast enough for a 2-core CPU (the full-depth
#: sparse Tiny tracker triples the cost of its parity test); depth only repeats the same block in the graph.
DEPTHS = {"fartrack": 6, "fartrack_distill": 6, "fartrack_sparse": 6}
NUM_FRAMES = 20
SEQUENCE = "otb_Crossing"


class Exported:
    """A seeded random network, its pristine copy (before any forward), its tracker parameters and its export."""

    def __init__(self, family: str, folder: Path) -> None:
        torch.manual_seed(0)
        cfg = load_config(family, OFFICIAL_CONFIGS[family])
        self.net = load_network(family, OFFICIAL_CONFIGS[family], depth=DEPTHS[family])
        self.pristine = copy.deepcopy(self.net)
        self.params = get_family(family).tracker_params(cfg)  # with the family's decode and template schedule
        self.report = export_onnx(self.net, folder / f"{family}.onnx", self.params)
        self.path = self.report.path
        self.export_left_net_untouched = all(
            torch.equal(a, b) for a, b in zip(self.pristine.state_dict().values(), self.net.state_dict().values()))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Export each family once per module, on first use."""
    cache: dict[str, Exported] = {}
    folder = tmp_path_factory.mktemp("onnx")

    def get(family: str) -> Exported:
        if family not in cache:
            cache[family] = Exported(family, folder)
        return cache[family]

    return get


def real_crops(spec, params: TrackerParams):
    """Template crops of frames 0..T-1 around their ground truth, and the next frame's search crop."""
    seq = real_sequence(SEQUENCE, spec.num_templates + 1)
    images = [read_rgb(frame) for frame in seq.frames]
    templates = [sample_target(images[i], seq.ground_truth_rect[i], params.template_factor, params.template_size)[0]
                 for i in range(spec.num_templates)]
    search, _ = sample_target(images[-1], seq.ground_truth_rect[-2], params.search_factor, params.search_size)
    return templates, search


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("family", list(DEPTHS))
def test_logits_match_pytorch_on_real_crops(exported, family):
    case = exported(family)
    assert case.report.max_logit_diff <= 1e-4  # the export's own check on random inputs
    # The export works on a copy: the caller's network is untouched (sparse: its command rows are not renormed).
    assert case.export_left_net_untouched
    net = copy.deepcopy(case.pristine)  # never run: for the sparse family its first forward applies the renorm
    torch_backend = TorchBackend(net, InferenceOptions.faithful(), mean=case.params.mean, std=case.params.std)
    onnx_backend = OnnxBackend(case.path, intra_op_num_threads=2)
    template_crops, search = real_crops(net.spec, case.params)
    keep = None
    if family == "fartrack_sparse":
        generator = torch.Generator().manual_seed(1)
        scores = torch.rand(1, net.spec.num_templates, net.spec.tokens_per_template, generator=generator)
        keep = training_keep_mask(scores, net.test_prune_ratio)  # prune slots 0..T-2, as a tracker does
    for crop in template_crops:
        # Both backends feed the network bit-identical normalised images.
        assert np.array_equal(onnx_backend.encode_template(crop), torch_backend.encode_template(crop).numpy())
    torch_templates = [torch_backend.encode_template(c) for c in template_crops]
    torch_logits, torch_keep = torch_backend.run(torch_templates, search, keep)
    onnx_logits, onnx_keep = onnx_backend.run([onnx_backend.encode_template(c) for c in template_crops], search, keep)
    assert onnx_logits.shape == torch_logits.shape == (1, 4, onnx_backend.info.vocab_size)
    torch.testing.assert_close(onnx_logits, torch_logits, atol=1e-4, rtol=0)
    if family == "fartrack_sparse":
        assert torch.equal(onnx_keep, torch_keep)
        # The quirk matters: without the in-place renorm of the command rows the logits would be far off.
        raw = copy.deepcopy(case.pristine)
        raw.backbone.word_embeddings.max_norm = None
        unnormed = TorchBackend(raw, InferenceOptions.faithful()).run(torch_templates, search, keep)[0]
        assert (unnormed - onnx_logits).abs().max() > 1e-2
    else:
        assert onnx_keep is None and torch_keep is None


@pytest.mark.parametrize("family", list(DEPTHS))
def test_onnx_tracker_boxes_match_pytorch_on_a_real_sequence(exported, family):
    case = exported(family)
    seq = real_sequence(SEQUENCE, NUM_FRAMES)
    torch_tracker = FARTrackTracker(case.net, case.params, InferenceOptions.faithful())
    torch_boxes = np.asarray(track_sequence(torch_tracker, seq)[0])
    backend = OnnxBackend(case.path, intra_op_num_threads=2)
    onnx_tracker = FARTrackTracker(backend, backend.tracker_params)
    onnx_boxes = np.asarray(track_sequence(onnx_tracker, seq)[0])
    # Random weights could predict one box whatever the input, which would make the comparison vacuous: with
    # seed 0 the boxes follow the image content (checked here), so equal boxes mean equal networks.
    assert len({tuple(np.round(box, 2)) for box in torch_boxes}) >= NUM_FRAMES // 2
    assert np.abs(onnx_boxes - torch_boxes).max() <= 1.0
    if family == "fartrack_sparse":
        assert torch_tracker.template_masks.keys() == onnx_tracker.template_masks.keys()
        for index, mask in torch_tracker.template_masks.items():
            assert torch.equal(mask, onnx_tracker.template_masks[index])


# ------------------------------------------------------------------ the file
def test_metadata_round_trip_and_graph_signature(exported):
    case = exported("fartrack_sparse")
    model = onnx.load(str(case.path))
    assert [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")] == [OPSET]
    props = {entry.key: entry.value for entry in model.metadata_props}
    info = OnnxModelInfo.from_metadata(props)
    assert info == case.report.info
    assert info.spec == case.net.spec and info.depth == DEPTHS["fartrack_sparse"] and info.family == "fartrack_sparse"
    assert info.tracker_params == case.params and info.opset == OPSET
    assert props[METADATA_PREFIX + "tokens_per_template"] == str(case.net.spec.tokens_per_template)
    backend = OnnxBackend(case.path)
    assert backend.info == info and backend.providers == ["CPUExecutionProvider"]
    spec = case.net.spec
    inputs = {node.name: (tuple(node.shape), node.type) for node in backend.session.get_inputs()}
    assert inputs == {
        "templates": ((1, spec.num_templates, 3, spec.template_size, spec.template_size), "tensor(float)"),
        "search": ((1, 3, spec.search_size, spec.search_size), "tensor(float)"),
        "template_keep": ((1, spec.num_templates, spec.tokens_per_template), "tensor(bool)"),
    }
    outputs = {node.name: (tuple(node.shape), node.type) for node in backend.session.get_outputs()}
    assert outputs == {"logits": ((1, 4, info.vocab_size), "tensor(float)"),
                       "template_keep_newest": ((1, spec.tokens_per_template), "tensor(bool)")}
    dense = OnnxBackend(exported("fartrack").path)
    assert [node.name for node in dense.session.get_inputs()] == ["templates", "search"]
    assert dense.info.depth == 6 and not dense.info.template_scores


def test_missing_corrupt_and_foreign_files_fail_clearly(exported, tmp_path):
    with pytest.raises(OnnxModelError, match="not found"):
        OnnxBackend(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(OnnxModelError, match="cannot load"):
        OnnxBackend(corrupt)
    # A valid ONNX model that this project did not write has no metadata to rebuild the tracker from.
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "foreign",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    # IR version 10 is what the exporter writes (newer onnx packages default to IRs older runtimes refuse).
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], ir_version=10)
    onnx.save(model, str(foreign))
    with pytest.raises(OnnxModelError, match="not written by"):
        OnnxBackend(foreign)
    # Metadata edited after the export no longer agrees with itself.
    model = onnx.load(str(exported("fartrack").path))
    for entry in model.metadata_props:
        if entry.key == METADATA_PREFIX + "bins":
            entry.value = "100"
    edited = tmp_path / "edited.onnx"
    onnx.save(model, str(edited))
    with pytest.raises(OnnxModelError, match="disagree"):
        OnnxBackend(edited)


# ------------------------------------------------------------------ the CLI
def load_cli():
    spec = importlib.util.spec_from_file_location("export_onnx_cli", ROOT / "tracking" / "export_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_exports_and_checks_a_sequence(tmp_path, capsys):
    cli = load_cli()
    output = tmp_path / "out" / "small.onnx"
    torch.manual_seed(0)
    status = cli.main(["--script", "fartrack_sparse", "--config", "fartrack_sparse_quickstart", "--depth", "2",
                       "--output", str(output), "--check", str(REAL / SEQUENCE), "--frames", "6", "--threads", "2"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert output.is_file() and f"opset {OPSET}" in captured.out
    assert "max box difference" in captured.out and "random initialisation" in captured.err
    info = OnnxBackend(output).info
    assert (info.family, info.depth, info.spec.search_size, info.tracker_params.template_size) == \
        ("fartrack_sparse", 2, 64, 32)


@pytest.mark.parametrize("args, message", [
    (["--config", "no_such_config"], "not found"),
    (["--config", "fartrack_quickstart", "--opts", "MODEL.NO_SUCH_KEY", "1"], "MODEL.NO_SUCH_KEY"),
    (["--config", "fartrack_quickstart", "--depth", "99"], "depth"),
    (["--config", "fartrack_quickstart", "--checkpoint", "absent.pth.tar"], "absent.pth.tar"),
    (["--config", "fartrack_quickstart", "--check", "."], "groundtruth.txt|frames"),
])
def test_cli_fails_clearly_on_bad_arguments(tmp_path, capsys, args, message):
    status = load_cli().main(["--script", "fartrack", *args, "--output", str(tmp_path / "x.onnx")])
    assert status == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "x.onnx").exists()
