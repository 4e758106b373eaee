"""tracking/gpu_check.py: the plan on a machine with and without CUDA, per-part failure recording, the report."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracking"))

import gpu_check  # noqa: E402

from lib.test.gpu_check import BUDGETS_S, build_plan, run_part  # noqa: E402


def test_dry_run_on_a_cpu_plans_the_cpu_parts_and_says_why_the_others_skip(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path), "--dry_run"]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = {part["name"]: part for part in report["parts"]}
    assert report["dry_run"] and not report["environment"]["cuda"]
    for name in ("data", "profile-fartrack", "profile-fartrack_sparse", "train-fartrack"):
        assert parts[name]["status"] == "planned" and parts[name]["command"]
    for name in ("cuda-tests", "batch-1", "batch-8", "batch-32", "train-fartrack_sparse"):
        assert parts[name]["status"] == "skipped" and parts[name]["reason"]
    profile = parts["profile-fartrack"]["command"]
    assert profile[profile.index("--device") + 1] == "cpu" and "--depth" in profile
    train = parts["train-fartrack"]["command"]
    assert "torch.distributed.run" in train and "TRAIN.AMP" in train
    assert "| cuda-tests | skipped |" in (tmp_path / "summary.md").read_text() == capsys.readouterr().out.strip() + "\n"


def test_the_cuda_plan_covers_every_part_within_ten_minutes(tmp_path):
    plan = build_plan(tmp_path, cuda=True, python=sys.executable, has_batch=True)
    names = [name for name, *_ in plan.parts]
    assert names == ["data", "cuda-tests", "profile-fartrack", "profile-fartrack_sparse", "batch-1", "batch-8",
                     "batch-32", "train-fartrack", "train-fartrack_sparse"]
    assert all(command and not skip for _, _, command, skip in plan.parts)
    assert sum(BUDGETS_S[kind] for _, kind, _, _ in plan.parts) < 600
    profile = dict((name, command) for name, _, command, _ in plan.parts)["profile-fartrack"]
    assert {"fast", "bf16", "fp16", "cuda-graphs", "fp16-cuda-graphs", "15", "10", "6"} <= set(profile)
    without_batch = build_plan(tmp_path, cuda=True, python=sys.executable, has_batch=False)
    assert [skip for name, _, _, skip in without_batch.parts if name == "batch-8"] == \
        ["tracking/test.py has no --batch option yet"]


def test_a_failing_or_slow_part_is_recorded_not_raised(tmp_path):
    failed = run_part("bad", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 10, tmp_path)
    assert failed.status == "failed" and failed.returncode == 3 and "boom" in failed.reason
    slow = run_part("slow", [sys.executable, "-c", "import time; time.sleep(5)"], 0.5, tmp_path)
    assert slow.status == "timeout" and slow.seconds < 4
    assert run_part("good", [sys.executable, "-c", "pass"], 10, tmp_path).status == "passed"
