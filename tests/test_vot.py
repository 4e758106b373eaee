"""VOT toolkit integration (lib/vot, tracking/vot_tracker.py, tracking/vot_setup.py).

The toolkit tests drive the real toolkit (``python -m vot``) against our TraX server, offline, with a random Pico
(depth 6) network on a few real frames: ``vot evaluate`` + ``vot analysis`` on a workspace built from
``../shared/data/real-sequences``, ``vot test`` on the toolkit's generated sequence, and ``vot test`` on a sequence
whose initial region is empty. They are skipped when the ``vot`` extra is not installed; the message test for a
missing extra always runs.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib.vot import INSTALL_HINT, VotExtraMissing, import_optional

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real-sequences"

#: Sequences of the evaluation and their frame count (tld_motocross has no box in frames 30..32: nan ground truth).
SEQUENCES = ("vot_ball1", "tld_motocross_first100")
FRAMES = 32
TRACKER = "fartrack_pico"
#: The toolkit's class registry (phx-class-registry) warns about its own API on every sequence load.
pytestmark = pytest.mark.filterwarnings("ignore:Registry.items:DeprecationWarning")


def _toolkit():
    pytest.importorskip("trax", reason=f"VOT extra not installed: {INSTALL_HINT}")
    return pytest.importorskip("vot", reason=f"VOT extra not installed: {INSTALL_HINT}")


# ----------------------------------------------------------------------------------------------- no toolkit needed
def test_missing_extra_names_the_pip_command(monkeypatch, caplog):
    from lib.vot.server import ENVIRONMENT
    from tracking import vot_tracker

    for variable in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setitem(sys.modules, "trax", None)  # import trax -> ImportError
    with pytest.raises(VotExtraMissing, match=r"pip install -e '\.\[vot\]'"):
        import_optional("trax", "the VOT tracker server")
    assert vot_tracker.main(["--script", "fartrack_sparse", "--random_weights"]) == 2
    assert "install the VOT extra: pip install -e '.[vot]'" in caplog.text


def test_options_from_environment_and_problems(tmp_path):
    from lib.vot.server import ServerOptions, options_from_environment

    values = options_from_environment({"FARTRACK_VOT_SCRIPT": "fartrack_sparse", "FARTRACK_VOT_DEPTH": "6",
                                       "FARTRACK_VOT_RANDOM_WEIGHTS": "1", "FARTRACK_VOT_THREADS": ""})
    assert values == {"script": "fartrack_sparse", "depth": 6, "random_weights": True}
    with pytest.raises(ValueError, match="FARTRACK_VOT_DEPTH"):
        options_from_environment({"FARTRACK_VOT_DEPTH": "six"})
    assert "no checkpoint" in " ".join(ServerOptions(script="fartrack_sparse").problems())
    assert "checkpoint not found" in " ".join(ServerOptions(checkpoint=str(tmp_path / "absent.pth")).problems())
    assert ServerOptions(script="fartrack_sparse", random_weights=True).problems() == []


def test_write_vot_sequence_layout(tmp_path):
    from lib.vot.workspace import prepare_workspace, read_boxes, write_vot_sequence

    source = tmp_path / "src" / "toy"
    source.mkdir(parents=True)
    for index in range(1, 5):
        cv2.imwrite(str(source / f"{index:08d}.jpg"), np.full((24, 32, 3), 40 * index, np.uint8))
    (source / "groundtruth.txt").write_text("1,2,10,8\n2,3,10,8\n0,0,0,0\n3,4,10.5,8\n", encoding="utf-8")
    (source / "groundtruth_polygon.txt").write_text("junk\n", encoding="utf-8")  # must not become an object
    workspace = tmp_path / "ws"
    assert prepare_workspace(workspace, [source], max_frames=3) == ["toy"]
    target = workspace / "sequences" / "toy"
    assert sorted(p.name for p in (target / "color").iterdir()) == [f"{i:08d}.jpg" for i in (1, 2, 3)]
    assert read_boxes(target / "groundtruth.txt") == [[1, 2, 10, 8], [2, 3, 10, 8], None]
    assert not list(target.glob("groundtruth_*.txt"))
    assert (workspace / "stack.yaml").read_text(encoding="utf-8").count("type: unsupervised") == 1
    (source / "groundtruth.txt").write_text("0,0,0,0\n" * 4, encoding="utf-8")
    with pytest.raises(ValueError, match="first frame has no box"):
        write_vot_sequence(source, workspace / "sequences")


# ------------------------------------------------------------------------------------------------- toolkit needed
def test_toolkit_reads_our_sequence_and_tracker_entry(tmp_path):
    _toolkit()
    from vot.dataset import load_sequence
    from vot.region import Special
    from vot.tracker import Registry

    from lib.vot.registry import tracker_entry, write_tracker_entry
    from lib.vot.server import ServerOptions
    from lib.vot.workspace import write_vot_sequence

    sequence = load_sequence(str(write_vot_sequence(REAL / "tld_motocross_first100", tmp_path, max_frames=31)))
    assert len(sequence) == 31 and sequence.size == (470, 310)
    first = sequence.groundtruth(0)
    assert (first.x, first.y, first.width, first.height) == (293, 36, 17, 16)
    assert isinstance(sequence.groundtruth(29), Special) and not isinstance(sequence.groundtruth(28), Special)
    assert sequence.frame(0).image().shape == (310, 470, 3)

    checkpoint = tmp_path / "odd 100% name.pth.tar"  # % and spaces survive configparser
    checkpoint.write_bytes(b"")
    (tmp_path / "trackers.ini").write_text("[other]\nprotocol = trax\ncommand = other\n", encoding="utf-8")
    entry = tracker_entry(ServerOptions(script="fartrack_sparse", checkpoint=str(checkpoint), depth=6))
    write_tracker_entry(tmp_path, TRACKER, entry)
    registry = Registry([str(tmp_path)])
    assert "other" in registry
    described = registry[TRACKER].describe()
    assert described["protocol"] == "traxpython" and described["command"] == "tracking.vot_tracker"
    assert described["env"]["FARTRACK_VOT_CHECKPOINT"] == str(checkpoint)
    assert described["env"]["FARTRACK_VOT_DEPTH"] == "6" and described["paths"] == str(REPO)
    with pytest.raises(ValueError, match="invalid tracker name"):
        write_tracker_entry(tmp_path, "bad name", entry)


def test_region_and_frame_conversion(tmp_path):
    _toolkit()
    from trax import FileImage
    from trax.region import Polygon, Rectangle, Special

    from lib.vot.server import FrameReadError, InvalidRegionError, read_frame, region_to_box

    assert region_to_box(Rectangle.create(1, 2, 3, 4), (10, 10)) == [1, 2, 3, 4]
    assert region_to_box(Polygon.create([(1, 1), (5, 1), (5, 3), (1, 3)])) == [1, 1, 4, 2]
    for region, message in ((Special.create(0), "special region"), (Rectangle.create(1, 2, 0, 4), "empty"),
                            (Rectangle.create(50, 2, 3, 4), "outside the 10x10 frame")):
        with pytest.raises(InvalidRegionError, match=message):
            region_to_box(region, (10, 10))
    path = REAL / "otb_Dudek_first20" / "00000001.jpg"
    rgb = read_frame({"color": FileImage.create(str(path))})
    np.testing.assert_array_equal(rgb, cv2.imread(str(path))[..., ::-1])
    with pytest.raises(FrameReadError, match="cannot read"):
        read_frame({"color": FileImage.create(str(tmp_path / "absent.jpg"))})
    with pytest.raises(FrameReadError, match="no color image"):
        read_frame({})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace with the trackers.ini entry of a random Pico tracker and a few real frames (vot_setup.py)."""
    _toolkit()
    from tracking import vot_setup

    root = tmp_path_factory.mktemp("vot") / "workspace"
    argv = ["--workspace", str(root), "--name", TRACKER, "--script", "fartrack_sparse", "--random_weights",
            "--depth", "6", "--device", "cpu", "--threads", "1", "--sequences", *[str(REAL / s) for s in SEQUENCES],
            "--max_frames", str(FRAMES)]
    assert vot_setup.main(argv) == 0
    return root


def _vot(*args: str, cwd: Path, timeout: float = 240) -> str:
    """Run the toolkit's command line (``python -m vot``); returns its output (printed for the record)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FARTRACK_VOT_")}
    environ.update(VOT_RESULTS_BINARY="false", TMPDIR=str(cwd), PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, "-m", "vot", *args], cwd=cwd, env=environ, capture_output=True,
                            text=True, timeout=timeout)
    output = result.stdout + result.stderr
    print(f"$ vot {' '.join(args)}\n{output}")
    assert result.returncode == 0, output
    return output


def test_vot_evaluate_and_analysis_on_real_sequences(workspace):
    _vot("initialize", str(workspace / "stack.yaml"), "--workspace", str(workspace), "--nodownload", cwd=workspace)
    output = _vot("evaluate", "--workspace", str(workspace), TRACKER, cwd=workspace)
    assert "Evaluation concluded successfuly" in output and "Error" not in output
    for name in SEQUENCES:
        folder = workspace / "results" / TRACKER / "baseline" / name
        regions = (folder / f"{name}_001.txt").read_text(encoding="utf-8").split()
        assert len(regions) == FRAMES and regions[0] == "1"  # frame 1: the toolkit's initialisation marker
        boxes = [[float(v) for v in line.split(",")] for line in regions[1:]]
        assert all(len(box) == 4 and all(map(math.isfinite, box)) and box[2] > 0 and box[3] > 0 for box in boxes)
        # One confidence per frame (the initial frame's is empty with toolkits that drop the initial reply's).
        scores = (folder / f"{name}_001_confidence.value").read_text(encoding="utf-8").splitlines()
        assert len(scores) == FRAMES and all(0.0 <= float(s) <= 1.0 for s in scores[1:])
        assert len((folder / f"{name}_001_time.value").read_text(encoding="utf-8").splitlines()) == FRAMES

    output = _vot("analysis", "--workspace", str(workspace), TRACKER, "--format", "json", "--name", "smoke",
                  cwd=workspace)
    assert "Analysis successful" in output
    report = json.loads((workspace / "analysis" / "smoke.json").read_text(encoding="utf-8"))
    assert report["trackers"][TRACKER]["protocol"] == "traxpython"
    assert {name: data["length"] for name, data in report["sequences"].items()} == dict.fromkeys(SEQUENCES, FRAMES)
    accuracy, precision_recall = report["results"]["baseline"]["results"]
    assert 0.0 <= accuracy[0][0] <= 1.0 and len(precision_recall[0]) == 3


def test_vot_test_command_on_generated_sequence(workspace):
    output = _vot("--registry", str(workspace), "test", TRACKER, cwd=workspace)
    assert "Processing frame 49/49" in output and "Test concluded successfuly" in output
    assert "Error during tracker execution" not in output
    assert output.count('"confidence=') == 50  # one reply per frame, the initial one included


def test_vot_test_refuses_an_empty_initial_region(workspace, tmp_path):
    sequence = tmp_path / "empty_start"
    (sequence / "color").mkdir(parents=True)
    for index in (1, 2, 3):
        (sequence / "color" / f"{index:08d}.jpg").symlink_to(REAL / "vot_ball1" / f"{index:08d}.jpg")
    (sequence / "sequence").write_text("channels.color=color/%08d.jpg\nfps=30\n", encoding="utf-8")
    (sequence / "groundtruth.txt").write_text("10,10,0,20\n10,10,5,5\n10,10,5,5\n", encoding="utf-8")
    output = _vot("--registry", str(workspace), "test", TRACKER, "--sequence", str(sequence), cwd=tmp_path)
    assert "Server terminated the session: empty or invalid initial region x,y,w,h = 10,10,0,20" in output
