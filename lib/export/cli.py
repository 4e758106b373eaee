"""The library side of ``tracking/export_onnx.py``: build the network of a family from its config (and weights),
export it with :func:`lib.export.export_onnx` (the frame graph ``<name>.onnx`` and the template graph
``<name>.template.onnx``) and, with a check folder, compare ONNX Runtime's boxes with PyTorch's.

:func:`run_export` is the command: it prints what it wrote (and the check), reports errors as
``export_onnx: error: ...`` on stderr and returns the exit status: 0 success, 1 export or check failure, 2 bad
arguments or inputs.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from lib.config.loader import ConfigError, load_config
from lib.export.onnx_export import OPSET, OnnxExportError, export_onnx
from lib.export.onnx_runtime import OnnxBackend
from lib.families import get_family
from lib.models.fartrack.network import FARTrackNetwork
from lib.test.evaluation.datasets import DatasetError, read_boxes
from lib.test.evaluation.running import read_rgb
from lib.test.tracker.backends import InferenceOptions
from lib.test.tracker.fartrack import FARTrackTracker

#: Frame file extensions ``--check`` reads.
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


def read_check_sequence(folder: Path, max_frames: Optional[int]) -> tuple[list[Path], list[float]]:
    """Frame paths and the initial box of an image folder; ValueError explains what is wrong."""
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


def track_frames(tracker: Any, frames: list[Path], init_box: list[float]) -> tuple[np.ndarray, float]:
    """Boxes (N, 4) of every frame (frame 0 = the initial box) and the mean milliseconds of ``track`` calls."""
    tracker.initialize(read_rgb(str(frames[0])), {"init_bbox": init_box})
    boxes, seconds = [init_box], 0.0
    for frame in frames[1:]:
        image = read_rgb(str(frame))
        start = time.perf_counter()
        boxes.append(tracker.track(image)["target_bbox"])
        seconds += time.perf_counter() - start
    return np.asarray(boxes, dtype=np.float64), 1000.0 * seconds / (len(frames) - 1)


def compare_trackers(net: FARTrackNetwork, onnx_path: Path, params: Any, frames: list[Path], init_box: list[float],
                     threads: int = 0) -> dict[str, float]:
    """Track ``frames`` with the PyTorch (faithful) and the ONNX Runtime tracker; max box difference and timings."""
    torch_boxes, torch_ms = track_frames(FARTrackTracker(net, params, InferenceOptions.faithful()), frames, init_box)
    backend = OnnxBackend(onnx_path, intra_op_num_threads=threads)
    onnx_boxes, onnx_ms = track_frames(FARTrackTracker(backend, backend.tracker_params), frames, init_box)
    return {"frames": len(frames), "max_box_diff_px": float(np.abs(torch_boxes - onnx_boxes).max()),
            "torch_ms": torch_ms, "onnx_ms": onnx_ms}


def error(message: str, status: int) -> int:
    """Print ``message`` the command's way and return ``status``."""
    print(f"export_onnx: error: {message}", file=sys.stderr)
    return status


def default_output(cfg: Any, config: str, depth: Optional[int]) -> Path:
    """``./<config>[_depth<L>].onnx`` (the frame graph; the template graph goes next to it)."""
    name = cfg.name or Path(config).stem
    return Path(f"{name}{'' if depth is None else f'_depth{depth}'}.onnx")


def run_export(script: str, config: str, *, checkpoint: Optional[Path] = None, depth: Optional[int] = None,
               opts: Sequence[Any] = (), output: Optional[Path] = None, opset: int = OPSET,
               check: Optional[Path] = None, frames: Optional[int] = None, tolerance: float = 1.0,
               threads: int = 0) -> int:
    """Run ``tracking/export_onnx.py``'s job (its options, same names); returns its exit status."""
    family = get_family(script)
    try:
        cfg = load_config(script, config, opts)
        sequence = read_check_sequence(check, frames) if check is not None else None
        if checkpoint is not None and not checkpoint.is_file():
            return error(f"checkpoint {checkpoint} not found", 2)
        net = family.build_network(cfg, depth=depth)
        params = family.tracker_params(cfg)
    except (ConfigError, FileNotFoundError, ImportError, ValueError) as exc:
        return error(str(exc), 2)
    if not isinstance(net, FARTrackNetwork):
        return error(f"{script}: only the FARTrack networks export to ONNX (this is a {net.net_type})", 2)
    if threads > 0:
        torch.set_num_threads(threads)
    if checkpoint is None:
        print(f"warning: no --checkpoint: exporting the random initialisation of {net.net_type}", file=sys.stderr)
    else:
        try:
            family.load_weights(net, checkpoint)
        except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched checkpoint is a usage error here
            return error(f"cannot load {checkpoint}: {exc}", 2)
    net.eval()
    try:
        report = export_onnx(net, output or default_output(cfg, config, depth), params, opset=opset)
    except OnnxExportError as exc:
        return error(str(exc), 1)
    except ImportError as exc:
        return error(str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - the exporter's own errors are many; report and fail
        return error(f"export failed: {type(exc).__name__}: {exc}", 1)
    info = report.info
    print(f"wrote {report.path} (frame graph) and {report.template_path} (template graph): {info.family}, depth "
          f"{info.depth}, opset {info.opset}, export {info.export_id}, in {report.seconds:.1f} s; max |diff| vs "
          f"PyTorch: template tokens {report.max_token_diff:.2e}, logits {report.max_logit_diff:.2e}")
    if sequence is None:
        return 0
    result = compare_trackers(net, report.path, params, *sequence, threads)
    print(f"check on {check} ({result['frames']} frames): max box difference {result['max_box_diff_px']:.4f} px; "
          f"per frame PyTorch (faithful) {result['torch_ms']:.1f} ms, ONNX Runtime {result['onnx_ms']:.1f} ms")
    if not result["max_box_diff_px"] <= tolerance:
        return error(f"ONNX Runtime boxes differ from PyTorch by {result['max_box_diff_px']:.4f} px "
                     f"(> {tolerance} px)", 1)
    return 0
