"""Early-exit statistics: reading ``<seq>_exits.txt`` files and the distribution of the exits taken.

``tracking/test.py`` writes, for trackers with early exits (FastSeqTrack), one integer per frame next to the boxes:
the exit the frame took (0 = before the first decoder layer, ``l`` = after decoder layer ``l``), -1 for frame 0,
which runs no network. Frames with -1 are left out of the distribution.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from lib.test.analysis.results import ResultFileError, find_result_file

PathLike = Union[str, Path]

#: Suffix of the per-sequence exit files.
EXITS_SUFFIX = "_exits"


def find_exit_file(results_dir: PathLike, seq_name: str, dataset_tag: str = "") -> Optional[Path]:
    """``<seq>_exits.txt`` in the folders :func:`~lib.test.analysis.results.find_result_file` searches, or None."""
    return find_result_file(results_dir, f"{seq_name}{EXITS_SUFFIX}", dataset_tag)


def read_exit_file(path: PathLike) -> np.ndarray:
    """The (N,) int64 exit indices of an exit file; a line that is not an integer >= -1 raises
    :class:`ResultFileError` naming the file and the 1-based line."""
    path = Path(path)
    values = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = int(line.strip())
        except ValueError:
            raise ResultFileError(f"{path}: line {number}: expected an exit index, got {line.strip()!r}") from None
        if value < -1:
            raise ResultFileError(f"{path}: line {number}: exit index {value} < -1")
        values.append(value)
    return np.asarray(values, dtype=np.int64)


def exit_counts(exit_files: Iterable[PathLike]) -> dict[int, int]:
    """Frames per exit index over the given files (frames without an exit, -1, left out), sorted by exit."""
    counts: Counter[int] = Counter()
    for path in exit_files:
        counts.update(int(v) for v in read_exit_file(path) if v >= 0)
    return dict(sorted(counts.items()))


def mean_exit(counts: dict[int, int]) -> float:
    """Mean exit index over the frames, i.e. the mean number of decoder layers run."""
    frames = sum(counts.values())
    return sum(index * n for index, n in counts.items()) / frames if frames else float("nan")


def exit_table(name: str, counts: dict[int, int]) -> str:
    """Markdown table of one tracker's exit distribution: frames and share per exit, then the mean."""
    frames = sum(counts.values())
    lines = [f"| {name} exit | decoder layers run | frames | share % |", "|---|---|---|---|"]
    for index, n in counts.items():
        lines.append(f"| {index} | {index} | {n} | {100.0 * n / frames:.2f} |")
    lines.append(f"| mean | {mean_exit(counts):.3f} | {frames} | 100.00 |")
    return "\n".join(lines)
