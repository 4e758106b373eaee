"""Honest speed measurements of the trackers: latency distributions, FLOP/s against the machine's roofline.

What is timed (every number says which):

* **model only**: one call of the tracker's network on fixed crops: normalising the search crop, the network
  forward (templates as the tracker stores them: images on the faithful path, cached patch-embedding tokens on
  the fast path), logits back in float32. The sparse family runs with the inference steady-state keep-mask: 37 of
  49 tokens in each older slot, the newest template whole (``MODEL.SPARSE.TEST_PRUNE_RATIO``). FastSeqTrack runs
  its encoder and its decoder up to the exit its tau picks on that frame.
* **end to end**: one ``tracker.track(frame)`` on real frames already in memory: search crop, normalisation,
  network, decode, box mapping, new template crop and its encoding, template-slot update. Reading the image
  from disk is excluded, as the benchmark runners exclude it.

Every timing is one call, after warm-up, with the device synchronised before and after (CUDA), so the median and
p90 are per-call latencies, not throughput over overlapped calls.

Peer runtimes (:data:`RUNTIME_PATHS`) run the same network exported once per depth (``lib.export``: the template
graph and the frame graph) next to the PyTorch paths: ONNX Runtime in float32 and in dynamic int8
(``lib.export.quantize``), and OpenVINO in float32. Their model-only time is the frame graph on cached template tokens,
as for the fast path.

:func:`profile` runs every depth and inference path (:data:`PATHS`, :data:`RUNTIME_PATHS`) of
``tracking/profile_model.py`` and :func:`run_profile` is that command: the table, the JSON file and the exit status
(0 done, 2 bad arguments, inputs or a missing optional runtime).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.ops import box_iou

from lib.config.loader import ConfigError, load_config
from lib.export import GraphPairBackend, OnnxBackend, OpenVinoBackend, export_onnx, quantize_int8
from lib.export.onnx_runtime import import_onnxruntime
from lib.export.openvino_runtime import import_openvino
from lib.export.quantize import int8_path
from lib.families import get_family
from lib.models.fartrack.complexity import count_macs, paper_param_count
from lib.models.fartrack.network import FARTrackNetwork
from lib.models.fartrack.sparsify import num_pruned
from lib.models.onednn import flop_formulas, onednn_available, onednn_linear
from lib.test.evaluation.running import TrackerSpec, build_tracker, read_rgb
from lib.test.tracker.backends import InferenceOptions, TorchBackend
from lib.test.tracker.fartrack import FARTrackTracker
from lib.utils.box_ops import box_xywh_to_xyxy
from lib.utils.crop import sample_target


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Latency:
    """Per-call latencies in milliseconds."""

    samples_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 90))

    @property
    def fps(self) -> float:
        return 1000.0 / self.median_ms

    def as_dict(self) -> dict:
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "fps": self.fps, "calls": len(self.samples_ms)}


def time_calls(call: Callable[[int], object], device: torch.device, calls: int, warmup: int) -> Latency:
    """Time ``call(i)`` for ``calls`` iterations after ``warmup`` untimed ones, synchronising around each."""
    for i in range(warmup):
        call(i)
    synchronise(device)
    latency = Latency()
    for i in range(warmup, warmup + calls):
        start = time.perf_counter()
        call(i)
        synchronise(device)
        latency.samples_ms.append((time.perf_counter() - start) * 1000.0)
    return latency


def matmul_roofline(device: torch.device, size: int = 2048, dtype: torch.dtype = torch.float32,
                    repeats: int = 10) -> dict[str, float]:
    """Achieved FLOP/s of a large square matrix product on ``device``: what this machine can do at best.

    Timed through PyTorch's matmul and, on a CPU with oneDNN, through oneDNN (on some CPUs twice as fast); the
    returned ``best`` is the faster of the two.
    """
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    products = {"torch": lambda _: a @ b}
    if device.type == "cpu" and onednn_available():
        products["onednn"] = lambda _: onednn_linear(a, b)
    rates = {}
    for name, product in products.items():
        latency = time_calls(product, device, repeats, warmup=2)
        rates[name] = 2.0 * size**3 / (latency.median_ms / 1000.0)
    return {**rates, "best": max(rates.values())}


def steady_state_keep(tracker: FARTrackTracker) -> Optional[torch.Tensor]:
    """(1, T, P) keep-mask of the inference steady state: older slots pruned at the test ratio, newest whole."""
    if not tracker.sparse:
        return None
    backend = tracker.backend
    spec = tracker.spec
    # TorchBackend keeps the network; the exported-graph backends the ratio it was exported with (their metadata).
    ratio = backend.net.test_prune_ratio if isinstance(backend, TorchBackend) else backend.info.test_prune_ratio
    kept = spec.tokens_per_template - num_pruned(spec.tokens_per_template, ratio)
    keep = torch.zeros(1, spec.num_templates, spec.tokens_per_template, dtype=torch.bool)
    keep[0, :-1, :kept] = True
    keep[0, -1] = True
    return keep


def network_call(tracker: Any, image: np.ndarray, init_box: Sequence[float]) -> Callable[[], object]:
    """One network call of ``tracker`` on fixed crops of ``image`` (what "model only" times).

    FARTrack trackers: the backend on the inference steady state (every slot filled, older slots pruned). FastSeqTrack:
    normalising the search crop, the encoder and the decoder with its early exits at the tracker's tau.
    """
    tracker.initialize(image, {"init_bbox": list(init_box)})
    params = tracker.params
    search_crop, _ = sample_target(image, init_box, params.search_factor, params.search_size)
    if isinstance(tracker, FARTrackTracker):
        template_crop, _ = sample_target(image, init_box, params.template_factor, params.template_size)
        templates = [tracker.backend.encode_template(template_crop) for _ in range(tracker.num_slots)]
        keep = steady_state_keep(tracker)
        return lambda: tracker.backend.run(templates, search_crop, keep)
    template_tokens = tracker._slot_tokens()
    return lambda: tracker.net.track(None, tracker._preprocess(search_crop), tau=params.tau, window=tracker.window,
                                     template_tokens=template_tokens)


def time_model_only(tracker: Any, frames: Sequence[np.ndarray], init_box: Sequence[float],
                    device: torch.device, calls: int, warmup: int) -> Latency:
    """Latency of one network call on fixed crops of the first frame (see the module docstring)."""
    call = network_call(tracker, frames[0], init_box)
    return time_calls(lambda _: call(), device, calls, warmup)


def count_call_macs(call: Callable[[], object]) -> int:
    """Multiply-accumulates of one call, as ``torch.utils.flop_counter`` sees them (matrix products and convs)."""
    counter = FlopCounterMode(display=False, custom_mapping=flop_formulas())
    with torch.no_grad(), counter:
        call()
    return counter.get_total_flops() // 2


def time_end_to_end(tracker: Any, frames: Sequence[np.ndarray], init_box: Sequence[float],
                    device: torch.device, calls: int, warmup: int) -> Latency:
    """Latency of ``tracker.track`` over the frames in order (restarting at frame 0 when they run out)."""
    tracked = len(frames) - 1
    if tracked < 1:
        raise ValueError("end-to-end timing needs at least two frames")

    def step(i: int) -> None:
        index = i % tracked
        if index == 0:
            tracker.initialize(frames[0], {"init_bbox": list(init_box)})
        tracker.track(frames[index + 1])

    return time_calls(step, device, calls, warmup)


def environment(device: torch.device, threads: int) -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------------------------------------------- profile runs
#: The log name of ``tracking/profile_model.py`` (its messages read ``INFO profile_model: ...``).
cli_logger = logging.getLogger("profile_model")

#: The real frames profiled by default: ``<repo>/../shared/data/real-sequences/otb_Human3_first100``.
DEFAULT_FRAMES = Path(__file__).resolve().parents[3] / "shared" / "data" / "real-sequences" / "otb_Human3_first100"
#: The inference paths of the FARTrack families, by name.
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
#: Peer runtimes on the network exported to ONNX (CPU): what each runs, and the import that must work for it.
RUNTIME_PATHS = {
    "onnx": "ONNX Runtime, float32 (CPU execution provider; the onnx extra)",
    "onnx-int8": "ONNX Runtime, dynamic int8 frame graph (lib.export.quantize_int8; the onnx extra)",
    "openvino": "OpenVINO, float32 (CPU plugin, latency hint; the openvino extra)",
}
RUNTIME_IMPORTS = {"onnx": import_onnxruntime, "onnx-int8": import_onnxruntime, "openvino": import_openvino}
#: The one path of families without inference paths (FastSeqTrack).
DEFAULT_PATH = "default"


def load_frames(folder: Path, count: int) -> tuple[list[np.ndarray], list[float]]:
    """The first ``count`` images of ``folder`` (RGB) and the first ``groundtruth.txt`` box."""
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


def runtime_tracker(name: str, torch_tracker: FARTrackTracker, threads: int, folder: Path) -> FARTrackTracker:
    """The network of ``torch_tracker`` run by the peer runtime ``name`` (:data:`RUNTIME_PATHS`): the template graph
    once per stored template, the frame graph on the cached tokens every frame (what "model only" times).

    The network is exported (and checked against PyTorch) once per family and depth into ``folder``, so every
    runtime of a depth runs the same files; ``onnx-int8`` quantises that export once."""
    net = torch_tracker.backend.net
    path = folder / f"{net.family}_depth{net.depth}.onnx"
    if not path.is_file():
        export_onnx(net, path, torch_tracker.params)
    if name == "onnx-int8":
        path = int8_path(path) if int8_path(path).is_file() else quantize_int8(path)
    if name == "openvino":
        backend: GraphPairBackend = OpenVinoBackend(path, num_threads=threads)
    else:
        backend = OnnxBackend(path, intra_op_num_threads=threads)
    return FARTrackTracker(backend, backend.tracker_params)


def run_options(tracker: Any) -> dict:
    """The inference options a tracker really runs with (``auto`` kernels resolved; a peer runtime's name, version
    and settings); empty for other backends."""
    backend = getattr(tracker, "backend", None)
    if isinstance(backend, GraphPairBackend):
        return backend.describe()
    return dict(backend.kernels.__dict__) if isinstance(backend, TorchBackend) else {}


def kernel_choice(tracker: Any) -> Optional[dict]:
    """How a Torch-backed tracker's ``auto`` kernels were chosen (measured medians, override or rule), else None."""
    backend = getattr(tracker, "backend", None)
    return backend.kernel_choice.as_dict() if isinstance(backend, TorchBackend) else None


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
    """MACs at 100 % template retention and, for networks that prune templates, at the inference steady state."""
    spec = net.spec
    sparse = net.template_scores
    macs = {"100%": count_macs(net, [spec.tokens_per_template] * spec.num_templates if sparse else None).as_dict()}
    if sparse:
        kept = spec.tokens_per_template - num_pruned(spec.tokens_per_template, net.test_prune_ratio)
        macs[f"{kept}/{spec.tokens_per_template} in older slots"] = count_macs(
            net, [kept] * (spec.num_templates - 1) + [spec.tokens_per_template]).as_dict()
    return macs


def profile(script: str, config: str, *, depth: Optional[Sequence[int]] = None, device: str = "cpu",
            threads: Optional[int] = None, paths: Optional[Sequence[str]] = None, checkpoint: Optional[Path] = None,
            frames_dir: Path = DEFAULT_FRAMES, frames: int = 60, calls: int = 50, warmup: int = 10,
            opts: Sequence[Any] = ()) -> dict:
    """Every depth x path of ``script``: counts, latencies, FLOP/s and box changes (``tracking/profile_model.py``'s
    options, same names). Raises ConfigError / FileNotFoundError / ValueError on bad arguments or inputs."""
    family = get_family(script)
    torch_device = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    cfg = load_config(script, config, opts)
    images, init_box = load_frames(frames_dir, frames)
    if checkpoint is None:
        cli_logger.warning("no --checkpoint: random weights, the same for every path (latency does not depend on them)")
    single_path = not family.inference_paths
    if single_path and (depth or paths):
        key = family.results_variant[0]
        raise ValueError(f"{script} has one inference path and no --depth (its early exits follow {key}, e.g. "
                         f"--opts {key} 0.3)")
    paths = [DEFAULT_PATH] if single_path else (paths or ["faithful", "fast"])
    for name in paths:
        if name in RUNTIME_IMPORTS:
            RUNTIME_IMPORTS[name]()  # fail before any timing, with the extra to install
    depths = [None] if single_path else (depth or [cfg.MODEL.DEPTH])
    rooflines = matmul_roofline(torch_device)
    roofline = rooflines["best"]
    cli_logger.info("fp32 matrix-product roofline on %s with %d threads: %s GFLOP/s", torch_device, threads,
                    ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in rooflines.items()))
    result = {"script": script, "config": config, "environment": environment(torch_device, threads),
              "roofline_gflops": roofline / 1e9,
              "roofline_gflops_by_kernel": {name: rate / 1e9 for name, rate in rooflines.items() if name != "best"},
              "frames": str(frames_dir), "rows": []}
    scratch = tempfile.TemporaryDirectory(prefix="fartrack_profile_")
    for run_depth in depths:
        reference_boxes = None
        counts: dict = {}  # parameters and MACs of the fp32 network, the same for every path
        for name in paths:
            torch.manual_seed(0)  # random weights (no checkpoint) are then the same for every path
            spec = TrackerSpec(script, config, None if checkpoint is None else str(checkpoint), run_depth,
                               tuple(opts), PATHS.get(name, InferenceOptions()))
            tracker = build_tracker(spec, str(torch_device))
            if not counts:
                counts = network_counts(tracker, images[0], init_box)
            if name in RUNTIME_PATHS:
                tracker = runtime_tracker(name, tracker, threads, Path(scratch.name))
                cli_logger.info("%s: %s", name, tracker.backend.describe())
            choice = kernel_choice(tracker)
            if choice is not None:
                cli_logger.info("%s: %s", name, tracker.backend.kernel_choice.summary())
            step_macs = list(counts["macs"].values())[-1]["total_macs"]  # what the tracker runs in steady state
            model = time_model_only(tracker, images, init_box, torch_device, calls, warmup)
            end_to_end = time_end_to_end(tracker, images, init_box, torch_device, calls, warmup)
            boxes = track_boxes(tracker, images, init_box)
            reference_boxes = boxes if reference_boxes is None else reference_boxes
            achieved = 2.0 * step_macs / (model.median_ms / 1000.0)
            result["rows"].append({
                "depth": counts["depth"], "path": name, "options": run_options(tracker), "kernel_choice": choice,
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
    """The markdown table of a :func:`profile` result; speed-ups and box changes are against ``reference_path``."""
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


def run_profile(*, json_path: Optional[Path] = None, **options: Any) -> int:
    """``tracking/profile_model.py``: :func:`profile` with ``options``, the table, the JSON file at ``json_path``;
    returns the exit status (2 on bad arguments or inputs)."""
    if options.get("device") == "cuda" and not torch.cuda.is_available():
        cli_logger.error("--device cuda requested but no CUDA device is available")
        return 2
    try:
        result = profile(**options)
    except (ConfigError, FileNotFoundError, ValueError, ImportError) as error:
        cli_logger.error("%s", error)
        return 2
    print_table(result, result["rows"][0]["path"])
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
        cli_logger.info("wrote %s", json_path)
    return 0
