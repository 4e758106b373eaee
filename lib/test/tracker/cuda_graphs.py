"""Replay the tracker's per-frame network call as a CUDA graph (``InferenceOptions(cuda_graphs=True)``).

A tracker calls the network once per frame with inputs of a few fixed shapes (cached template tokens, the search
crop, the sparse keep-mask), so the kernel launches of one call can be captured once per shape and replayed. The
first call with a new shape warms up on a side stream and captures a graph over static input buffers; later
calls copy their inputs into those buffers, replay, and return clones of the static outputs (the tracker keeps the
sparse keep-mask across frames, so outputs must not alias buffers the next replay overwrites).

Capture needs data-independent shapes and no host synchronisation inside the forward: the backend therefore runs
the sparse family with pruned tokens masked rather than dropped (numerically equivalent, tested on the CPU). When
capture fails anyway (an op that synchronises, an old driver), the runner logs why once and runs that shape eagerly.

Not measured here: the project's machines have no GPU (see the README's speed section).
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

#: Eager calls on a side stream before capture (lets cuDNN/cuBLAS pick and cache their algorithms).
WARMUP_CALLS = 3

Forward = Callable[[Tensor, Tensor, Optional[Tensor]], dict]


class CudaGraphForward:
    """``forward(template_tokens, search, template_keep) -> dict of tensors``, replayed from one graph per shape."""

    def __init__(self, forward: Forward, device: torch.device) -> None:
        if torch.device(device).type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.forward = forward
        self.device = torch.device(device)
        self._graphs: dict[tuple, Optional[tuple[torch.cuda.CUDAGraph, list[Tensor], dict]]] = {}

    @staticmethod
    def _key(inputs: list[Optional[Tensor]]) -> tuple:
        return tuple(None if t is None else (tuple(t.shape), t.dtype) for t in inputs)

    def _capture(self, inputs: list[Optional[Tensor]]) -> Optional[tuple[torch.cuda.CUDAGraph, list[Tensor], dict]]:
        static = [None if t is None else t.clone() for t in inputs]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        try:
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    self.forward(*static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outputs = self.forward(*static)
        except RuntimeError as error:
            torch.cuda.synchronize(self.device)
            logger.warning("CUDA graph capture failed for input shapes %s (%s); running them eagerly",
                           self._key(inputs), error)
            return None
        return graph, static, outputs

    def __call__(self, template_tokens: Tensor, search: Tensor, template_keep: Optional[Tensor]) -> dict:
        inputs = [template_tokens, search, template_keep]
        key = self._key(inputs)
        if key not in self._graphs:
            self._graphs[key] = self._capture(inputs)
        entry = self._graphs[key]
        if entry is None:
            return self.forward(*inputs)
        graph, static, outputs = entry
        for buffer, value in zip(static, inputs):
            if buffer is not None:
                buffer.copy_(value)
        graph.replay()
        return {name: value.clone() for name, value in outputs.items()}

    @property
    def captured_shapes(self) -> int:
        """How many input shapes replay from a graph (the others run eagerly)."""
        return sum(entry is not None for entry in self._graphs.values())
