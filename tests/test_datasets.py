"""Benchmark loaders, path settings, the local-file generator and the dataset checker."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import benchmark_fixtures as fixtures
from lib.test.evaluation import environment as test_env
from lib.test.evaluation.data import Sequence, SequenceList
from lib.test.evaluation.datasets import DATASET_NAMES, DatasetError, check_dataset, get_dataset
from lib.train.admin import environment as train_env
from lib.utils.local_paths import REPO_ROOT, LocalFileError, read_local_file

ALL_VARS = {*test_env.ENV_VARS, *train_env.ENV_VARS, test_env.LOCAL_FILE_ENV, train_env.LOCAL_FILE_ENV}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No FARTRACK_* variable from the caller, and local files in tmp (absent until written)."""
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(test_env.LOCAL_FILE_ENV, str(tmp_path / "test_local.py"))
    monkeypatch.setenv(train_env.LOCAL_FILE_ENV, str(tmp_path / "train_local.py"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Every benchmark fixture under one data dir (written once for the module)."""
    root = tmp_path_factory.mktemp("data")
    fixtures.write_all(root)
    return root


@pytest.fixture
def env(data_dir, monkeypatch):
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(data_dir))
    return test_env.env_settings()


def run_script(script: str, *args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ALL_VARS} | extra_env
    return subprocess.run([sys.executable, str(REPO_ROOT / "tracking" / script), *args], env=environ,
                          capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------------------------- settings
def test_defaults_are_relative_to_the_repository():
    env = test_env.env_settings()
    assert env.workspace_dir == REPO_ROOT
    assert env.save_dir == REPO_ROOT / "output"
    assert env.results_path == REPO_ROOT / "output" / "test" / "tracking_results"
    assert env.result_plot_path == REPO_ROOT / "output" / "test" / "result_plots"
    assert env.network_path == env.save_dir
    assert env.lasot_path == REPO_ROOT / "data" / "lasot"
    assert env.lasot_extension_subset_path == REPO_ROOT / "data" / "lasot_extension_subset"
    assert env.got10k_path == REPO_ROOT / "data" / "got10k"
    assert env.coco_path == REPO_ROOT / "data" / "coco"
    assert test_env.env_settings() is not env  # fresh object each call


def test_environment_variables_override(monkeypatch, tmp_path):
    monkeypatch.setenv("FARTRACK_SAVE_DIR", str(tmp_path / "save"))
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FARTRACK_GOT10K_PATH", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FARTRACK_TNL2K_PATH", "relative/tnl2k")
    env = test_env.env_settings()
    assert env.results_path == tmp_path / "save" / "test" / "tracking_results"
    assert env.network_path == tmp_path / "save"
    assert env.lasot_path == tmp_path / "data" / "lasot"
    assert env.got10k_path == tmp_path / "elsewhere"
    assert env.tnl2k_path == tmp_path / "relative" / "tnl2k"
    assert {"FARTRACK_SAVE_DIR", "FARTRACK_DATA_DIR", "FARTRACK_LASOT_PATH",
            "FARTRACK_LASOT_EXTENSION_SUBSET_PATH", "FARTRACK_RESULTS_PATH"} <= set(test_env.ENV_VARS)


def test_create_default_local_file_and_precedence(tmp_path, monkeypatch):
    test_file, train_file = tmp_path / "gen" / "test_local.py", tmp_path / "gen" / "train_local.py"
    result = run_script("create_default_local_file.py", "--workspace_dir", str(tmp_path), "--data_dir",
                        str(tmp_path / "data"), "--save_dir", str(tmp_path / "out"),
                        extra_env={test_env.LOCAL_FILE_ENV: str(test_file), train_env.LOCAL_FILE_ENV: str(train_file)})
    assert result.returncode == 0, result.stderr
    values = read_local_file(test_file)
    assert values["lasot_extension_subset_path"] == str(tmp_path / "data" / "lasot_extension_subset")
    assert "lasot_extension_subset_path_path" not in values
    assert values["results_path"] == str(tmp_path / "out" / "test" / "tracking_results")

    monkeypatch.setenv(test_env.LOCAL_FILE_ENV, str(test_file))
    monkeypatch.setenv(train_env.LOCAL_FILE_ENV, str(train_file))
    env = test_env.env_settings()
    assert env.save_dir == tmp_path / "out" and env.lasot_path == tmp_path / "data" / "lasot"
    train = train_env.train_env_settings()
    assert train.got10k_dir == tmp_path / "data" / "got10k" / "train"
    assert train.got10k_val_dir == tmp_path / "data" / "got10k" / "val"
    assert train.tensorboard_dir == tmp_path / "tensorboard"
    assert train.coco_lmdb_dir == tmp_path / "data" / "coco_lmdb"

    # An environment variable beats the file, and a base variable moves the paths derived from it.
    monkeypatch.setenv("FARTRACK_SAVE_DIR", str(tmp_path / "other"))
    monkeypatch.setenv("FARTRACK_LASOT_DIR", str(tmp_path / "lasot_train"))
    assert test_env.env_settings().results_path == tmp_path / "other" / "test" / "tracking_results"
    assert train_env.train_env_settings().lasot_dir == tmp_path / "lasot_train"


def test_local_file_is_never_executed(tmp_path, monkeypatch):
    local = tmp_path / "test_local.py"
    local.write_text("lasot_path = 'lasot_here'\nimport os\n")
    monkeypatch.setenv(test_env.LOCAL_FILE_ENV, str(local))
    with pytest.raises(LocalFileError, match=r"test_local.py:2"):
        test_env.env_settings()
    local.write_text("'''docstring'''\nlasot_path = 'rel/lasot'\nunused_official_key = '/x'\n")
    assert test_env.env_settings().lasot_path == REPO_ROOT / "rel" / "lasot"
    local.write_text("lasot_path = 3\n")
    with pytest.raises(LocalFileError, match="string literal"):
        test_env.env_settings()


# ---------------------------------------------------------------------------------------------- loaders
def test_otb_nfs_uav_subsets(env):
    otb = get_dataset("otb", env, sequences=["Deer", "Football1"])
    assert otb.names() == ["Deer", "Football1"]
    deer = otb[0]
    assert deer.dataset == "otb" and deer.object_class == "mammal"
    assert deer.frames[0] == f"{env.otb_path}/Deer/img/0001.jpg" and len(deer.frames) == 71
    assert deer.ground_truth_rect.shape == (71, 4) and deer.ground_truth_rect.dtype == np.float64
    np.testing.assert_array_equal(deer.ground_truth_rect, fixtures.boxes_for(71, seed=0))

    nfs = get_dataset("nfs", env, allow_missing=True)
    assert sorted(nfs.names()) == ["nfs_car_jumping", "nfs_shuffleboard_5"]
    assert nfs[0].frames[0].endswith("/sequences/car_jumping/00001.jpg") and nfs[0].dataset == "nfs"

    uav = get_dataset("uav", env, sequences=["uav_uav6"])[0]
    assert uav.dataset == "uav" and uav.frames[-1].endswith("data_seq/UAV123/uav6/000109.jpg")
    assert np.isnan(uav.ground_truth_rect[3:5]).all() and not np.isnan(uav.ground_truth_rect[5]).any()


def test_otb_init_omit(tmp_path, monkeypatch):
    fixtures.write_otb(tmp_path / "otb", names=("Tiger1",))
    monkeypatch.setenv("FARTRACK_OTB_PATH", str(tmp_path / "otb"))
    tiger = get_dataset("otb", sequences=["Tiger1"])[0]
    assert tiger.frames[0].endswith("Tiger1/img/0006.jpg") and len(tiger.frames) == 349
    np.testing.assert_array_equal(tiger.ground_truth_rect, fixtures.boxes_for(354, seed=0)[5:])


@pytest.mark.parametrize("name", ["lasot", "lasot_extension_subset"])
def test_lasot_layouts(env, name):
    seqs = get_dataset(name, env, allow_missing=True)
    assert len(seqs) == 2
    seq = seqs[0]
    cls = seq.name.rsplit("-", 1)[0]
    assert seq.dataset == name and seq.object_class == cls
    assert seq.frames == [f"{getattr(env, name + '_path')}/{cls}/{seq.name}/img/{i:08d}.jpg" for i in range(1, 7)]
    assert seq.target_visible.tolist() == [True, True, False, False, True, True]
    assert seq.ground_truth_rect.shape == (6, 4)
    assert seq.init_bbox() == [float(v) for v in fixtures.boxes_for(6, seed=0)[0]]
    assert all(isinstance(v, float) for v in seq.init_bbox())


def test_got10k_splits(env):
    test = get_dataset("got10k_test", env)
    assert test.names() == ["GOT-10k_Test_000001", "GOT-10k_Test_000002"]
    assert test[0].dataset == "got10k" and test[0].ground_truth_rect.shape == (1, 4) and len(test[0].frames) == 6
    assert test[0].frames[0] == f"{env.got10k_path}/test/GOT-10k_Test_000001/00000001.jpg"
    val = get_dataset("got10k_val", env)
    assert val[1].ground_truth_rect.shape == (6, 4) and val[1].target_visible is None

    with pytest.raises(DatasetError, match="1399 of 1401 sequences of 'got10k_ltrval' are missing"):
        get_dataset("got10k_ltrval", env)
    ltrval = get_dataset("got10k_ltrval", env, allow_missing=True)
    # got10k_val_split.txt starts with 1349, 5651: 0-based lines of train/list.txt.
    assert ltrval.names() == ["GOT-10k_Train_001350", "GOT-10k_Train_005652"]
    assert ltrval[0].frames[0] == f"{env.got10k_path}/train/GOT-10k_Train_001350/00000001.jpg"


def test_trackingnet_and_tnl2k(tmp_path, env, monkeypatch):
    fixtures.write_trackingnet(tmp_path / "tn", num_sequences=1, num_frames=12)
    monkeypatch.setenv("FARTRACK_TRACKINGNET_PATH", str(tmp_path / "tn"))
    seq = get_dataset("trackingnet")[0]
    assert seq.dataset == "trackingnet" and seq.ground_truth_rect.shape == (1, 4)
    assert [Path(f).name for f in seq.frames] == [f"{i}.jpg" for i in range(12)]  # numeric order: 10 after 9
    assert seq.frames[0] == f"{tmp_path}/tn/TEST/frames/seq_000_trackingnet/0.jpg"

    tnl2k = get_dataset("tnl2k", env)
    assert tnl2k.names() == ["seq_000_tnl2k", "seq_001_tnl2k"]
    assert tnl2k[0].frames[0].endswith("seq_000_tnl2k/imgs/00001.png") and tnl2k[1].frames[0].endswith(".jpg")
    assert tnl2k[0].dataset == "tnl2k" and tnl2k[0].ground_truth_rect.shape == (6, 4)


def test_fixture_frames_show_the_target(env):
    seq = get_dataset("got10k_val", env)[0]
    for frame, (x, y, w, h) in zip(seq.frames, seq.ground_truth_rect):
        image = cv2.imread(frame)
        assert image.shape == (72, 96, 3)
        assert image[int(y + h / 2), int(x + w / 2), 2] > 180  # red channel of the drawn target


def test_several_datasets_and_select(env):
    seqs = get_dataset(["got10k_val", "tnl2k"], env)
    assert [s.dataset for s in seqs] == ["got10k", "got10k", "tnl2k", "tnl2k"]
    assert isinstance(seqs, SequenceList)
    assert seqs.select(["seq_001_tnl2k"]).names() == ["seq_001_tnl2k"]
    with pytest.raises(KeyError, match="nope"):
        seqs.select(["nope"])
    assert isinstance(seqs[0], Sequence)


# ----------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", DATASET_NAMES)
def test_missing_root_describes_the_layout(tmp_path, monkeypatch, name):
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(tmp_path / "nothing"))
    with pytest.raises(DatasetError) as info:
        get_dataset(name)
    message = str(info.value)
    assert str(tmp_path / "nothing") in message and "expected layout" in message and "FARTRACK_" in message
    if name == "lasot":
        for part in ("img/00000001.jpg", "groundtruth.txt", "full_occlusion.txt", "out_of_view.txt"):
            assert part in message


def test_partial_list_and_unknown_names(env):
    with pytest.raises(DatasetError, match=r"98 of 100 sequences of 'otb' are missing(.|\n)*Basketball"):
        get_dataset("otb", env)
    with pytest.raises(DatasetError, match="not in the 'otb' sequence list: NotASequence"):
        get_dataset("otb", env, sequences=["Deer", "NotASequence"])
    with pytest.raises(DatasetError, match="unknown dataset 'vot'"):
        get_dataset("vot", env)


def test_malformed_sequences(tmp_path, monkeypatch):
    root = fixtures.write_lasot(tmp_path / "lasot", names=("airplane-1",))
    monkeypatch.setenv("FARTRACK_LASOT_PATH", str(root))
    folder = root / "airplane" / "airplane-1"
    (folder / "out_of_view.txt").write_text("0,0,0")
    with pytest.raises(DatasetError, match="3 visibility flags for 6 ground-truth rows"):
        get_dataset("lasot", sequences=["airplane-1"])
    (folder / "groundtruth.txt").write_text("1,2,3,4,5\n")
    with pytest.raises(DatasetError, match="groundtruth.txt: expected 4 values per row"):
        get_dataset("lasot", sequences=["airplane-1"])
    (folder / "groundtruth.txt").write_text("1,2,x,4\n")
    with pytest.raises(DatasetError, match="groundtruth.txt: unreadable ground truth"):
        get_dataset("lasot", sequences=["airplane-1"])


def test_ground_truth_separators(tmp_path):
    from lib.test.evaluation.datasets import read_boxes

    path = tmp_path / "gt.txt"
    path.write_text("1,2,3,4\n5\t6\t7\t8\n9 10 11 12\nNaN,NaN,NaN,NaN\n\n")
    boxes = read_boxes(path)
    assert boxes.shape == (4, 4) and boxes[2].tolist() == [9, 10, 11, 12] and np.isnan(boxes[3]).all()


# --------------------------------------------------------------------------------------------- checking
def test_check_dataset_finds_problems(tmp_path, monkeypatch):
    root = fixtures.write_got10k(tmp_path / "got10k", num_sequences=2)
    monkeypatch.setenv("FARTRACK_GOT10K_PATH", str(root))
    report = check_dataset("got10k_val")
    assert report.ok and report.found == report.listed == 2 and report.official == 180
    (root / "val" / "GOT-10k_Val_000001" / "00000003.jpg").unlink()
    with open(root / "val" / "GOT-10k_Val_000002" / "groundtruth.txt", "a") as handle:
        handle.write("1,1,1,1\n")
    report = check_dataset("got10k_val")
    assert not report.ok
    text = report.summary()
    assert "GOT-10k_Val_000002: 7 ground-truth rows for 6 frames" in text
    assert check_dataset("got10k_test").ok  # test split: first row only is fine
    monkeypatch.setenv("FARTRACK_GOT10K_PATH", str(tmp_path / "absent"))
    assert "ABSENT" in check_dataset("got10k_val").summary()


def test_check_dataset_reports_missing_frames(tmp_path, monkeypatch):
    root = fixtures.write_lasot(tmp_path / "lasot", names=("airplane-1",))
    (root / "airplane" / "airplane-1" / "img" / "00000004.jpg").unlink()
    monkeypatch.setenv("FARTRACK_LASOT_PATH", str(root))
    report = check_dataset("lasot")
    assert report.found == 1 and len(report.missing) == 279
    assert any("1 of 6 frames missing" in p and "00000004.jpg" in p for p in report.problems)


def test_check_datasets_cli(data_dir, tmp_path):
    environ = {"FARTRACK_DATA_DIR": str(data_dir), test_env.LOCAL_FILE_ENV: str(tmp_path / "none.py")}
    ok = run_script("check_datasets.py", "--dataset", "got10k_val", "tnl2k", extra_env=environ)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "got10k_val: OK, 2 of 2" in ok.stdout and "tnl2k: OK" in ok.stdout
    partial = run_script("check_datasets.py", "--dataset", "otb", extra_env=environ)
    assert partial.returncode == 1 and "98 missing" in partial.stdout
    everything = run_script("check_datasets.py", extra_env=environ)
    assert everything.returncode == 0 and all(name in everything.stdout for name in DATASET_NAMES)
