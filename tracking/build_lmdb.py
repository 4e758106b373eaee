"""Pack a training dataset folder into an LMDB that the training datasets read with ``use_lmdb=True``.

    python tracking/build_lmdb.py lasot                        # lasot_dir -> lasot_lmdb_dir
    python tracking/build_lmdb.py got10k                       # got10k_dir -> <got10k_lmdb_dir>/train
    python tracking/build_lmdb.py got10k_val                   # got10k_val_dir -> <got10k_lmdb_dir>/val
    python tracking/build_lmdb.py coco --src /data/coco --dst /fast/coco_lmdb --overwrite

Paths default to the training settings (FARTRACK_* environment variables, lib/train/admin/local.py). The source
layout is checked first; the LMDB is written to a temporary folder and renamed into place when complete. An
existing LMDB is kept unless --overwrite is given.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.train.admin.environment import train_env_settings  # noqa: E402
from lib.train.dataset.storage import build_lmdb  # noqa: E402
from lib.train.dataset import LMDB_TARGETS, TrainDatasetError, lmdb_paths, source_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=LMDB_TARGETS, help="dataset folder to pack")
    parser.add_argument("--src", type=Path, help="source folder (default: from the training settings)")
    parser.add_argument("--dst", type=Path, help="LMDB folder to write (default: from the training settings)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing LMDB")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    default_src, default_dst = lmdb_paths(train_env_settings())[args.target]
    src, dst = args.src or default_src, args.dst or default_dst
    try:
        dataset = source_dataset(args.target, src)
        print(f"{dataset.name}: {len(dataset)} sequences in {src}", flush=True)
        build_lmdb(src, dst, include=dataset.lmdb_include(), overwrite=args.overwrite, progress=not args.quiet)
    except (TrainDatasetError, FileExistsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
