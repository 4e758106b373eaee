"""tracking/test.py end to end on fixture trees in the official layouts (GOT-10k, LaSOT, TrackingNet)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark_fixtures import write_got10k, write_lasot, write_trackingnet
from lib.api import load_network
from lib.utils.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def run_test_script(args, data_dir: Path, save_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FARTRACK_DATA_DIR": str(data_dir), "FARTRACK_SAVE_DIR": str(save_dir),
           "FARTRACK_TEST_LOCAL_FILE": str(save_dir / "no_local_file.py")}
    return subprocess.run([sys.executable, str(ROOT / "tracking" / "test.py"), *args, "--no_progress"],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    base = tmp_path_factory.mktemp("ws")
    data, save = base / "data", base / "output"
    write_got10k(data / "got10k", num_sequences=2, num_frames=5)
    write_lasot(data / "lasot", num_frames=5)
    write_trackingnet(data / "trackingnet", num_sequences=2, num_frames=5)
    torch.manual_seed(0)
    net = load_network("fartrack_sparse", "fartrack_sparse_224_full")
    folder = save / "checkpoints" / "train" / "fartrack_sparse" / "fartrack_sparse_224_full"
    save_checkpoint(folder / "FARTrackSparse_ep0015.pth.tar", net=net, epoch=15, net_type="FARTrackSparse",
                    actor_type="FARTrackSparseActor")
    return data, save


def results_dir(save: Path, label: str = "fartrack_sparse_224_full") -> Path:
    return save / "test" / "tracking_results" / "fartrack_sparse" / label


def test_got10k_val_with_default_checkpoint_and_workers(workspace):
    data, save = workspace
    run = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "got10k_val",
                           "--threads", "2", "--device", "cpu"], data, save)
    assert run.returncode == 0, run.stderr
    files = sorted((results_dir(save) / "got10k").glob("*.txt"))
    names = {p.name for p in files}
    assert len([n for n in names if not n.endswith("_time.txt")]) == 2
    for path in files:
        if not path.name.endswith("_time.txt"):
            rows = np.loadtxt(path, delimiter="\t")
            assert rows.shape == (5, 4) and np.array_equal(rows, np.trunc(rows))
    assert "FPS" in run.stderr
    again = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset_name", "got10k_val"],
                            data, save)
    assert again.returncode == 0 and "skipped 2" in again.stderr


def test_lasot_partial_tree_needs_allow_missing_and_depth_gets_its_own_folder(workspace):
    data, save = workspace
    refused = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "lasot"], data, save)
    assert refused.returncode == 2 and "missing" in refused.stderr
    run = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "lasot", "--allow_missing",
                           "--depth", "6", "--sequence", "bear-2"], data, save)
    assert run.returncode == 0, run.stderr
    assert (results_dir(save, "fartrack_sparse_224_full_depth6") / "bear-2.txt").is_file()
    assert not (results_dir(save, "fartrack_sparse_224_full_depth6") / "airplane-1.txt").exists()


def test_faithful_results_do_not_share_the_default_folder(workspace):
    """A faithful run after a default run tracks its sequences (it used to find the default's files and skip them)."""
    data, save = workspace
    args = ["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "got10k_val", "--sequence", "0"]
    assert run_test_script(args, data, save).returncode == 0
    faithful = run_test_script([*args, "--faithful"], data, save)
    assert faithful.returncode == 0 and "tracked 1 sequences, skipped 0" in faithful.stderr, faithful.stderr
    assert len(list((results_dir(save, "fartrack_sparse_224_full_faithful") / "got10k").glob("*_time.txt"))) == 1


def test_trackingnet_results_go_to_their_subfolder(workspace):
    data, save = workspace
    run = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "trackingnet"], data, save)
    assert run.returncode == 0, run.stderr
    assert len(list((results_dir(save) / "trackingnet").glob("*_time.txt"))) == 2


def test_clear_errors_for_missing_dataset_checkpoint_and_broken_frames(workspace, tmp_path):
    data, save = workspace
    run = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "tnl2k"], data, save)
    assert run.returncode == 2 and "tnl2k" in run.stderr.lower()
    run = run_test_script(["fartrack", "fartrack_tiny_224_full", "--dataset", "got10k_val"], data, save)
    assert run.returncode == 2 and "FARTrack_ep0500.pth.tar" in run.stderr
    broken_data = tmp_path / "data"
    write_got10k(broken_data / "got10k", num_sequences=1, num_frames=4)
    frame = sorted((broken_data / "got10k" / "val").glob("*/00000003.jpg"))[0]
    frame.write_bytes(b"garbage")
    checkpoint = next(save.glob("checkpoints/train/fartrack_sparse/*/*.pth.tar"))
    run = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "got10k_val",
                           "--checkpoint", str(checkpoint)], broken_data, tmp_path / "output")
    assert run.returncode == 1 and "failed" in run.stderr and "cannot read image" in run.stderr


def run_tool(relative: str, args, data_dir: Path, save_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FARTRACK_DATA_DIR": str(data_dir), "FARTRACK_SAVE_DIR": str(save_dir),
           "FARTRACK_TEST_LOCAL_FILE": str(save_dir / "no_local_file.py")}
    return subprocess.run([sys.executable, str(ROOT / relative), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_pipeline_test_then_analysis_then_packaging(workspace, tmp_path):
    import json
    import zipfile

    data, save = workspace
    tracker = ["--tracker", "fartrack_sparse:fartrack_sparse_224_full"]
    run = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "got10k_val"], data, save)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "scores.json"
    run = run_tool("tracking/analysis_results.py", [*tracker, "--dataset", "got10k_val", "--out", str(out)], data, save)
    assert run.returncode == 0, run.stderr
    scores = json.loads(out.read_text())["trackers"]["fartrack_sparse:fartrack_sparse_224_full"]
    assert set(scores["overall"]) == {"AUC", "OP50", "OP75", "Precision", "NormPrecision", "AO", "SR50", "SR75"}
    assert len(scores["per_sequence"]) == 2 and "AUC" in run.stdout

    run = run_test_script(["fartrack_sparse", "fartrack_sparse_224_full", "--dataset", "got10k_test"], data, save)
    assert run.returncode == 0, run.stderr
    run = run_tool("lib/test/utils/transform_got10k.py", ["--tracker_name", "fartrack_sparse", "--cfg_name",
                   "fartrack_sparse_224_full", "--out_dir", str(tmp_path)], data, save)
    assert run.returncode == 0, run.stderr
    with zipfile.ZipFile(tmp_path / "got10k_submit.zip") as archive:
        names = archive.namelist()
    assert any(n.endswith("_001.txt") for n in names) and any(n.endswith("_time.txt") for n in names)
