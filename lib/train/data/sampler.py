"""Training samplers: the official ``TrackingSampler`` (causal, stages 1-2) and ``sequence_sampler_v3`` (stage 3).

Both are map-style ``torch.utils.data.Dataset``s of length ``samples_per_epoch``. Sample ``index`` of epoch ``epoch``
is a pure function of ``(seed, epoch, index)``: every random choice (dataset, sequence, frames, processing) is drawn
from ``numpy.random.default_rng([seed, epoch, index])``. Results therefore do not depend on the DataLoader worker
count or on the order in which samples are requested, and a resumed run reproduces exactly. Call
:meth:`set_epoch` before creating each epoch's DataLoader iterator; with ``persistent_workers=True`` the workers keep
their own copy of the sampler and would not see the new epoch.

Unlike the official samplers, which retry forever, retries are bounded:

* a sequence that can never give a valid frame choice is cached as ineligible; after ``max_attempts`` ineligible
  draws in a row the dataset is scanned once and the sequence is drawn among its eligible ones (the distribution of
  the official rejection loop); a dataset without any eligible sequence raises :class:`TrainDatasetError` naming the
  requirement;
* a sample whose images cannot be read (:class:`ImageReadError`, logged with the file) or whose processing is
  invalid is redrawn (new dataset and sequence); ``max_attempts`` such failures in a row raise
  :class:`TrainDatasetError` with the counted reasons.

Batches: frame samples (dicts of tensors and ints) go through torch's ``default_collate`` and come out batch-major:
``template_images`` (B, T, 3, h, w), ``search_images`` (B, S, 3, H, W), ``template_anno`` (B, T, 4),
``search_anno`` (B, S, 4), ``dataset`` / ``failed_reads`` / ``invalid_samples`` (B,). (The official loader stacks
along dim 1, frame-major.) Sequence samples are batched with :func:`collate_sequences`, a plain list.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from lib.train.dataset.base import ImageReadError, SequenceInfo, TrackingDataset, TrainDatasetError

logger = logging.getLogger(__name__)

TemplateOrder = Literal["official", "chronological"]
#: A processing callable: (template_images, template_boxes, search_images, search_boxes, rng) -> dict | None.
Processing = Callable[[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray, np.random.Generator],
                      Optional[dict[str, Any]]]

# Official gap increase of the causal sampler after a failed frame draw.
_GAP_STEP = 5
# Official minimum sequence length of the frame-level (causal) sampler.
_MIN_FRAME_SEQUENCE_LENGTH = 20
# Unreadable file names quoted in a TrainDatasetError.
_MAX_READ_EXAMPLES = 3


# ---------------------------------------------------------------------------------------------- frame-id choice

def _draw_visible(visible_ids: np.ndarray, low: int, high: int, k: int, rng: np.random.Generator
                  ) -> list[int] | None:
    """Official ``_sample_visible_ids``: ``k`` visible ids drawn with replacement from ``[low, high)``.

    ``visible_ids`` are the sorted indices of the visible frames; ``low`` below 0 is clamped (ids never exceed the
    sequence). Returns ``[]`` for ``k == 0`` and ``None`` when the window has no visible frame.
    """
    if k == 0:
        return []
    start = int(np.searchsorted(visible_ids, max(low, 0), side="left"))
    stop = int(np.searchsorted(visible_ids, high, side="left"))
    if start >= stop:
        return None
    return [int(i) for i in visible_ids[start + rng.integers(stop - start, size=k)]]


def causal_valid_bases(visible: np.ndarray, num_template: int, num_search: int) -> np.ndarray:
    """Base frames that admit a causal frame choice when the windows cover the whole sequence.

    A base is a visible frame in ``[num_template - 1, len - num_search)`` with a visible frame before it (if other
    template frames are needed) and after it (if search frames are needed).
    """
    visible = np.asarray(visible, dtype=bool)
    ids = np.arange(len(visible))
    counts = np.cumsum(visible)
    before = counts - visible  # visible frames in [0, i)
    after = counts[-1] - counts if len(visible) else counts  # visible frames in (i, len)
    ok = visible & (ids >= num_template - 1) & (ids < len(visible) - num_search)
    if num_template > 1:
        ok &= before > 0
    if num_search > 0:
        ok &= after > 0
    return np.flatnonzero(ok)


def causal_frame_ids(visible: np.ndarray, rng: np.random.Generator, *, num_template: int, num_search: int,
                     max_gap: int, template_order: TemplateOrder = "official") -> tuple[list[int], list[int]]:
    """Official causal frame choice (``TrackingSampler``, ``frame_sample_mode='causal'``), spec 6.1.

    With a gap increase ``g`` starting at 0: draw a visible base frame in ``[num_template - 1, len - num_search)``,
    ``num_template - 1`` visible frames with replacement in ``[base - max_gap - g, base)`` and ``num_search``
    visible frames with replacement in ``[base + 1, base + max_gap + g)``; when either draw finds no visible frame,
    ``g += 5`` and everything is redrawn. Once ``max_gap + g >= len`` the windows cover the whole sequence and the
    official loop is rejection sampling of a uniform base, so the base is drawn directly among
    :func:`causal_valid_bases` (this is what makes the loop terminate).

    ``template_order='official'``: ``[base, then the others in draw order]``, slot 0 the newest frame, as the
    official training does. ``'chronological'``: ascending, oldest first and base last, as the trackers order their
    template slots at inference. Raises ``ValueError`` when no valid choice exists.
    """
    visible = np.asarray(visible, dtype=bool)
    n = len(visible)
    visible_ids = np.flatnonzero(visible)
    gap = 0
    while max_gap + gap < n:
        base = _draw_visible(visible_ids, num_template - 1, n - num_search, 1, rng)
        if base is None:
            break
        previous = _draw_visible(visible_ids, base[0] - max_gap - gap, base[0], num_template - 1, rng)
        if previous is None:
            gap += _GAP_STEP
            continue
        search = _draw_visible(visible_ids, base[0] + 1, base[0] + max_gap + gap, num_search, rng)
        gap += _GAP_STEP
        if search is not None:
            return _order_templates(base + previous, template_order), search
    bases = causal_valid_bases(visible, num_template, num_search)
    if len(bases) == 0:
        raise ValueError(f"no causal choice of {num_template} template and {num_search} search frames exists in a "
                         f"sequence of {n} frames with {len(visible_ids)} visible")
    base_id = int(bases[rng.integers(len(bases))])
    previous = _draw_visible(visible_ids, 0, base_id, num_template - 1, rng)
    search = _draw_visible(visible_ids, base_id + 1, n, num_search, rng)
    assert previous is not None and search is not None  # guaranteed by causal_valid_bases
    return _order_templates([base_id, *previous], template_order), search


def _order_templates(ids: list[int], order: TemplateOrder) -> list[int]:
    return sorted(ids) if order == "chronological" else ids


def sequential_frame_ids(visible: np.ndarray, rng: np.random.Generator, *, num_template: int, num_search: int,
                         max_gap: int) -> tuple[list[int], list[int]]:
    """Official ``sequence_sampler_v3`` frame choice (sequential branch), spec 6.3.

    * templates: ``num_template`` visible frames, each drawn independently in ``[0, len - num_search)``, sorted;
    * ``left``: a visible frame in ``[last template, min(len - num_search, last template + max_gap))`` (never empty:
      the last template itself qualifies);
    * search: the first ``num_search`` visible frames from ``left`` on (``left`` included). Reading of "if fewer
      exist, append following frame ids (duplicates of the final index at the end of the video)": after the last
      visible frame come the ids that follow it, ``last visible + 1 .. len - 1`` (all invisible), and then
      ``len - 1`` repeated until there are ``num_search`` ids.

    Raises ``ValueError`` when ``[0, len - num_search)`` has no visible frame.
    """
    visible = np.asarray(visible, dtype=bool)
    n = len(visible)
    visible_ids = np.flatnonzero(visible)
    templates = _draw_visible(visible_ids, 0, n - num_search, num_template, rng)
    if templates is None:
        raise ValueError(f"no visible frame in [0, {n - num_search}) for the templates")
    templates.sort()
    last = templates[-1]
    left = _draw_visible(visible_ids, last, min(n - num_search, last + max_gap), 1, rng)
    assert left is not None  # the window contains the visible frame ``last`` (last < n - num_search, max_gap >= 1)
    search = [int(i) for i in visible_ids[visible_ids >= left[0]][:num_search]]
    if len(search) < num_search:
        search += list(range(search[-1] + 1, n))[: num_search - len(search)]
        search += [n - 1] * (num_search - len(search))
    return templates, search


# ---------------------------------------------------------------------------------------------- samplers

@dataclass
class _DrawStats:
    """Why the draws of one sample failed (reported in errors and, in part, returned with the sample)."""

    invalid_samples: int = 0
    failed_reads: int = 0
    ineligible: int = 0
    read_examples: list[str] = field(default_factory=list)


class _SamplerBase(Dataset):
    """Dataset choice, eligible-sequence choice, image reading and bounded retries shared by both samplers."""

    #: What a video sequence needs to be eligible, for error messages (set by the subclasses).
    requirement: str = ""

    def __init__(self, datasets: Sequence[TrackingDataset], ratios: Sequence[float], samples_per_epoch: int, *,
                 num_template_frames: int, num_search_frames: int, max_gap: int, seed: int,
                 max_attempts: int) -> None:
        if not datasets or len(datasets) != len(ratios):
            raise ValueError(f"need one ratio per dataset and at least one dataset; got {len(datasets)} datasets "
                             f"and {len(ratios)} ratios")
        ratios = [float(r) for r in ratios]
        if any(not math.isfinite(r) or r < 0 for r in ratios) or sum(ratios) <= 0:
            raise ValueError(f"dataset ratios must be finite, non-negative and not all zero; got {ratios}")
        if num_template_frames < 1 or num_search_frames < 1 or max_gap < 1 or max_attempts < 1:
            raise ValueError("num_template_frames, num_search_frames, max_gap and max_attempts must be >= 1")
        if seed < 0 or samples_per_epoch < 0:
            raise ValueError("seed and samples_per_epoch must be non-negative")
        for dataset, ratio in zip(datasets, ratios):
            if ratio > 0 and len(dataset) == 0:
                raise TrainDatasetError(f"training dataset {dataset.name} has no sequences")
        self.datasets = list(datasets)
        self.probabilities = np.asarray(ratios) / sum(ratios)
        self.samples_per_epoch = int(samples_per_epoch)
        self.num_template_frames = int(num_template_frames)
        self.num_search_frames = int(num_search_frames)
        self.max_gap = int(max_gap)
        self.seed = int(seed)
        self.max_attempts = int(max_attempts)
        self.epoch = 0
        self._ineligible: set[tuple[int, int]] = set()
        self._eligible_lists: dict[int, list[int]] = {}

    def eligible(self, info: SequenceInfo) -> bool:
        """Whether a video sequence with these annotations can give a valid frame choice."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples ``__getitem__`` returns."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(f"sample index {index} out of range for {self.samples_per_epoch} samples per epoch")
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def _draw_dataset(self, rng: np.random.Generator) -> int:
        return int(rng.choice(len(self.datasets), p=self.probabilities))

    def _draw_sequence(self, rng: np.random.Generator, ds_index: int, stats: _DrawStats
                       ) -> tuple[int, SequenceInfo | None]:
        """A random eligible sequence of dataset ``ds_index`` and its annotations (``None`` for image datasets)."""
        dataset = self.datasets[ds_index]
        if not dataset.is_video:
            return int(rng.integers(len(dataset))), None
        for _ in range(self.max_attempts):
            seq_id = int(rng.integers(len(dataset)))
            if (ds_index, seq_id) not in self._ineligible:
                info = dataset.sequence_info(seq_id)
                if self.eligible(info):
                    return seq_id, info
                self._ineligible.add((ds_index, seq_id))
            stats.ineligible += 1
        # Rejection sampling keeps failing: scan the dataset once; drawing among its eligible sequences has the same
        # distribution as the official endless loop.
        eligible = self._eligible_sequences(ds_index)
        if not eligible:
            raise TrainDatasetError(f"no sequence of training dataset {dataset.name} ({len(dataset)} sequences) is "
                                    f"usable: the sampler {self.requirement}")
        seq_id = eligible[int(rng.integers(len(eligible)))]
        return seq_id, dataset.sequence_info(seq_id)

    def _eligible_sequences(self, ds_index: int) -> list[int]:
        if ds_index not in self._eligible_lists:
            dataset = self.datasets[ds_index]
            eligible = []
            for seq_id in range(len(dataset)):
                if (ds_index, seq_id) in self._ineligible or not self.eligible(dataset.sequence_info(seq_id)):
                    self._ineligible.add((ds_index, seq_id))
                else:
                    eligible.append(seq_id)
            self._eligible_lists[ds_index] = eligible
        return self._eligible_lists[ds_index]

    def _read(self, ds_index: int, seq_id: int, frame_ids: list[int], info: SequenceInfo | None,
              stats: _DrawStats) -> tuple[list[np.ndarray], np.ndarray] | None:
        """The frames' images and boxes, or ``None`` (counted and logged) when an image cannot be read."""
        dataset = self.datasets[ds_index]
        try:
            images, boxes = dataset.frames(seq_id, frame_ids, info)
        except ImageReadError as exc:
            stats.failed_reads += 1
            if len(stats.read_examples) < _MAX_READ_EXAMPLES:
                stats.read_examples.append(str(exc))
            logger.warning("%s, sequence %s: unreadable image, drawing another sample: %s", dataset.name,
                           dataset.sequence_name(seq_id), exc)
            return None
        return list(images), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def _give_up(self, index: int, stats: _DrawStats) -> TrainDatasetError:
        names = ", ".join(d.name or type(d).__name__ for d in self.datasets)
        examples = f" (e.g. {'; '.join(stats.read_examples)})" if stats.read_examples else ""
        return TrainDatasetError(
            f"could not draw training sample {index} of epoch {self.epoch} from {names} in {self.max_attempts} "
            f"attempts: {stats.invalid_samples} invalid processing results (degenerate box or crop entirely "
            f"padding), {stats.failed_reads} unreadable images{examples}, {stats.ineligible} ineligible sequences "
            f"drawn (the sampler {self.requirement})")


class FrameSampler(_SamplerBase):
    """Frame-level training samples (stages 1 and 2): official ``TrackingSampler`` in causal mode, spec 6.1.

    Per sample: a dataset by ratio, a random eligible sequence (video datasets: more than
    ``2 * (num_search + num_template)`` visible frames, at least 20 frames and a causal frame choice; image
    datasets: any), frames by :func:`causal_frame_ids` (image datasets: frame 0 for every slot, the dataset returns
    its single image), then ``processing``; unreadable images or an invalid processing result redraw everything.

    ``__getitem__`` returns the processing dict (see :class:`lib.train.data.processing.FrameProcessing`) plus
    ``dataset`` (index into ``datasets``), ``failed_reads`` and ``invalid_samples`` (ints: failures hit while
    producing this sample).
    """

    def __init__(self, datasets: Sequence[TrackingDataset], ratios: Sequence[float], samples_per_epoch: int,
                 processing: Processing, *, num_template_frames: int = 5, num_search_frames: int = 1,
                 max_gap: int, seed: int, max_attempts: int = 100,
                 template_order: TemplateOrder = "official") -> None:
        super().__init__(datasets, ratios, samples_per_epoch, num_template_frames=num_template_frames,
                         num_search_frames=num_search_frames, max_gap=max_gap, seed=seed, max_attempts=max_attempts)
        if template_order not in ("official", "chronological"):
            raise ValueError(f"template_order must be 'official' or 'chronological', got {template_order!r}")
        self.processing = processing
        self.template_order = template_order
        self.requirement = (f"needs > {2 * (num_search_frames + num_template_frames)} visible frames and at least "
                            f"{_MIN_FRAME_SEQUENCE_LENGTH} frames, with visible frames before and after a visible "
                            f"base frame in [{num_template_frames - 1}, len - {num_search_frames})")

    def eligible(self, info: SequenceInfo) -> bool:
        visible = np.asarray(info.visible, dtype=bool)
        return (int(visible.sum()) > 2 * (self.num_search_frames + self.num_template_frames)
                and len(visible) >= _MIN_FRAME_SEQUENCE_LENGTH
                and len(causal_valid_bases(visible, self.num_template_frames, self.num_search_frames)) > 0)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        stats = _DrawStats()
        for _ in range(self.max_attempts):
            ds_index = self._draw_dataset(rng)
            seq_id, info = self._draw_sequence(rng, ds_index, stats)
            if info is None:  # image dataset: the same image for every slot
                template_ids = [0] * self.num_template_frames
                search_ids = [0] * self.num_search_frames
            else:
                template_ids, search_ids = causal_frame_ids(
                    info.visible, rng, num_template=self.num_template_frames, num_search=self.num_search_frames,
                    max_gap=self.max_gap, template_order=self.template_order)
            frames = self._read(ds_index, seq_id, template_ids + search_ids, info, stats)
            if frames is None:
                continue
            images, boxes = frames
            t = self.num_template_frames
            sample = self.processing(images[:t], boxes[:t], images[t:], boxes[t:], rng)
            if sample is None:
                stats.invalid_samples += 1
                continue
            return {**sample, "dataset": ds_index, "failed_reads": stats.failed_reads,
                    "invalid_samples": stats.invalid_samples}
        raise self._give_up(index, stats)


class SequenceSampler(_SamplerBase):
    """Sequence-level training samples (stage 3): official ``sequence_sampler_v3``, sequential branch, spec 6.3.

    Video datasets only. Per sample: a dataset by ratio, a random sequence with more than
    ``2 * (num_search + num_template)`` visible frames and at least ``num_search + num_template`` frames, frames by
    :func:`sequential_frame_ids`, full-resolution images. ``__getitem__`` returns ``template_images`` (list of
    ``num_template`` RGB uint8 arrays), ``template_boxes`` (num_template, 4) float64, ``search_images`` (list of
    ``num_search`` arrays), ``search_boxes`` (num_search, 4) float64 (pixel ``x, y, w, h``), ``dataset`` (index),
    ``sequence`` (name), ``frame_ids`` (the ids of the returned images: templates, then search frames) and
    ``failed_reads``.
    """

    def __init__(self, datasets: Sequence[TrackingDataset], ratios: Sequence[float], samples_per_epoch: int, *,
                 num_search_frames: int = 32, num_template_frames: int = 5, max_gap: int = 300, seed: int,
                 max_attempts: int = 100) -> None:
        super().__init__(datasets, ratios, samples_per_epoch, num_template_frames=num_template_frames,
                         num_search_frames=num_search_frames, max_gap=max_gap, seed=seed, max_attempts=max_attempts)
        images = [d.name or type(d).__name__ for d in datasets if not d.is_video]
        if images:
            raise TrainDatasetError(f"the sequence sampler needs video datasets; {', '.join(images)} "
                                    f"is an image dataset")
        self.requirement = (f"needs > {2 * (num_search_frames + num_template_frames)} visible frames and at least "
                            f"{num_search_frames + num_template_frames} frames")

    def eligible(self, info: SequenceInfo) -> bool:
        # Enough visible frames guarantee a visible template candidate in [0, len - num_search).
        visible = np.asarray(info.visible, dtype=bool)
        return (int(visible.sum()) > 2 * (self.num_search_frames + self.num_template_frames)
                and len(visible) >= self.num_search_frames + self.num_template_frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        stats = _DrawStats()
        for _ in range(self.max_attempts):
            ds_index = self._draw_dataset(rng)
            seq_id, info = self._draw_sequence(rng, ds_index, stats)
            assert info is not None  # video datasets only
            template_ids, search_ids = sequential_frame_ids(
                info.visible, rng, num_template=self.num_template_frames, num_search=self.num_search_frames,
                max_gap=self.max_gap)
            frames = self._read(ds_index, seq_id, template_ids + search_ids, info, stats)
            if frames is None:
                continue
            images, boxes = frames
            t = self.num_template_frames
            return {"template_images": images[:t], "template_boxes": boxes[:t], "search_images": images[t:],
                    "search_boxes": boxes[t:], "dataset": ds_index,
                    "sequence": self.datasets[ds_index].sequence_name(seq_id),
                    "frame_ids": template_ids + search_ids, "failed_reads": stats.failed_reads}
        raise self._give_up(index, stats)


def collate_sequences(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Batch of :class:`SequenceSampler` samples: the list itself (official list collation)."""
    return batch
