"""Train one FARTrack stage.

    python tracking/train.py --script fartrack --config fartrack_tiny_224_full --save_dir ./output --mode single
    python tracking/train.py --script fartrack_distill --config fartrack_distill_224_full --save_dir ./output \\
        --mode multiple --nproc_per_node 4
    python tracking/train.py --script fartrack_sparse --config fartrack_sparse_224_full --save_dir ./output \\
        --opts TRAIN.EPOCH 1 DATA.TRAIN.SAMPLE_PER_EPOCH 16

``--mode multiple`` starts ``torchrun --standalone --nproc_per_node N`` on this script (gloo on CPU, nccl on GPU);
the script also works when started by ``torchrun`` directly. Stages 2 and 3 start from the previous stage's
checkpoint under ``--save_dir`` (or ``--pretrained PATH``). ``--resume`` continues a run exactly. Exits non-zero
with the reason when the run cannot start or stops (missing data, non-finite loss, ...).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES, family_summaries  # noqa: E402
from lib.train.cli import run_train_command  # noqa: E402
from lib.train.run import DEFAULT_SEED  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="scripts:\n" + family_summaries())
    parser.add_argument("--script", required=True, choices=FAMILY_NAMES, help="training stage")
    parser.add_argument("--config", required=True, help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("--save_dir", type=Path, default=Path("output"), help="checkpoints, logs, TensorBoard")
    parser.add_argument("--mode", choices=("single", "multiple"), default="single")
    parser.add_argument("--nproc_per_node", type=int, default=1, help="processes for --mode multiple")
    parser.add_argument("--master_port", type=int, default=None, help="rendezvous port for --mode multiple")
    parser.add_argument("--use_wandb", type=int, choices=(0, 1), default=0, help="log to Weights & Biases")
    parser.add_argument("--use_lmdb", type=int, choices=(0, 1), default=0, help="read the LMDB dataset variants")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="base seed (each process adds its rank)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--pretrained", type=Path, help="previous-stage checkpoint (stages 2 and 3)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                        help="continue the run from its latest checkpoint (or from CHECKPOINT)")
    parser.add_argument("--opts", nargs="+", default=[], help="config overrides KEY VALUE [KEY VALUE ...]")
    args = parser.parse_args(argv)
    if args.nproc_per_node < 1:
        parser.error("--nproc_per_node must be >= 1")
    if len(args.opts) % 2:
        parser.error(f"--opts needs KEY VALUE pairs, got an odd number of items: {args.opts}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_train_command(Path(__file__).resolve(), argv, **vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
