"""Export a FARTrack network to ONNX, and optionally check ONNX Runtime boxes against PyTorch on a sequence.

    python tracking/export_onnx.py --script fartrack_sparse --config fartrack_sparse_224_full \\
        --checkpoint FARTrackSparse_ep0015.pth.tar --output fartrack_sparse.onnx \\
        --check ../shared/data/real-sequences/otb_Crossing

It writes two graphs (static input and output shapes, opset ``lib.export.OPSET``; the family, sizes, tracker
parameters and a shared export id in the metadata): the frame graph ``--output`` (default
``./<config>[_depth<L>].onnx``: cached template tokens, the search crop and, sparse family, the template keep-mask
in; the command-token logits and, sparse family, the newest template's keep-mask out; pruned tokens dropped inside
the graph) and the template graph next to it, ``<name>.template.onnx`` (a template crop in, its tokens out; run
once per stored template). ``FARTrackTracker(OnnxBackend(frame_graph), ...)`` runs the pair without PyTorch weights.

``--check FOLDER`` tracks an image folder (``*.jpg`` / ``*.png`` frames sorted by name, ``groundtruth.txt`` whose
first row is the initial ``x,y,w,h`` box) with the PyTorch tracker (faithful path) and the ONNX Runtime tracker,
prints the largest box difference in pixels and the per-frame time of each, and fails when the difference exceeds
``--tolerance``. Exit status: 0 success, 1 export or check failure, 2 bad arguments or inputs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.export.cli import run_export  # noqa: E402
from lib.export.onnx_export import OPSET  # noqa: E402
from lib.families import FAMILY_NAMES  # noqa: E402


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, choices=FAMILY_NAMES)
    parser.add_argument("--config", required=True, help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("--checkpoint", type=Path, help="weights to export (default: random init, with a warning)")
    parser.add_argument("--depth", type=int, help="layers to run (Tiny/Nano/Pico = 15/10/6); default MODEL.DEPTH")
    parser.add_argument("--opts", nargs="+", default=[], help="config overrides KEY VALUE [KEY VALUE ...]")
    parser.add_argument("--output", type=Path, help="the frame graph .onnx (default: ./<config>[_depth<L>].onnx); "
                        "the template graph is written next to it as <name>.template.onnx")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default and tested: {OPSET})")
    parser.add_argument("--check", type=Path, metavar="SEQUENCE_FOLDER",
                        help="track this image folder with PyTorch and ONNX Runtime and compare the boxes")
    parser.add_argument("--frames", type=int, help="--check: use only the first N frames")
    parser.add_argument("--tolerance", type=float, default=1.0, help="--check: largest allowed box difference (px)")
    parser.add_argument("--threads", type=int, default=0,
                        help="--check: CPU threads of both runtimes (0: each runtime's default)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    return run_export(**vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
