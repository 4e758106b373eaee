"""Training throughput of a stage on this machine: data loading vs model step, in samples per second.

    python tracking/train_throughput.py --script fartrack --config fartrack_tiny_224_full
    python tracking/train_throughput.py --script fartrack_sparse --config fartrack_sparse_224_full --workers 2 \\
        --opts TRAIN.BATCH_SIZE 2 --json throughput.json

Reads the datasets named by the config (set their paths like for training). The network is randomly initialised:
speed does not depend on the weights.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES  # noqa: E402
from lib.train.cli import run_throughput_command  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, choices=FAMILY_NAMES)
    parser.add_argument("--config", required=True, help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("--samples", type=int, default=32, help="samples produced in process")
    parser.add_argument("--batches", type=int, default=8, help="batches timed through the DataLoader")
    parser.add_argument("--steps", type=int, default=3, help="model steps timed (after one warm-up step)")
    parser.add_argument("--workers", type=int,
                        help="DataLoader workers (default: TRAIN.NUM_WORKER, capped at the CPUs)")
    parser.add_argument("--use_lmdb", type=int, choices=(0, 1), default=0)
    parser.add_argument("--opts", nargs="+", default=[], help="config overrides KEY VALUE [KEY VALUE ...]")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return run_throughput_command(**vars(args))


if __name__ == "__main__":
    sys.exit(main())
