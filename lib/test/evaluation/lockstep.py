"""Track many sequences at once: ``batch`` lanes, each one sequence, advanced one frame per step with one network
call (:func:`lib.test.tracker.lockstep.step`). A lane whose sequence ends (or fails) takes the next sequence of
the queue, so the batch stays full until the queue is empty.

Times: each lane's initialisation is timed alone. A step's seconds (crops, network call, decoding, template
storage of every lane) are split evenly over the lanes that took part. So the per-frame times of a sequence add up
to its share of the run, and frames / summed times is the run's throughput. Frame reading is not timed, as in the
one-sequence runner.
"""
from __future__ import annotations

import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from lib.test.evaluation.data import Sequence
from lib.test.tracker.fartrack import FARTrackTracker
from lib.test.tracker.lockstep import step


@dataclass
class SequenceRun:
    """One sequence's outputs (as :func:`lib.test.evaluation.running.track_sequence` returns them) or its error."""

    seq: Sequence
    boxes: list[list[float]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    #: ``"ExceptionType: message\ntraceback"`` when the sequence failed.
    error: str = ""


def _failure(run: SequenceRun, error: BaseException) -> SequenceRun:
    run.error = f"{type(error).__name__}: {error}\n{''.join(traceback.format_exception(error))}"
    return run


@dataclass
class _Lane:
    tracker: FARTrackTracker
    run: SequenceRun

    @property
    def next_frame(self) -> int:
        return len(self.run.boxes)

    @property
    def finished(self) -> bool:
        return self.next_frame >= len(self.run.seq.frames)


def track_lockstep(tracker: FARTrackTracker, sequences: Iterable[Sequence], batch: int,
                   read_frame: Callable[[str], np.ndarray]) -> Iterator[SequenceRun]:
    """Track ``sequences`` ``batch`` at a time with ``tracker``'s backend and parameters; yields each sequence's
    :class:`SequenceRun` as it finishes (in finishing order). A frame that cannot be read or tracked fails its
    sequence only; a failed network call fails the sequences of that step."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    queue = deque(sequences)
    lanes: list[_Lane] = []
    while queue or lanes:
        while queue and len(lanes) < batch:
            lane = _start(tracker.sibling(), queue.popleft(), read_frame)
            if lane.run.error or lane.finished:
                yield lane.run
            else:
                lanes.append(lane)
        if not lanes:
            continue
        ready, images = [], []
        for lane in lanes:
            try:
                images.append(read_frame(lane.run.seq.frames[lane.next_frame]))
                ready.append(lane)
            except Exception as error:  # noqa: BLE001 - the sequence fails, the others go on
                yield _failure(lane.run, error)
        lanes = ready
        if not lanes:
            continue
        start = time.perf_counter()
        try:
            outputs = step([lane.tracker for lane in lanes], images)
        except Exception as error:  # noqa: BLE001 - every sequence of the step fails, the queue goes on
            for lane in lanes:
                yield _failure(lane.run, error)
            lanes = []
            continue
        seconds = (time.perf_counter() - start) / len(lanes)
        for lane, out in zip(lanes, outputs):
            lane.run.boxes.append(list(out["target_bbox"]))
            lane.run.times.append(seconds)
            lane.run.scores.append(float(out.get("best_score", float("nan"))))
        for lane in [lane for lane in lanes if lane.finished]:
            yield lane.run
        lanes = [lane for lane in lanes if not lane.finished]


def _start(tracker: FARTrackTracker, seq: Sequence, read_frame: Callable[[str], np.ndarray]) -> _Lane:
    """A lane on ``seq`` with frame 0 initialised (or its error recorded)."""
    lane = _Lane(tracker, SequenceRun(seq))
    try:
        image = read_frame(seq.frames[0])
        start = time.perf_counter()
        out = tracker.initialize(image, {"init_bbox": seq.init_bbox()})
        lane.run.times.append(time.perf_counter() - start)
        lane.run.boxes.append(list(out.get("target_bbox", seq.init_bbox())))
        lane.run.scores.append(1.0)
    except Exception as error:  # noqa: BLE001 - reported with the sequence
        _failure(lane.run, error)
    return lane
