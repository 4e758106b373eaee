"""Tests of the configuration system (lib/config) and the experiment YAMLs (spec §2)."""
from __future__ import annotations

import copy
import os
import pickle
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from lib.config.loader import (EXPERIMENTS_DIR, Config, ConfigError, default_config, load_config,
                               resolve_config_path)

ALL_YAMLS = sorted(EXPERIMENTS_DIR.glob("*/*.yaml"))
DISTILL_CKPT = "checkpoints/train/fartrack/fartrack_tiny_224_full/FARTrack_ep0500.pth.tar"
SPARSE_CKPT = "checkpoints/train/fartrack_distill/fartrack_distill_224_full/FARTrackDistill_ep0435.pth.tar"

# Merged values of the official YAMLs (spec §2.1), one column per file.
EXPECTED = {
    ("fartrack", "fartrack_tiny_224_full"): {
        "TRAIN.LR": 4e-4, "TRAIN.BACKBONE_MULTIPLIER": 0.1, "TRAIN.WEIGHT_DECAY": 1e-4, "TRAIN.EPOCH": 500,
        "TRAIN.LR_DROP_EPOCH": 400, "TRAIN.BATCH_SIZE": 32, "TRAIN.NUM_WORKER": 12, "TRAIN.L1_WEIGHT": 0.0,
        "TRAIN.GIOU_WEIGHT": 2.0, "TRAIN.SCORE_WEIGHT": 0.0, "TRAIN.PRINT_INTERVAL": 600,
        "TRAIN.VAL_EPOCH_INTERVAL": 50, "TRAIN.SCHEDULER.DECAY_RATE": 0.1, "TRAIN.GRAD_CLIP_NORM": 0.1,
        "DATA.SEARCH.NUMBER": 1, "DATA.SEARCH.CENTER_JITTER": 3.5, "DATA.SEARCH.SCALE_JITTER": 0.5,
        "DATA.SEARCH.FACTOR": 4.0, "DATA.SEARCH.SIZE": 224, "DATA.TEMPLATE.NUMBER": 5, "DATA.TEMPLATE.SIZE": 112,
        "DATA.MAX_SAMPLE_INTERVAL": 300, "DATA.TRAIN.SAMPLE_PER_EPOCH": 76800,
        "DATA.TRAIN.DATASETS_NAME": ["LASOT", "GOT10K_vottrain", "COCO17", "TRACKINGNET"],
        "DATA.TRAIN.DATASETS_RATIO": [1, 1, 1, 1], "DATA.VAL.DATASETS_NAME": ["GOT10K_votval"],
        "MODEL.BINS": 300, "MODEL.RANGE": 2, "MODEL.EXTENSION": 3, "MODEL.DEPTH": 15,
        "MODEL.BACKBONE.TYPE": "vit_tiny_patch16_224", "MODEL.PRETRAIN_FILE": "mae_tiny_distill_400e.pth.tar",
        "MODEL.PRETRAIN_PTH": "", "TEST.EPOCH": 500, "TEST.SEARCH_FACTOR": 4.0, "TEST.SEARCH_SIZE": 224,
        "TEST.TEMPLATE_FACTOR": 2.0, "TEST.TEMPLATE_SIZE": 112,
    },
    ("fartrack_distill", "fartrack_distill_224_full"): {
        "TRAIN.LR": 4e-5, "TRAIN.BACKBONE_MULTIPLIER": 1.0, "TRAIN.WEIGHT_DECAY": 1e-4, "TRAIN.EPOCH": 500,
        "TRAIN.LR_DROP_EPOCH": 400, "TRAIN.BATCH_SIZE": 32, "TRAIN.NUM_WORKER": 10, "TRAIN.L1_WEIGHT": 0.0,
        "TRAIN.SCORE_WEIGHT": 0.0, "TRAIN.PRINT_INTERVAL": 50, "TRAIN.VAL_EPOCH_INTERVAL": 20,
        "DATA.SEARCH.NUMBER": 1, "DATA.SEARCH.CENTER_JITTER": 3.5, "DATA.SEARCH.SIZE": 224,
        "DATA.TEMPLATE.NUMBER": 5, "DATA.MAX_SAMPLE_INTERVAL": 200, "DATA.TRAIN.SAMPLE_PER_EPOCH": 76800,
        "DATA.TRAIN.DATASETS_NAME": ["LASOT", "GOT10K_vottrain", "COCO17", "TRACKINGNET"],
        "DATA.TRAIN.DATASETS_RATIO": [1, 1, 1, 1], "MODEL.BINS": 300, "MODEL.DEPTH": 15,
        "MODEL.PRETRAIN_FILE": "mae_tiny_distill_400e.pth.tar", "MODEL.PRETRAIN_PTH": DISTILL_CKPT,
        "TEST.EPOCH": 500, "TEST.SEARCH_SIZE": 224, "TEST.TEMPLATE_SIZE": 112,
    },
    ("fartrack_sparse", "fartrack_sparse_224_full"): {
        "TRAIN.LR": 4e-6, "TRAIN.BACKBONE_MULTIPLIER": 0.1, "TRAIN.WEIGHT_DECAY": 0.05, "TRAIN.EPOCH": 20,
        "TRAIN.LR_DROP_EPOCH": 999, "TRAIN.BATCH_SIZE": 8, "TRAIN.NUM_WORKER": 12, "TRAIN.L1_WEIGHT": 0.0,
        "TRAIN.SCORE_WEIGHT": 1.0, "TRAIN.PRINT_INTERVAL": 1, "TRAIN.VAL_EPOCH_INTERVAL": 10,
        "TRAIN.SCHEDULER.DECAY_RATE": 0.05, "DATA.SEARCH.NUMBER": 32, "DATA.SEARCH.CENTER_JITTER": 3,
        "DATA.SEARCH.SCALE_JITTER": 0.25, "DATA.SEARCH.SIZE": 224, "DATA.TEMPLATE.NUMBER": 5,
        "DATA.MAX_SAMPLE_INTERVAL": 200, "DATA.MAX_GAP": 300, "DATA.MAX_INTERVAL": 5, "DATA.INTERVAL_PROB": 0.0,
        "DATA.TEMP": 2, "DATA.TRAIN.SAMPLE_PER_EPOCH": 1000,
        "DATA.TRAIN.DATASETS_NAME": ["LASOT", "GOT10K_vottrain", "TRACKINGNET"],
        "DATA.TRAIN.DATASETS_RATIO": [1, 1, 1], "DATA.VAL.DATASETS_NAME": ["GOT10K_official_val"],
        "MODEL.BINS": 300, "MODEL.PRENUM": 3, "MODEL.BACKBONE.PATCHSIZE": 16, "MODEL.DEPTH": 15,
        "MODEL.DECODER.DEPTH": 8, "MODEL.PRETRAIN_PTH": SPARSE_CKPT, "MODEL.SPARSE.TRAIN_PRUNE_RATIO": 0.25,
        "MODEL.SPARSE.TEST_PRUNE_RATIO": 0.25, "TEST.EPOCH": 15, "TEST.SEARCH_FACTOR": 4.0,
    },
}


def get(cfg: Config, dotted: str) -> Any:
    """Value of a dotted key."""
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def strings(value: Any) -> Iterator[str]:
    """All string leaves of nested YAML data."""
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def sparse_data() -> dict[str, Any]:
    """Plain data of the official sparse YAML, to derive temporary YAMLs from."""
    return yaml.safe_load((EXPERIMENTS_DIR / "fartrack_sparse/fartrack_sparse_224_full.yaml").read_text())


# --- the experiment files -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_YAMLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_yaml_loads(path: Path) -> None:
    cfg = load_config(path.parent.name, path.stem)
    assert (cfg.script, cfg.name, cfg.source) == (path.parent.name, path.stem, path.resolve())
    assert cfg.frozen


def test_expected_yaml_set() -> None:
    names = {f"{p.parent.name}/{p.stem}" for p in ALL_YAMLS}
    assert names >= {
        "fartrack/fartrack_tiny_224_full", "fartrack_distill/fartrack_distill_224_full",
        "fartrack_sparse/fartrack_sparse_224_full", "fartrack_distill/fartrack_distill_nano_224_full",
        "fartrack_distill/fartrack_distill_pico_224_full", "fartrack_sparse/fartrack_sparse_nano_224_full",
        "fartrack_sparse/fartrack_sparse_pico_224_full"}


@pytest.mark.parametrize("script,name", list(EXPECTED))
def test_official_merged_values(script: str, name: str) -> None:
    cfg = load_config(script, name)
    for key, expected in EXPECTED[(script, name)].items():
        value = get(cfg, key)
        assert value == expected, key
        assert type(value) is type(get(default_config(script), key)), f"{key}: stored type differs from schema"


@pytest.mark.parametrize("script", ["fartrack_distill", "fartrack_sparse"])
@pytest.mark.parametrize("variant,depth", [("nano", 10), ("pico", 6)])
def test_nano_pico_differ_only_in_depth(script: str, variant: str, depth: int) -> None:
    full = load_config(script, f"{script}_224_full").to_dict()
    small = load_config(script, f"{script}_{variant}_224_full").to_dict()
    assert small["MODEL"].pop("DEPTH") == depth
    assert full["MODEL"].pop("DEPTH") == 15
    assert small == full


@pytest.mark.parametrize("path", ALL_YAMLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_absolute_paths(path: Path) -> None:
    text = path.read_text()
    for value in strings(yaml.safe_load(text)):
        assert not (os.path.isabs(value) or value.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", value)), value
    assert not re.search(r"(?:^|[\s\"'])/[\w.-]+/", text), "absolute path in the text (comments included)"


# --- defaults ------------------------------------------------------------------------------------------------------
def test_default_schema() -> None:
    base, distill, sparse = (default_config(s) for s in ("fartrack", "fartrack_distill", "fartrack_sparse"))
    assert base == distill
    assert base.MODEL.BINS == 400 and base.TRAIN.LR == 1e-4 and base.DATA.SEARCH.SIZE == 256
    assert base.MODEL.DEPTH == 15 and base.MODEL.SPARSE.TEST_PRUNE_RATIO == 0.25
    assert "PRENUM" not in base.MODEL and "MAX_GAP" not in base.DATA
    assert sparse.TRAIN.SCORE_WEIGHT == 1.0 and base.TRAIN.SCORE_WEIGHT == 0.0
    assert sparse.MODEL.PRENUM == 7 and sparse.MODEL.BACKBONE.PATCHSIZE == 16
    assert sparse.MODEL.DECODER.to_dict() == {"TYPE": "mask", "MASK_RATIO": 0.75, "EMBEDDIM": 512, "DEPTH": 8,
                                              "NUMHEADS": 16, "MLPRATIO": 4.0}
    assert (sparse.DATA.MAX_GAP, sparse.DATA.MAX_INTERVAL, sparse.DATA.INTERVAL_PROB, sparse.DATA.TEMP) == (
        300, 5, 0.0, 2)
    assert default_config("fartrack").frozen and default_config("fartrack").source is None
    with pytest.raises(ConfigError, match="unknown script"):
        default_config("fartrack_seq")


# --- resolving -----------------------------------------------------------------------------------------------------
def test_resolve_config_path(tmp_path: Path) -> None:
    expected = EXPERIMENTS_DIR / "fartrack" / "fartrack_tiny_224_full.yaml"
    assert resolve_config_path("fartrack", "fartrack_tiny_224_full") == expected
    assert resolve_config_path("fartrack", "fartrack_tiny_224_full.yaml") == expected
    assert resolve_config_path("fartrack", expected) == expected
    with pytest.raises(FileNotFoundError, match="fartrack_tiny_224_full"):
        resolve_config_path("fartrack", "no_such_config")
    with pytest.raises(FileNotFoundError):
        resolve_config_path("fartrack", tmp_path / "missing.yaml")


# --- errors --------------------------------------------------------------------------------------------------------
def test_unknown_yaml_key_names_key_and_file(tmp_path: Path, sparse_data: dict[str, Any]) -> None:
    sparse_data["MODEL"]["BACKBONE"]["NOT_A_KEY"] = 1
    path = write_yaml(tmp_path / "bad.yaml", sparse_data)
    with pytest.raises(ConfigError) as info:
        load_config("fartrack_sparse", path)
    assert "MODEL.BACKBONE.NOT_A_KEY" in str(info.value) and str(path) in str(info.value)


def test_sparse_only_key_is_unknown_for_dense_script(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "dense.yaml", {"MODEL": {"PRENUM": 3}})
    with pytest.raises(ConfigError, match="MODEL.PRENUM"):
        load_config("fartrack", path)


def test_unknown_opts_key() -> None:
    for key in ("MODEL.NOT_A_KEY", "NOPE.BINS", "MODEL.BINS.DEEPER"):
        with pytest.raises(ConfigError, match=re.escape(key) + r".*command line"):
            load_config("fartrack", "fartrack_tiny_224_full", [key, "1"])
    with pytest.raises(ConfigError, match="pairs"):
        load_config("fartrack", "fartrack_tiny_224_full", ["MODEL.BINS"])


@pytest.mark.parametrize("section,key,value,expected", [
    ("TRAIN", "LR", "fast", "float"),
    ("TRAIN", "BATCH_SIZE", 8.5, "int"),
    ("TRAIN", "AMP", 1, "bool"),
    ("DATA", "MEAN", 0.5, "list"),
    ("MODEL", "BACKBONE", "vit", "section"),
])
def test_wrong_yaml_type(tmp_path: Path, sparse_data: dict[str, Any], section: str, key: str, value: Any,
                         expected: str) -> None:
    sparse_data[section][key] = value
    path = write_yaml(tmp_path / "typed.yaml", sparse_data)
    with pytest.raises(ConfigError, match=rf"{section}\.{key}.*{re.escape(str(path))}.*{expected}"):
        load_config("fartrack_sparse", path)


def test_wrong_list_element_type(tmp_path: Path, sparse_data: dict[str, Any]) -> None:
    sparse_data["DATA"]["TRAIN"]["DATASETS_NAME"] = ["LASOT", 3, "TRACKINGNET"]
    with pytest.raises(ConfigError, match="DATA.TRAIN.DATASETS_NAME"):
        load_config("fartrack_sparse", write_yaml(tmp_path / "list.yaml", sparse_data))


def test_wrong_opts_type() -> None:
    with pytest.raises(ConfigError, match="TRAIN.BATCH_SIZE.*command line"):
        load_config("fartrack", "fartrack_tiny_224_full", ["TRAIN.BATCH_SIZE", "8.5"])
    with pytest.raises(ConfigError, match="DATA.TRAIN.DATASETS_NAME"):
        load_config("fartrack", "fartrack_tiny_224_full", ["DATA.TRAIN.DATASETS_NAME", "LASOT"])


@pytest.mark.parametrize("depth", ["0", "16", "-1"])
def test_depth_out_of_range(depth: str) -> None:
    with pytest.raises(ConfigError, match="MODEL.DEPTH"):
        load_config("fartrack_distill", "fartrack_distill_224_full", ["MODEL.DEPTH", depth])
    assert load_config("fartrack_distill", "fartrack_distill_224_full",
                       ["MODEL.EXTENSION", "4", "MODEL.DEPTH", "16"]).MODEL.DEPTH == 16


@pytest.mark.parametrize("opts,match", [
    (["MODEL.BACKBONE.TYPE", "vit_base_patch16_224"], "MODEL.BACKBONE.TYPE"),
    (["DATA.SEARCH.SIZE", "230", "TEST.SEARCH_SIZE", "230"], "DATA.SEARCH.SIZE"),
    (["TEST.TEMPLATE_SIZE", "128"], "TEST.TEMPLATE_SIZE"),
    (["DATA.TRAIN.DATASETS_RATIO", "[1, 1]"], "DATASETS_RATIO"),
    (["MODEL.SPARSE.TEST_PRUNE_RATIO", "1.0"], "TEST_PRUNE_RATIO"),
])
def test_cross_field_validation(opts: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config("fartrack_sparse", "fartrack_sparse_224_full", opts)


def test_yaml_must_override_backbone_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vit_tiny_patch16_224"):
        load_config("fartrack", write_yaml(tmp_path / "empty.yaml", {}))


# --- opts ----------------------------------------------------------------------------------------------------------
def test_opts_override_with_type_parsing() -> None:
    cfg = load_config("fartrack", "fartrack_tiny_224_full", [
        "TRAIN.LR", "4e-4", "TRAIN.BATCH_SIZE", "1", "TRAIN.GIOU_WEIGHT", "3", "TRAIN.AMP", "True",
        "DATA.TRAIN.DATASETS_NAME", "[LASOT, COCO17]", "DATA.TRAIN.DATASETS_RATIO", "[1, 2]",
        "MODEL.PRETRAIN_PTH", "0001", "MODEL.SPARSE", "{TEST_PRUNE_RATIO: 0}"])
    assert cfg.TRAIN.LR == 4e-4 and type(cfg.TRAIN.LR) is float
    assert cfg.TRAIN.BATCH_SIZE == 1 and type(cfg.TRAIN.BATCH_SIZE) is int
    assert cfg.TRAIN.GIOU_WEIGHT == 3.0 and type(cfg.TRAIN.GIOU_WEIGHT) is float
    assert cfg.TRAIN.AMP is True
    assert cfg.DATA.TRAIN.DATASETS_NAME == ["LASOT", "COCO17"] and cfg.DATA.TRAIN.DATASETS_RATIO == [1, 2]
    assert cfg.MODEL.PRETRAIN_PTH == "0001"
    assert cfg.MODEL.SPARSE.TEST_PRUNE_RATIO == 0.0 and cfg.MODEL.SPARSE.TRAIN_PRUNE_RATIO == 0.25


def test_exponent_floats_in_yaml(tmp_path: Path, sparse_data: dict[str, Any]) -> None:
    text = re.sub(r"(?m)^(\s+)LR: .*$", r"\1LR: 4e-6", yaml.safe_dump(sparse_data))
    assert "LR: 4e-6" in text
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    assert load_config("fartrack_sparse", path).TRAIN.LR == 4e-6


# --- objects -------------------------------------------------------------------------------------------------------
def test_frozen() -> None:
    cfg = load_config("fartrack", "fartrack_tiny_224_full")
    with pytest.raises(ConfigError, match="frozen"):
        cfg.MODEL.BINS = 1
    with pytest.raises(ConfigError, match="frozen"):
        cfg["TRAIN"]["LR"] = 1.0
    with pytest.raises(ConfigError, match="frozen"):
        cfg.DATA.MEAN.append(0.5)
    with pytest.raises(ConfigError, match="frozen"):
        cfg.TRAIN.update(LR=1.0)
    with pytest.raises(ConfigError, match="frozen"):
        del cfg.TEST
    with pytest.raises(AttributeError):
        cfg.MODEL.NOT_A_KEY  # noqa: B018
    assert cfg.MODEL.BINS == cfg["MODEL"]["BINS"] == 300


def test_independent_copies_and_clones() -> None:
    first = load_config("fartrack", "fartrack_tiny_224_full")
    second = load_config("fartrack", "fartrack_tiny_224_full")
    assert first == second and first is not second and first.DATA.MEAN is not second.DATA.MEAN

    mutable = first.copy()
    assert not mutable.frozen
    mutable.MODEL.BINS = 7
    mutable.DATA.MEAN.append(1.0)
    assert first.MODEL.BINS == 300 and len(first.DATA.MEAN) == 3

    clone = first.clone(["MODEL.BINS", "100", "TRAIN.LR", "1e-3"])
    assert clone.frozen and clone.MODEL.BINS == 100 and clone.TRAIN.LR == 1e-3
    assert (clone.script, clone.name, clone.source) == (first.script, first.name, first.source)
    assert first.MODEL.BINS == 300 and first.TRAIN.LR == 4e-4
    assert load_config("fartrack", "fartrack_tiny_224_full") == second
    with pytest.raises(ConfigError, match="MODEL.DEPTH"):
        first.clone(["MODEL.DEPTH", "99"])
    assert default_config("fartrack").clone(["MODEL.BINS", "3"]).MODEL.BINS == 3


def test_to_dict_and_pickle() -> None:
    cfg = load_config("fartrack_sparse", "fartrack_sparse_224_full")
    data = cfg.to_dict()
    assert type(data) is dict and type(data["MODEL"]["BACKBONE"]) is dict and type(data["DATA"]["MEAN"]) is list
    assert "script" not in data and "source" not in data
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    for restored in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert restored == cfg and restored.frozen and restored.source == cfg.source
