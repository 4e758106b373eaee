"""TraX tracker server for the VOT toolkit: rectangle in, rectangle + confidence (best_score) out.

The toolkit launches it from trackers.ini (tracking/vot_setup.py writes the entry: protocol traxpython, command
tracking.vot_tracker, options as env_FARTRACK_VOT_* variables). By hand, for a TraX client:

    python tracking/vot_tracker.py --script fartrack_sparse --checkpoint FARTrackSparse_ep0015.pth.tar --depth 6

Every option defaults to its FARTRACK_VOT_* environment variable (lib/vot/server.py). Exits 0 when the client quits,
2 on a refused request or bad options (empty / special initial region, unreadable frame), 1 on other errors.
See docs/vot.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.vot import VotExtraMissing  # noqa: E402
from lib.vot.server import ENVIRONMENT, ServerOptions, build_from_options, options_from_environment, serve  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    env = ENVIRONMENT
    parser.add_argument("--script", help=f"family (default: the checkpoint's; env {env['script']})")
    parser.add_argument("--config", help=f"config name or YAML path (default: the official; env {env['config']})")
    parser.add_argument("--checkpoint", help=f"weights (env {env['checkpoint']})")
    parser.add_argument("--random_weights", action="store_true",
                        help=f"random initialisation, smoke runs only (env {env['random_weights']}=1)")
    parser.add_argument("--depth", type=int, help=f"layers to run, Tiny/Nano/Pico = 15/10/6 (env {env['depth']})")
    parser.add_argument("--device", help=f"cpu, cuda, cuda:1 or auto (default auto; env {env['device']})")
    parser.add_argument("--precision", help=f"fp32 (default), bf16, fp16 (CUDA), int8 (CPU) (env {env['precision']})")
    parser.add_argument("--threads", type=int, help=f"torch CPU threads (env {env['threads']})")
    parser.add_argument("--name", default="FARTrack", help="tracker name announced in the TraX handshake")
    try:
        parser.set_defaults(**options_from_environment())
    except ValueError as error:
        parser.error(str(error))
    args = parser.parse_args(argv)
    args.random_weights = bool(args.random_weights)
    args.device = args.device or "auto"
    args.precision = args.precision or "fp32"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="fartrack-vot %(levelname)s %(name)s: %(message)s")
    options = ServerOptions(**{k: v for k, v in vars(args).items() if k != "name"})
    problems = options.problems()
    if problems:
        logging.getLogger("tracking.vot_tracker").error("; ".join(problems))
        return 2
    try:
        return serve(lambda: build_from_options(options), name=args.name)
    except VotExtraMissing as error:
        logging.getLogger("tracking.vot_tracker").error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
