"""Submission packaging for the GOT-10k and TrackingNet servers: zip layout, validation, refusals."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmark_fixtures import write_got10k, write_trackingnet
from lib.test.utils.packaging import SubmissionError, validate_zip
from lib.test.utils.transform_got10k import GOT10K_SUBMISSION, transform_got10k
from lib.test.utils.transform_trackingnet import TRACKINGNET_SUBMISSION, transform_trackingnet

REPO = Path(__file__).resolve().parents[1]
T, C = "fartrack_sparse", "fartrack_sparse_224_full"
FRAMES = 6



def write_results(folder: Path, name: str, frames: int = FRAMES, time: bool = True) -> Path:
    """A result as the runner writes it: tab-separated ints, and one ``%f`` time per frame."""
    folder.mkdir(parents=True, exist_ok=True)
    boxes = np.arange(frames * 4).reshape(frames, 4) + 1
    path = folder / f"{name}.txt"
    path.write_text("".join("\t".join(str(v) for v in row) + "\n" for row in boxes))
    if time:
        (folder / f"{name}_time.txt").write_text("".join(f"{0.01 * (i + 1):f}\n" for i in range(frames)))
    return path


def got10k_results(env) -> Path:
    folder = Path(env.results_path) / T / C / "got10k"
    for i in (1, 2):
        write_results(folder, f"GOT-10k_Test_{i:06d}")
    write_results(folder, "GOT-10k_Val_000001", frames=3)  # a got10k_val result in the same folder: left out
    return folder


def test_got10k_zip_layout(env):
    write_got10k(Path(env.got10k_path), num_sequences=2, num_frames=FRAMES)
    src = got10k_results(env)
    zip_path = transform_got10k(T, C, env=env)
    assert zip_path == Path(env.results_path) / T / C / "got10k_submit.zip"
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
        rows = archive.read("GOT-10k_Test_000001/GOT-10k_Test_000001_001.txt").decode().splitlines()
        times = archive.read("GOT-10k_Test_000002/GOT-10k_Test_000002_time.txt").decode()
    assert names == [f"GOT-10k_Test_00000{i}/GOT-10k_Test_00000{i}_{s}.txt" for i in (1, 2) for s in ("001", "time")]
    assert rows[0] == "1,2,3,4" and len(rows) == FRAMES
    assert times == (src / "GOT-10k_Test_000002_time.txt").read_text()
    frames = {f"GOT-10k_Test_00000{i}": FRAMES for i in (1, 2)}
    assert validate_zip(GOT10K_SUBMISSION, zip_path, frames) == sorted(frames)
    assert (src / "GOT-10k_Test_000001.txt").is_file()  # raw results kept
    assert not list(zip_path.parent.glob("*.partial"))


@pytest.mark.parametrize("breakage, message", [
    ("missing_time", "GOT-10k_Test_000002: missing time file"),
    ("short", "GOT-10k_Test_000001: .* has 5 boxes, the sequence has 6 frames"),
    ("float", "GOT-10k_Test_000001.txt: line 3: expected 4 integers"),
    ("negative", "GOT-10k_Test_000002.txt: line 1: negative width or height"),
    ("missing_sequence", "GOT-10k_Test_000002: missing result file"),
])
def test_got10k_broken_results_are_refused(env, tmp_path, breakage, message):
    write_got10k(Path(env.got10k_path), num_sequences=2, num_frames=FRAMES)
    src = got10k_results(env)
    first, second = src / "GOT-10k_Test_000001.txt", src / "GOT-10k_Test_000002.txt"
    if breakage == "missing_time":
        (src / "GOT-10k_Test_000002_time.txt").unlink()
    elif breakage == "short":
        first.write_text("".join(first.read_text().splitlines(keepends=True)[:5]))
    elif breakage == "float":
        lines = first.read_text().splitlines(keepends=True)
        lines[2] = "1.5\t2\t3\t4\n"
        first.write_text("".join(lines))
    elif breakage == "negative":
        second.write_text("1\t2\t-3\t4\n" + "".join(second.read_text().splitlines(keepends=True)[1:]))
    elif breakage == "missing_sequence":
        second.unlink()
    with pytest.raises(SubmissionError, match=message):
        transform_got10k(T, C, env=env, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_got10k_without_dataset_checks_the_official_count(env, tmp_path):
    src = Path(env.results_path) / T / C / "got10k"
    for i in range(1, 180):
        write_results(src, f"GOT-10k_Test_{i:06d}", frames=3)
    with pytest.raises(SubmissionError, match="found 179 got10k sequences .* has 180"):
        transform_got10k(T, C, env=env)
    last = write_results(src, "GOT-10k_Test_000180", frames=3)
    (src / "GOT-10k_Test_000180_time.txt").write_text("0.1\n0.1\n")
    with pytest.raises(SubmissionError, match="GOT-10k_Test_000180: .* has 2 times for 3 boxes"):
        transform_got10k(T, C, env=env)
    write_results(src, "GOT-10k_Test_000180", frames=3)
    zip_path = transform_got10k(T, C, env=env, out_dir=tmp_path / "submit")
    assert len(validate_zip(GOT10K_SUBMISSION, zip_path)) == 180 and last.is_file()


def test_trackingnet_zip_layout_and_refusal(env, tmp_path):
    write_trackingnet(Path(env.trackingnet_path), num_sequences=2, num_frames=FRAMES)
    src = Path(env.results_path) / T / C / "trackingnet"
    for k in range(2):
        write_results(src, f"seq_{k:03d}_trackingnet", time=k == 0)  # no time file needed
    zip_path = transform_trackingnet(T, C, env=env, out_dir=tmp_path / "out")
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["seq_000_trackingnet.txt", "seq_001_trackingnet.txt"]
        assert archive.read("seq_001_trackingnet.txt").decode().splitlines()[1] == "5,6,7,8"
    assert validate_zip(TRACKINGNET_SUBMISSION, zip_path, {f"seq_{k:03d}_trackingnet": FRAMES for k in range(2)})
    write_results(src, "seq_001_trackingnet", frames=FRAMES + 1)
    with pytest.raises(SubmissionError, match="seq_001_trackingnet: .* has 7 boxes, the sequence has 6 frames"):
        transform_trackingnet(T, C, env=env, out_dir=tmp_path / "again")
    assert not (tmp_path / "again" / "trackingnet_submit.zip").exists()


def test_validate_zip_rejects_a_foreign_layout(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("got10k_submit/GOT-10k_Test_000001/GOT-10k_Test_000001_001.txt", "1,2,3,4\n")
    with pytest.raises(SubmissionError, match="missing"):
        validate_zip(GOT10K_SUBMISSION, bad)


def test_cli_scripts(env, tmp_path):
    write_got10k(Path(env.got10k_path), num_sequences=2, num_frames=FRAMES)
    got10k_results(env)
    script = REPO / "lib" / "test" / "utils" / "transform_got10k.py"
    done = subprocess.run([sys.executable, str(script), "--tracker_name", T, "--cfg_name", C,
                           "--out_dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "got10k_submit.zip").is_file()
    script = REPO / "lib" / "test" / "utils" / "transform_trackingnet.py"
    done = subprocess.run([sys.executable, str(script), "--tracker_name", T, "--cfg_name", C,
                           "--results_path", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "no results folder" in done.stderr
