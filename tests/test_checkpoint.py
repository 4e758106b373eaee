"""Tests for the checkpoint code: safe loading of official checkpoints (lib.utils.checkpoint, lib.utils.safe_unpickle),
key-layout conversion (lib.models.fartrack.checkpoint_keys), checked loading (lib.utils.state_dict), saving."""
from __future__ import annotations

import builtins
import contextlib
import io
import os
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lib.models.fartrack.checkpoint_keys import convert_state_dict, has_masked_norm_keys
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file, save_checkpoint
from lib.utils.state_dict import LoadReport, extract_state_dict, group_keys, load_state_dict_report

DIM = 4
NUM_BLOCKS = 12
NUM_EXTENSION = 3


# ----------------------------------------------------------------------------------------------------------
# fake official classes (module lib.train.admin.*, importable only while pickling)


def _make_class(module: str, name: str, init=None) -> type:
    """A class that pickles as ``module.name`` (the official repo's classes do not exist in this project)."""
    cls = type(name, (), {"__init__": init} if init else {})
    cls.__module__ = module
    cls.__qualname__ = name
    return cls


def _meter_init(self, val=0.0):
    self.val, self.avg, self.sum, self.count = val, val, val, 1


def _stat_value_init(self, val=0.0):
    self.val, self.history = val, [val]


OFFICIAL_MODULES = {
    "lib.train.admin.settings": {"Settings": _make_class("lib.train.admin.settings", "Settings")},
    "lib.train.admin.local": {"EnvironmentSettings": _make_class("lib.train.admin.local", "EnvironmentSettings")},
    "lib.train.admin.stats": {
        "AverageMeter": _make_class("lib.train.admin.stats", "AverageMeter", _meter_init),
        "StatValue": _make_class("lib.train.admin.stats", "StatValue", _stat_value_init),
    },
}


@contextlib.contextmanager
def official_modules_registered(extra: dict[str, type] | None = None) -> Iterator[None]:
    """Register the fake official modules in sys.modules (for pickling only), removing them afterwards."""
    names = {module: dict(classes) for module, classes in OFFICIAL_MODULES.items()}  # never mutate the shared table
    for cls in (extra or {}).values():
        names.setdefault(cls.__module__, {})[cls.__qualname__] = cls
    saved = {name: sys.modules.get(name) for name in names}
    try:
        for name, classes in names.items():
            module = types.ModuleType(name)
            for class_name, cls in classes.items():
                setattr(module, class_name, cls)
            sys.modules[name] = module
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def save_as_official(obj, path: Path, extra: dict[str, type] | None = None, **save_kwargs) -> Path:
    with official_modules_registered(extra):
        torch.save(obj, path, **save_kwargs)
    return path


# ----------------------------------------------------------------------------------------------------------
# a tiny module with the official key names (spec section 4)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)


class _Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(DIM, 4 * DIM)
        self.fc2 = nn.Linear(4 * DIM, DIM)


class _MaskNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(DIM)


class _Block(nn.Module):
    def __init__(self, sparse: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = _Attention()
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = _Mlp()
        if sparse:
            self.masknorm1 = _MaskNorm()
            self.masknorm2 = _MaskNorm()


class _Backbone(nn.Module):
    def __init__(self, sparse: bool) -> None:
        super().__init__()
        self.output_bias = nn.Parameter(torch.randn(10))
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, DIM))
        if sparse:
            self.pos_embed_z = nn.Parameter(torch.randn(1, 2, DIM))
        self.pos_embed_z0 = nn.Parameter(torch.randn(1, 2, DIM))
        self.pos_embed_z1 = nn.Parameter(torch.randn(1, 2, DIM))
        self.pos_embed_x = nn.Parameter(torch.randn(1, 3, DIM))
        self.word_embeddings = nn.Embedding(10, DIM)
        self.position_embeddings = nn.Embedding(4, DIM)
        if sparse:
            self.prev_position_embeddings = nn.Embedding(12, DIM)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, DIM, 2, 2)
        self.blocks = nn.ModuleList(_Block(sparse) for _ in range(NUM_BLOCKS))
        self.extension = nn.ModuleList(_Block(sparse) for _ in range(NUM_EXTENSION))
        self.norm = nn.LayerNorm(DIM)


class TinyFARTrack(nn.Module):
    """Official state_dict key names with tiny shapes; ``sparse`` adds the FARTrackSparse keys."""

    def __init__(self, sparse: bool = False) -> None:
        super().__init__()
        self.identity = nn.Parameter(torch.randn(1, 6, DIM))
        self.backbone = _Backbone(sparse)
        with torch.no_grad():  # give the norms non-default values so copies are checkable
            for name, param in self.named_parameters():
                if ".norm" in name:
                    param.normal_()


@pytest.fixture
def dense_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return TinyFARTrack(sparse=False).state_dict()


def _official_checkpoint() -> dict:
    """An official-looking training checkpoint: settings with env, meters with numpy values, AdamW state."""
    torch.manual_seed(0)
    net = TinyFARTrack()
    blocks, rest = [], []
    for name, param in net.named_parameters():
        (blocks if ".blocks." in name else rest).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": blocks[:10]}, {"params": blocks[10:], "lr": 1e-5}, {"params": rest}], lr=4e-4, weight_decay=0.05
    )
    sum(p.sum() for p in net.parameters()).backward()
    optimizer.step()

    env = OFFICIAL_MODULES["lib.train.admin.local"]["EnvironmentSettings"]()
    env.workspace_dir = "/home/someone/FARTrack"
    env.got10k_dir = "/data/got10k/train"
    settings = OFFICIAL_MODULES["lib.train.admin.settings"]["Settings"]()
    settings.script_name, settings.config_name = "fartrack", "FARTrack_base_256"
    settings.local_rank, settings.use_lmdb, settings.env = -1, False, env
    stats_module = OFFICIAL_MODULES["lib.train.admin.stats"]
    stats = OrderedDict(train=OrderedDict([
        ("Loss/total", stats_module["AverageMeter"](np.float64(1.25))),
        ("IoU", stats_module["AverageMeter"](np.float64(0.5))),
        ("LearningRate/group0", stats_module["StatValue"](4e-4)),
    ]))
    return {
        "epoch": 500, "actor_type": "FARTrackActor", "net_type": "FARTrack", "net": net.state_dict(),
        "net_info": None, "constructor": None, "optimizer": optimizer.state_dict(), "stats": stats,
        "settings": settings,
    }


# ----------------------------------------------------------------------------------------------------------
# loading official checkpoints


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_official_checkpoint_loads_as_plain_data(tmp_path: Path, zip_format: bool) -> None:
    original = _official_checkpoint()
    path = save_as_official(original, tmp_path / "FARTrack_ep0500.pth.tar", _use_new_zipfile_serialization=zip_format)
    safe_before = set(torch.serialization.get_safe_globals())

    loaded = load_checkpoint_file(path)

    assert set(torch.serialization.get_safe_globals()) == safe_before  # registrations were temporary
    assert "lib.train.admin.settings" not in sys.modules  # the official module was never imported
    assert loaded["settings"] == {
        "__class__": "lib.train.admin.settings.Settings",
        "script_name": "fartrack", "config_name": "FARTrack_base_256", "local_rank": -1, "use_lmdb": False,
        "env": {
            "__class__": "lib.train.admin.local.EnvironmentSettings",
            "workspace_dir": "/home/someone/FARTrack", "got10k_dir": "/data/got10k/train",
        },
    }
    meter = loaded["stats"]["train"]["Loss/total"]
    assert meter == {
        "__class__": "lib.train.admin.stats.AverageMeter", "val": 1.25, "avg": 1.25, "sum": 1.25, "count": 1,
    }
    assert type(meter["val"]) is float
    assert loaded["stats"]["train"]["LearningRate/group0"]["history"] == [4e-4]
    assert (loaded["epoch"], loaded["net_type"], loaded["actor_type"]) == (500, "FARTrack", "FARTrackActor")
    assert loaded["net_info"] is None and loaded["constructor"] is None
    assert loaded["net"].keys() == original["net"].keys()
    for key, value in original["net"].items():
        assert torch.equal(loaded["net"][key], value)
    assert len(loaded["optimizer"]["param_groups"]) == 3
    for index, state in original["optimizer"]["state"].items():
        assert torch.equal(loaded["optimizer"]["state"][index]["exp_avg"], state["exp_avg"])


def test_numpy1_names_are_accepted(tmp_path: Path) -> None:
    """Official files were written with numpy 1.21, which names ``numpy.core.multiarray``."""
    modern = tmp_path / "modern.pth"
    torch.save({"v": np.float64(2.5), "a": np.arange(3.0)}, modern)
    old = tmp_path / "numpy1.pth"
    with zipfile.ZipFile(modern) as source, zipfile.ZipFile(old, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
            target.writestr(info.filename, data)
    assert "numpy.core.multiarray.scalar" in torch.serialization.get_unsafe_globals_in_checkpoint(str(old))
    assert load_checkpoint_file(old) == {"v": 2.5, "a": [0.0, 1.0, 2.0]}


def test_unknown_official_class_with_args_is_recorded(tmp_path: Path) -> None:
    """Any ``lib.*`` class is an inert record; REDUCE arguments are recorded, not executed."""
    cls = _make_class("lib.train.admin.extra", "Thing")
    cls.__reduce__ = lambda self: (type(self), ("a", 3), {"x": 1})
    path = save_as_official({"thing": cls()}, tmp_path / "thing.pth", extra={"Thing": cls})
    expected = {"__class__": "lib.train.admin.extra.Thing", "__args__": ["a", 3], "x": 1}
    assert load_checkpoint_file(path)["thing"] == expected


# ----------------------------------------------------------------------------------------------------------
# malicious payloads


class _Payload:
    """Pickles as a call of ``function(*args)``."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _payloads(marker: Path) -> dict[str, object]:
    command = f"touch {marker}"
    return {
        "os.system": _Payload(os.system, command),
        "eval": _Payload(builtins.eval, f"__import__('os').system({command!r})"),
        "exec": _Payload(builtins.exec, f"import os; os.system({command!r})"),
    }


def _assert_refused(path: Path, marker: Path, *names: str) -> str:
    """Loading ``path`` must raise a CheckpointError naming the file and a global, without running it."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert str(path) in message
    assert any(name in message for name in names), message
    assert "executed" in message
    assert not marker.exists()
    return message


@pytest.fixture
def forbid_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if anything tries to unpickle: the refusal must come from the static scan alone."""

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load must not be called for a refused file")

    monkeypatch.setattr(torch, "load", no_load)


@pytest.mark.parametrize("kind", ["os.system", "eval", "exec"])
def test_malicious_global_refused_before_unpickling(tmp_path: Path, kind: str, forbid_unpickling: None) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"net": {"w": torch.ones(1)}, "stats": _payloads(marker)[kind]}, path)
    name = {"os.system": "posix.system", "eval": "builtins.eval", "exec": "builtins.exec"}[kind]
    assert "NOT unpickled" in _assert_refused(path, marker, name)


def test_payload_nested_in_optimizer_state(tmp_path: Path, forbid_unpickling: None) -> None:
    marker = tmp_path / "marker"
    checkpoint = _official_checkpoint()
    checkpoint["optimizer"]["state"][0]["hidden"] = [{"deep": (1, [_payloads(marker)["os.system"]])}]
    path = save_as_official(checkpoint, tmp_path / "evil.pth")
    _assert_refused(path, marker, "posix.system")


def test_official_class_smuggling_os_system_is_refused(tmp_path: Path, forbid_unpickling: None) -> None:
    marker = tmp_path / "marker"
    cls = _make_class("lib.train.admin.settings", "Settings")
    cls.__reduce__ = lambda self: (type(self), (os.system, f"touch {marker}"), {"run": builtins.eval})
    path = save_as_official({"settings": cls()}, tmp_path / "evil.pth", extra={"Settings": cls})
    message = _assert_refused(path, marker, "posix.system")
    assert "builtins.eval" in message and "lib.train.admin.settings.Settings" not in message


@pytest.mark.parametrize("kind", ["os.system", "eval"])
def test_payload_in_legacy_format_refused_by_restricted_unpickler(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil_legacy.pth"
    torch.save({"x": _payloads(marker)[kind]}, path, _use_new_zipfile_serialization=False)
    _assert_refused(path, marker, "posix.system", "eval")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_payload_hidden_from_the_scanner_is_still_refused(tmp_path: Path) -> None:
    """Protocol 4 opcodes defeat the static scan; torch's restricted unpickler must still refuse the file."""
    marker = tmp_path / "marker"
    path = tmp_path / "evil_p4.pth"
    torch.save({"x": _payloads(marker)["os.system"]}, path, pickle_protocol=4)
    with pytest.raises(CheckpointError, match="restricted"):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pth"
    torch.save({"a": np.array([{"k": 1}], dtype=object)}, path)
    with pytest.raises(CheckpointError, match="ObjectDType"):
        load_checkpoint_file(path)


# ----------------------------------------------------------------------------------------------------------
# unreadable files


def _truncated(tmp_path: Path) -> Path:
    good = tmp_path / "good.pth"
    torch.save({"net": {"w": torch.randn(64, 64)}}, good)
    path = tmp_path / "truncated.pth"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


def _random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "random.pth"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _foreign_zip(tmp_path: Path) -> Path:
    path = tmp_path / "foreign.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    return path


def _plain_pickle(tmp_path: Path) -> Path:
    path = tmp_path / "plain.pkl"
    path.write_bytes(__import__("pickle").dumps({"a": 1}))
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pth"
    path.touch()
    return path


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "make, message",
    [
        (_truncated, "Cannot load"),
        (_random_bytes, "Cannot load"),
        (_foreign_zip, "Cannot load"),
        (_plain_pickle, "Cannot load"),
        (_empty, "is empty"),
        (lambda tmp_path: tmp_path / "missing.pth", "does not exist"),
        (lambda tmp_path: tmp_path, "is a directory"),
    ],
    ids=["truncated", "random", "foreign-zip", "plain-pickle", "empty", "missing", "directory"],
)
def test_unreadable_files_raise_checkpoint_error(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value)


def test_non_dict_checkpoint_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "tensor.pth"
    torch.save(torch.ones(3), path)
    with pytest.raises(CheckpointError, match="expected a checkpoint dict"):
        load_checkpoint_file(path)


# ----------------------------------------------------------------------------------------------------------
# state_dict extraction


def test_extract_state_dict_sources() -> None:
    weight = torch.ones(2)
    assert extract_state_dict({"net": {"module.a.b": weight}, "epoch": 3}) == {"a.b": weight}
    assert extract_state_dict({"model": {"module.model.blocks.0.x": weight}}) == {"blocks.0.x": weight}
    assert extract_state_dict({"model": {"model.cls_token": weight}}) == {"cls_token": weight}
    assert extract_state_dict({"state_dict": {"w": weight}}) == {"w": weight}
    assert extract_state_dict({"w": weight}) == {"w": weight}


def test_extract_state_dict_errors() -> None:
    with pytest.raises(CheckpointError, match="No state_dict found.*epoch"):
        extract_state_dict({"epoch": 3, "settings": {}})
    with pytest.raises(CheckpointError, match="non-tensor values at: a.b"):
        extract_state_dict({"net": {"a.b": 1.0, "w": torch.ones(1)}})
    with pytest.raises(CheckpointError, match="collides"):
        extract_state_dict({"net": {"module.w": torch.ones(1), "w": torch.ones(1)}})


def test_mae_checkpoint_round_trip(tmp_path: Path) -> None:
    weights = {"module.model.blocks.0.norm1.weight": torch.ones(3), "module.model.pos_embed": torch.zeros(1, 2, 3)}
    path = tmp_path / "mae_tiny_distill_400e.pth.tar"
    torch.save({"model": weights}, path)
    state_dict = extract_state_dict(load_checkpoint_file(path))
    assert sorted(state_dict) == ["blocks.0.norm1.weight", "pos_embed"]


# ----------------------------------------------------------------------------------------------------------
# key-layout conversion (dense <-> sparse masked-norm)


def test_dense_to_sparse_copies_norms(dense_state_dict: dict[str, torch.Tensor]) -> None:
    converted, keep_own, dropped = convert_state_dict(dense_state_dict, masked_norm=True)
    assert keep_own == ["backbone.prev_position_embeddings.weight"] and dropped == []
    for group, count in (("blocks", NUM_BLOCKS), ("extension", NUM_EXTENSION)):
        for index in range(count):
            for norm in (1, 2):
                for param in ("weight", "bias"):
                    source = dense_state_dict[f"backbone.{group}.{index}.norm{norm}.{param}"]
                    copy = converted[f"backbone.{group}.{index}.masknorm{norm}.norm.{param}"]
                    assert torch.equal(copy, source) and copy.data_ptr() != source.data_ptr()
    assert torch.equal(converted["backbone.pos_embed_z"], dense_state_dict["backbone.pos_embed_z0"])
    assert has_masked_norm_keys(converted)

    torch.manual_seed(1)
    sparse = TinyFARTrack(sparse=True)
    own_prev = sparse.backbone.prev_position_embeddings.weight.detach().clone()
    report = load_state_dict_report(sparse, converted, allow_missing=keep_own)
    assert report.ok and report.allowed_missing == keep_own
    assert torch.equal(sparse.backbone.prev_position_embeddings.weight, own_prev)
    assert torch.equal(sparse.backbone.blocks[3].masknorm2.norm.bias, dense_state_dict["backbone.blocks.3.norm2.bias"])


def test_sparse_to_dense_drops_sparse_keys() -> None:
    sparse_state_dict = TinyFARTrack(sparse=True).state_dict()
    converted, keep_own, dropped = convert_state_dict(sparse_state_dict, masked_norm=False)
    per_block = 4
    assert len(dropped) == (NUM_BLOCKS + NUM_EXTENSION) * per_block + 2
    assert {"backbone.pos_embed_z", "backbone.prev_position_embeddings.weight"} <= set(dropped)
    assert keep_own == [] and not has_masked_norm_keys(converted)
    assert load_state_dict_report(TinyFARTrack(sparse=False), converted).ok


def test_same_layout_is_unchanged(dense_state_dict: dict[str, torch.Tensor]) -> None:
    sparse_state_dict = TinyFARTrack(sparse=True).state_dict()
    for state_dict, masked_norm in ((dense_state_dict, False), (sparse_state_dict, True)):
        converted, keep_own, dropped = convert_state_dict(state_dict, masked_norm)
        assert converted == state_dict and converted is not state_dict
        assert keep_own == [] and dropped == []


# ----------------------------------------------------------------------------------------------------------
# checked loading and the report


def test_group_keys_formats_index_sets() -> None:
    keys = [f"backbone.blocks.{i}.masknorm1.norm.{p}" for i in range(12) for p in ("weight", "bias")]
    keys += [f"layer.{i}.w" for i in (0, 1, 2, 4, 6, 7)] + ["single.5.x"]
    assert group_keys(keys) == [
        "backbone.blocks.{0..11}.masknorm1.norm.{weight,bias}",
        "layer.{0..2,4,6,7}.w",
        "single.5.x",
    ]


def test_missing_keys_are_grouped_in_the_error(dense_state_dict: dict[str, torch.Tensor]) -> None:
    with pytest.raises(CheckpointError) as info:
        load_state_dict_report(TinyFARTrack(sparse=True), dense_state_dict)
    message = str(info.value)
    assert "backbone.blocks.{0..11}.masknorm1.norm.{weight,bias}" in message
    assert "backbone.extension.{0..2}.masknorm2.norm.{weight,bias}" in message
    assert "backbone.pos_embed_z\n" in message + "\n"
    assert len(message.splitlines()) < 12  # 60 masknorm keys fit on a few lines


def test_strict_load_raises_on_unexpected_and_misshaped(dense_state_dict: dict[str, torch.Tensor]) -> None:
    state_dict = dict(dense_state_dict)
    state_dict["backbone.extra.weight"] = torch.zeros(1)
    state_dict["identity"] = torch.zeros(1, 2, DIM)
    module = TinyFARTrack()
    before = module.backbone.norm.weight.detach().clone()
    with pytest.raises(CheckpointError) as info:
        load_state_dict_report(module, state_dict)
    message = str(info.value)
    assert "1 unexpected, 1 mis-shaped" in message
    assert "backbone.extra.weight" in message
    assert f"identity: checkpoint [1, 2, {DIM}] vs model [1, 6, {DIM}]" in message
    assert torch.equal(module.backbone.norm.weight, before)  # nothing loaded


def test_non_strict_load_loads_matching_keys(dense_state_dict: dict[str, torch.Tensor]) -> None:
    state_dict = dict(dense_state_dict)
    del state_dict["backbone.norm.bias"]
    state_dict["identity"] = torch.zeros(1, 2, DIM)
    module = TinyFARTrack()
    report = load_state_dict_report(module, state_dict, strict=False)
    assert isinstance(report, LoadReport) and not report.ok
    assert report.missing == ["backbone.norm.bias"]
    assert [mismatch.key for mismatch in report.mismatched] == ["identity"]
    assert report.unexpected == []
    assert torch.equal(module.backbone.norm.weight, dense_state_dict["backbone.norm.weight"])
    assert "missing in the checkpoint" in str(report)


def test_bad_values_are_named(dense_state_dict: dict[str, torch.Tensor]) -> None:
    with_nan = dict(dense_state_dict)
    for index in (0, 1):
        with_nan[f"backbone.blocks.{index}.attn.qkv.weight"] = torch.full((3 * DIM, DIM), float("nan"))
    with_nan["backbone.norm.bias"] = torch.full((DIM,), float("inf"))
    expected = r"NaN or inf: backbone\.blocks\.\{0,1\}\.attn\.qkv\.weight; backbone\.norm\.bias"
    with pytest.raises(CheckpointError, match=expected):
        load_state_dict_report(TinyFARTrack(), with_nan)
    with pytest.raises(CheckpointError, match="not tensors: identity"):
        load_state_dict_report(TinyFARTrack(), {**dense_state_dict, "identity": [1.0]})


# ----------------------------------------------------------------------------------------------------------
# saving


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TinyFARTrack()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    net.identity.sum().backward()
    optimizer.step()
    path = tmp_path / "checkpoints" / "FARTrack_ep0005.pth.tar"
    written = save_checkpoint(
        path, net=nn.DataParallel(net), epoch=5, net_type="FARTrack", actor_type="FARTrackActor",
        optimizer=optimizer,
        extra={"stats": {"train": {"Loss/total": np.float64(0.5)}}, "settings": {"script_name": "fartrack"}},
    )
    assert written == path
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    loaded = load_checkpoint_file(path)
    assert list(loaded) == [
        "epoch", "actor_type", "net_type", "net", "net_info", "constructor", "optimizer", "stats", "settings",
    ]
    assert (loaded["epoch"], loaded["net_type"], loaded["actor_type"]) == (5, "FARTrack", "FARTrackActor")
    assert loaded["stats"] == {"train": {"Loss/total": 0.5}} and loaded["settings"] == {"script_name": "fartrack"}
    assert type(loaded["stats"]["train"]["Loss/total"]) is float
    assert not any(key.startswith("module.") for key in loaded["net"])
    assert load_state_dict_report(TinyFARTrack(), extract_state_dict(loaded)).ok
    for key, value in net.state_dict().items():
        assert torch.equal(loaded["net"][key], value)
    assert loaded["optimizer"]["param_groups"][0]["lr"] == 1e-4
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


def test_save_rejects_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    with pytest.raises(CheckpointError, match=r"stats\['meter'\] is a .*_Payload"):
        save_checkpoint(path, net={"w": torch.ones(1)}, epoch=1, net_type="FARTrack", actor_type="A",
                        extra={"stats": {"meter": _Payload(print)}})
    with pytest.raises(CheckpointError, match="must not override"):
        save_checkpoint(path, net={"w": torch.ones(1)}, epoch=1, net_type="FARTrack", actor_type="A",
                        extra={"net": {}})
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, net={"w": torch.ones(1)}, epoch=1, net_type="FARTrack", actor_type="A")
    previous = path.read_bytes()

    def failing_save(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, net={"w": torch.zeros(1)}, epoch=2, net_type="FARTrack", actor_type="A")
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == [path.name]


def test_saved_state_dict_prefixes_are_stripped(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pth", net={"module.w": torch.ones(1)}, epoch=0, net_type="X", actor_type="Y")
    buffer = io.BytesIO(path.read_bytes())
    assert list(torch.load(buffer, weights_only=True)["net"]) == ["w"]


def test_save_rejects_bad_state_dicts(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    with pytest.raises(CheckpointError, match="non-tensor values at: w"):
        save_checkpoint(path, net={"w": 1.0}, epoch=1, net_type="X", actor_type="Y")
    with pytest.raises(CheckpointError, match="collides"):
        save_checkpoint(path, net={"module.w": torch.ones(1), "w": torch.ones(1)}, epoch=1, net_type="X",
                        actor_type="Y")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------------------
# the general safe unpickler and the module boundaries


def test_safe_unpickle_records_the_configured_package_only(tmp_path: Path) -> None:
    from lib.utils.safe_unpickle import RecordPolicy, SafeLoadError, load_inert, to_plain

    cls = _make_class("otherpkg", "Thing")
    path = tmp_path / "other.pth"
    with official_modules_registered({"Thing": cls}):
        obj = cls()
        obj.x = np.float32(1.5)
        torch.save({"thing": obj}, path)
    with pytest.raises(SafeLoadError, match=r"otherpkg\.Thing.*NOT unpickled"):
        load_inert(path, RecordPolicy(package="lib"))
    loaded = load_inert(path, RecordPolicy(package="otherpkg"))
    assert type(loaded["thing"]).official_name == "otherpkg.Thing"
    assert to_plain(loaded) == {"thing": {"__class__": "otherpkg.Thing", "x": 1.5}}
    assert "otherpkg" not in sys.modules


def test_checkpoint_utils_import_no_model_or_family_code() -> None:
    """lib/utils sits below the models and the family records: no import cycle through them."""
    modules = ("lib.utils.safe_unpickle", "lib.utils.state_dict", "lib.utils.checkpoint")
    code = (
        f"import sys, importlib\n"
        f"for name in {modules!r}:\n"
        f"    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.startswith(('lib.models', 'lib.families')))\n"
        f"assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
