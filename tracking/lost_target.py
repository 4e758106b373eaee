"""How well the tracker's score separates visible from absent target frames: AUROC and a threshold table.

    CKPT=output/quickstart/checkpoints/train/fartrack_sparse/fartrack_sparse_quickstart/FARTrackSparse_ep0003.pth.tar
    python tracking/lost_target.py data/lasot ../shared/data/real-sequences/tld_motocross_first100 \
        --script fartrack_sparse --config fartrack_sparse_quickstart --checkpoint $CKPT

Each PATH is a sequence folder or a folder holding them (LaSOT layout with full_occlusion.txt / out_of_view.txt,
or frames next to groundtruth.txt with absence.label); each PATH is reported as a group, then all pooled. A frame
counts as lost when score < threshold (what OpenCVStyleTracker.update reports as ok False). Details:
lib/test/analysis/lost_target.py and docs/opencv-tracker.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES  # noqa: E402
from lib.test.analysis.lost_target import MAX_FALSE_ALARM, run_lost_target  # noqa: E402
from lib.test.evaluation.datasets import DatasetError  # noqa: E402
from lib.test.tracker.opencv_style import DEFAULT_LOST_THRESHOLD  # noqa: E402
from lib.utils.checkpoint import CheckpointError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="sequence folders or folders holding them")
    parser.add_argument("--script", choices=FAMILY_NAMES, help="default: the family of the checkpoint")
    parser.add_argument("--config", help="config name under experiments/<script>/ or a YAML path "
                                         "(default: the family's official config)")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint", type=Path)
    weights.add_argument("--random_weights", action="store_true", help="smoke runs only: the scores are meaningless")
    parser.add_argument("--depth", type=int, help="layers to run (Tiny / Nano / Pico = 15 / 10 / 6)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--sequences", nargs="+", metavar="NAME", help="keep only these sequence folders")
    parser.add_argument("--max_frames", type=int, help="track at most this many frames of each sequence")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[],
                        help="extra table rows (the table always shows the default, the chosen thresholds and the "
                             "largest threshold within 1, 2, 5, 10, 20 and 50%% false alarms)")
    parser.add_argument("--max_false_alarm", type=float, default=MAX_FALSE_ALARM,
                        help="the choice rule: best F1 of the lost class flagging at most this share of the visible "
                             "frames (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.random_weights and args.script is None:
        parser.error("--random_weights needs --script")
    if not 0.0 <= args.max_false_alarm <= 1.0:
        parser.error("--max_false_alarm must be in [0, 1]")
    if args.max_frames is not None and args.max_frames < 2:
        parser.error("--max_frames must be at least 2 (the first frame only initialises)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        text = run_lost_target(args.paths, script=args.script, config=args.config, checkpoint=args.checkpoint,
                               depth=args.depth, device=args.device, threads=args.threads, names=args.sequences,
                               max_frames=args.max_frames, thresholds=args.thresholds,
                               marked=[DEFAULT_LOST_THRESHOLD], max_false_alarm=args.max_false_alarm)
    except (DatasetError, CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\n{text}\n\n(* = the OpenCVStyleTracker default threshold {DEFAULT_LOST_THRESHOLD}; "
          f"< = the chosen threshold: best F1 with false alarms <= {args.max_false_alarm:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
