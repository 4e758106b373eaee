"""The whole FARTrack pipeline on the built-in synthetic data, on a CPU, in one command (``make quickstart``).

    python tracking/quickstart.py [--data_dir ./data] [--output_dir ./output/quickstart] [--fresh] [--fastseqtrack]

Generates the data, trains the three stages with the small configs ``experiments/*/*_quickstart.yaml``, tracks
the held-out synthetic GOT-10k val set with every trained tracker and a keep-the-initial-box baseline, and prints
one table (AUC, AO, SR50 in percent, CPU FPS), also written to ``<output_dir>/summary.json``; plots go to
``figure/quickstart``. A re-run continues where the last one stopped; ``--fresh`` starts over.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lib.quickstart import QuickstartError, format_table, run_quickstart  # noqa: E402
from lib.synthetic import SyntheticDataError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, default=REPO / "data", help="where the synthetic data go")
    parser.add_argument("--output_dir", type=Path, default=REPO / "output" / "quickstart")
    parser.add_argument("--figure_dir", type=Path, default=REPO / "figure" / "quickstart")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--fresh", action="store_true", help="delete earlier quickstart outputs first")
    parser.add_argument("--fastseqtrack", action="store_true",
                        help="also train FastSeqTrack-Tiny with stage 1's data and budget and add it to the table "
                             "(full decoder and early exits at several tau; about 5 more minutes)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    start = time.perf_counter()
    try:
        summary = run_quickstart(args.data_dir.resolve(), args.output_dir.resolve(), args.figure_dir.resolve(),
                                 seed=args.seed, fresh=args.fresh, fastseqtrack=args.fastseqtrack)
    except (QuickstartError, SyntheticDataError) as error:
        logging.error("quickstart failed: %s", error)
        return 1
    print()
    print(f"FARTrack quickstart on {summary['dataset']} (scores in percent)")
    print(format_table(summary))
    print(f"\nsummary: {args.output_dir / 'summary.json'}   plots: {args.figure_dir}")
    print(f"total time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
