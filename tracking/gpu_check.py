"""Check what a CUDA machine adds in one command (``make gpu-check``): the CUDA tests, the profiler in fp32 / bf16 /
fp16 / CUDA graphs at depth 15 / 10 / 6, ``tracking/test.py --batch 1/8/32`` throughput and two epochs of stages 1
and 3 with AMP through torchrun (nccl), each part within its own time budget, about 9 minutes in all.

    python tracking/gpu_check.py [--out output/gpu_check] [--dry_run]

Without CUDA it runs the CPU-compatible parts (the profiler at one depth, a short stage-1 train through torchrun with
gloo) and records why the others were skipped. Writes ``<out>/gpu_check.json`` and ``<out>/summary.md``; exits 0
when every part that ran passed, 1 otherwise. See ``lib/test/gpu_check.py``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.test.gpu_check import run_gpu_check  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("output/gpu_check"), help="JSON, summary, logs, scratch")
    parser.add_argument("--dry_run", action="store_true", help="write the plan (commands, budgets, skips) only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_gpu_check(args.out, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
