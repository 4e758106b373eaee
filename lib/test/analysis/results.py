"""Finding and reading tracker result files (``<seq>.txt``, ``x y w h`` per frame), with no cache.

Layout written by the test runner (spec section 8): ``<results_path>/<script>/<config>/<seq>.txt``; sequences
tagged ``got10k`` or ``trackingnet`` go into the ``got10k/`` or ``trackingnet/`` sub-folder. The official analysis
only looks in the config folder (metrics.md A.1); we look in the sub-folders too.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional, Union

import numpy as np

from lib.utils.run_layout import SUBFOLDER_TAGS

logger = logging.getLogger(__name__)


PathLike = Union[str, Path]


class ResultFileError(ValueError):
    """A result file that cannot be scored; the message names the file and the 1-based line."""


def find_result_file(results_dir: PathLike, seq_name: str, dataset_tag: str = "") -> Optional[Path]:
    """The result file of ``seq_name`` or None: ``<dataset_tag>/`` sub-folder first (where the runner writes
    GOT-10k / TrackingNet results), then the config folder, then the other sub-folders."""
    results_dir = Path(results_dir)
    folders = [results_dir / tag for tag in SUBFOLDER_TAGS if tag == dataset_tag]
    folders += [results_dir] + [results_dir / tag for tag in SUBFOLDER_TAGS if tag != dataset_tag]
    found = [folder / f"{seq_name}.txt" for folder in folders if (folder / f"{seq_name}.txt").is_file()]
    if len(found) > 1:
        logger.warning("several result files for %s; using %s (also: %s)", seq_name, found[0],
                       ", ".join(str(p) for p in found[1:]))
    return found[0] if found else None


def _parse_line(line: str, delimiter: str) -> Optional[list[float]]:
    """The 4 numbers of one line split on ``delimiter``, or None if it does not hold exactly 4 numbers."""
    fields = line.strip().split(delimiter)
    if len(fields) != 4:
        return None
    try:
        return [float(v) for v in fields]
    except ValueError:
        return None


def _parse_rows(lines: list[str], delimiter: str) -> tuple[list[tuple[int, list[float]]], Optional[int]]:
    """(1-based line number, 4 numbers) per non-blank line, and the number of the first line that does not parse."""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        values = _parse_line(line, delimiter)
        if values is None:
            return rows, number
        rows.append((number, values))
    return rows, None


def read_result_file(path: PathLike) -> np.ndarray:
    """An ``(N, 4)`` float64 array from a result file: tab-delimited first, then comma (the official ``load_text``
    order). Blank lines are skipped. A malformed line, a NaN value or a negative width / height raises
    :class:`ResultFileError` naming the file and the 1-based line (the official analysis raises "Invalid results"
    without saying where)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    rows, bad_tab = _parse_rows(lines, "\t")
    if bad_tab is not None:
        rows, bad_comma = _parse_rows(lines, ",")
        if bad_comma is not None:
            bad = max(bad_tab, bad_comma)
            raise ResultFileError(f"{path}: line {bad}: expected 4 numbers x, y, w, h separated by tabs (or all "
                                  f"by commas), got {lines[bad - 1].strip()!r}")
    if not rows:
        raise ResultFileError(f"{path}: empty result file")
    for number, values in rows:
        if any(math.isnan(v) for v in values):
            raise ResultFileError(f"{path}: line {number}: NaN in the box {values}")
        if values[2] < 0 or values[3] < 0:
            raise ResultFileError(f"{path}: line {number}: negative width or height in the box {values}")
    return np.array([values for _, values in rows], dtype=np.float64)
