"""How ``auto`` picks the fast path's kernels: timed on the machine at hand (``lib.test.tracker.calibration``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lib.test.tracker.backends as backends
from lib.api import load_network
from lib.config.loader import load_config
from lib.families import OFFICIAL_CONFIGS
from lib.models.onednn import OneDNNLinear, onednn_available
from lib.test import profiling
from lib.test.evaluation.running import track_sequence
from lib.test.tracker import calibration
from lib.test.tracker.backends import InferenceOptions, TorchBackend
from lib.test.tracker.calibration import KernelShapes
from lib.test.tracker.fartrack import FARTrackTracker, TrackerParams
from test_tracker import real_sequence

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN CPU kernels")
CPU = torch.device("cpu")


class FakeTimer:
    """Stands in for ``calibration.measure``: every call of a candidate 'takes' the given milliseconds."""

    def __init__(self, attention: dict[str, float], linear: dict[str, float]) -> None:
        self.ms = {"attention": attention, "linear": linear}
        self.calls: list[tuple[str, str]] = []

    def __call__(self, kind, candidate, call, device):
        self.calls.append((kind, candidate))
        return self.ms[kind][candidate] / 1000.0


@pytest.fixture
def measured_cpu(monkeypatch):
    """An x86-64 CPU with oneDNN, an empty calibration cache and no FARTRACK_AUTO_* override."""
    monkeypatch.setattr(backends.platform, "machine", lambda: "x86_64")
    for name in calibration.ENV_VARS.values():
        monkeypatch.delenv(name, raising=False)
    calibration.clear_cache()
    yield monkeypatch
    calibration.clear_cache()


def fake(monkeypatch, attention, linear) -> FakeTimer:
    timer = FakeTimer(attention, linear)
    monkeypatch.setattr(calibration, "measure", timer)
    return timer


@needs_onednn
def test_auto_takes_the_fastest_measured_kernels_and_measures_once(measured_cpu):
    timer = fake(measured_cpu, {"explicit": 3.0, "sdpa": 1.0, "onednn": 2.0}, {"torch": 2.0, "onednn": 1.5})
    choice = InferenceOptions().kernel_choice(CPU)
    assert (choice.attention.chosen, choice.linear.chosen) == ("sdpa", "onednn")
    assert choice.attention.how == choice.linear.how == "measured"
    assert choice.attention.times_ms == {"explicit": 3.0, "sdpa": 1.0, "onednn": 2.0}
    assert choice.linear.times_ms == {"torch": 2.0, "onednn": 1.5}
    rounds = calibration.ROUNDS + calibration.WARMUP_ROUNDS
    assert len(timer.calls) == rounds * 5 and choice.calibration_ms > 0
    assert timer.calls[:3] == [("attention", "explicit"), ("attention", "sdpa"), ("attention", "onednn")]  # interleaved
    # cached per process: the same device / precision / threads / shapes are not timed again
    again = InferenceOptions().kernel_choice(CPU)
    assert len(timer.calls) == rounds * 5 and again.calibration_ms == 0.0 and again.attention == choice.attention
    assert InferenceOptions().resolved(CPU) == InferenceOptions(attention="sdpa", linear="onednn")
    # other shapes (the sparse network's score row) or another precision: measured anew
    InferenceOptions().kernel_choice(CPU, KernelShapes(score_query=258))
    assert len(timer.calls) == 2 * rounds * 5
    timer.ms = {"attention": {"explicit": 1.0, "sdpa": 1.0, "onednn": 2.0}, "linear": {"torch": 1.0, "onednn": 1.2}}
    bf16 = InferenceOptions(precision="bf16").resolved(CPU)
    assert (bf16.attention, bf16.linear) == ("explicit", "torch")  # a tie goes to the first candidate listed


@needs_onednn
def test_named_kernels_and_the_faithful_path_are_never_timed(measured_cpu):
    timer = fake(measured_cpu, {}, {})
    chosen = InferenceOptions(attention="sdpa", linear="torch")
    assert chosen.resolved(CPU) == chosen
    assert InferenceOptions.faithful().resolved(CPU) == InferenceOptions.faithful()
    assert chosen.kernel_choice(CPU).attention.how == "requested" and timer.calls == []
    # half named: only the other half is timed
    timer.ms["linear"] = {"torch": 1.0, "onednn": 2.0}
    half = InferenceOptions(attention="onednn").kernel_choice(CPU)
    assert (half.attention.how, half.linear.how, half.linear.chosen) == ("requested", "measured", "torch")
    assert {kind for kind, _ in timer.calls} == {"linear"}


@needs_onednn
def test_int8_keeps_its_quantised_linears_and_times_the_attention(measured_cpu):
    fake(measured_cpu, {"explicit": 1.0, "sdpa": 2.0, "onednn": 3.0}, {})
    choice = InferenceOptions(precision="int8").kernel_choice(CPU)
    assert (choice.attention.chosen, choice.attention.how) == ("explicit", "measured")
    assert (choice.linear.chosen, choice.linear.how) == ("torch", "rule") and "int8" in choice.linear.note


@needs_onednn
def test_environment_forces_auto_and_is_validated(measured_cpu):
    timer = fake(measured_cpu, {}, {})
    measured_cpu.setenv("FARTRACK_AUTO_ATTENTION", "onednn")
    measured_cpu.setenv("FARTRACK_AUTO_LINEAR", "onednn")
    choice = InferenceOptions().kernel_choice(CPU)  # the rule before measurement (AMD EPYC)
    assert (choice.attention.chosen, choice.linear.chosen) == ("onednn", "onednn") and timer.calls == []
    assert choice.attention.how == "environment" and "FARTRACK_AUTO_ATTENTION=onednn" in choice.summary()
    assert InferenceOptions(attention="sdpa").resolved(CPU).attention == "sdpa"  # named kernels win
    with pytest.raises(ValueError, match="int8"):
        InferenceOptions(precision="int8").resolved(CPU)
    measured_cpu.setenv("FARTRACK_AUTO_LINEAR", "mkl")
    with pytest.raises(ValueError, match="FARTRACK_AUTO_LINEAR=mkl"):
        InferenceOptions().resolved(CPU)
    measured_cpu.setenv("FARTRACK_AUTO_LINEAR", "measure")
    timer.ms["linear"] = {"torch": 1.0, "onednn": 2.0}
    assert InferenceOptions().resolved(CPU).linear == "torch"
    measured_cpu.setattr(backends, "onednn_available", lambda: False)
    with pytest.raises(ValueError, match="oneDNN"):
        InferenceOptions().resolved(CPU)


def test_nothing_is_timed_where_onednn_was_never_measured(monkeypatch):
    timer = FakeTimer({}, {})
    monkeypatch.setattr(calibration, "measure", timer)
    for name in calibration.ENV_VARS.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(backends.platform, "machine", lambda: "aarch64")
    choice = InferenceOptions().kernel_choice(CPU)
    assert (choice.attention.chosen, choice.linear.chosen) == ("sdpa", "torch") and timer.calls == []
    assert choice.attention.how == "rule" and "no oneDNN" in choice.attention.note


@needs_onednn
@pytest.mark.parametrize("family", list(OFFICIAL_CONFIGS))
def test_the_backend_runs_and_records_the_measured_choice(measured_cpu, family):
    fake(measured_cpu, {"explicit": 3.0, "sdpa": 2.0, "onednn": 1.0}, {"torch": 1.0, "onednn": 2.0})
    net = load_network(family, OFFICIAL_CONFIGS[family], depth=2)
    tracker = FARTrackTracker(net, TrackerParams())
    backend = tracker.backend
    shapes = backend.kernel_choice.shapes
    assert (shapes.tokens, shapes.dim, shapes.hidden, shapes.heads) == (445, 192, 768, 3)  # the real sequence
    assert (shapes.score_query is not None) == net.template_scores
    assert backend.kernels == InferenceOptions(attention="onednn", linear="torch")
    assert backend.net.attention == "onednn" and type(backend.net.backbone.blocks[0].attn.qkv) is torch.nn.Linear
    recorded = profiling.kernel_choice(tracker)
    assert recorded["attention"]["chosen"] == "onednn" and recorded["attention"]["times_ms"]["sdpa"] == 2.0
    assert recorded["linear"] == {"chosen": "torch", "how": "measured", "times_ms": {"torch": 1.0, "onednn": 2.0},
                                  "note": ""}
    assert profiling.run_options(tracker)["attention"] == "onednn"
    timer = fake(measured_cpu, {"explicit": 3.0, "sdpa": 1.0, "onednn": 2.0}, {"torch": 2.0, "onednn": 1.0})
    calibration.clear_cache()
    swapped = TorchBackend(net)
    assert swapped.kernels == InferenceOptions(attention="sdpa", linear="onednn") and timer.calls
    assert isinstance(swapped.net.backbone.blocks[0].attn.qkv, OneDNNLinear)


@needs_onednn
def test_a_real_calibration_is_short_and_picks_its_fastest(measured_cpu):
    choice = InferenceOptions().kernel_choice(CPU)
    assert 0 < choice.calibration_ms < 2000
    for decision in (choice.attention, choice.linear):
        assert decision.how == "measured" and all(ms > 0 for ms in decision.times_ms.values())
        assert decision.chosen == min(decision.times_ms, key=decision.times_ms.get)
    assert InferenceOptions().kernel_choice(CPU).calibration_ms == 0.0


def track_against_faithful(family: str, options: InferenceOptions | None = None) -> FARTrackTracker:
    """Track a short real sequence with the faithful path and with ``options`` (default: auto) and check that the
    boxes are the faithful ones; returns the second tracker."""
    seq = real_sequence("otb_Crossing", 12)
    torch.manual_seed(0)
    net = load_network(family, OFFICIAL_CONFIGS[family], depth=6)
    params = TrackerParams.from_config(load_config(family, OFFICIAL_CONFIGS[family]))
    faithful, _, faithful_scores = track_sequence(FARTrackTracker(net, params, InferenceOptions.faithful()), seq)
    tracker = FARTrackTracker(net, params, *([] if options is None else [options]))
    fast, _, fast_scores = track_sequence(tracker, seq)
    faithful, fast = np.array(faithful), np.array(fast)
    assert np.unique(faithful[1:].round(), axis=0).shape[0] > 5  # the boxes really depend on the frames
    # dense decodes are argmax tokens (identical); the sparse one mixes in an expectation (float rounding)
    assert np.abs(fast - faithful).max() <= (1e-3 if family == "fartrack_sparse" else 0.0)
    assert np.allclose(fast_scores[1:], faithful_scores[1:], atol=1e-4)
    return tracker


@needs_onednn
@pytest.mark.parametrize("family", list(OFFICIAL_CONFIGS))
def test_the_measured_choice_gives_the_faithful_boxes(measured_cpu, family):
    """Whatever this machine's timing picks, the boxes are the faithful path's."""
    tracker = track_against_faithful(family)
    assert tracker.backend.kernel_choice.attention.how == "measured"


@needs_onednn
@pytest.mark.parametrize("attention", ["explicit", "sdpa", "onednn"])
@pytest.mark.parametrize("linear", ["torch", "onednn"])
@pytest.mark.parametrize("family", ["fartrack", "fartrack_sparse"])
def test_every_choice_auto_can_make_gives_the_faithful_boxes(family, attention, linear):
    """Another machine's timing may pick any pair: each gives the faithful boxes."""
    tracker = track_against_faithful(family, InferenceOptions(attention=attention, linear=linear))
    assert (tracker.backend.kernels.attention, tracker.backend.kernels.linear) == (attention, linear)
