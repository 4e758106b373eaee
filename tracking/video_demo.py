"""Track one target through a video file, an image folder or a webcam, and write an annotated video.

    python tracking/video_demo.py fartrack_sparse fartrack_sparse_224_full video.mp4 --optional_box 100 80 40 60
    python tracking/video_demo.py fartrack_sparse fartrack_sparse_224_full path/to/frames/ --save_results
    python tracking/video_demo.py fartrack_sparse fartrack_sparse_224_full 0 --show      # webcam 0, draw the box

Headless by default: it writes the annotated video (``--output``, default
``<save_dir>/demo/<source>_<script>.mp4``) and, with ``--save_results``, a text file next to it with one
``x,y,w,h,score`` line per frame (first frame: the given box, score ``nan``). ``--show`` opens a window only when a
display exists and OpenCV has GUI support. The initial box is ``--optional_box``, else the first line of an image
folder's ``groundtruth.txt``, else one drawn in the window (``--show``). The checkpoint defaults to the official
location ``<save_dir>/checkpoints/train/<script>/<config>/<NetClass>_ep%04d.pth.tar`` (``TEST.EPOCH``); use
``--random_weights`` only for smoke runs. Prints the mean tracking FPS at the end. Exits 2 on bad input, 1 when
tracking fails.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES  # noqa: E402
from lib.test.demo import run_video_demo  # noqa: E402
from lib.test.tracker.backends import PRECISIONS  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script", choices=FAMILY_NAMES)
    parser.add_argument("config", help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("source", help="a video file, an image folder (jpg/png), or a webcam index such as 0")
    parser.add_argument("--optional_box", type=float, nargs=4, metavar=("X", "Y", "W", "H"),
                        help="initial box (top-left x, y, width, height in pixels)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", type=Path, help="default: the official location for TEST.EPOCH")
    weights.add_argument("--random_weights", action="store_true",
                         help="run a randomly initialised network (smoke runs only: the boxes are meaningless)")
    parser.add_argument("--save_results", action="store_true",
                        help="also write the boxes and scores (x,y,w,h,score per frame) next to the video, as .txt")
    parser.add_argument("--output", type=Path,
                        help="annotated video path (default: <save_dir>/demo/<source>_<script>.mp4)")
    parser.add_argument("--show", action="store_true", help="show a window, when a display exists")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--depth", type=int, help="layers to run (Tiny/Nano/Pico = 15/10/6)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16 / int8 (CPU) / fp16 (CUDA) change the boxes slightly; default fp32")
    parser.add_argument("--faithful", action="store_true",
                        help="run the official per-frame work and attention arithmetic (same boxes, slower)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--max_frames", type=int, help="stop after this many frames (the first one included)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_video_demo(**vars(args))


if __name__ == "__main__":
    sys.exit(main())
