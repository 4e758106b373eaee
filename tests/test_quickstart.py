"""The quickstart's own pieces: configs, baseline results, FPS from time files, the summary and its table."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from lib.config.loader import load_config
from lib.families import get_family
from lib.quickstart import (BASELINE, COMPARISON_TRACKERS, EVAL_DATASET, STAGES, TRACKERS, _env, format_table,
                            summarise, tracker_fps, write_baseline)
from lib.synthetic import write_synthetic_data
from lib.test.analysis.report import evaluate
from lib.test.evaluation.datasets import get_dataset
from lib.test.evaluation.environment import env_settings


def test_quickstart_configs_chain_and_keep_the_architecture() -> None:
    previous = None
    for stage in STAGES:
        cfg = load_config(stage.script, stage.config)
        assert cfg.MODEL.DEPTH == 15 and cfg.MODEL.BINS == 300 and cfg.DATA.TEMPLATE.NUMBER == 5
        assert cfg.TEST.EPOCH == cfg.TRAIN.EPOCH  # the trackers test the last checkpoint
        if previous is not None:  # PRETRAIN_PTH names the previous stage's last checkpoint
            last = load_config(previous.script, previous.config).TRAIN.EPOCH
            name = f"{get_family(previous.script).net_class_name}_ep{last:04d}.pth.tar"
            assert cfg.MODEL.PRETRAIN_PTH == f"checkpoints/train/{previous.script}/{previous.config}/{name}"
        previous = stage
    keepall = load_config("fartrack_sparse", "fartrack_sparse_quickstart_keepall")
    assert keepall.MODEL.SPARSE.TEST_PRUNE_RATIO == 0.0
    assert load_config("fartrack_sparse", "fartrack_sparse_quickstart").MODEL.SPARSE.TEST_PRUNE_RATIO == 0.25
    assert len({t.spec for t in TRACKERS}) == len(TRACKERS)  # distinct results folders


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch) -> tuple[Path, Path, dict]:
    data_dir, output_dir = tmp_path / "data", tmp_path / "out"
    write_synthetic_data(data_dir, datasets=["got10k"], got10k_train=1, got10k_val=2, got10k_test=1,
                         got10k_frames=12, got10k_test_frames=5, progress=False)
    env = _env(data_dir, output_dir)
    for name in list(os.environ):
        if name.startswith("FARTRACK_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("FARTRACK_"):
            monkeypatch.setenv(name, value)
    return data_dir, output_dir, env


def test_baseline_keeps_the_initial_box(synthetic) -> None:
    data_dir, output_dir, env = synthetic
    write_baseline(env)
    sequences = get_dataset(EVAL_DATASET, env_settings())
    assert len(sequences) == 2
    for seq in sequences:
        boxes = np.loadtxt(output_dir / "test/tracking_results/baseline/initial_box/got10k" / f"{seq.name}.txt",
                           ndmin=2)  # GOT-10k results live in the official got10k/ sub-folder
        assert boxes.shape == (len(seq.frames), 4)
        assert (boxes == np.asarray(seq.init_bbox(), dtype=float).astype(int)).all()
    report = evaluate([BASELINE], EVAL_DATASET)
    overall = report["trackers"][BASELINE]["overall"]
    assert 0 < overall["AUC"] <= 100 and 0 <= overall["AO"] <= 100


def test_fps_and_summary_table(tmp_path: Path) -> None:
    results = tmp_path / "test/tracking_results"
    for tracker in TRACKERS:
        folder = results / tracker.script / tracker.results_label
        folder.mkdir(parents=True)
        np.savetxt(folder / "seq_time.txt", [5.0, 0.1, 0.1, 0.2])  # frame 0 (initialisation) is not counted
    assert tracker_fps(results / TRACKERS[0].script / TRACKERS[0].results_label) == pytest.approx(3 / 0.4)
    overall = {"AUC": 50.0, "AO": 40.0, "SR50": 45.0}
    report = {"trackers": {**{t.spec: {"overall": overall} for t in TRACKERS},
                           BASELINE: {"overall": {"AUC": 10.0, "AO": 9.0, "SR50": 8.0}}}}
    summary = summarise(report, tmp_path)
    assert [e["name"] for e in summary["trackers"]] == [t.name for t in TRACKERS]
    assert all(set(e) >= {"AUC", "AO", "SR50", "fps"} for e in summary["trackers"])
    assert summary["baseline"]["AUC"] == 10.0
    json.dumps(summary)
    table = format_table(summary)
    assert "Keep the initial box" in table and "Sparse, Tiny, 75 % templates" in table and "7.5" in table


def test_fastseqtrack_comparison_rows(tmp_path: Path) -> None:
    """--fastseqtrack: tau variants go to test.py's ``_tau<t>`` folders; exit shares appear in the table."""
    full, *with_exits = COMPARISON_TRACKERS
    assert full.results_label == "fastseqtrack_quickstart" and "--opts" not in full.test_command(tmp_path)
    for tracker in with_exits:
        command = tracker.test_command(tmp_path)
        assert command[command.index("--opts") + 1:] == ["MODEL.DECODER.TAU", str(tracker.tau)]
        assert tracker.results_label == f"fastseqtrack_quickstart_tau{tracker.tau:g}"
    assert len({t.spec for t in (*TRACKERS, *COMPARISON_TRACKERS)}) == len(TRACKERS) + len(COMPARISON_TRACKERS)
    overall = {"AUC": 50.0, "AO": 40.0, "SR50": 45.0}
    report = {"trackers": {full.spec: {"overall": overall, "exits": {"0": 1, "2": 3}},
                           BASELINE: {"overall": overall}}}
    summary = summarise(report, tmp_path, [full])
    assert summary["trackers"][0]["exits"] == {"0": 1, "2": 3}
    assert "0: 25 %, 2: 75 %" in format_table(summary)
