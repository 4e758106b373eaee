"""Run a FARTrack tracker on a benchmark and write the official result files.

    python tracking/test.py fartrack_sparse fartrack_sparse_224_full --dataset lasot --threads 16 --num_gpus 4

Results go to ``<results_path>/<script>/<config>[_depth<L>]/`` (``got10k/`` and ``trackingnet/`` sub-folders for
those datasets); sequences with existing results are skipped. FastSeqTrack (``fastseqtrack``) also writes
``<seq>_exits.txt`` (the exit each frame took), and a ``--opts MODEL.DECODER.TAU t`` other than the config's sends
its results to ``<config>_tau<t>``. The checkpoint defaults to the official location
``<save_dir>/checkpoints/train/<script>/<config>/<NetClass>_ep%04d.pth.tar`` with ``TEST.EPOCH``. Exits non-zero
when any sequence failed, listing them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lib.config.loader import ConfigError, load_config  # noqa: E402

from lib.families import FAMILY_NAMES
from lib.models import fastseqtrack, net_class_name  # noqa: E402
from lib.test.evaluation.datasets import DATASET_NAMES, DatasetError, get_dataset  # noqa: E402
from lib.test.evaluation.environment import env_settings  # noqa: E402
from lib.test.evaluation.running import TrackerSpec, run_sequences  # noqa: E402
from lib.test.tracker.backends import PRECISIONS, InferenceOptions  # noqa: E402

logger = logging.getLogger("test")


def default_checkpoint(save_dir: Path, script: str, config_name: str, epoch: int) -> Path:
    """The official test-time checkpoint location."""
    return (save_dir / "checkpoints" / "train" / script / config_name
            / f"{net_class_name(script)}_ep{epoch:04d}.pth.tar")


def results_label(config_name: str, depth: int | None, config_depth: int) -> str:
    """Results folder name: the config name, plus ``_depth<L>`` when a depth other than the config's is run."""
    return config_name if depth is None or depth == config_depth else f"{config_name}_depth{depth}"


def tau_label(config_name: str, tau: float, config_tau: float) -> str:
    """FastSeqTrack results folder name: the config name, plus ``_tau<t>`` when a tau other than the config's runs."""
    return config_name if tau == config_tau else f"{config_name}_tau{tau:g}"


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
    parser.add_argument("--cuda_graphs", action="store_true",
                        help="replay each frame's network call from a CUDA graph (CUDA, fast path only)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.script, args.config, args.opts)
    except (ConfigError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    config_name = cfg.name or Path(args.config).stem
    env = env_settings()
    checkpoint = args.checkpoint or default_checkpoint(Path(env.save_dir), args.script, config_name, cfg.TEST.EPOCH)
    if not Path(checkpoint).is_file():
        logger.error("checkpoint %s not found (pass --checkpoint, or set TEST.EPOCH / --save_dir paths)", checkpoint)
        return 2
    try:
        sequences = get_dataset(args.dataset, env, allow_missing=args.allow_missing)
    except DatasetError as error:
        logger.error("%s", error)
        return 2
    if args.sequence is not None:
        names = [seq.name for seq in sequences]
        if args.sequence in names:
            sequences = [sequences[names.index(args.sequence)]]
        elif args.sequence.isdigit() and int(args.sequence) < len(sequences):
            sequences = [sequences[int(args.sequence)]]
        else:
            logger.error("sequence %r is not in %s", args.sequence, args.dataset)
            return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        logger.error("--device cuda requested but no CUDA device is available")
        return 2
    if args.script == fastseqtrack.SCRIPT:
        if args.depth is not None or args.faithful or args.precision != "fp32" or args.cuda_graphs:
            logger.error("fastseqtrack runs in fp32 on its one path and has no --depth (use --opts "
                         "MODEL.DECODER.TAU t to set its early exits)")
            return 2
        label = tau_label(config_name, cfg.MODEL.DECODER.TAU, load_config(args.script, args.config).MODEL.DECODER.TAU)
    else:
        label = results_label(config_name, args.depth, cfg.MODEL.DEPTH)
    if args.precision != "fp32":
        label += f"_{args.precision}"  # lower-precision boxes differ: keep them apart from the fp32 results
    results_dir = Path(env.results_path) / args.script / label
    if args.faithful and args.precision != "fp32":
        logger.error("--faithful runs in fp32; drop --precision %s", args.precision)
        return 2
    if args.cuda_graphs and (args.faithful or device != "cuda"):
        logger.error("--cuda_graphs replays the fast path on a CUDA device: drop --faithful and use --device cuda")
        return 2
    options = (InferenceOptions.faithful() if args.faithful
               else InferenceOptions(precision=args.precision, cuda_graphs=args.cuda_graphs))
    spec = TrackerSpec(args.script, args.config, str(checkpoint), args.depth, tuple(args.opts), options)
    logger.info("%s:%s on %s (%d sequences) -> %s", args.script, label, args.dataset, len(sequences), results_dir)
    summary = run_sequences(spec, sequences, results_dir, threads=args.threads, num_gpus=args.num_gpus,
                            device=device, progress=not args.no_progress)
    done, skipped = summary.count("done"), summary.count("skipped")
    logger.info("tracked %d sequences, skipped %d with existing results; %.1f FPS over the tracked frames",
                done, skipped, summary.fps)
    if summary.failed:
        for outcome in summary.failed:
            logger.error("sequence %s failed: %s", outcome.name, outcome.error.splitlines()[0])
        logger.error("%d of %d sequences failed; their results were not written", len(summary.failed),
                     len(sequences))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
