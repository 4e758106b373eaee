"""Inspect a checkpoint and check that it loads into a FARTrack network, without executing pickled code.

    python tracking/check_checkpoint.py CHECKPOINT [--script fartrack_sparse] [--config fartrack_sparse_224_full]

Prints what the file holds (epoch, network / actor type, the recorded official objects), then the strict-load
report against the network of ``--script`` (default: the family the checkpoint was saved from). Exits 1 when the
file is refused or does not load.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES  # noqa: E402
from lib.test.model_report import check_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--script", choices=FAMILY_NAMES, help="network family to load into (default: the saved one)")
    parser.add_argument("--config", help="config name or YAML path (default: the official config of the script)")
    parser.add_argument("--depth", type=int, help="layers the network will run")
    args = parser.parse_args(argv)
    return check_checkpoint(args.checkpoint, args.script, args.config, args.depth)


if __name__ == "__main__":
    sys.exit(main())
