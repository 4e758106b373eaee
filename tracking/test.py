"""Run a FARTrack tracker on a benchmark and write the official result files.

    python tracking/test.py fartrack_sparse fartrack_sparse_224_full --dataset lasot --threads 16 --num_gpus 4

Results go to ``<results_path>/<script>/<config>[_depth<L>][_<precision>][_faithful]/`` (``got10k/`` and
``trackingnet/`` sub-folders for those datasets); sequences with existing results are skipped. FastSeqTrack
(``fastseqtrack``) also writes ``<seq>_exits.txt`` (the exit each frame took), and a ``--opts MODEL.DECODER.TAU t``
other than the config's sends its results to ``<config>_tau<t>``. The checkpoint defaults to the official location
``<save_dir>/checkpoints/train/<script>/<config>/<NetClass>_ep%04d.pth.tar`` with ``TEST.EPOCH``. Exits non-zero
when any sequence failed, listing them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES  # noqa: E402
from lib.test.evaluation.datasets import DATASET_NAMES  # noqa: E402
from lib.test.evaluation.run_benchmark import run_benchmark  # noqa: E402
from lib.test.tracker.backends import PRECISIONS  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script", choices=FAMILY_NAMES)
    parser.add_argument("config", help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("--dataset", "--dataset_name", dest="dataset", default="otb", choices=DATASET_NAMES)
    parser.add_argument("--sequence", help="run only this sequence (name, or index in the dataset)")
    parser.add_argument("--threads", type=int, default=0, help="worker processes (0 or 1: run in this process)")
    parser.add_argument("--num_gpus", type=int, default=1, help="GPUs to spread the workers over (cuda only)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--checkpoint", type=Path, help="default: the official location for TEST.EPOCH")
    parser.add_argument("--depth", type=int, help="layers to run (Tiny/Nano/Pico = 15/10/6)")
    parser.add_argument("--opts", nargs="+", default=[], help="config overrides KEY VALUE [KEY VALUE ...]")
    parser.add_argument("--allow_missing", action="store_true",
                        help="run the sequences present when some of the official list are missing (default: error)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--faithful", action="store_true",
                        help="run the official per-frame work and attention arithmetic instead of the fast path "
                             "(same boxes, slower)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16 / int8 (CPU) / fp16 (CUDA) change the boxes slightly; default fp32")
    parser.add_argument("--batch", type=int, default=1,
                        help="track this many sequences per network call (lockstep, FARTrack families); a frame's "
                             "time is its step's time / the sequences in the step")
    parser.add_argument("--cuda_graphs", action="store_true",
                        help="replay each frame's network call from a CUDA graph (CUDA, fast path only)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_benchmark(**vars(args))


if __name__ == "__main__":
    sys.exit(main())
