"""How ``auto`` picks the fast path's kernels: by timing the candidates on this machine, not by CPU name.

Which kernel is fastest for the tracker's small products (445 tokens x 192 channels for the dense Tiny at
224/112) depends on the CPU: on the AMD EPYC this project was first measured on, oneDNN's float32 products were
about twice PyTorch's MKL ones and its per-head attention beat SDPA; on an Intel Xeon with AMX, MKL's products are
as fast and SDPA is the fastest attention. So on a CPU whose PyTorch has oneDNN, :func:`choose` times the
candidates once per process and per (device, dtype, threads, shapes) on one transformer block of the network's
real shapes and keeps the fastest, separately for

* the **linear layers**: ``torch`` (``nn.Linear``; fp32 through MKL, bf16 through oneDNN/AMX) against ``onednn``
  (``lib.models.onednn``, the MLP's GELU fused): a block's four products (qkv, proj, fc1 + GELU, fc2);
* the **attention**: ``explicit``, ``sdpa`` and ``onednn`` (``FARTrackAttention`` with each ``impl``, including
  the sparse family's score row when the network computes one).

Candidates run interleaved (one call of each per round, ``ROUNDS`` rounds after ``WARMUP_ROUNDS``); the median per
candidate decides, the first candidate listed winning a tie. The measurement takes about 0.1 s on 2 threads and is
cached in memory (:func:`clear_cache`). Every candidate gives the faithful path's boxes (tested), so the choice
changes speed only.

Overrides: the environment variables ``FARTRACK_AUTO_ATTENTION`` / ``FARTRACK_AUTO_LINEAR`` force what ``auto``
resolves to (explicit options such as ``attention="sdpa"`` are never touched); ``measure`` (or unset) means time
the candidates.

Where nothing is timed (a GPU, a CPU without oneDNN or other than x86-64, whose oneDNN path was never measured):
SDPA and ``nn.Linear``, by rule. :class:`KernelChoice` records what was chosen, how, and the measured medians.
"""
from __future__ import annotations

import copy
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch
from timm.layers import Mlp
from torch import nn

from lib.models.fartrack.layers import FARTrackAttention
from lib.models.onednn import use_onednn_linears

#: Environment variables that force what ``auto`` resolves to (``measure`` or unset: time the candidates).
ENV_VARS = {"attention": "FARTRACK_AUTO_ATTENTION", "linear": "FARTRACK_AUTO_LINEAR"}
MEASURE = "measure"
#: Timed rounds (one call of every candidate each) and untimed warm-up rounds of a calibration.
ROUNDS = 9
WARMUP_ROUNDS = 2

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}


@dataclass(frozen=True)
class KernelShapes:
    """The sizes one transformer block of the network runs at (the defaults: dense Tiny at 224/112, every token)."""

    tokens: int = 445
    dim: int = 192
    hidden: int = 768
    heads: int = 3
    #: The query token whose attention row the network returns (sparse family), else None.
    score_query: Optional[int] = None

    @classmethod
    def of_network(cls, net: Any) -> "KernelShapes":
        """The shapes of a :class:`~lib.models.fartrack.network.FARTrackNetwork` with every template token."""
        spec = net.spec
        template_tokens = spec.num_templates * spec.tokens_per_template
        tokens = template_tokens + spec.num_search_tokens + spec.num_command_tokens
        score_query = template_tokens + spec.centre_search_index if net.template_scores else None
        return cls(tokens=tokens, dim=spec.embed_dim, hidden=int(spec.embed_dim * spec.mlp_ratio),
                   heads=spec.num_heads, score_query=score_query)


@dataclass(frozen=True)
class KernelDecision:
    """How one kernel kind (``attention`` or ``linear``) was resolved.

    ``how``: ``requested`` (named in the options), ``measured`` (fastest median in ``times_ms``), ``environment``
    (``FARTRACK_AUTO_*``) or ``rule`` (nothing to time on this device; ``note`` says why).
    """

    chosen: str
    how: str
    times_ms: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        return {"chosen": self.chosen, "how": self.how, "times_ms": dict(self.times_ms), "note": self.note}


@dataclass(frozen=True)
class KernelChoice:
    """What ``auto`` resolved to for one device / precision / shapes, and why."""

    attention: KernelDecision
    linear: KernelDecision
    device: str
    precision: str
    threads: int
    shapes: KernelShapes
    #: Wall time spent timing candidates for this choice (0 when everything came from the cache or a rule).
    calibration_ms: float = 0.0

    def as_dict(self) -> dict:
        return {"attention": self.attention.as_dict(), "linear": self.linear.as_dict(), "device": self.device,
                "precision": self.precision, "threads": self.threads, "shapes": self.shapes.__dict__.copy(),
                "calibration_ms": self.calibration_ms}

    def summary(self) -> str:
        """One line: ``attention sdpa (measured: explicit 0.90, sdpa 0.74, onednn 1.05 ms); linear ...``."""
        parts = []
        for kind in ("attention", "linear"):
            decision: KernelDecision = getattr(self, kind)
            detail = ", ".join(f"{name} {ms:.2f}" for name, ms in decision.times_ms.items())
            why = f"{decision.how}: {detail} ms" if detail else decision.how + (f", {decision.note}" if
                                                                                    decision.note else "")
            parts.append(f"{kind} {decision.chosen} ({why})")
        return "; ".join(parts)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(kind: str, candidate: str, call: Callable[[], object], device: torch.device) -> float:
    """Seconds of one ``call()`` (the device synchronised after it). Tests replace this to inject timings."""
    start = time.perf_counter()
    call()
    synchronise(device)
    return time.perf_counter() - start


_CACHE: dict[tuple, dict[str, float]] = {}


def clear_cache() -> None:
    """Forget every measurement (the next ``auto`` resolution times its candidates again)."""
    _CACHE.clear()


def _linear_calls(shapes: KernelShapes, dtype: torch.dtype, device: torch.device,
                  candidates: Sequence[str]) -> dict[str, Callable[[], object]]:
    """One block's four linear products per candidate: qkv, proj, fc1 + GELU, fc2 (the network's own modules)."""
    layers = nn.ModuleDict({"qkv": nn.Linear(shapes.dim, 3 * shapes.dim), "proj": nn.Linear(shapes.dim, shapes.dim),
                            "mlp": Mlp(shapes.dim, shapes.hidden)}).to(device=device, dtype=dtype).eval()
    x = torch.randn(1, shapes.tokens, shapes.dim, device=device, dtype=dtype)
    calls = {}
    for name in candidates:
        net = use_onednn_linears(copy.deepcopy(layers)) if name == "onednn" else layers

        def call(net: nn.Module = net) -> None:
            net["qkv"](x), net["proj"](x), net["mlp"](x)

        calls[name] = call
    return calls


def _attention_calls(shapes: KernelShapes, dtype: torch.dtype, device: torch.device,
                     candidates: Sequence[str]) -> dict[str, Callable[[], object]]:
    """``FARTrackAttention`` with each candidate ``impl`` (its qkv / proj products, the same for all, included)."""
    attn = FARTrackAttention(shapes.dim, shapes.heads, qkv_bias=True).to(device=device, dtype=dtype).eval()
    x = torch.randn(1, shapes.tokens, shapes.dim, device=device, dtype=dtype)
    return {name: (lambda name=name: attn(x, score_query=shapes.score_query, impl=name)) for name in candidates}


def time_candidates(kind: str, calls: dict[str, Callable[[], object]], device: torch.device,
                    rounds: int = ROUNDS, warmup_rounds: int = WARMUP_ROUNDS) -> dict[str, float]:
    """Median milliseconds of every candidate, timed interleaved (one call of each per round)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for round_index in range(warmup_rounds + rounds):
            for name, call in calls.items():
                seconds = measure(kind, name, call, device)
                if round_index >= warmup_rounds:
                    samples[name].append(seconds * 1000.0)
    return {name: statistics.median(values) for name, values in samples.items()}


def fastest(times_ms: dict[str, float]) -> str:
    """The candidate with the smallest median; the first listed wins a tie."""
    return min(times_ms, key=lambda name: (times_ms[name], list(times_ms).index(name)))


def decide(kind: str, requested: str, candidates: Sequence[str], device: torch.device, dtype: torch.dtype,
           shapes: KernelShapes, auto: str = "auto") -> tuple[KernelDecision, float]:
    """Resolve one kernel kind: the requested kernel, the environment's, the only candidate, or the fastest
    measured (cached). Returns the decision and the milliseconds spent measuring."""
    if requested != auto:
        return KernelDecision(requested, "requested"), 0.0
    forced = os.environ.get(ENV_VARS[kind], "").strip()
    if forced and forced != MEASURE:
        return KernelDecision(forced, "environment", note=f"{ENV_VARS[kind]}={forced}"), 0.0
    if len(candidates) == 1:
        return KernelDecision(candidates[0], "rule", note="the only candidate here"), 0.0
    key = (kind, str(device), dtype, torch.get_num_threads(), shapes, tuple(candidates))
    spent = 0.0
    if key not in _CACHE:
        start = time.perf_counter()
        build = _linear_calls if kind == "linear" else _attention_calls
        _CACHE[key] = time_candidates(kind, build(shapes, dtype, device, candidates), device)
        spent = (time.perf_counter() - start) * 1000.0
    times = _CACHE[key]
    return KernelDecision(fastest(times), "measured", dict(times)), spent


def choose(attention: str, linear: str, *, device: torch.device, precision: str, shapes: KernelShapes,
           attention_candidates: Sequence[str], linear_candidates: Sequence[str], note: str = "",
           auto: str = "auto") -> KernelChoice:
    """Resolve ``attention`` / ``linear`` (``auto`` or a kernel name) for ``device`` and ``precision``.

    ``*_candidates``: the kernels ``auto`` may pick here, fastest-first preference on ties; one candidate means a
    rule (``note`` says which), several are timed.
    """
    device = torch.device(device)
    dtype = DTYPES[precision]
    decisions, spent = {}, 0.0
    for kind, requested, candidates in (("attention", attention, attention_candidates),
                                        ("linear", linear, linear_candidates)):
        decision, ms = decide(kind, requested, candidates, device, dtype, shapes, auto)
        if decision.how == "rule" and note:
            decision = KernelDecision(decision.chosen, "rule", note=note)
        decisions[kind] = decision
        spent += ms
    return KernelChoice(decisions["attention"], decisions["linear"], str(device), precision,
                        torch.get_num_threads(), shapes, spent)
