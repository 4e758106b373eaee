"""Validated, server-ready submission zips for the GOT-10k and TrackingNet test servers.

Shared by ``transform_got10k.py`` and ``transform_trackingnet.py``. Everything is checked before anything is
written: the set of sequences (the dataset's list when its root exists, otherwise the official count), one line
per frame, four integers per line with a tab or comma separator, non-negative sizes and, for GOT-10k, a time file
per sequence with one number per frame. Any failure raises :class:`SubmissionError` listing every offending
sequence; the zip is written to a temporary name and renamed, so no half-written archive is left behind.
The raw results are never modified or deleted (the official scripts delete them after zipping).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from lib.test.evaluation.datasets import DatasetError, dataset_root, get_dataset
from lib.test.evaluation.environment import env_settings

logger = logging.getLogger(__name__)

_INT_ROW = re.compile(r"^\s*(-?\d+)\s*([\t,])\s*(-?\d+)\s*\2\s*(-?\d+)\s*\2\s*(-?\d+)\s*$")
#: Suffixes of the runner's side files that are not box results (``_exits.txt``: FastSeqTrack's exit per frame).
SIDE_FILE_SUFFIXES = ("_time.txt", "_all_boxes.txt", "_all_scores.txt", "_exits.txt")


class SubmissionError(RuntimeError):
    """The results cannot be packaged; the message lists every problem found."""


@dataclass
class Submission:
    """What one server expects: its name (also the results sub-folder), the dataset to list sequences from and the
    folder under its root that must exist to use it, the official sequence count, whether time files are required,
    which result names belong to it when the dataset is absent, and the zip layout."""

    name: str
    dataset: str
    dataset_subdir: str
    official_count: int
    needs_time: bool
    is_member: Callable[[str], bool]
    members: Callable[[str, str, Optional[str]], dict[str, str]]  # (seq, comma rows, time text) -> {arcname: text}
    zip_name: str


def read_int_rows(path: Path) -> tuple[list[str], list[str]]:
    """The rows of a result file rewritten as ``x,y,w,h`` comma-separated ints, and the problems found
    (``file: line n: ...``, 1-based). Blank lines are ignored."""
    rows, problems = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _INT_ROW.match(line)
        if match is None:
            problems.append(f"{path}: line {number}: expected 4 integers separated by tabs or commas, "
                            f"got {line.strip()!r}")
            continue
        x, y, w, h = (int(match.group(i)) for i in (1, 3, 4, 5))
        if w < 0 or h < 0:
            problems.append(f"{path}: line {number}: negative width or height")
        rows.append(f"{x},{y},{w},{h}")
    return rows, problems


def read_times(path: Path) -> tuple[int, list[str]]:
    """The number of per-frame times in a time file and the problems found (each line must be one number >= 0)."""
    count, problems = 0, []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = float(line.strip())
        except ValueError:
            value = float("nan")
        if not value >= 0:
            problems.append(f"{path}: line {number}: expected one non-negative time in seconds, got {line.strip()!r}")
        count += 1
    return count, problems


def result_names(src_dir: Path) -> list[str]:
    """Sequence names with a ``<seq>.txt`` in ``src_dir`` (the runner's side files excluded), sorted."""
    return sorted(p.name[:-4] for p in src_dir.glob("*.txt") if not p.name.endswith(SIDE_FILE_SUFFIXES))


def expected_frames(spec: Submission, env) -> Optional[dict[str, int]]:
    """``{sequence: number of frames}`` from the dataset when its test folder exists, else None (with a warning).
    A test folder that exists but does not load is an error."""
    folder = dataset_root(spec.dataset, env) / spec.dataset_subdir
    if not folder.is_dir():
        logger.warning("dataset %s not found (%s): the sequence list and the frame counts cannot be checked "
                       "against it; checking the official sequence count and the files' own consistency only",
                       spec.dataset, folder)
        return None
    try:
        return {seq.name: len(seq.frames) for seq in get_dataset(spec.dataset, env)}
    except DatasetError as err:
        raise SubmissionError(f"cannot list the {spec.dataset} sequences to validate against:\n{err}") from err


def collect(spec: Submission, src_dir: Path, frames: Optional[dict[str, int]]) -> dict[str, str]:
    """Validate the results in ``src_dir`` and return the zip members ``{arcname: text}``; raises
    :class:`SubmissionError` listing every problem."""
    if not src_dir.is_dir():
        raise SubmissionError(f"no results folder {src_dir}")
    present = result_names(src_dir)
    if frames is not None:
        names = sorted(frames)
        extra = sorted(set(present) - set(frames))
        if extra:
            logger.warning("%d result file(s) in %s are not %s sequences and are left out: %s", len(extra), src_dir,
                           spec.dataset, ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else ""))
    else:
        names = [n for n in present if spec.is_member(n)]
        ignored = sorted(set(present) - set(names))
        if ignored:
            logger.warning("left out %d result file(s) that are not %s test sequences: %s", len(ignored), spec.name,
                           ", ".join(ignored[:10]))
    problems = []
    if frames is None and len(names) != spec.official_count:
        problems.append(f"found {len(names)} {spec.name} sequences in {src_dir}, the official test set has "
                        f"{spec.official_count}")
    members = {}
    for name in names:
        result = src_dir / f"{name}.txt"
        if not result.is_file():
            problems.append(f"{name}: missing result file {result}")
            continue
        rows, row_problems = read_int_rows(result)
        problems += row_problems
        if frames is not None and len(rows) != frames[name]:
            problems.append(f"{name}: {result} has {len(rows)} boxes, the sequence has {frames[name]} frames")
        time_text = None
        if spec.needs_time:
            time_file = src_dir / f"{name}_time.txt"
            if not time_file.is_file():
                problems.append(f"{name}: missing time file {time_file}")
            else:
                time_text = time_file.read_text()
                count, time_problems = read_times(time_file)
                problems += time_problems
                if count != len(rows):
                    problems.append(f"{name}: {time_file} has {count} times for {len(rows)} boxes")
        members.update(spec.members(name, "\n".join(rows) + "\n", time_text))
    if problems:
        shown = "\n  ".join(problems[:50]) + (f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else "")
        raise SubmissionError(f"{spec.name} submission not written, {len(problems)} problem(s):\n  {shown}")
    return members


def write_zip(path: Path, members: dict[str, str]) -> Path:
    """Write ``members`` into the zip ``path`` atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for arcname in sorted(members):
                archive.writestr(arcname, members[arcname])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def package(spec: Submission, tracker_name: str, cfg_name: str, results_path: Optional[Path] = None,
            out_dir: Optional[Path] = None, env=None) -> Path:
    """Validate ``<results_path>/<tracker>/<cfg>/<dataset tag>/`` and write ``<out_dir>/<zip_name>`` (default
    ``out_dir``: ``<results_path>/<tracker>/<cfg>``). Returns the zip path."""
    if env is None:
        env = env_settings()
    results_path = Path(results_path if results_path is not None else env.results_path)
    tracker_dir = results_path / tracker_name / cfg_name
    members = collect(spec, tracker_dir / spec.name, expected_frames(spec, env))
    zip_path = write_zip(Path(out_dir if out_dir is not None else tracker_dir) / spec.zip_name, members)
    logger.info("wrote %s (%d sequences)", zip_path, len({m.split("/")[0] for m in members}))
    return zip_path


def validate_zip(spec: Submission, zip_path: Path, frames: Optional[dict[str, int]] = None) -> list[str]:
    """The sequence names of a written zip after re-checking its layout: every member has the expected name, one
    box per line (and per frame when ``frames`` is given); GOT-10k folders hold ``_001.txt`` and ``_time.txt``."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        texts = {n: archive.read(n).decode() for n in names}
    sequences = sorted({n.split("/")[0] if "/" in n else n[:-4] for n in names})
    problems = []
    for seq in sequences:
        expected = set(spec.members(seq, "", "" if spec.needs_time else None))
        if not expected <= set(names):
            problems.append(f"{seq}: missing {', '.join(sorted(expected - set(names)))}")
            continue
        box_member = next(n for n in expected if not n.endswith("_time.txt"))
        rows = [r for r in texts[box_member].splitlines() if r.strip()]
        if not all(re.fullmatch(r"-?\d+,-?\d+,\d+,\d+", r) for r in rows):
            problems.append(f"{box_member}: malformed rows")
        if frames is not None and len(rows) != frames.get(seq, -1):
            problems.append(f"{box_member}: {len(rows)} rows for {frames.get(seq)} frames")
    unexpected = sorted(set(names) - {m for seq in sequences for m in spec.members(seq, "", "")})
    if unexpected:
        problems.append(f"unexpected members: {', '.join(unexpected)}")
    if frames is not None and set(sequences) != set(frames):
        problems.append(f"sequences differ from the dataset's: {len(sequences)} in the zip, {len(frames)} expected")
    if problems:
        raise SubmissionError(f"{zip_path}: " + "; ".join(problems))
    return sequences


def run_cli(submission: "Submission", description: str, argv=None) -> int:
    """Command line shared by the official packaging scripts (``--tracker_name --cfg_name [--results_path]
    [--out_dir]``); exit status 1 with the reason when validation fails."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tracker_name", required=True)
    parser.add_argument("--cfg_name", required=True)
    parser.add_argument("--results_path", type=Path, help="override the results root of the environment")
    parser.add_argument("--out_dir", type=Path, help=f"where to write {submission.zip_name}")
    args = parser.parse_args(argv)
    try:
        path = package(submission, args.tracker_name, args.cfg_name, args.results_path, args.out_dir)
    except SubmissionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
