"""Parameters and MACs of a FARTrack network at several depths and template retention rates.

    python tracking/model_summary.py --script fartrack_sparse --config fartrack_sparse_224_full [--json FILE]

Counts are exact (no timing): parameters the paper's way and over the full state_dict; MACs of one forward at
batch 1 from ``torch.utils.flop_counter``, split into projections (what the paper / thop count) and attention.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES  # noqa: E402
from lib.test.model_report import summarise, summary_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", default="fartrack_sparse", choices=FAMILY_NAMES)
    parser.add_argument("--config", default="fartrack_sparse_224_full")
    parser.add_argument("--depths", type=int, nargs="+", default=[15, 10, 6])
    parser.add_argument("--prune_ratios", type=float, nargs="+", default=[0.0, 0.25])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    try:
        rows = summarise(args.script, args.config, args.depths, args.prune_ratios)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
