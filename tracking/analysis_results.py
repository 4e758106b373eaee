"""Score tracking results the pytracking way (and with the GOT-10k protocol on GOT-10k val / ltrval).

    python tracking/analysis_results.py --tracker fartrack_sparse:fartrack_sparse_224_full [--tracker ...] \\
        --dataset lasot [--out scores.json] [--plot] [--per_sequence] [--results_path DIR]

Results are read from ``<results_path>/<script>/<config>/`` and its ``got10k/`` / ``trackingnet/`` sub-folders,
afresh on every run (no cache). Sequences without results are reported and left out. Prints a markdown table of
AUC, OP50, OP75, Precision, NormPrecision (+ AO, SR50, SR75 for got10k_val / got10k_ltrval), all in percent.
``--plot`` writes success / precision / normalised-precision PNGs into ``<result_plot_path>/<dataset>/``.
For trackers that wrote ``<seq>_exits.txt`` (FastSeqTrack) it also prints the distribution of the early exits taken.
Exit status 1 on any error (no results at all, a malformed result file, a dataset scored by its server, ...).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.test.analysis.cli import run_analysis  # noqa: E402
from lib.test.evaluation.datasets import DATASET_NAMES  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracker", action="append", required=True, metavar="SCRIPT:CONFIG",
                        help="a tracker as <script>:<config>; repeat to compare several")
    parser.add_argument("--dataset", "--dataset_name", dest="dataset", required=True, choices=DATASET_NAMES)
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--plot", action="store_true", help="write success / precision / norm. precision PNGs")
    parser.add_argument("--per_sequence", action="store_true", help="also print per-sequence tables")
    parser.add_argument("--results_path", type=Path, help="override the results root of the environment")
    parser.add_argument("--plot_dir", type=Path, help="override <result_plot_path>/<dataset>")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return run_analysis(**vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
