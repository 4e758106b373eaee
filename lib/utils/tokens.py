"""Token vocabulary, coordinate quantisation and the decodes used by the official FARTrack code.

A box coordinate is expressed in normalised search-crop units (the crop spans [0, 1]) and is allowed to lie in
[-(range-1)/2, (range+1)/2] = [-0.5, 1.5] for range 2.  The vocabulary is shared by all four coordinates:

* ids ``0 .. bins*range-1`` (0..599): coordinate bins;
* ids ``bins*range .. bins*range+3`` (600..603): command tokens for x1, y1, x2, y2;
* id ``bins*range+4`` (604): padding ("end") id;

so the vocabulary has ``bins*range + 5`` = 605 entries.  Everything here is a pure function of its arguments;
``bins`` and ``value_range`` default to the shipped configs (MODEL.BINS = 300, MODEL.RANGE = 2).

The official code mixes three decode conventions (kept on purpose, see the individual docstrings):
encoding and argmax decodes use a bin spacing of 1/(bins-1), the expectation decode uses 1/bins.
"""
from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_BINS = 300
DEFAULT_RANGE = 2


def num_coord_classes(bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> int:
    """Number of coordinate ids (600): the classes scored by the expectation decode and the KL loss."""
    return bins * value_range


def command_ids(bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> tuple[int, int, int, int]:
    """Ids of the four command tokens (x1, y1, x2, y2) = (600, 601, 602, 603)."""
    first = num_coord_classes(bins, value_range)
    return first, first + 1, first + 2, first + 3


def padding_id(bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> int:
    """Padding id (604), the ``padding_idx`` of the word embedding."""
    return num_coord_classes(bins, value_range) + 4


def vocab_size(bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> int:
    """Vocabulary size V = bins*range + 5 (605): coordinates, 4 commands, padding."""
    return num_coord_classes(bins, value_range) + 5


NUM_COORD_CLASSES = num_coord_classes()
COMMAND_IDS = command_ids()
PADDING_ID = padding_id()
VOCAB_SIZE = vocab_size()


def coord_offset(value_range: int = DEFAULT_RANGE) -> float:
    """(range-1)/2 = 0.5: the shift that maps the lowest allowed coordinate to 0."""
    return (value_range - 1) / 2


def coord_limits(value_range: int = DEFAULT_RANGE) -> tuple[float, float]:
    """Allowed coordinate interval [-(range-1)/2, (range+1)/2] = [-0.5, 1.5]."""
    return -coord_offset(value_range), (value_range + 1) / 2


def quantize(coords: Tensor, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> Tensor:
    """Frame-level encode (stage-1/2 actors): clamp to [-0.5, 1.5], token = floor((c + 0.5)*(bins-1)).

    Returns int64 ids in 0..598 (id 599 is never a frame-level target).  The arithmetic runs in the input's
    floating dtype before truncation, as in the official actors.
    """
    low, high = coord_limits(value_range)
    scaled = (coords.clamp(low, high) + coord_offset(value_range)) * (bins - 1)
    return scaled.floor().long()


def quantize_continuous(coords: Tensor, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> Tensor:
    """Sequence-level (stage-3, FARTrackSparseActor) target: (c + 0.5)*(bins-1) clamped to [0, bins*range - 1e-4].

    The value is *not* rounded and the coordinate is not clamped beforehand, only the scaled value is clamped to
    [0, 599.9999].  The CE target is its int cast (``.long()``, can reach 599) and the SIoU/L1 target is the
    continuous value mapped back with :func:`decode_argmax_plain` (value/(bins-1) - 0.5).
    """
    scaled = (coords + coord_offset(value_range)) * (bins - 1)
    return scaled.clamp(0.0, num_coord_classes(bins, value_range) - 1e-4)


def decode_argmax_plain(tokens: Tensor, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> Tensor:
    """c = t/(bins-1) - 0.5: exact inverse of the encode scaling.

    Used by the fartrack and fartrack_distill trackers, by the sequence-training explore step, for the
    quantised SIoU target of the frame-level actors and (on continuous values) for the stage-3 SIoU target.
    """
    return tokens / (bins - 1) - coord_offset(value_range)  # true division: int ids become floats


def decode_argmax_centred(tokens: Tensor, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> Tensor:
    """c = (t + 0.5)/(bins-1) - 0.5: bin-centre decode of the fartrack_seq and fartrack_sparse trackers."""
    return (tokens + 0.5) / (bins - 1) - coord_offset(value_range)


def bin_values(bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE, *, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> Tensor:
    """Values v_k = -(range-1)/2 + k/bins = -0.5 + k/300, k = 0..bins*range-1, of the expectation decode.

    Official quirk kept on purpose: the spacing is 1/bins (1/300) although encoding uses 1/(bins-1).
    """
    k = torch.arange(num_coord_classes(bins, value_range), dtype=torch.float64, device=device)
    return (k / bins - coord_offset(value_range)).to(dtype)


def decode_expectation(logits: Tensor, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> Tensor:
    """Soft-argmax decode: sum_k softmax(logits[..., :bins*range])_k * v_k (see :func:`bin_values`).

    The special ids are dropped before the softmax.  Used for the predicted box of every training loss and,
    averaged with the centred argmax, by the seq/sparse trackers.  (..., V) logits -> (...) coordinates.
    """
    n = num_coord_classes(bins, value_range)
    probs = logits[..., :n].softmax(dim=-1)
    return probs @ bin_values(bins, value_range, dtype=probs.dtype, device=probs.device)


def greedy_tokens(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Greedy decode inside the official model: softmax over the *full* vocabulary, top-1 per coordinate.

    Returns (ids int64, their probabilities).  A special id (>= 600) can win in principle; it is not masked.
    """
    probs, ids = logits.softmax(dim=-1).max(dim=-1)
    return ids, probs


def decode_sparse_tracker(logits: Tensor, bins: int = DEFAULT_BINS, value_range: int = DEFAULT_RANGE) -> Tensor:
    """fartrack_sparse / fartrack_seq tracker decode: (argmax-centred + expectation) / 2.

    The argmax runs over all V classes (:func:`greedy_tokens`), the expectation over the coordinate classes only.
    """
    ids, _ = greedy_tokens(logits)
    centred = decode_argmax_centred(ids, bins, value_range).to(logits.dtype)
    return (centred + decode_expectation(logits, bins, value_range)) / 2
