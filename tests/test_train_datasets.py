"""Training datasets in their official layouts, from folders and from LMDBs: annotations, images, errors."""
from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib.train.admin.environment import LOCAL_FILE_ENV, train_env_settings
from lib.train.dataset.image_io import decode_image, decoder_name, read_image
from lib.train.dataset.storage import DirectoryStore, FileStore, LmdbStore, build_lmdb
from lib.train.dataset import DATASET_NAMES, build_dataset, lmdb_paths
from lib.train.dataset.base import ImageReadError, SequenceInfo, TrainDatasetError
from lib.train.dataset.coco import MSCOCOSeq
from lib.train.dataset.common import parse_boxes
from lib.train.dataset.got10k import Got10k
from lib.train.dataset.lasot import Lasot
from lib.train.dataset.trackingnet import TrackingNet
from train_fixtures import (LASOT_NAMES, TARGET_RGB, write_all_train, write_coco, write_got10k_train,
                            write_lasot_train, write_split_files, write_trackingnet_train)

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------ helpers
@pytest.fixture(params=["folder", "lmdb"])
def kind(request) -> str:
    return request.param


def make_store(kind: str, src: Path, tmp_path: Path) -> FileStore:
    """The folder ``src`` itself, or an LMDB built from it."""
    if kind == "folder":
        return DirectoryStore(src)
    return LmdbStore(build_lmdb(src, tmp_path / f"{src.name}_lmdb", progress=False))


def assert_info_equal(info: SequenceInfo, expected: SequenceInfo) -> None:
    np.testing.assert_array_equal(info.bbox, expected.bbox)
    assert info.bbox.dtype == np.float64 and info.bbox.shape == (len(expected), 4)
    np.testing.assert_array_equal(info.valid, expected.valid)
    np.testing.assert_array_equal(info.visible, expected.visible)
    assert info.valid.dtype == bool and info.visible.dtype == bool


def assert_target_at(image: np.ndarray, box: np.ndarray) -> None:
    """An RGB frame of the fixtures with the target colour at the centre of ``box``."""
    assert image.dtype == np.uint8 and image.shape == (72, 96, 3)
    cx, cy = int(box[0] + box[2] / 2), int(box[1] + box[3] / 2)
    centre = np.median(image[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3), axis=0)
    np.testing.assert_allclose(centre, TARGET_RGB, atol=30)


def check_frames(dataset, seq_id: int, expected: SequenceInfo, frame_ids=(0, 1, 4)) -> None:
    images, boxes = dataset.frames(seq_id, list(frame_ids))
    np.testing.assert_array_equal(boxes, expected.bbox[list(frame_ids)])
    for image, box, frame_id in zip(images, boxes, frame_ids):
        if expected.valid[frame_id]:
            assert_target_at(image, box)


@pytest.fixture
def train_env(tmp_path, monkeypatch):
    """Training settings isolated from the machine: data under tmp/data, no local file."""
    for name in list(os.environ):
        if name.startswith("FARTRACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(LOCAL_FILE_ENV, str(tmp_path / "absent_local.py"))
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(tmp_path / "data"))
    return train_env_settings()


# ----------------------------------------------------------------------------------------------------- image_io
def test_decode_image_is_rgb_and_gray_becomes_three_channels(tmp_path):
    assert decoder_name() in ("opencv", "jpeg4py")
    bgr = np.zeros((20, 30, 3), dtype=np.uint8)
    bgr[:] = (40, 200, 240)
    ok, jpeg = cv2.imencode(".jpg", bgr)
    rgb = decode_image(jpeg.tobytes(), "colour.jpg")
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb[10, 15], TARGET_RGB, atol=6)
    for ext in (".jpg", ".png"):
        path = tmp_path / f"gray{ext}"
        cv2.imwrite(str(path), np.full((8, 9), 77, dtype=np.uint8))
        gray = read_image(path)
        assert gray.shape == (8, 9, 3) and np.all(np.abs(gray.astype(int) - 77) <= 2)


@pytest.mark.parametrize("data, reason", [(b"", "empty"), (b"not an image at all", "not a decodable image"),
                                          ("truncated", "truncated JPEG")])
def test_decode_image_errors_name_the_file(data, reason):
    if data == "truncated":
        ok, jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
        data = jpeg.tobytes()[: len(jpeg) // 2]
    with pytest.raises(ImageReadError, match=reason) as err:
        decode_image(data, "/some/where/00000001.jpg")
    assert "/some/where/00000001.jpg" in str(err.value)


def test_read_image_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="absent.jpg"):
        read_image(tmp_path / "absent.jpg")


# ------------------------------------------------------------------------------------------------------ storage
def write_tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"top", "a-1/x.bin": b"\x00\x01", "a/x": b"ax", "a/b/c.txt": "é\n".encode(), "a/b/d": b"",
             "z/only": b"z"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_lmdb_store_mirrors_the_folder(tmp_path):
    files = write_tree(tmp_path / "src")
    folder, lmdb_store = DirectoryStore(tmp_path / "src"), LmdbStore(build_lmdb(tmp_path / "src", tmp_path / "db",
                                                                                progress=False))
    for store in (folder, lmdb_store):
        assert store.list_dir("") == ["a", "a-1", "a.txt", "z"]
        assert store.list_dir("a") == ["b", "x"] and store.list_dir("a/b/") == ["c.txt", "d"]
        for rel, data in files.items():
            assert store.exists(rel) and store.read_bytes(rel) == data
        assert store.read_text("a/b/c.txt") == "é\n"
        assert store.exists("") and store.exists("a/b") and store.exists("a-1")
        assert not store.exists("a/y") and not store.exists("a/b/c") and not store.exists("b")
        with pytest.raises(FileNotFoundError):
            store.read_bytes("a/missing")
        for not_a_folder in ("missing", "a.txt"):
            with pytest.raises(FileNotFoundError):
                store.list_dir(not_a_folder)
    assert lmdb_store.describe() == f"LMDB {tmp_path / 'db'}" and "a/x" in lmdb_store.locate("a/x")
    assert not LmdbStore(tmp_path / "nowhere").exists("")
    with pytest.raises(TrainDatasetError, match="no LMDB"):
        LmdbStore(tmp_path / "nowhere").read_bytes("a")


def test_build_lmdb_refuses_to_overwrite_and_is_atomic(tmp_path):
    write_tree(tmp_path / "src")
    dst = build_lmdb(tmp_path / "src", tmp_path / "db", progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        build_lmdb(tmp_path / "src", dst, progress=False)
    assert LmdbStore(dst).read_bytes("a.txt") == b"top"
    (tmp_path / "src" / "a.txt").write_bytes(b"new")
    build_lmdb(tmp_path / "src", dst, overwrite=True, progress=False)
    assert LmdbStore(dst).read_bytes("a.txt") == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "src"]  # no temporary folder left
    subset = LmdbStore(build_lmdb(tmp_path / "src", tmp_path / "sub", include=["a/b", "z/only", "a"], progress=False))
    assert subset.list_dir("") == ["a", "z"] and subset.list_dir("a") == ["b", "x"] and not subset.exists("a.txt")
    with pytest.raises(TrainDatasetError, match="inside its own source"):
        build_lmdb(tmp_path / "src", tmp_path / "src" / "db", progress=False)
    with pytest.raises(TrainDatasetError, match="does not exist"):
        build_lmdb(tmp_path / "src", tmp_path / "db2", include=["nothing"], progress=False)
    with pytest.raises(TrainDatasetError, match="not a folder"):
        build_lmdb(tmp_path / "absent", tmp_path / "db3", progress=False)


def _read_in_child(store: LmdbStore) -> bytes:
    return store.read_bytes("a/x")


def test_lmdb_store_pickles_and_forks(tmp_path):
    write_tree(tmp_path / "src")
    store = LmdbStore(build_lmdb(tmp_path / "src", tmp_path / "db", progress=False))
    assert store.read_bytes("a.txt") == b"top"  # the handle is open now
    copy = pickle.loads(pickle.dumps(store))
    assert copy.read_bytes("a/x") == b"ax" and LmdbStore(store.path).read_bytes("a/x") == b"ax"
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_read_in_child, (store,)) == b"ax"


# -------------------------------------------------------------------------------------------------------- LaSOT
def test_lasot_train_split_partial_tree(kind, tmp_path, caplog):
    expected = write_lasot_train(tmp_path / "lasot")
    write_lasot_train(tmp_path / "lasot", names=("airplane-1",))  # a test sequence: not in the train split
    store = make_store(kind, tmp_path / "lasot", tmp_path)
    with caplog.at_level(logging.WARNING):
        dataset = Lasot(store)
    assert "1118 of the 1120 sequences" in caplog.text and "airplane-11" in caplog.text
    assert len(dataset) == 2 and [dataset.sequence_name(i) for i in range(2)] == list(LASOT_NAMES)
    assert dataset.is_video and dataset.name == "LaSOT(train)"
    for seq_id, name in enumerate(LASOT_NAMES):
        info = dataset.sequence_info(seq_id)
        assert_info_equal(info, expected[name])
        assert info.valid.tolist() == [True, True, True, False, True, True]
        assert info.visible.tolist() == [True, True, False, False, True, True]
        check_frames(dataset, seq_id, expected[name])
    everything = Lasot(store, split=None)
    assert [everything.sequence_name(i) for i in range(len(everything))] == ["airplane-1", "airplane-10", "bear-1"]


def test_lasot_errors(tmp_path):
    (tmp_path / "lasot" / "junk").mkdir(parents=True)
    with pytest.raises(TrainDatasetError) as err:
        Lasot(tmp_path / "lasot")
    message = str(err.value)
    assert "LaSOT" in message and "none of the 1120 sequences" in message and "groundtruth.txt" in message
    assert "full_occlusion.txt" in message and "FARTRACK_LASOT_DIR" in message and "lasot_dir" in message
    with pytest.raises(TrainDatasetError, match="no <class>/<class>-<k>/groundtruth.txt"):
        Lasot(tmp_path / "lasot", split=None)
    with pytest.raises(TrainDatasetError, match="unknown split 'test'"):
        Lasot(tmp_path / "lasot", split="test")
    write_lasot_train(tmp_path / "lasot", names=("bear-1",), num_frames=6)
    (tmp_path / "lasot" / "bear" / "bear-1" / "out_of_view.txt").write_text("0,1")
    with pytest.raises(TrainDatasetError, match="2 flags for 6 ground-truth rows"):
        Lasot(tmp_path / "lasot").sequence_info(0)


# ------------------------------------------------------------------------------------------------------ GOT-10k
def test_got10k_splits_and_labels(kind, tmp_path):
    expected = write_got10k_train(tmp_path / "train", num_sequences=3)
    names = list(expected)
    specs = write_split_files(tmp_path / "specs", {"vottrain": [2, 0], "votval": [1], "train": [0, 1],
                                                   "val": [2], "train_full": [0, 1, 2]})
    store = make_store(kind, tmp_path / "train", tmp_path)
    everything = Got10k(store)
    assert len(everything) == 3 and everything.name == "GOT-10k"
    assert [everything.sequence_name(i) for i in range(3)] == names
    for split, indices in (("vottrain", [2, 0]), ("votval", [1]), ("train", [0, 1]), ("val", [2]),
                           ("train_full", [0, 1, 2])):
        dataset = Got10k(store, split=split, data_specs_dir=specs)
        assert [dataset.sequence_name(i) for i in range(len(dataset))] == [names[i] for i in indices]
    for seq_id, name in enumerate(names):
        assert_info_equal(everything.sequence_info(seq_id), expected[name])
        check_frames(everything, seq_id, expected[name])
    assert everything.sequence_info(0).visible.tolist() == [True] * 5 + [False]  # absent last frame
    assert everything.sequence_info(1).valid.tolist() == [True, False, True, True, True, True]
    assert everything.sequence_info(2).visible.tolist() == [True] * 6  # no label files


def test_got10k_errors(tmp_path):
    write_got10k_train(tmp_path / "train", num_sequences=2)
    with pytest.raises(TrainDatasetError) as err:
        Got10k(tmp_path / "train", split="vottrain")  # the official split indexes the full 9335-sequence list
    message = str(err.value)
    assert "9335" in message and "has 2 lines" in message and "GOT10K_all" in message
    assert "got10k_vot_train_split.txt" in message
    with pytest.raises(TrainDatasetError, match="unknown split 'bogus'"):
        Got10k(tmp_path / "train", split="bogus")
    (tmp_path / "train" / "list.txt").unlink()
    with pytest.raises(TrainDatasetError) as err:
        Got10k(tmp_path / "train")
    message = str(err.value)
    assert "GOT-10k" in message and "missing" in message and "list.txt" in message
    assert "absence.label" in message and "FARTRACK_GOT10K_DIR" in message
    (tmp_path / "train" / "list.txt").write_text("GOT-10k_Train_000001\nGOT-10k_Train_000099\n")
    dataset = Got10k(tmp_path / "train")
    (tmp_path / "train" / "GOT-10k_Train_000001" / "cover.label").write_text("8\n")
    with pytest.raises(TrainDatasetError, match="1 labels for 6 ground-truth rows"):
        dataset.sequence_info(0)
    with pytest.raises(TrainDatasetError, match="GOT-10k_Train_000099/groundtruth.txt"):
        dataset.sequence_info(1)


# -------------------------------------------------------------------------------------------------- TrackingNet
def test_trackingnet_chunks(kind, tmp_path, caplog):
    expected = write_trackingnet_train(tmp_path / "trackingnet", chunks=(0, 2))
    (tmp_path / "trackingnet" / "TEST" / "anno").mkdir(parents=True)  # never read
    store = make_store(kind, tmp_path / "trackingnet", tmp_path)
    with caplog.at_level(logging.WARNING):
        dataset = TrackingNet(store)
    assert "TRAIN_1, TRAIN_3" in caplog.text and "TRAIN_11" in caplog.text
    names = [dataset.sequence_name(i) for i in range(len(dataset))]
    assert names == list(expected) == ["TRAIN_0/vid0x0_0", "TRAIN_0/vid0x1_0", "TRAIN_2/vid2x0_0", "TRAIN_2/vid2x1_0"]
    for seq_id, name in enumerate(names):
        info = dataset.sequence_info(seq_id)
        assert_info_equal(info, expected[name])
        np.testing.assert_array_equal(info.visible, info.valid)
        check_frames(dataset, seq_id, expected[name], frame_ids=(0, 1, 5))
    assert dataset.sequence_info(0).valid.tolist() == [True, False, True, True, True, True]
    assert [TrackingNet(store, set_ids=[2]).sequence_name(i) for i in range(2)] == names[2:]
    with pytest.raises(TrainDatasetError) as err:
        TrackingNet(store, set_ids=[5, 6])
    message = str(err.value)
    assert "TrackingNet" in message and "TRAIN_5, TRAIN_6" in message and "frames/<sequence>/0.jpg" in message
    assert ("FARTRACK_TRACKINGNET_LMDB_DIR" if kind == "lmdb" else "FARTRACK_TRACKINGNET_DIR") in message


# --------------------------------------------------------------------------------------------------------- COCO
@pytest.mark.parametrize("image_dir", ["images/train2017", "train2017"])
def test_coco_instances(kind, tmp_path, image_dir):
    expected = write_coco(tmp_path / "coco", num_images=2, image_dir=image_dir)
    dataset = MSCOCOSeq(make_store(kind, tmp_path / "coco", tmp_path))
    assert not dataset.is_video and len(dataset) == len(expected) == 4
    assert [int(i) for i in dataset.annotation_ids] == [100, 101, 103, 104]  # by id; crowd 102 and 105 left out
    for seq_id, instance in enumerate(expected):
        assert dataset.sequence_name(seq_id) == f"{instance.file_name}:{instance.annotation_id}"
        info = dataset.sequence_info(seq_id)
        np.testing.assert_array_equal(info.bbox, instance.bbox[None])
        assert info.valid.tolist() == info.visible.tolist() == [instance.valid]
        images, boxes = dataset.frames(seq_id, [1] * 6)
        assert len(images) == 6 and all(image is images[0] for image in images)
        np.testing.assert_array_equal(boxes, np.repeat(instance.bbox[None], 6, axis=0))
        if seq_id >= 2:  # the first image is grayscale
            assert_target_at(images[0], instance.bbox)
        else:
            assert images[0].shape == (72, 96, 3) and np.all(images[0][..., 0] == images[0][..., 2])


def test_coco_errors(tmp_path):
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    with pytest.raises(TrainDatasetError) as err:
        MSCOCOSeq(tmp_path / "coco")
    message = str(err.value)
    assert "COCO2017" in message and "no image folder" in message and "FARTRACK_COCO_DIR" in message
    (tmp_path / "coco" / "train2017").mkdir()
    with pytest.raises(TrainDatasetError, match="missing .*instances_train2017.json"):
        MSCOCOSeq(tmp_path / "coco")
    (tmp_path / "coco" / "annotations" / "instances_train2017.json").write_text('{"images": []}')
    with pytest.raises(TrainDatasetError, match="not a COCO instances file"):
        MSCOCOSeq(tmp_path / "coco")


# ------------------------------------------------------------------------------------------ common to all classes
def write_for(dataset_class, root: Path):
    if dataset_class is Lasot:
        return write_lasot_train(root)
    if dataset_class is Got10k:
        return write_got10k_train(root)
    if dataset_class is TrackingNet:
        return write_trackingnet_train(root)
    return write_coco(root)


CLASSES = [(Lasot, "LaSOT", "FARTRACK_LASOT"), (Got10k, "GOT-10k", "FARTRACK_GOT10K"),
           (TrackingNet, "TrackingNet", "FARTRACK_TRACKINGNET"), (MSCOCOSeq, "COCO2017", "FARTRACK_COCO")]


@pytest.mark.parametrize("dataset_class, name, env_prefix", CLASSES)
def test_missing_root_names_dataset_layout_and_setting(dataset_class, name, env_prefix, tmp_path):
    for store, env_var in ((tmp_path / "absent", f"{env_prefix}_DIR"),
                           (LmdbStore(tmp_path / "absent_lmdb"), f"{env_prefix}_LMDB_DIR")):
        with pytest.raises(TrainDatasetError) as err:
            dataset_class(store)
        message = str(err.value)
        assert message.startswith(name) and "does not exist" in message and "expected layout" in message
        assert "<root>/" in message and env_var in message


@pytest.mark.parametrize("dataset_class", [Lasot, Got10k, TrackingNet, MSCOCOSeq])
def test_corrupt_and_missing_images_raise_image_read_error(dataset_class, kind, tmp_path):
    root = tmp_path / "root"
    write_for(dataset_class, root)
    rel = dataset_class(root)._frame_path(0, 1)
    (root / rel).write_bytes((root / rel).read_bytes()[:300])  # truncated
    dataset = dataset_class(make_store(kind, root, tmp_path))
    with pytest.raises(ImageReadError, match="truncated") as err:
        dataset.frames(0, [1])
    assert dataset.store.locate(rel) in str(err.value)
    if kind == "folder":
        (root / rel).unlink()
        with pytest.raises(ImageReadError, match="No such file") as err:
            dataset.frames(0, [1])
        assert str(root / rel) in str(err.value)


@pytest.mark.parametrize("dataset_class", [Lasot, Got10k, TrackingNet, MSCOCOSeq])
def test_datasets_pickle_for_dataloader_workers(dataset_class, kind, tmp_path):
    write_for(dataset_class, tmp_path / "root")
    dataset = dataset_class(make_store(kind, tmp_path / "root", tmp_path))
    images, boxes = dataset.frames(0, [0, 1])
    copy = pickle.loads(pickle.dumps(dataset))
    copy_images, copy_boxes = copy.frames(0, [0, 1])
    assert len(copy) == len(dataset) and copy.sequence_name(0) == dataset.sequence_name(0)
    np.testing.assert_array_equal(copy_boxes, boxes)
    np.testing.assert_array_equal(copy_images[1], images[1])
    assert_info_equal(copy.sequence_info(0), dataset.sequence_info(0))


def test_frame_ids_out_of_range(tmp_path):
    write_got10k_train(tmp_path / "train", num_sequences=1)
    dataset = Got10k(tmp_path / "train")
    for frame_ids in ([6], [-1]):
        with pytest.raises(IndexError, match="outside 0..5"):
            dataset.frames(0, frame_ids)


def test_parse_boxes_tolerates_separators_and_nan():
    boxes = parse_boxes("1,2,3,4\n5\t6\t7\t8\n\n9 10, 11 12\nNaN,NaN,NaN,NaN\n", "gt.txt")
    assert boxes.shape == (4, 4) and boxes[2].tolist() == [9, 10, 11, 12] and np.isnan(boxes[3]).all()
    with pytest.raises(TrainDatasetError, match="row 2 has 3"):
        parse_boxes("1,2,3,4\n1,2,3\n", "gt.txt")
    with pytest.raises(TrainDatasetError, match="empty"):
        parse_boxes("\n", "gt.txt")


# ------------------------------------------------------------------------------------------- factory and CLI
def test_factory_builds_every_name_from_folders_and_lmdbs(train_env, tmp_path):
    write_all_train(train_env.data_dir)
    specs = write_split_files(tmp_path / "specs", {"vottrain": [0, 2], "votval": [1], "train": [0],
                                                   "val": [1, 2], "train_full": [2, 1, 0]})
    for src, dst in lmdb_paths(train_env).values():
        build_lmdb(src, dst, progress=False)
    lengths = {"LASOT": 2, "GOT10K_vottrain": 2, "GOT10K_votval": 1, "GOT10K_train": 1, "GOT10K_val": 2,
               "GOT10K_train_full": 3, "GOT10K_official_val": 2, "GOT10K_all": 3, "COCO17": 4, "TRACKINGNET": 4}
    assert set(lengths) == set(DATASET_NAMES)
    for use_lmdb in (False, True):
        for name in DATASET_NAMES:
            dataset = build_dataset(name, train_env, use_lmdb=use_lmdb, data_specs_dir=specs)
            assert len(dataset) == lengths[name], name
            assert isinstance(dataset.store, LmdbStore if use_lmdb else DirectoryStore)
            images, _ = dataset.frames(0, [0])
            assert images[0].shape == (72, 96, 3)
    official_val = build_dataset("GOT10K_official_val", train_env, use_lmdb=True)
    assert official_val.sequence_name(1) == "GOT-10k_Val_000002"
    with pytest.raises(TrainDatasetError) as err:
        build_dataset("GOT10K", train_env)
    assert "GOT10K_vottrain" in str(err.value) and "TRACKINGNET" in str(err.value)


def run_build_lmdb(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FARTRACK_")}
    env.update(FARTRACK_DATA_DIR=str(data_dir), FARTRACK_TRAIN_LOCAL_FILE=str(data_dir / "absent_local.py"))
    return subprocess.run([sys.executable, str(REPO / "tracking" / "build_lmdb.py"), *args, "--quiet"],
                          capture_output=True, text=True, env=env, cwd=data_dir.parent, timeout=120)


def test_build_lmdb_cli(tmp_path):
    data_dir = tmp_path / "data"
    write_trackingnet_train(data_dir / "trackingnet", chunks=(0,))
    (data_dir / "trackingnet" / "TEST" / "anno").mkdir(parents=True)
    (data_dir / "trackingnet" / "TEST" / "anno" / "x.txt").write_text("1,2,3,4\n")
    result = run_build_lmdb("trackingnet", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    store = LmdbStore(data_dir / "trackingnet_lmdb")
    assert store.list_dir("") == ["TRAIN_0"]  # TEST/ is not packed
    assert len(TrackingNet(store, set_ids=[0])) == 2
    again = run_build_lmdb("trackingnet", data_dir=data_dir)
    assert again.returncode == 1 and "already exists" in again.stderr and "--overwrite" in again.stderr
    assert run_build_lmdb("trackingnet", "--overwrite", data_dir=data_dir).returncode == 0
    missing = run_build_lmdb("got10k_val", data_dir=data_dir)
    assert missing.returncode == 1 and "GOT-10k" in missing.stderr and "does not exist" in missing.stderr
    write_got10k_train(data_dir / "got10k" / "val", num_sequences=1, prefix="GOT-10k_Val")
    custom = tmp_path / "elsewhere" / "val_lmdb"
    assert run_build_lmdb("got10k_val", "--dst", str(custom), data_dir=data_dir).returncode == 0
    assert Got10k(LmdbStore(custom)).sequence_name(0) == "GOT-10k_Val_000001"
