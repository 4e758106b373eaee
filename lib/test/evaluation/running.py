"""Run a tracker over benchmark sequences and write result files exactly where and how the official code does.

Per sequence ``<results_dir>/<seq>.txt`` holds one ``x y w h`` row per frame (frame 0 = the initial box), cast to
int by truncation and tab-separated, and ``<seq>_time.txt`` the per-frame seconds; sequences tagged ``got10k`` or
``trackingnet`` go to a ``<tag>/`` sub-folder. Sequences whose result file exists are skipped. Files are written
atomically, so an interrupted run never leaves a truncated result that a later run would skip.

Unlike the official runner, a sequence that fails does not end silently: the failures are collected, reported with
their errors, and make the command exit non-zero.

Trackers with early exits (``records_exits``, FastSeqTrack) also get ``<seq>_exits.txt`` next to the boxes: one
integer per frame, aligned with ``<seq>.txt``, the exit each frame took (-1 for frame 0, which runs no network).

``batch`` > 1 tracks that many sequences per network call (:mod:`lib.test.evaluation.lockstep`, FARTrack families):
same result files; a frame's time is its step's time divided by the sequences in the step.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence as SequenceType

import cv2
import numpy as np
import torch
from tqdm import tqdm

from lib.config.loader import load_config
from lib.families import get_family
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.lockstep import SequenceRun, track_lockstep
from lib.test.tracker.backends import InferenceOptions
from lib.utils.run_layout import result_file

logger = logging.getLogger(__name__)


class FrameReadError(RuntimeError):
    """A frame could not be read as an image."""


def read_rgb(path: str) -> np.ndarray:
    """Read a frame as RGB uint8 (H, W, 3); grayscale files are replicated to 3 channels."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FrameReadError(f"cannot read image {path} (missing, empty or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def result_paths(results_dir: Path, seq: Sequence) -> tuple[Path, Path]:
    """(boxes file, times file) of ``seq`` under ``results_dir`` (:mod:`lib.utils.run_layout`)."""
    return (result_file(results_dir, seq.name, seq.dataset),
            result_file(results_dir, seq.name, seq.dataset, kind="time"))


def _atomic_savetxt(path: Path, array: np.ndarray, fmt: str, delimiter: str = "\t") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        np.savetxt(tmp, array, fmt=fmt, delimiter=delimiter)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_exits(results_dir: Path, seq: Sequence, exits: SequenceType[int]) -> Path:
    """Write the per-frame exit indices of ``seq`` (call before :func:`write_results`: a present box file then
    means a complete result, exits included)."""
    path = result_file(results_dir, seq.name, seq.dataset, kind="exits")
    _atomic_savetxt(path, np.asarray(exits, dtype=int), fmt="%d")
    return path


def write_results(results_dir: Path, seq: Sequence, boxes: SequenceType[SequenceType[float]],
                  times: SequenceType[float]) -> Path:
    """Write the official result files; the time file first so a present box file means a complete result."""
    box_path, time_path = result_paths(results_dir, seq)
    _atomic_savetxt(time_path, np.asarray(times, dtype=float), fmt="%f")
    _atomic_savetxt(box_path, np.asarray(boxes, dtype=float).astype(int), fmt="%d")
    return box_path


def track_sequence(tracker, seq: Sequence, exits: Optional[list[int]] = None
                   ) -> tuple[list[list[float]], list[float], list[float]]:
    """Run ``tracker`` (initialize/track contract) over ``seq``: boxes, per-frame seconds and scores.

    When ``exits`` is a list it receives the ``exit`` each frame reported (-1 for frame 0 and for trackers without
    exits).
    """
    image = read_rgb(seq.frames[0])
    start = time.perf_counter()
    init_out = tracker.initialize(image, {"init_bbox": seq.init_bbox()})
    times = [time.perf_counter() - start]
    boxes = [list(init_out.get("target_bbox", seq.init_bbox()))]
    scores = [1.0]
    if exits is not None:
        exits.append(-1)
    for frame in seq.frames[1:]:
        image = read_rgb(frame)
        start = time.perf_counter()
        out = tracker.track(image)
        times.append(time.perf_counter() - start)
        boxes.append(list(out["target_bbox"]))
        scores.append(float(out.get("best_score", float("nan"))))
        if exits is not None:
            exits.append(int(out.get("exit", -1)))
    return boxes, times, scores


@dataclass(frozen=True)
class TrackerSpec:
    """Everything a worker process needs to build the tracker (picklable)."""

    script: str
    config: str
    checkpoint: Optional[str]
    depth: Optional[int] = None
    opts: tuple = ()
    options: InferenceOptions = InferenceOptions()


def build_tracker(spec: TrackerSpec, device: str):
    """The family's network from the config, the checkpoint's weights (None: random, with a warning), and the
    family's tracker with the config's test parameters and ``spec.options``."""
    family = get_family(spec.script)
    cfg = load_config(spec.script, spec.config, list(spec.opts))
    net = family.build_network(cfg, depth=spec.depth)
    if spec.checkpoint is None:
        logger.warning("no checkpoint given: %s keeps its random initialisation (smoke runs only)", net.net_type)
    else:
        family.load_weights(net, spec.checkpoint)
    return family.build_tracker(net.to(device), cfg, spec.options)


@dataclass
class SequenceOutcome:
    name: str
    status: str  # "done", "skipped" or "failed"
    frames: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class RunSummary:
    outcomes: list[SequenceOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[SequenceOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def fps(self) -> float:
        """Frames per second over the sequences tracked in this run (initialisation frames included)."""
        done = [o for o in self.outcomes if o.status == "done"]
        seconds = sum(o.seconds for o in done)
        return sum(o.frames for o in done) / seconds if seconds > 0 else float("nan")


# Worker state: one tracker per process, built once.
_worker_tracker = None


def _worker_device(base_device: str, num_gpus: int) -> str:
    if base_device != "cuda":
        return base_device
    identity = mp.current_process()._identity
    worker_index = identity[0] - 1 if identity else 0
    return f"cuda:{worker_index % max(1, num_gpus)}"


def _init_worker(spec: TrackerSpec, base_device: str, num_gpus: int, torch_threads: int) -> None:
    global _worker_tracker
    torch.set_num_threads(torch_threads)
    _worker_tracker = build_tracker(spec, _worker_device(base_device, num_gpus))


def _outcome(run: SequenceRun, results_dir: Path, exits: Optional[list[int]] = None) -> SequenceOutcome:
    """Write a tracked sequence's result files (nothing for a failed one) and say how it went."""
    if run.error:
        return SequenceOutcome(run.seq.name, "failed", error=run.error)
    try:
        if exits is not None:
            write_exits(results_dir, run.seq, exits)
        write_results(results_dir, run.seq, run.boxes, run.times)
    except OSError as error:
        return SequenceOutcome(run.seq.name, "failed", error=f"{type(error).__name__}: {error}")
    return SequenceOutcome(run.seq.name, "done", frames=len(run.times), seconds=float(sum(run.times)))


def _run_one(seq: Sequence, results_dir: Path) -> SequenceOutcome:
    exits: Optional[list[int]] = [] if getattr(_worker_tracker, "records_exits", False) else None
    try:
        boxes, times, scores = track_sequence(_worker_tracker, seq, exits)
        run = SequenceRun(seq, boxes, times, scores)
    except Exception as error:  # noqa: BLE001 - reported per sequence, the run goes on and then fails
        logger.debug("sequence %s failed", seq.name, exc_info=True)
        run = SequenceRun(seq, error=f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
    return _outcome(run, results_dir, exits)


def _run_one_star(args: tuple[Sequence, Path]) -> SequenceOutcome:
    return _run_one(*args)


def _run_lockstep(sequences: SequenceType[Sequence], results_dir: Path, batch: int) -> Iterator[SequenceOutcome]:
    """This worker's ``sequences``, ``batch`` at a time (:mod:`lib.test.evaluation.lockstep`)."""
    for run in track_lockstep(_worker_tracker, sequences, batch, read_rgb):
        yield _outcome(run, results_dir)


def _run_share_star(args: tuple[list[Sequence], Path, int]) -> list[SequenceOutcome]:
    return list(_run_lockstep(*args))


def run_sequences(spec: TrackerSpec, sequences: SequenceType[Sequence], results_dir: Path, threads: int = 0,
                  num_gpus: int = 1, device: str = "cpu", progress: bool = True, batch: int = 1) -> RunSummary:
    """Track every sequence without a result file; ``threads`` > 1 runs that many worker processes, ``batch`` > 1
    tracks that many sequences per network call in each (lockstep; the workers split the sequences evenly)."""
    summary = RunSummary()
    todo = []
    for seq in sequences:
        if result_paths(results_dir, seq)[0].exists():
            summary.outcomes.append(SequenceOutcome(seq.name, "skipped"))
        else:
            todo.append(seq)
    if summary.count("skipped"):
        logger.info("skipping %d sequences with existing results in %s", summary.count("skipped"), results_dir)
    if not todo:
        return summary
    bar = tqdm(total=len(todo), desc=f"{spec.script}:{spec.config}", unit="seq", disable=not progress)
    workers = max(1, min(threads, len(todo)))
    torch_threads = max(1, (os.cpu_count() or 1) // workers)
    outcomes: Iterable[SequenceOutcome]
    if workers == 1:
        _init_worker(spec, device, num_gpus, torch.get_num_threads())
        outcomes = (_run_one(seq, results_dir) for seq in todo) if batch == 1 else _run_lockstep(todo, results_dir,
                                                                                                batch)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                            initargs=(spec, device, num_gpus, torch_threads))
        if batch == 1:
            outcomes = pool.imap_unordered(_run_one_star, [(seq, results_dir) for seq in todo])
        else:
            shares = [(todo[worker::workers], results_dir, batch) for worker in range(workers)]
            outcomes = (outcome for share in pool.imap_unordered(_run_share_star, shares) for outcome in share)
    try:
        for outcome in outcomes:
            summary.outcomes.append(outcome)
            bar.set_postfix_str(f"{outcome.name}: {outcome.status}")
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return summary
