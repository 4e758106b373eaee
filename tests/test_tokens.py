"""Token vocabulary, quantisation and decodes (spec sections 3.1, 3.2, 5 and 7.2)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.utils import tokens as tk

settings.register_profile("fast", max_examples=60, deadline=None)
settings.load_profile("fast")

floats = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, width=32)
in_range = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False, width=32)
coord_ids = st.integers(min_value=0, max_value=599)


def test_vocabulary_layout():
    assert tk.vocab_size() == tk.VOCAB_SIZE == 605
    assert tk.num_coord_classes() == tk.NUM_COORD_CLASSES == 600
    assert tk.command_ids() == tk.COMMAND_IDS == (600, 601, 602, 603)
    assert tk.padding_id() == tk.PADDING_ID == 604
    assert tk.vocab_size(400, 2) == 805 and tk.command_ids(400, 2)[0] == 800 and tk.padding_id(400, 2) == 804
    assert tk.coord_limits() == (-0.5, 1.5)


def test_quantize_matches_the_verified_official_example():
    # spec section 11: normalised xywh (0.4, 0.35, 0.2, 0.3) -> tokens [269, 254, 328, 343]
    gt_xyxy = torch.tensor([[0.4, 0.35, 0.6, 0.65]])
    assert tk.quantize(gt_xyxy).tolist() == [[269, 254, 328, 343]]


@given(st.lists(floats, min_size=1, max_size=16))
def test_quantize_range_and_dtype(values):
    tokens = tk.quantize(torch.tensor(values))
    assert tokens.dtype == torch.int64
    assert tokens.min() >= 0 and tokens.max() <= 598  # 599 is never a frame-level target


@given(floats, floats)
def test_quantize_is_monotonic(a, b):
    lo, hi = sorted((a, b))
    assert tk.quantize(torch.tensor(lo)) <= tk.quantize(torch.tensor(hi))


@given(st.lists(floats, min_size=1, max_size=16))
def test_plain_round_trip_within_one_bin(values):
    coords = torch.tensor(values)
    decoded = tk.decode_argmax_plain(tk.quantize(coords))
    error = decoded - coords.clamp(-0.5, 1.5)
    assert decoded.dtype == torch.float32
    assert error.abs().max() <= 1 / 299 + 1e-6
    assert error.max() <= 1e-6  # floor: never rounds up


@given(st.lists(coord_ids, min_size=1, max_size=16))
def test_centred_decode_is_plain_plus_half_bin(ids):
    t = torch.tensor(ids)
    assert torch.allclose(tk.decode_argmax_centred(t), tk.decode_argmax_plain(t) + 0.5 / 299, atol=1e-6)
    assert torch.allclose(tk.decode_argmax_plain(t), t.float() / 299 - 0.5, atol=1e-6)


def test_decodes_keep_leading_shape_and_respect_bins_argument():
    logits = torch.randn(2, 3, 4, 805)
    assert tk.decode_expectation(logits, bins=400).shape == (2, 3, 4)
    assert tk.decode_sparse_tracker(logits, bins=400).shape == (2, 3, 4)
    assert tk.quantize(torch.tensor([1.5, -0.5]), bins=400).tolist() == [798, 0]
    assert tk.decode_argmax_plain(torch.tensor([399]), bins=400).item() == pytest.approx(0.5)


def one_hot_logits(k: int, height: float = 1e4) -> torch.Tensor:
    logits = torch.zeros(605)
    logits[k] = height
    return logits


@given(coord_ids)
def test_expectation_of_a_peaked_logit_is_its_bin_value(k):
    # bin values use spacing 1/300 (official inconsistency with the 1/299 encode)
    assert tk.decode_expectation(one_hot_logits(k)).item() == pytest.approx(-0.5 + k / 300, abs=1e-6)


def test_expectation_ignores_special_ids():
    # a huge logit on a command id is dropped: the 600 coordinate logits are all equal -> mean bin value
    assert tk.decode_expectation(one_hot_logits(602)).item() == pytest.approx(-0.5 + 599 / 600, abs=1e-6)
    values = tk.bin_values()
    assert values.shape == (600,) and values[0] == -0.5 and values[-1].item() == pytest.approx(1.5 - 1 / 300)


@given(st.integers(0, 2**31 - 1), st.floats(0.0, 100.0), st.integers(0, 604), st.floats(-1e4, 1e4))
def test_expectation_lies_in_the_bin_value_range(seed, scale, peak, height):
    logits = torch.randn(3, 605, generator=torch.Generator().manual_seed(seed)) * scale
    logits[0, peak] = height
    c = tk.decode_expectation(logits)
    assert torch.all(c >= -0.5 - 1e-6) and torch.all(c < 1.5)


@given(st.lists(floats, min_size=1, max_size=16))
def test_quantize_continuous_clamps_without_rounding(values):
    coords = torch.tensor(values)
    cont = tk.quantize_continuous(coords)
    assert cont.is_floating_point()
    assert cont.min() >= 0 and cont.max() <= 599.9999
    assert cont.long().max() <= 599
    inside = (coords > -0.5) & (coords < 1.5)
    assert torch.allclose(tk.decode_argmax_plain(cont)[inside], coords[inside], atol=1e-5)


def test_quantize_continuous_reaches_the_last_coordinate_class():
    cont = tk.quantize_continuous(torch.tensor([1.6, -0.7, 0.0]))
    assert cont[0].item() == pytest.approx(599.9999, abs=1e-4) and cont[0].long() == 599
    assert cont[1].item() == 0.0
    assert cont[2].item() == pytest.approx(149.5) and cont[2].long() == 149  # zero GT -> token 149


@given(coord_ids)
def test_sparse_tracker_decode_averages_centred_argmax_and_expectation(k):
    expected = ((k + 0.5) / 299 - 0.5 + (-0.5 + k / 300)) / 2
    assert tk.decode_sparse_tracker(one_hot_logits(k)).item() == pytest.approx(expected, abs=1e-6)


def test_greedy_argmax_runs_over_the_full_vocabulary():
    logits = one_hot_logits(100, 5.0)
    logits[603] = 10.0
    ids, probs = tk.greedy_tokens(logits)
    assert ids.item() == 603
    assert probs.item() == pytest.approx(math.exp(10) / (math.exp(10) + math.exp(5) + 603))
    # the special id wins the argmax, so the centred part decodes beyond the coordinate range
    assert tk.decode_argmax_centred(ids).item() > 1.5
    expected = ((603.5 / 299 - 0.5) + tk.decode_expectation(logits).item()) / 2
    assert tk.decode_sparse_tracker(logits).item() == pytest.approx(expected, abs=1e-6)
