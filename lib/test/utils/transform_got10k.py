"""Package GOT-10k test results for the evaluation server (official CLI, NumPy >= 1.24 safe).

    python lib/test/utils/transform_got10k.py --tracker_name fartrack_sparse --cfg_name fartrack_sparse_224_full \\
        [--results_path DIR] [--out_dir DIR]

Reads ``<results_path>/<tracker>/<cfg>/got10k/<seq>.txt`` and ``<seq>_time.txt`` and writes
``<out_dir>/got10k_submit.zip`` (default ``out_dir``: ``<results_path>/<tracker>/<cfg>``) whose root holds one folder
per sequence: ``<seq>/<seq>_001.txt`` (comma-separated integer boxes, frame 0 included) and ``<seq>/<seq>_time.txt``.
Validated first (180 test sequences, or the dataset's list when ``got10k_path/test`` exists; one box and one time
per frame; four integers per line); on any problem nothing is written and the exit status is 1. Unlike the official
script, the raw results are kept and no ``got10k.zip`` copy of them is made.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from lib.test.utils.packaging import Submission, package, run_cli  # noqa: E402


def _members(seq: str, rows: str, time_text: Optional[str]) -> dict[str, str]:
    return {f"{seq}/{seq}_001.txt": rows, f"{seq}/{seq}_time.txt": time_text or ""}


GOT10K_SUBMISSION = Submission(
    name="got10k", dataset="got10k_test", dataset_subdir="test", official_count=180, needs_time=True,
    is_member=lambda name: re.fullmatch(r"GOT-10k_Test_\d{6}", name) is not None,
    members=_members, zip_name="got10k_submit.zip")


def transform_got10k(tracker_name: str, cfg_name: str, results_path: Optional[Path] = None,
                     out_dir: Optional[Path] = None, env=None) -> Path:
    """Validate the GOT-10k test results of one tracker and write the server zip; returns its path."""
    return package(GOT10K_SUBMISSION, tracker_name, cfg_name, results_path, out_dir, env)


def main(argv=None) -> int:
    return run_cli(GOT10K_SUBMISSION, "Package GOT-10k test results for the evaluation server.", argv)


if __name__ == "__main__":
    sys.exit(main())
