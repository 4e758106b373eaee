"""Result reading, ``evaluate`` and ``tracking/analysis_results.py`` end to end on tiny fixture trees, plus the
GOT-10k protocol against the toolkit's own ``ExperimentGOT10k(subset='val').report()``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from benchmark_fixtures import write_lasot  # noqa: E402
from lib.test.analysis import metrics  # noqa: E402
from lib.test.analysis.report import EvaluationError, evaluate, evaluate_trackers  # noqa: E402
from lib.test.analysis.results import ResultFileError, find_result_file, read_result_file  # noqa: E402
from lib.test.evaluation import environment as test_env  # noqa: E402
from lib.test.evaluation.data import Sequence  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT, CONFIG = "fartrack_sparse", "fartrack_sparse_224_full"
TRACKER = f"{SCRIPT}:{CONFIG}"



def write_result(path: Path, boxes, delimiter="\t") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(delimiter.join(f"{int(v)}" for v in row) + "\n" for row in boxes))
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tracking" / "analysis_results.py"), *args],
                          capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=120)


# ------------------------------------------------------------------------------------------------ reading
def test_read_result_file_delimiters_and_errors(tmp_path):
    tab = tmp_path / "a.txt"
    tab.write_text("1\t2\t3\t4\n\n5\t6\t7\t8\n")
    assert read_result_file(tab).tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    comma = tmp_path / "b.txt"
    comma.write_text("1.5,2,3,4\n")
    assert read_result_file(comma).tolist() == [[1.5, 2, 3, 4]]
    for text, line, what in (("1\t2\t3\t4\n1\t2\tnan\t4\n", 2, "NaN"),
                             ("1\t2\t3\t4\n\n1\t2\t3\t-4\n", 3, "negative"),
                             ("1\t2\t3\t4\n1\t2\t3\n", 2, "expected 4 numbers")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ResultFileError, match=f"bad.txt: line {line}: .*{what}"):
            read_result_file(bad)


def test_find_result_file_looks_in_dataset_subfolders(tmp_path):
    assert find_result_file(tmp_path, "s", "got10k") is None
    sub = write_result(tmp_path / "got10k" / "s.txt", [[1, 2, 3, 4]])
    assert find_result_file(tmp_path, "s", "got10k") == sub
    assert find_result_file(tmp_path, "s", "otb") == sub  # found in any sub-folder
    top = write_result(tmp_path / "s.txt", [[1, 2, 3, 4]])
    assert find_result_file(tmp_path, "s", "otb") == top
    assert find_result_file(tmp_path, "s", "got10k") == sub  # the runner's place for the tag comes first


# ------------------------------------------------------------------------------------------------ evaluate
def _sequence(name, gt, tag="otb", visible=None):
    return Sequence(name, [f"/nowhere/{name}/{i:08d}.jpg" for i in range(len(gt))], np.asarray(gt, float), tag,
                    visible)


def test_evaluate_subset_missing_and_no_cache(tmp_path, env):
    gt = np.array([[10, 10, 20, 20]] * 4, float)
    seqs = [_sequence("a", gt), _sequence("b", gt), _sequence("c", gt)]
    tracker_dir = Path(env.results_path) / SCRIPT / CONFIG
    write_result(tracker_dir / "a.txt", gt)
    result_b = write_result(tracker_dir / "b.txt", [[0, 0, 1, 1], [10, 10, 20, 20], [40, 40, 5, 5], [10, 10, 20, 10]])
    [scores] = evaluate_trackers([TRACKER], "otb", env, seqs)
    assert scores.missing == ["c"] and set(scores.per_sequence) == {"a", "b"}
    b = scores.per_sequence["b"]
    iou_b = [1.0, 1.0, 0.0, 0.5]
    assert b["AUC"] == pytest.approx(100 * np.mean([np.ceil(20 * v) / 21 for v in iou_b]), abs=1e-4)
    assert b["OP50"] == 50.0 and b["OP75"] == 50.0
    assert scores.overall["AUC"] == pytest.approx((100 * 20 / 21 + b["AUC"]) / 2, abs=1e-4)
    # a changed file is read again (no cache)
    write_result(result_b, gt)
    [again] = evaluate_trackers([TRACKER], "otb", env, seqs)
    assert again.per_sequence["b"]["AUC"] == pytest.approx(100 * 20 / 21, abs=1e-4)
    report = evaluate([TRACKER], "otb", env, seqs)
    assert set(report) == {"dataset", "trackers"} and report["dataset"] == "otb"
    assert set(report["trackers"][TRACKER]) == {"overall", "per_sequence"}
    assert list(report["trackers"][TRACKER]["overall"]) == list(metrics.PYTRACKING_KEYS)


def test_evaluate_errors(tmp_path, env):
    gt = np.array([[10, 10, 20, 20]] * 3, float)
    with pytest.raises(EvaluationError, match="no results"):
        evaluate_trackers([TRACKER], "otb", env, [_sequence("a", gt)])
    with pytest.raises(EvaluationError, match="transform_got10k.py"):
        evaluate_trackers([TRACKER], "got10k_test", env)
    with pytest.raises(ValueError, match="<script>:<config>"):
        evaluate_trackers(["nocolon"], "otb", env, [_sequence("a", gt)])
    write_result(Path(env.results_path) / SCRIPT / CONFIG / "a.txt", gt[:2])
    with pytest.raises(ValueError, match="a.txt: .*shorter prediction"):
        evaluate_trackers([TRACKER], "lasot", env, [_sequence("a", gt, "lasot", np.ones(3))])


# ------------------------------------------------------------------------------------------------ GOT-10k oracle
def write_got10k_val(root: Path, sequences: dict[str, dict]) -> Path:
    """A GOT-10k ``val`` split as the toolkit and our loader read it; frames are empty ``.jpg`` files."""
    split = root / "val"
    for name, seq in sequences.items():
        folder = split / name
        folder.mkdir(parents=True)
        gt = seq["gt"]
        for i in range(len(gt)):
            (folder / f"{i + 1:08d}.jpg").touch()
        (folder / "groundtruth.txt").write_text("".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in gt))
        width, height = seq["resolution"]
        (folder / "meta_info.ini").write_text(f"[METAINFO]\nurl: none\nresolution: ({width}, {height})\n"
                                              f"object_class: thing\n")
        for label, values in (("cover", seq["cover"]), ("absence", (np.asarray(seq["cover"]) == 0).astype(int)),
                              ("cut_by_image", np.zeros(len(gt), int))):
            (folder / f"{label}.label").write_text("".join(f"{int(v)}\n" for v in values))
    (split / "list.txt").write_text("\n".join(sequences) + "\n")
    return root


def hard_got10k_cases(rng) -> tuple[dict, dict]:
    """Sequences (fractional GT, absent frames) and integer predictions (out of the image on every side, zero
    sizes, an IoU of exactly 0.5, perfect frames)."""
    seqs, preds = {}, {}
    n = 40
    gt = np.column_stack([rng.uniform(0, 500, (n, 2)), rng.uniform(10, 200, (n, 2))]).round(4)
    pred = np.trunc(gt + rng.normal(0, 25, (n, 4)))
    pred[:, 2:] = np.abs(pred[:, 2:])
    pred[3] = [-30, 5, 100, 80]        # sticks out on the left: shifted by the toolkit
    pred[4] = [600, 300, 200, 400]     # right / bottom overflow: cropped
    pred[5] = [10, -50, 0, 30]         # zero width, above the image
    pred[6] = [0, 0, 0, 0]
    cover = rng.integers(0, 9, n)
    cover[:3] = 8
    seqs["GOT-10k_Val_000001"] = {"gt": gt, "cover": cover, "resolution": (640, 480)}
    preds["GOT-10k_Val_000001"] = pred
    n = 12
    gt = np.tile([[20.0, 30.0, 40.0, 20.0]], (n, 1))
    pred = gt.copy()
    pred[2] = [20, 30, 20, 20]         # IoU exactly 0.5
    pred[3] = [20, 30, 30, 20]         # IoU exactly 0.75
    pred[4] = [60, 30, 40, 20]         # touching
    seqs["GOT-10k_Val_000002"] = {"gt": gt, "cover": np.r_[8, 8, 8, 8, 8, 0, 0, 8, 8, 8, 8, 8],
                                  "resolution": (100, 60)}
    preds["GOT-10k_Val_000002"] = pred
    n = 25
    gt = np.column_stack([rng.uniform(-5, 50, (n, 2)), rng.uniform(1, 30, (n, 2))]).round(4)
    pred = np.trunc(gt + rng.normal(0, 3, (n, 4)))
    pred[:, 2:] = np.abs(pred[:, 2:])
    seqs["GOT-10k_Val_000003"] = {"gt": gt, "cover": rng.integers(1, 9, n), "resolution": (60, 40)}
    preds["GOT-10k_Val_000003"] = pred
    return seqs, preds


def test_got10k_protocol_equals_toolkit_report(tmp_path, env, monkeypatch):
    experiments = pytest.importorskip("got10k.experiments")
    seqs, preds = hard_got10k_cases(np.random.default_rng(7))
    root = write_got10k_val(tmp_path / "got10k", seqs)
    monkeypatch.setenv("FARTRACK_GOT10K_PATH", str(root))
    toolkit_results = tmp_path / "toolkit_results"
    for name, pred in preds.items():
        write_result(Path(test_env.env_settings().results_path) / SCRIPT / CONFIG / "got10k" / f"{name}.txt", pred)
        write_result(toolkit_results / "GOT-10k" / "fake" / name / f"{name}_001.txt", pred, delimiter=",")
        (toolkit_results / "GOT-10k" / "fake" / name / f"{name}_time.txt").write_text("0.01\n" * len(pred))
    monkeypatch.chdir(tmp_path)
    experiment = experiments.ExperimentGOT10k(str(root), subset="val", result_dir=str(toolkit_results),
                                              report_dir=str(tmp_path / "toolkit_reports"))
    theirs = experiment.report(["fake"])["fake"]

    ours = evaluate([TRACKER], "got10k_val", test_env.env_settings())["trackers"][TRACKER]
    for name in seqs:
        assert ours["per_sequence"][name]["AO"] == pytest.approx(100 * theirs["seq_wise"][name]["ao"], abs=1e-9)
        assert ours["per_sequence"][name]["SR50"] == pytest.approx(100 * theirs["seq_wise"][name]["sr"], abs=1e-9)
    assert ours["overall"]["AO"] == pytest.approx(100 * theirs["overall"]["ao"], abs=1e-9)
    assert ours["overall"]["SR50"] == pytest.approx(100 * theirs["overall"]["sr"], abs=1e-9)
    assert ours["overall"]["SR75"] == pytest.approx(100 * theirs["overall"]["succ_curve"][75], abs=1e-9)
    # the hand-made sequence: kept frames 1-4 and 7-11 -> IoUs 1, 0.5, 0.75, 0, then 1 x 5
    assert ours["per_sequence"]["GOT-10k_Val_000002"]["AO"] == pytest.approx(100 * 7.25 / 9)
    assert ours["per_sequence"]["GOT-10k_Val_000002"]["SR50"] == pytest.approx(100 * 7 / 9)
    assert ours["per_sequence"]["GOT-10k_Val_000002"]["SR75"] == pytest.approx(100 * 6 / 9)
    # the per-sequence AO differs from the frame-pooled overall one
    assert ours["overall"]["AO"] != pytest.approx(np.mean([v["AO"] for v in ours["per_sequence"].values()]))


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_lasot_end_to_end(tmp_path, env):
    write_lasot(Path(env.lasot_path), names=("airplane-1", "bear-2"), num_frames=6)
    gt = np.loadtxt(Path(env.lasot_path) / "airplane" / "airplane-1" / "groundtruth.txt", delimiter=",")
    pred = gt.copy()
    pred[1] += [3, 0, 0, 0]
    pred[4] = [0, 0, 0, 0]  # zero size: carries frame 3 forward
    write_result(Path(env.results_path) / SCRIPT / CONFIG / "airplane-1.txt", pred)
    out = tmp_path / "scores.json"
    done = run_cli("--tracker", TRACKER, "--dataset", "lasot", "--out", str(out), "--plot", "--per_sequence")
    assert done.returncode == 0, done.stderr
    assert "| tracker | AUC | OP50 | OP75 | Precision | NormPrecision | sequences |" in done.stdout
    assert "bear-2" in done.stdout and "left out" in done.stdout
    report = json.loads(out.read_text())
    assert report["dataset"] == "lasot" and list(report["trackers"]) == [TRACKER]
    entry = report["trackers"][TRACKER]
    assert list(entry["per_sequence"]) == ["airplane-1"]
    visible = np.ones(6, bool)
    visible[[2, 3]] = False  # the fixture's occluded / out-of-view frames
    expected = metrics.scores_from_curves(*metrics.sequence_curves(
        *metrics.calc_seq_err_robust(pred, gt, "lasot", visible)[:3]))
    assert entry["per_sequence"]["airplane-1"] == pytest.approx(expected, abs=1e-9)
    assert entry["overall"] == pytest.approx(expected, abs=1e-4)
    assert entry["overall"]["Precision"] == pytest.approx(100 * 4 / 6, abs=1e-4)  # frames 2, 3 fail (flags)
    plots = Path(env.result_plot_path) / "lasot"
    assert sorted(p.name for p in plots.glob("*.png")) == ["norm_precision_plot.png", "precision_plot.png",
                                                          "success_plot.png"]


def test_cli_got10k_val_reads_the_subfolder(tmp_path, env, monkeypatch):
    seqs, preds = hard_got10k_cases(np.random.default_rng(3))
    monkeypatch.setenv("FARTRACK_GOT10K_PATH", str(write_got10k_val(tmp_path / "got10k", seqs)))
    results = tmp_path / "elsewhere"
    for name, pred in preds.items():
        write_result(results / SCRIPT / CONFIG / "got10k" / f"{name}.txt", pred)
    out = tmp_path / "g.json"
    done = run_cli("--tracker", TRACKER, "--dataset", "got10k_val", "--results_path", str(results), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "| AO | SR50 | SR75 |" in done.stdout
    overall = json.loads(out.read_text())["trackers"][TRACKER]["overall"]
    assert list(overall) == [*metrics.PYTRACKING_KEYS, *metrics.GOT10K_KEYS]


def test_cli_errors(tmp_path, env):
    write_lasot(Path(env.lasot_path), names=("airplane-1",), num_frames=4)
    done = run_cli("--tracker", TRACKER, "--dataset", "lasot")
    assert done.returncode == 1 and "no results" in done.stderr
    bad = write_result(Path(env.results_path) / SCRIPT / CONFIG / "airplane-1.txt",
                       [[1, 1, 5, 5], [1, 1, -5, 5], [1, 1, 5, 5], [1, 1, 5, 5]])
    done = run_cli("--tracker", TRACKER, "--dataset", "lasot")
    assert done.returncode == 1 and f"{bad}: line 2: negative" in done.stderr
    for dataset, script in (("got10k_test", "transform_got10k.py"), ("trackingnet", "transform_trackingnet.py")):
        done = run_cli("--tracker", TRACKER, "--dataset", dataset)
        assert done.returncode == 1 and "evaluation server" in done.stderr and script in done.stderr
    done = run_cli("--tracker", TRACKER, "--dataset", "otb")
    assert done.returncode == 1 and "not found" in done.stderr
