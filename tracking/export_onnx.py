"""Export a FARTrack network to ONNX, and optionally check ONNX Runtime boxes against PyTorch on a sequence.

    python tracking/export_onnx.py --script fartrack_sparse --config fartrack_sparse_224_full \\
        --checkpoint FARTrackSparse_ep0015.pth.tar --output fartrack_sparse.onnx \\
        --check ../shared/data/real-sequences/otb_Crossing

The graph is the per-frame network (templates, search crop and, sparse family, the template keep-mask in; the
command-token logits and, sparse family, the newest template's keep-mask out) with static shapes, opset
``lib.export.OPSET`` and the family, sizes and tracker parameters in its metadata, so
``FARTrackTracker(OnnxBackend(path), ...)`` runs it without PyTorch weights.

``--check FOLDER`` tracks an image folder (``*.jpg`` / ``*.png`` frames sorted by name, ``groundtruth.txt`` whose
first row is the initial ``x,y,w,h`` box) with the PyTorch tracker (faithful path) and the ONNX Runtime tracker,
prints the largest box difference in pixels and the per-frame time of each, and fails when the difference exceeds
``--tolerance``. Exit status: 0 success, 1 export or check failure, 2 bad arguments or inputs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lib.config.loader import ConfigError, load_config  # noqa: E402

#: Frame file extensions ``--check`` reads.

from lib.families import FAMILY_NAMES

#: Frame file extensions ``--check`` reads.
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    from lib.export.onnx_export import OPSET

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, choices=FAMILY_NAMES)
    parser.add_argument("--config", required=True, help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("--checkpoint", type=Path, help="weights to export (default: random init, with a warning)")
    parser.add_argument("--depth", type=int, help="layers to run (Tiny/Nano/Pico = 15/10/6); default MODEL.DEPTH")
    parser.add_argument("--opts", nargs="+", default=[], help="config overrides KEY VALUE [KEY VALUE ...]")
    parser.add_argument("--output", type=Path, help="the .onnx file (default: ./<config>[_depth<L>].onnx)")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default and tested: {OPSET})")
    parser.add_argument("--check", type=Path, metavar="SEQUENCE_FOLDER",
                        help="track this image folder with PyTorch and ONNX Runtime and compare the boxes")
    parser.add_argument("--frames", type=int, help="--check: use only the first N frames")
    parser.add_argument("--tolerance", type=float, default=1.0, help="--check: largest allowed box difference (px)")
    parser.add_argument("--threads", type=int, default=0,
                        help="--check: CPU threads of both runtimes (0: each runtime's default)")
    return parser.parse_args(argv)


def read_check_sequence(folder: Path, max_frames: Optional[int]) -> tuple[list[Path], list[float]]:
    """Frame paths and the initial box of an image folder; ValueError explains what is wrong."""
    from lib.test.evaluation.datasets import DatasetError, read_boxes

    if not folder.is_dir():
        raise ValueError(f"--check: {folder} is not a folder")
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)[:max_frames]
    if len(frames) < 2:
        raise ValueError(f"--check: {folder} needs at least 2 frames ({'/'.join(FRAME_EXTENSIONS)}), "
                         f"found {len(frames)}")
    try:
        init_box = [float(v) for v in read_boxes(folder / "groundtruth.txt")[0]]
    except DatasetError as error:
        raise ValueError(f"--check: {error}") from error
    if not np.all(np.isfinite(init_box)) or init_box[2] <= 0 or init_box[3] <= 0:
        raise ValueError(f"--check: the first ground-truth box {init_box} has no positive size")
    return frames, init_box


def track_frames(tracker, frames: list[Path], init_box: list[float]) -> tuple[np.ndarray, float]:
    """Boxes (N, 4) of every frame (frame 0 = the initial box) and the mean milliseconds of ``track`` calls."""
    from lib.test.evaluation.running import read_rgb

    tracker.initialize(read_rgb(str(frames[0])), {"init_bbox": init_box})
    boxes, seconds = [init_box], 0.0
    for frame in frames[1:]:
        image = read_rgb(str(frame))
        start = time.perf_counter()
        boxes.append(tracker.track(image)["target_bbox"])
        seconds += time.perf_counter() - start
    return np.asarray(boxes, dtype=np.float64), 1000.0 * seconds / (len(frames) - 1)


def compare_trackers(net, onnx_path: Path, params, frames: list[Path], init_box: list[float], threads: int = 0
                     ) -> dict[str, float]:
    """Track ``frames`` with the PyTorch (faithful) and the ONNX Runtime tracker; max box difference and timings."""
    from lib.export.onnx_runtime import OnnxBackend
    from lib.test.tracker.backends import InferenceOptions
    from lib.test.tracker.fartrack import FARTrackTracker

    torch_boxes, torch_ms = track_frames(FARTrackTracker(net, params, InferenceOptions.faithful()), frames, init_box)
    backend = OnnxBackend(onnx_path, intra_op_num_threads=threads)
    onnx_boxes, onnx_ms = track_frames(FARTrackTracker(backend, backend.tracker_params), frames, init_box)
    return {"frames": len(frames), "max_box_diff_px": float(np.abs(torch_boxes - onnx_boxes).max()),
            "torch_ms": torch_ms, "onnx_ms": onnx_ms}


def error(message: str, status: int) -> int:
    print(f"export_onnx: error: {message}", file=sys.stderr)
    return status


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    try:
        from lib.export.onnx_export import OnnxExportError, export_onnx
        from lib.models.fartrack.network import build_network
        from lib.models.fartrack.weights import load_network_weights
        from lib.test.tracker.fartrack import TrackerParams

        cfg = load_config(args.script, args.config, args.opts)
        check = read_check_sequence(args.check, args.frames) if args.check is not None else None
        if args.checkpoint is not None and not args.checkpoint.is_file():
            return error(f"checkpoint {args.checkpoint} not found", 2)
        net = build_network(cfg, depth=args.depth)
        params = TrackerParams.from_config(cfg)
    except (ConfigError, FileNotFoundError, ImportError, ValueError) as exc:
        return error(str(exc), 2)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.checkpoint is None:
        print(f"warning: no --checkpoint: exporting the random initialisation of {net.net_type}", file=sys.stderr)
    else:
        try:
            load_network_weights(net, args.checkpoint)
        except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched checkpoint is a usage error here
            return error(f"cannot load {args.checkpoint}: {exc}", 2)
    net.eval()
    config_name = cfg.name or Path(args.config).stem
    output = args.output or Path(f"{config_name}{'' if args.depth is None else f'_depth{args.depth}'}.onnx")
    try:
        report = export_onnx(net, output, params, opset=args.opset)
    except OnnxExportError as exc:
        return error(str(exc), 1)
    except ImportError as exc:
        return error(str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - the exporter's own errors are many; report and fail
        return error(f"export failed: {type(exc).__name__}: {exc}", 1)
    info = report.info
    print(f"wrote {report.path} ({info.family}, depth {info.depth}, opset {info.opset}) in {report.seconds:.1f} s; "
          f"max |logit diff| vs PyTorch {report.max_logit_diff:.2e}")
    if check is None:
        return 0
    frames, init_box = check
    result = compare_trackers(net, report.path, params, frames, init_box, args.threads)
    print(f"check on {args.check} ({result['frames']} frames): max box difference {result['max_box_diff_px']:.4f} px; "
          f"per frame PyTorch (faithful) {result['torch_ms']:.1f} ms, ONNX Runtime {result['onnx_ms']:.1f} ms")
    if not result["max_box_diff_px"] <= args.tolerance:
        return error(f"ONNX Runtime boxes differ from PyTorch by {result['max_box_diff_px']:.4f} px "
                     f"(> {args.tolerance} px)", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
