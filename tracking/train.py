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
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config.loader import ConfigError  # noqa: E402

from lib.families import FAMILY_NAMES
from lib.train.dataset.base import TrainDatasetError  # noqa: E402
from lib.train.distributed import started_by_torchrun  # noqa: E402
from lib.train.run import DEFAULT_SEED, TrainingSetupError, TrainOptions, run_training  # noqa: E402
from lib.train.trainer import NonFiniteLossError  # noqa: E402
from lib.utils.checkpoint import CheckpointError  # noqa: E402

logger = logging.getLogger("train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def launch_torchrun(args: argparse.Namespace, argv: list[str]) -> int:
    """Re-run this script under torchrun with the same arguments (minus the launcher ones)."""
    forwarded, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in ("--mode", "--nproc_per_node", "--master_port"):
            skip = "=" not in item
            continue
        forwarded.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.nproc_per_node}"]
    command += [f"--master_port={args.master_port}"] if args.master_port else ["--standalone"]
    command += [str(Path(__file__).resolve()), *forwarded]
    logging.getLogger("train").info("launching: %s", " ".join(command))
    return subprocess.call(command, env=os.environ.copy())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.mode == "multiple" and not started_by_torchrun():
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        return launch_torchrun(args, argv)
    if args.use_wandb and importlib.util.find_spec("wandb") is None:
        logger.error("--use_wandb 1 needs the wandb package: pip install -e '.[wandb]'")
        return 1
    options = TrainOptions(
        script=args.script, config=args.config, save_dir=args.save_dir, opts=args.opts, seed=args.seed,
        use_lmdb=bool(args.use_lmdb), use_wandb=bool(args.use_wandb), resume=args.resume, pretrained=args.pretrained,
        device=args.device, argv=["tracking/train.py", *argv],
    )
    try:
        run_training(options)
    except (ConfigError, TrainDatasetError, TrainingSetupError, CheckpointError, NonFiniteLossError,
            FileNotFoundError) as error:
        logger.error("training failed: %s", error)
        return 1
    except KeyboardInterrupt:
        logger.error("interrupted; resume with --resume (continues from the last checkpoint written)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
