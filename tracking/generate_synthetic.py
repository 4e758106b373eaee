"""Generate the built-in synthetic datasets (GOT-10k, LaSOT, TrackingNet and COCO 2017 layouts) of the quickstart.

    python tracking/generate_synthetic.py                  # into the data_dir of the path settings (./data)
    python tracking/generate_synthetic.py --data_dir /tmp/synthetic --difficulty hard --frames 60 --force
    python tracking/generate_synthetic.py --datasets got10k lasot --got10k_train 200

Re-running with the same parameters does nothing (``<data_dir>/manifest.json``); ``--force`` regenerates. Folders
of ``data_dir`` that the manifest does not list (real datasets) are never replaced. When ``data_dir`` is not the
default one, point the settings at it with ``FARTRACK_DATA_DIR=<data_dir>``. Layouts and ground-truth conventions:
``lib/synthetic/writers.py``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.synthetic import DATASETS, LEVELS, SyntheticConfig  # noqa: E402
from lib.synthetic.cli import COUNT_FIELDS, run_generate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, help="where to write (default: data_dir of the training settings)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--difficulty", default=defaults.difficulty,
                        help=f"{' / '.join(LEVELS)} or a level in 0..1 (default: %(default)s)")
    parser.add_argument("--salience", type=float, default=defaults.salience,
                        help="0..1: objects stand out by their colours (1: bright objects on dark, muted "
                             "backgrounds), same scenes and ground truth (default: %(default)s, the original look)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), metavar="NAME",
                        help=f"datasets to write (default: all): {' '.join(DATASETS)}")
    parser.add_argument("--frames", type=int, help="frames of every sequence (default: per-split counts below)")
    parser.add_argument("--image_size", type=int, nargs=2, metavar=("W", "H"), default=list(defaults.image_size))
    for name in COUNT_FIELDS:
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name), help="(default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="regenerate even when the manifest matches")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    return run_generate(**vars(args))


if __name__ == "__main__":
    sys.exit(main())
