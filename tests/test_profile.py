"""tracking/profile_model.py: the JSON it writes and the numbers' internal consistency (not the speed itself)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracking"))

import profile_model  # noqa: E402

from lib.test.profiling import Latency, matmul_roofline, time_calls  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sequences" / "otb_Crossing"


def test_latency_statistics():
    latency = Latency([4.0, 1.0, 2.0, 3.0, 10.0])
    assert latency.median_ms == 3.0 and latency.fps == pytest.approx(1000 / 3)
    assert 4.0 < latency.p90_ms <= 10.0
    calls = []
    timed = time_calls(calls.append, torch.device("cpu"), calls=3, warmup=2)
    assert calls == [0, 1, 2, 3, 4] and len(timed.samples_ms) == 3
    rates = matmul_roofline(torch.device("cpu"), size=64, repeats=2)
    assert rates["best"] == max(rate for name, rate in rates.items() if name != "best") > 0


@pytest.mark.parametrize("script,config", [("fartrack_sparse", "fartrack_sparse_224_full"),
                                           ("fartrack_distill", "fartrack_distill_224_full")])
def test_profile_cli_writes_consistent_json(tmp_path, script, config, capsys):
    out = tmp_path / "profile.json"
    code = profile_model.main(["--script", script, "--config", config, "--depth", "2", "1", "--threads", "1",
                               "--paths", "faithful", "fast", "int8", "--frames_dir", str(REAL), "--frames", "4",
                               "--calls", "2", "--warmup", "1", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert {"cpu", "torch_threads", "torch", "device"} <= set(result["environment"])
    assert result["environment"]["torch_threads"] == 1 and result["roofline_gflops"] > 0
    rows = result["rows"]
    assert [(r["depth"], r["path"]) for r in rows] == [(d, p) for d in (2, 1) for p in ("faithful", "fast", "int8")]
    for row in rows:
        assert row["model_only"]["calls"] == 2 and row["end_to_end"]["median_ms"] > 0
        assert row["paper_params"] < row["state_dict_params"] and row["macs"] == rows[0 if row["depth"] == 2 else 3]["macs"]
        if row["path"] == "fast":  # the fast path keeps the faithful boxes
            assert row["boxes_vs_reference"]["max_corner_diff_px"] < 1e-3
    deeper, shallower = rows[0], rows[3]
    assert deeper["paper_params"] > shallower["paper_params"]
    macs = rows[0]["macs"]
    if script == "fartrack_sparse":
        full, pruned = macs.values()  # 100 % and the inference retention (37 of 49 in the older slots)
        assert pruned["tokens"] == full["tokens"] - 4 * 12 and pruned["total_macs"] < full["total_macs"]
    else:
        assert list(macs) == ["100%"]
    assert "| 2 | fast |" in capsys.readouterr().out


def test_profile_cli_fails_clearly_without_frames(tmp_path):
    assert profile_model.main(["--script", "fartrack", "--config", "fartrack_tiny_224_full",
                               "--frames_dir", str(tmp_path)]) == 2


def test_profile_cli_fastseqtrack(tmp_path):
    out = tmp_path / "profile.json"
    assert profile_model.main(["--script", "fastseqtrack", "--config", "fastseqtrack_quickstart", "--threads", "1",
                               "--frames_dir", str(REAL), "--frames", "4", "--calls", "2", "--warmup", "1",
                               "--opts", "MODEL.DECODER.TAU", "0.0", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["path"] == "default" and list(row["macs"]) == ["tau 0"] and row["macs"]["tau 0"]["total_macs"] > 0
    # fastseqtrack has no depth option and a single inference path
    for refused in (["--depth", "2"], ["--paths", "faithful", "fast"]):
        assert profile_model.main(["--script", "fastseqtrack", "--config", "fastseqtrack_quickstart", *refused,
                                   "--frames_dir", str(REAL)]) == 2


def test_profile_cli_peer_runtime_paths(tmp_path):
    pytest.importorskip("onnxruntime")
    runtimes = ["onnx", "onnx-int8"]
    try:
        import openvino  # noqa: F401
        runtimes.append("openvino")
    except ImportError:
        pass
    out = tmp_path / "profile.json"
    assert profile_model.main(["--script", "fartrack", "--config", "fartrack_tiny_224_full", "--depth", "1",
                               "--threads", "1", "--paths", "fast", *runtimes, "--frames_dir", str(REAL),
                               "--frames", "4", "--calls", "2", "--warmup", "1", "--json", str(out)]) == 0
    fast, *rows = json.loads(out.read_text())["rows"]
    assert [row["path"] for row in rows] == runtimes
    for row in rows:
        assert row["macs"] == fast["macs"] and row["options"]["runtime"] in ("onnxruntime", "openvino")
        if row["path"] != "onnx-int8":  # float32 runtimes keep the PyTorch boxes
            assert row["boxes_vs_reference"]["max_corner_diff_px"] < 1.0
    assert rows[1]["options"]["quantization"].startswith("int8 dynamic")


def test_profile_cli_names_the_extra_of_a_missing_runtime(tmp_path, monkeypatch, caplog):
    import lib.test.profiling as profiling

    def missing():
        raise ImportError("openvino is not installed; install the OpenVINO extra: pip install -e '.[openvino]'")

    monkeypatch.setitem(profiling.RUNTIME_IMPORTS, "openvino", missing)
    assert profile_model.main(["--script", "fartrack", "--config", "fartrack_tiny_224_full", "--depth", "1",
                               "--paths", "fast", "openvino", "--frames_dir", str(REAL), "--frames", "4"]) == 2
    assert "[openvino]" in caplog.text
