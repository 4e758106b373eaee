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
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from lib.models.fartrack.sparsify import num_pruned
from lib.models.onednn import flop_formulas, onednn_available, onednn_linear
from lib.test.tracker.backends import TorchBackend
from lib.test.tracker.fartrack import FARTrackTracker
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
    # TorchBackend keeps the network; OnnxBackend the ratio it was exported with (its metadata).
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
