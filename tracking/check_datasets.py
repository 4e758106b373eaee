"""Report which benchmarks are present and well formed, and what is wrong with the others.

    python tracking/check_datasets.py                       # every dataset, exit status 0
    python tracking/check_datasets.py --dataset lasot got10k_val   # exit status 1 if one of them is broken

For each dataset: the root searched, the number of listed sequences found, and the first problems (missing
sequences or frames, GT rows != frame count, unreadable GT). Every frame file is checked, so a full LaSOT takes a
little while.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.test.evaluation.datasets import DATASET_NAMES, check_dataset  # noqa: E402
from lib.test.evaluation.environment import env_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", choices=DATASET_NAMES, metavar="NAME",
                        help=f"datasets to check (default: all): {' '.join(DATASET_NAMES)}")
    parser.add_argument("--max_problems", type=int, default=5, help="problems shown per dataset")
    args = parser.parse_args(argv)
    env = env_settings()
    broken = []
    for name in args.dataset or DATASET_NAMES:
        report = check_dataset(name, env)
        print(report.summary(args.max_problems), flush=True)
        if not report.ok:
            broken.append(name)
    if args.dataset and broken:
        print(f"broken or absent: {' '.join(broken)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
