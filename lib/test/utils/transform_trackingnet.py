"""Package TrackingNet test results for the evaluation server (official CLI, NumPy >= 1.24 safe).

    python lib/test/utils/transform_trackingnet.py --tracker_name fartrack_sparse \\
        --cfg_name fartrack_sparse_224_full [--results_path DIR] [--out_dir DIR]

Reads ``<results_path>/<tracker>/<cfg>/trackingnet/<seq>.txt`` and writes ``<out_dir>/trackingnet_submit.zip``
(default ``out_dir``: ``<results_path>/<tracker>/<cfg>``) with one ``<seq>.txt`` per sequence at the archive root
(comma-separated integer boxes, every frame). Validated first (511 test sequences, or the dataset's list and frame
counts when ``trackingnet_path`` exists; four integers per line); on any problem nothing is written and the exit
status is 1. Unlike the official script, the raw results are kept.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from lib.test.utils.packaging import Submission, package, run_cli  # noqa: E402


def _members(seq: str, rows: str, time_text: Optional[str]) -> dict[str, str]:
    return {f"{seq}.txt": rows}


TRACKINGNET_SUBMISSION = Submission(
    name="trackingnet", dataset="trackingnet", dataset_subdir="TEST", official_count=511, needs_time=False,
    is_member=lambda name: True, members=_members, zip_name="trackingnet_submit.zip")


def transform_trackingnet(tracker_name: str, cfg_name: str, results_path: Optional[Path] = None,
                          out_dir: Optional[Path] = None, env=None) -> Path:
    """Validate the TrackingNet test results of one tracker and write the server zip; returns its path."""
    return package(TRACKINGNET_SUBMISSION, tracker_name, cfg_name, results_path, out_dir, env)


def main(argv=None) -> int:
    return run_cli(TRACKINGNET_SUBMISSION, "Package TrackingNet test results for the evaluation server.", argv)


if __name__ == "__main__":
    sys.exit(main())
