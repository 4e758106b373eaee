"""ONNX export (template graph + frame graph) and the ONNX Runtime tracker: token, logit and box parity with
PyTorch, metadata, the pairing check, errors, the CLI."""
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
from lib.export import OPSET, OnnxBackend, OnnxModelError, OnnxModelInfo, export_onnx, template_graph_path  # noqa: E402
from lib.export.graph_pair import METADATA_PREFIX  # noqa: E402
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


class CountedSession:
    """An ONNX Runtime session that counts its runs."""

    def __init__(self, session) -> None:
        self.session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("family", list(DEPTHS))
def test_tokens_and_logits_match_pytorch_on_real_crops(exported, family):
    case = exported(family)
    # The export's own check on random inputs: template graph, then frame graph, vs the network's forward.
    assert case.report.max_token_diff <= 1e-4 and case.report.max_logit_diff <= 1e-4
    # The export works on a copy: the caller's network is untouched (sparse: its command rows are not renormed).
    assert case.export_left_net_untouched
    net = copy.deepcopy(case.pristine)  # never run: for the sparse family its first forward applies the renorm
    torch_backend = TorchBackend(net, InferenceOptions.faithful(), mean=case.params.mean, std=case.params.std)
    fast_backend = TorchBackend(copy.deepcopy(case.pristine), InferenceOptions(attention="sdpa", linear="torch"),
                                mean=case.params.mean, std=case.params.std)
    onnx_backend = OnnxBackend(case.path, intra_op_num_threads=2)
    template_crops, search = real_crops(net.spec, case.params)
    keep = None
    if family == "fartrack_sparse":
        generator = torch.Generator().manual_seed(1)
        scores = torch.rand(1, net.spec.num_templates, net.spec.tokens_per_template, generator=generator)
        keep = training_keep_mask(scores, net.test_prune_ratio)  # prune slots 0..T-2, as a tracker does
    onnx_templates = [onnx_backend.encode_template(c) for c in template_crops]
    for crop, tokens in zip(template_crops, onnx_templates):
        # Both backends normalise to bit-identical images; the template graph gives the fast path's cached tokens.
        assert np.array_equal(onnx_backend.preprocess(crop), torch_backend.preprocess(crop)[0].numpy())
        assert tokens.shape == (net.spec.tokens_per_template, net.spec.embed_dim) and tokens.dtype == np.float32
        torch.testing.assert_close(torch.from_numpy(tokens), fast_backend.encode_template(crop), atol=1e-5, rtol=0)
    torch_templates = [torch_backend.encode_template(c) for c in template_crops]
    torch_logits, torch_keep = torch_backend.run(torch_templates, search, keep)
    onnx_logits, onnx_keep = onnx_backend.run(onnx_templates, search, keep)
    assert onnx_logits.shape == torch_logits.shape == (1, 4, onnx_backend.info.vocab_size)
    torch.testing.assert_close(onnx_logits, torch_logits, atol=1e-4, rtol=0)
    if family == "fartrack_sparse":
        assert torch.equal(onnx_keep, torch_keep)
        # Every keep-mask the tracker feeds works: nothing pruned yet (first frames) gives the same logits too.
        all_kept = torch.ones_like(keep)
        torch.testing.assert_close(onnx_backend.run(onnx_templates, search, all_kept)[0],
                                   torch_backend.run(torch_templates, search, all_kept)[0], atol=1e-4, rtol=0)
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
    backend.session = CountedSession(backend.session)
    backend.template_session = CountedSession(backend.template_session)
    onnx_tracker = FARTrackTracker(backend, backend.tracker_params)
    onnx_boxes = np.asarray(track_sequence(onnx_tracker, seq)[0])
    # The cache is used: the template graph runs once per stored template (one per frame), the frame graph once
    # per tracked frame.
    assert backend.template_session.runs == NUM_FRAMES and backend.session.runs == NUM_FRAMES - 1
    # Random weights could predict one box whatever the input, which would make the comparison vacuous: with
    # seed 0 the boxes follow the image content (checked here), so equal boxes mean equal networks.
    assert len({tuple(np.round(box, 2)) for box in torch_boxes}) >= NUM_FRAMES // 2
    assert np.abs(onnx_boxes - torch_boxes).max() <= 1.0
    if family == "fartrack_sparse":
        assert torch_tracker.template_masks.keys() == onnx_tracker.template_masks.keys()
        for index, mask in torch_tracker.template_masks.items():
            assert torch.equal(mask, onnx_tracker.template_masks[index])


# ------------------------------------------------------------------ the files
def metadata(path: Path) -> dict[str, str]:
    return {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}


def save_with_metadata(source: Path, target: Path, **changes: str) -> Path:
    """A copy of the ONNX file ``source`` at ``target`` with some ``fartrack.*`` metadata values replaced."""
    model = onnx.load(str(source))
    for entry in model.metadata_props:
        key = entry.key[len(METADATA_PREFIX):]
        if key in changes:
            entry.value = changes[key]
    onnx.save(model, str(target))
    return target


def test_metadata_round_trip_and_graph_signatures(exported):
    case = exported("fartrack_sparse")
    assert case.report.template_path == template_graph_path(case.path)
    assert case.report.template_path == case.path.with_name("fartrack_sparse.template.onnx")
    spec = case.net.spec
    for path in (case.path, case.report.template_path):
        model = onnx.load(str(path))
        assert [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")] == [OPSET]
    props = metadata(case.path)
    info = OnnxModelInfo.from_metadata(props)
    assert info == case.report.info and info.graph == "frame" and len(info.export_id) == 16
    assert info.spec == spec and info.depth == DEPTHS["fartrack_sparse"] and info.family == "fartrack_sparse"
    assert info.tracker_params == case.params and info.opset == OPSET
    assert props[METADATA_PREFIX + "tokens_per_template"] == str(spec.tokens_per_template)
    # The template graph carries the same entries except its role.
    template_info = OnnxModelInfo.from_metadata(metadata(case.report.template_path))
    assert template_info == info.as_graph("template")
    backend = OnnxBackend(case.path)
    assert backend.info == info and backend.template_info == template_info
    assert backend.providers == ["CPUExecutionProvider"]
    P, C = spec.tokens_per_template, spec.embed_dim

    def signature(nodes):
        return {node.name: (tuple(node.shape), node.type) for node in nodes}

    assert signature(backend.template_session.get_inputs()) == {
        "template": ((1, 3, spec.template_size, spec.template_size), "tensor(float)")}
    assert signature(backend.template_session.get_outputs()) == {"template_tokens": ((1, P, C), "tensor(float)")}
    assert signature(backend.session.get_inputs()) == {
        "template_tokens": ((1, spec.num_templates, P, C), "tensor(float)"),
        "search": ((1, 3, spec.search_size, spec.search_size), "tensor(float)"),
        "template_keep": ((1, spec.num_templates, P), "tensor(bool)"),
    }
    assert signature(backend.session.get_outputs()) == {"logits": ((1, 4, info.vocab_size), "tensor(float)"),
                                                        "template_keep_newest": ((1, P), "tensor(bool)")}
    # The sparse frame graph drops pruned tokens (a gather of the kept ones), it does not mask them.
    ops = {node.op_type for node in onnx.load(str(case.path)).graph.node}
    assert {"NonZero", "GatherND"} <= ops
    dense = OnnxBackend(exported("fartrack").path)
    assert [node.name for node in dense.session.get_inputs()] == ["template_tokens", "search"]
    assert dense.info.depth == 6 and not dense.info.template_scores
    # The export id fingerprints weights and metadata: two exports of different networks differ.
    assert dense.info.export_id != info.export_id != exported("fartrack_distill").report.info.export_id


@pytest.mark.parametrize("family", ["fartrack", "fartrack_sparse"])
def test_onnx_runtime_fuses_the_reordered_gelu(exported, tmp_path, family):
    import onnxruntime

    case = exported(family)
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3  # its note that the optimised file is machine-specific
    onnxruntime.InferenceSession(str(case.path), options, providers=["CPUExecutionProvider"])
    ops = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    # One fused GELU kernel per layer instead of Div, Erf, Add, Mul, Mul: with the bias add (BiasGelu) or after a
    # Gemm that took the bias (the dense graphs, whose static shapes let MatMul + Add fuse first).
    assert ops.count("BiasGelu") + ops.count("Gelu") == DEPTHS[family] and "Erf" not in ops


def test_missing_corrupt_foreign_and_old_files_fail_clearly(exported, tmp_path):
    with pytest.raises(OnnxModelError, match="frame graph .*absent.onnx not found"):
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
    case = exported("fartrack")
    # A frame graph without its template graph next to it.
    alone = save_with_metadata(case.path, tmp_path / "alone.onnx")
    with pytest.raises(OnnxModelError, match="template graph .*alone.template.onnx not found"):
        OnnxBackend(alone)
    # Metadata edited after the export no longer agrees with itself.
    edited = save_with_metadata(case.path, tmp_path / "edited.onnx", bins="100")
    with pytest.raises(OnnxModelError, match="disagree"):
        OnnxBackend(edited, template_path=case.report.template_path)
    # A single-graph file of metadata format 2 (before the template graph existed) asks for a re-export.
    old = save_with_metadata(case.path, tmp_path / "old.onnx", format="2")
    with pytest.raises(OnnxModelError, match="format '2' is not supported.*re-export"):
        OnnxBackend(old, template_path=case.report.template_path)
    # The template graph given where the frame graph belongs.
    with pytest.raises(OnnxModelError, match="is the template graph .*pass the frame graph \\(fartrack.onnx\\)"):
        OnnxBackend(case.report.template_path)


def test_a_template_graph_of_another_export_is_refused(exported, tmp_path):
    dense, distill = exported("fartrack"), exported("fartrack_distill")
    # Another export with the same shapes: its tokens would feed the frame graph silently without the check.
    with pytest.raises(OnnxModelError, match="does not match the frame graph.*export id.*family") as error:
        OnnxBackend(dense.path, template_path=distill.report.template_path)
    assert "re-export both together" in str(error.value)
    # The same export id but another depth (an edited file): the message names what differs.
    other_depth = save_with_metadata(dense.report.template_path, tmp_path / "x.template.onnx", depth="7")
    with pytest.raises(OnnxModelError, match="does not match the frame graph.*depth 7 != 6"):
        OnnxBackend(dense.path, template_path=other_depth)
    # Roles swapped.
    with pytest.raises(OnnxModelError, match="is the frame graph of an export, not its template graph"):
        OnnxBackend(dense.path, template_path=dense.path)


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
    assert output.is_file() and (tmp_path / "out" / "small.template.onnx").is_file()
    assert f"opset {OPSET}" in captured.out and "template graph" in captured.out
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
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "x.template.onnx").exists()
