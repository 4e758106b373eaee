"""Profile a FARTrack tracker: parameters, MACs, model-only and end-to-end latency, FLOP/s against the roofline.

    python tracking/profile_model.py --script fartrack_sparse --config fartrack_sparse_224_full \
        --depth 15 10 6 --paths faithful fast bf16 int8 --threads 2 --json output/profile/sparse.json

For FastSeqTrack (``--script fastseqtrack``) there is one path; its early exits follow ``MODEL.DECODER.TAU``
(``--opts MODEL.DECODER.TAU 0.3``). FARTrack paths: ``faithful``, the official per-frame work and arithmetic;
``fast``, the default path, with the fastest kernels for the device; ``fast-torch``, the same with PyTorch's own
kernels (SDPA and ``nn.Linear``); ``bf16`` / ``int8`` (CPU) / ``fp16`` (CUDA), the fast path in lower
precision; ``cuda-graphs`` / ``fp16-cuda-graphs`` (CUDA), the fast path replayed from CUDA graphs; ``onnx``, the
network exported to ONNX and run by ONNX Runtime (needs the ``onnx`` extras). For every depth and
path it prints the median and p90 latency and FPS of the network alone and of the whole tracker step on real
frames, the speed-up over the first path measured in the same run, and how far each path's boxes move from the
first path's (max corner difference in px and mean IoU over the sequence). MACs come from
``torch.utils.flop_counter`` (projections + attention products, batch 1) at 100 % and, for the sparse family, at
the inference retention; the achieved FLOP/s (2 x MACs / model-only median) is compared with a large fp32 matrix
product timed in the same run (the faster of PyTorch's matmul and oneDNN's). See ``lib/test/profiling.py`` for
exactly what is timed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402

from lib.config.loader import ConfigError, load_config  # noqa: E402

from lib.families import FAMILY_NAMES
from lib.models.fartrack.complexity import count_macs, paper_param_count  # noqa: E402
from lib.models.fartrack.network import FARTrackNetwork  # noqa: E402
from lib.models.fartrack.sparsify import num_pruned  # noqa: E402
from lib.test.evaluation.running import TrackerSpec, build_tracker, read_rgb  # noqa: E402
from lib.test.profiling import (count_call_macs, environment, matmul_roofline, network_call,  # noqa: E402
                                time_end_to_end, time_model_only)
from lib.test.tracker.backends import InferenceOptions, TorchBackend  # noqa: E402
from lib.test.tracker.fartrack import FARTrackTracker  # noqa: E402
from lib.utils.box_ops import box_xywh_to_xyxy  # noqa: E402

logger = logging.getLogger("profile_model")

DEFAULT_FRAMES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sequences" / "otb_Human3_first100"
PATHS = {
    "faithful": InferenceOptions.faithful(),
    "fast": InferenceOptions(),
    "fast-torch": InferenceOptions(attention="sdpa", linear="torch"),
    "bf16": InferenceOptions(precision="bf16"),
    "fp16": InferenceOptions(precision="fp16"),
    "int8": InferenceOptions(precision="int8"),
    "cuda-graphs": InferenceOptions(cuda_graphs=True),
    "fp16-cuda-graphs": InferenceOptions(precision="fp16", cuda_graphs=True),
}
#: The exported graph run by ONNX Runtime (CPU execution provider); needs the ``onnx`` extras.
ONNX_PATH = "onnx"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, choices=FAMILY_NAMES)
    parser.add_argument("--config", required=True, help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("--depth", type=int, nargs="+", help="layers to run (default: the config's MODEL.DEPTH)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--paths", nargs="+", choices=[*PATHS, ONNX_PATH],
                        help="inference paths to time (default: faithful fast); the first is the reference for "
                             "speed-ups and box changes")
    parser.add_argument("--checkpoint", type=Path, help="weights (default: random, seeded, which times the same)")
    parser.add_argument("--frames_dir", type=Path, default=DEFAULT_FRAMES,
                        help="image folder with groundtruth.txt (first line = initial box)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the folder to track")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls before each measurement")
    parser.add_argument("--opts", nargs="+", default=[], help="config overrides KEY VALUE [KEY VALUE ...]")
    parser.add_argument("--json", type=Path, help="also write everything as JSON")
    return parser.parse_args(argv)


def load_frames(folder: Path, count: int) -> tuple[list[np.ndarray], list[float]]:
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    gt_file = folder / "groundtruth.txt"
    if len(paths) < 2 or not gt_file.is_file():
        raise FileNotFoundError(f"{folder} needs at least two images and a groundtruth.txt (pass --frames_dir)")
    first = gt_file.read_text().splitlines()[0].replace("\t", ",").replace(" ", ",")
    init_box = [float(v) for v in first.split(",") if v][:4]
    return [read_rgb(str(p)) for p in paths], init_box


def track_boxes(tracker: Any, frames: list[np.ndarray], init_box: list[float]) -> torch.Tensor:
    tracker.initialize(frames[0], {"init_bbox": init_box})
    boxes = [tracker.track(frame)["target_bbox"] for frame in frames[1:]]
    return torch.tensor(boxes, dtype=torch.float64)


def box_change(boxes: torch.Tensor, reference: torch.Tensor) -> dict:
    """How far ``boxes`` are from ``reference`` (both (N, 4) xywh): max corner difference and mean IoU."""
    a, b = box_xywh_to_xyxy(boxes), box_xywh_to_xyxy(reference)
    iou = box_iou(a, b).diagonal()
    return {"max_corner_diff_px": float((a - b).abs().max()), "mean_iou_to_reference": float(iou.mean())}


def onnx_tracker(torch_tracker: FARTrackTracker, threads: int, folder: Path) -> FARTrackTracker:
    """The same network exported to ONNX (checked at export) and tracked through ONNX Runtime."""
    from lib.export import OnnxBackend, export_onnx

    net = torch_tracker.backend.net
    path = folder / f"{net.family}_depth{net.depth}.onnx"
    export_onnx(net, path, torch_tracker.params)
    backend = OnnxBackend(path, intra_op_num_threads=threads)
    return FARTrackTracker(backend, backend.tracker_params)


def run_options(tracker: Any) -> dict:
    """The inference options a tracker really runs with (``auto`` kernels resolved); empty for other backends."""
    backend = getattr(tracker, "backend", None)
    return dict(backend.kernels.__dict__) if isinstance(backend, TorchBackend) else {}


def network_counts(tracker: Any, image: np.ndarray, init_box: list[float]) -> dict:
    """Depth, parameters (the paper's way and the whole state_dict) and MACs of an fp32 tracker's network."""
    if isinstance(tracker, FARTrackTracker):
        net = tracker.backend.net
        if tracker.backend.options.precision != "fp32":
            raise ValueError("count parameters and MACs on an fp32 network: put an fp32 path first in --paths")
        return {"depth": net.depth, "paper_params": paper_param_count(net),
                "state_dict_params": sum(v.numel() for v in net.state_dict().values()), "macs": fartrack_macs(net)}
    total = sum(p.numel() for p in tracker.net.parameters())
    macs = count_call_macs(network_call(tracker, image, init_box))
    return {"depth": None, "paper_params": total, "state_dict_params": total,
            "macs": {f"tau {tracker.params.tau:g}": {"total_macs": macs}}}


def fartrack_macs(net: FARTrackNetwork) -> dict:
    """MACs at 100 % template retention and, for the sparse family, at the inference steady state."""
    spec = net.spec
    sparse = net.family == "fartrack_sparse"
    macs = {"100%": count_macs(net, [spec.tokens_per_template] * spec.num_templates if sparse else None).as_dict()}
    if sparse:
        kept = spec.tokens_per_template - num_pruned(spec.tokens_per_template, net.test_prune_ratio)
        macs[f"{kept}/{spec.tokens_per_template} in older slots"] = count_macs(
            net, [kept] * (spec.num_templates - 1) + [spec.tokens_per_template]).as_dict()
    return macs


def profile(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    cfg = load_config(args.script, args.config, args.opts)
    frames, init_box = load_frames(args.frames_dir, args.frames)
    if args.checkpoint is None:
        logger.warning("no --checkpoint: random weights, the same for every path (latency does not depend on them)")
    fastseqtrack = args.script == "fastseqtrack"
    if fastseqtrack and (args.depth or args.paths):
        raise ValueError("fastseqtrack has one inference path and no --depth (its early exits follow "
                         "MODEL.DECODER.TAU, e.g. --opts MODEL.DECODER.TAU 0.3)")
    paths = ["default"] if fastseqtrack else (args.paths or ["faithful", "fast"])
    depths = [None] if fastseqtrack else (args.depth or [cfg.MODEL.DEPTH])
    rooflines = matmul_roofline(device)
    roofline = rooflines["best"]
    logger.info("fp32 matrix-product roofline on %s with %d threads: %s GFLOP/s", device, threads,
                ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in rooflines.items()))
    result = {"script": args.script, "config": args.config, "environment": environment(device, threads),
              "roofline_gflops": roofline / 1e9,
              "roofline_gflops_by_kernel": {name: rate / 1e9 for name, rate in rooflines.items() if name != "best"},
              "frames": str(args.frames_dir), "rows": []}
    scratch = tempfile.TemporaryDirectory(prefix="fartrack_profile_")
    for depth in depths:
        reference_boxes = None
        counts: dict = {}  # parameters and MACs of the fp32 network, the same for every path
        for name in paths:
            torch.manual_seed(0)  # random weights (no checkpoint) are then the same for every path
            spec = TrackerSpec(args.script, args.config, None if args.checkpoint is None else str(args.checkpoint),
                               depth, tuple(args.opts), PATHS.get(name, InferenceOptions()))
            tracker = build_tracker(spec, str(device))
            if not counts:
                counts = network_counts(tracker, frames[0], init_box)
            if name == ONNX_PATH:
                tracker = onnx_tracker(tracker, threads, Path(scratch.name))
            step_macs = list(counts["macs"].values())[-1]["total_macs"]  # what the tracker runs in steady state
            model = time_model_only(tracker, frames, init_box, device, args.calls, args.warmup)
            end_to_end = time_end_to_end(tracker, frames, init_box, device, args.calls, args.warmup)
            boxes = track_boxes(tracker, frames, init_box)
            reference_boxes = boxes if reference_boxes is None else reference_boxes
            achieved = 2.0 * step_macs / (model.median_ms / 1000.0)
            result["rows"].append({
                "depth": counts["depth"], "path": name, "options": run_options(tracker),
                "paper_params": counts["paper_params"], "state_dict_params": counts["state_dict_params"],
                "macs": counts["macs"], "model_only": model.as_dict(), "end_to_end": end_to_end.as_dict(),
                "achieved_gflops": achieved / 1e9, "roofline_fraction": achieved / roofline,
                "boxes_vs_reference": box_change(boxes, reference_boxes),
            })
    scratch.cleanup()
    reference = {}
    for row in result["rows"]:
        first = reference.setdefault(row["depth"], row)
        row["speedup_model_only"] = first["model_only"]["median_ms"] / row["model_only"]["median_ms"]
        row["speedup_end_to_end"] = first["end_to_end"]["median_ms"] / row["end_to_end"]["median_ms"]
    return result


def print_table(result: dict, reference_path: str) -> None:
    env = result["environment"]
    print(f"{result['script']} / {result['config']} on {env['cpu'] if env['device'] == 'cpu' else env.get('gpu')} "
          f"({env['device']}, {env['torch_threads']} threads, torch {env['torch']}); fp32 matmul roofline "
          f"{result['roofline_gflops']:.1f} GFLOP/s (" + ", ".join(
              f"{name} {rate:.1f}" for name, rate in result["roofline_gflops_by_kernel"].items()) + ")")
    print("| layers | path | params (paper) | GMACs (steady state) | model ms (p90) | model FPS | end-to-end ms (p90) "
          f"| end-to-end FPS | x {reference_path} (model / e2e) | GFLOP/s (% roofline) "
          f"| boxes vs {reference_path} (max px, IoU) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        macs = list(r["macs"].values())[-1]["total_macs"] / 1e9
        m, e, b = r["model_only"], r["end_to_end"], r["boxes_vs_reference"]
        print(f"| {r['depth']} | {r['path']} | {r['paper_params'] / 1e6:.2f} M | {macs:.3f} "
              f"| {m['median_ms']:.1f} ({m['p90_ms']:.1f}) | {m['fps']:.1f} | {e['median_ms']:.1f} ({e['p90_ms']:.1f}) "
              f"| {e['fps']:.1f} | {r['speedup_model_only']:.2f} / {r['speedup_end_to_end']:.2f} "
              f"| {r['achieved_gflops']:.1f} ({r['roofline_fraction']:.1%}) "
              f"| {b['max_corner_diff_px']:.2f}, {b['mean_iou_to_reference']:.3f} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.device == "cuda" and not torch.cuda.is_available():
        logger.error("--device cuda requested but no CUDA device is available")
        return 2
    try:
        result = profile(args)
    except (ConfigError, FileNotFoundError, ValueError) as error:
        logger.error("%s", error)
        return 2
    print_table(result, result["rows"][0]["path"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
