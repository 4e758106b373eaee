"""How a tracker runs its network: the faithful path, the fast path and the lower-precision paths.

The online tracker (``lib.test.tracker.fartrack``) owns crops, template memory, decoding and box maths; a backend
owns the network. Two calls make the contract:

* ``encode_template(crop)`` runs once when a template is stored and returns whatever the backend wants to keep
  for it (the normalised image, or, on the fast path, its patch-embedding tokens);
* ``run(encoded_templates, search_crop, template_keep)`` runs the network for one frame and returns the (1, 4, V)
  float32 logits and, for the sparse family, the keep-mask (P,) the network computed for the newest template.

``TorchBackend`` runs a :class:`FARTrackNetwork`; ``lib.export.onnx_runtime.OnnxBackend`` runs an exported graph.

Paths of :class:`TorchBackend` (``InferenceOptions``):

* ``faithful`` (``InferenceOptions.faithful()``): the official per-frame work and arithmetic: explicit attention,
  PyTorch's linear layers, every template normalised and patch-embedded every frame, pruned template tokens
  masked as attention keys;
* ``fast`` (default): the template patch embedding computed once per stored template, pruned template tokens
  physically dropped (the network's eval-mode default), and the fastest kernels for the device (``auto``): on
  an x86-64 CPU with oneDNN, the linear layers (``torch`` or ``onednn``, ``lib.models.onednn``) and the attention
  (``explicit``, ``sdpa`` or ``onednn``) are picked by timing them once per process on the network's shapes
  (``lib.test.tracker.calibration``: oneDNN wins on the AMD EPYC measured first, MKL and SDPA on an Intel Xeon
  with AMX); elsewhere ``scaled_dot_product_attention`` and PyTorch's linears. Same boxes as the faithful path
  (tested), up to float rounding;
* ``precision``: ``fp32`` (default), ``bf16`` (weights and activations in bfloat16; CPU or GPU), ``fp16`` (GPU
  only) or ``int8`` (dynamic int8 quantisation of every Linear layer, CPU only). These change the boxes slightly;
  ``tracking/profile_model.py`` measures by how much.

``InferenceOptions.resolved(device)`` says which kernels ``auto`` picked, ``InferenceOptions.kernel_choice(device)``
also how (measured medians, an environment override or a rule); ``TorchBackend.kernel_choice`` keeps it.
"""
from __future__ import annotations

import copy
import platform
import warnings
from dataclasses import dataclass, replace
from typing import Any, Optional, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lib.models.fartrack.backbone import BackboneSpec
from lib.models.fartrack.layers import ATTENTION_IMPLS
from lib.models.fartrack.network import FARTrackNetwork
from lib.models.onednn import onednn_available, use_onednn_linears
from lib.test.tracker.calibration import KernelChoice, KernelShapes, choose
from lib.test.tracker.cuda_graphs import CudaGraphForward

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
LINEAR_KERNELS = ("torch", "onednn")
AUTO = "auto"


class NetworkBackend(Protocol):
    """What :class:`~lib.test.tracker.fartrack.FARTrackTracker` needs from whatever runs the network."""

    family: str
    spec: BackboneSpec
    #: Whether the network scores and prunes template tokens (template sparsification): ``run`` then takes the
    #: slots' keep-mask and returns the newest template's.
    prunes_templates: bool

    def encode_template(self, crop: np.ndarray) -> Any: ...

    def run(self, templates: Sequence[Any], search_crop: np.ndarray, template_keep: Optional[Tensor]
            ) -> tuple[Tensor, Optional[Tensor]]: ...


def normalise_crop(crop: np.ndarray, mean: Tensor, std: Tensor) -> Tensor:
    """(H, W, 3) or (B, H, W, 3) uint8 RGB -> (1 or B, 3, H, W) float32, /255, normalised with (1, 3, 1, 1) ``mean``
    / ``std`` on their device (the official Preprocessor)."""
    tensor = torch.from_numpy(np.ascontiguousarray(crop)).to(mean.device)
    tensor = (tensor if tensor.dim() == 4 else tensor.unsqueeze(0)).permute(0, 3, 1, 2).float()
    return (tensor / 255.0 - mean) / std


@dataclass(frozen=True)
class InferenceOptions:
    """How :class:`TorchBackend` runs the network (see the module docstring).

    ``attention`` is one of ``ATTENTION_IMPLS`` or ``auto``; ``linear`` one of ``LINEAR_KERNELS`` or ``auto``.
    """

    attention: str = AUTO
    linear: str = AUTO
    cache_template_tokens: bool = True
    drop_pruned_tokens: bool = True
    precision: str = "fp32"
    #: Replay each frame's network call from a CUDA graph (``cuda_graphs.CudaGraphForward``); CUDA and the template
    #: cache only. The sparse family then masks pruned tokens instead of dropping them (static shapes).
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {PRECISIONS}")
        if self.attention not in (*ATTENTION_IMPLS, AUTO):
            raise ValueError(f"unknown attention {self.attention!r}; choose one of {(*ATTENTION_IMPLS, AUTO)}")
        if self.linear not in (*LINEAR_KERNELS, AUTO):
            raise ValueError(f"unknown linear kernel {self.linear!r}; choose one of {(*LINEAR_KERNELS, AUTO)}")
        if self.linear == "onednn" and self.precision == "int8":
            raise ValueError("int8 runs its own quantised linear layers; use linear='auto' or 'torch'")
        if self.cuda_graphs and not self.cache_template_tokens:
            raise ValueError("CUDA graphs replay the fast path: they need cache_template_tokens=True")

    @classmethod
    def faithful(cls) -> "InferenceOptions":
        """The official per-frame work and arithmetic."""
        return cls(attention="explicit", linear="torch", cache_template_tokens=False, drop_pruned_tokens=False,
                   precision="fp32")

    def kernel_choice(self, device: torch.device, shapes: Optional[KernelShapes] = None) -> KernelChoice:
        """How ``auto`` resolves on ``device`` for this precision and the network ``shapes`` (default: the dense
        Tiny at 224/112), with the evidence (``lib.test.tracker.calibration``).

        x86-64 CPU with oneDNN: the attention (``explicit`` / ``sdpa`` / ``onednn``) and the linears (``torch`` /
        ``onednn``; int8 keeps its quantised ``torch`` ones) that ran fastest in a short timing on this machine,
        once per process and (device, dtype, threads, shapes); ``FARTRACK_AUTO_ATTENTION`` / ``FARTRACK_AUTO_LINEAR``
        force a choice. Elsewhere (a GPU, another CPU architecture, no oneDNN): ``scaled_dot_product_attention``
        and PyTorch's linears. Kernels named in the options are kept as they are and never timed.
        """
        device = torch.device(device)
        onednn = device.type == "cpu" and onednn_available()
        if self.cuda_graphs and device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        if self.linear == "onednn" and not onednn:
            raise ValueError("oneDNN linear kernels need a CPU device and a PyTorch build with oneDNN")
        if self.attention == "onednn" and not onednn:
            raise ValueError("oneDNN attention needs a CPU device and a PyTorch build with oneDNN")
        # oneDNN's CPU kernels were only ever measured on x86-64; other CPUs keep PyTorch's unless asked by name.
        measured = onednn and platform.machine().lower() in ("x86_64", "amd64")
        if measured:
            attention_candidates: tuple[str, ...] = ATTENTION_IMPLS
            linear_candidates: tuple[str, ...] = ("torch",) if self.precision == "int8" else LINEAR_KERNELS
            note = "int8 runs its quantised linear layers"
        else:
            attention_candidates, linear_candidates = ("sdpa",), ("torch",)
            note = "no oneDNN CPU kernels measured on this device" if device.type == "cpu" else f"{device.type} device"
        choice = choose(self.attention, self.linear, device=device, precision=self.precision,
                        shapes=shapes or KernelShapes(), attention_candidates=attention_candidates,
                        linear_candidates=linear_candidates, note=note, auto=AUTO)
        for kind, decision, allowed in (("attention", choice.attention, (*ATTENTION_IMPLS,)),
                                        ("linear", choice.linear, LINEAR_KERNELS)):
            if decision.how == "environment":
                if decision.chosen not in allowed:
                    raise ValueError(f"{decision.note}: unknown {kind} kernel; choose one of {allowed} or measure")
                if decision.chosen == "onednn" and not onednn:
                    raise ValueError(f"{decision.note}: oneDNN kernels need a CPU device and a PyTorch build with "
                                     "oneDNN")
                if kind == "linear" and decision.chosen == "onednn" and self.precision == "int8":
                    raise ValueError(f"{decision.note}: int8 runs its own quantised linear layers")
        return choice

    def resolved(self, device: torch.device, shapes: Optional[KernelShapes] = None) -> "InferenceOptions":
        """These options with ``auto`` replaced by the kernels :meth:`kernel_choice` picks."""
        choice = self.kernel_choice(device, shapes)
        return replace(self, attention=choice.attention.chosen, linear=choice.linear.chosen)

    @property
    def name(self) -> str:
        if self == InferenceOptions.faithful():
            return "faithful"
        parts = [*([] if self.attention == AUTO else [self.attention]),
                 *([] if self.linear == AUTO else [f"{self.linear}-linear"]),
                 *([] if self.cache_template_tokens else ["no-cache"]),
                 *([] if self.drop_pruned_tokens else ["no-drop"]),
                 *(["cuda-graphs"] if self.cuda_graphs else [])]
        base = "+".join(["fast", *parts])
        return base if self.precision == "fp32" else f"{base}-{self.precision}"


def _precision_network(net: FARTrackNetwork, precision: str, device: torch.device) -> FARTrackNetwork:
    """A copy of ``net`` converted to ``precision``; fp32 shares the parameters (only the modules are copied)."""
    if precision == "fp32":
        shared = {id(tensor): tensor for tensor in (*net.parameters(), *net.buffers())}
        return copy.deepcopy(net, memo=shared)
    if precision == "int8":
        if device.type != "cpu":
            raise ValueError("int8 dynamic quantisation runs on the CPU only")
        with warnings.catch_warnings():
            # torch.ao's eager quantisation is deprecated in favour of torchao, but still the fastest CPU path here.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            from torch.ao.quantization import quantize_dynamic

            return quantize_dynamic(copy.deepcopy(net), {nn.Linear}, dtype=torch.qint8)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 inference needs a CUDA device (CPU half matmuls are slower than fp32); use bf16")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return copy.deepcopy(net).to(dtype)


class TorchBackend:
    """Runs a :class:`FARTrackNetwork` in eval mode where it lives."""

    def __init__(self, net: FARTrackNetwork, options: InferenceOptions = InferenceOptions(),
                 mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225)
                 ) -> None:
        self.device = next(net.parameters()).device
        self.options = options
        self.net = _precision_network(net.eval(), options.precision, self.device).eval()
        self.family = net.family
        self.spec = net.spec
        self.prunes_templates = net.template_scores
        #: How ``auto`` was resolved for this network's shapes (measured times, override or rule).
        self.kernel_choice = options.kernel_choice(self.device, KernelShapes.of_network(net))
        #: ``options`` with ``auto`` resolved: the kernels that actually run.
        self.kernels = replace(options, attention=self.kernel_choice.attention.chosen,
                               linear=self.kernel_choice.linear.chosen)
        if self.kernels.linear == "onednn":
            use_onednn_linears(self.net)
        self.net.attention = self.kernels.attention
        self.net.drop_pruned_tokens = options.drop_pruned_tokens and not options.cuda_graphs
        self._forward = self._network_call
        if options.cuda_graphs:
            self.net.backbone.bake_command_renorm()  # the in-place renorm cannot be captured
            self._forward = CudaGraphForward(self._network_call, self.device)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(options.precision, torch.float32)
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(shape)

    def preprocess(self, crop: np.ndarray) -> Tensor:
        """:func:`normalise_crop` in the run dtype."""
        return normalise_crop(crop, self.mean, self.std).to(self.dtype)

    def preprocess_batch(self, crops: Sequence[np.ndarray]) -> Tensor:
        """B crops of one size -> (B, 3, H, W) in the run dtype (the arithmetic of :func:`normalise_crop`)."""
        return normalise_crop(np.stack(crops), self.mean, self.std).to(self.dtype)

    @torch.inference_mode()
    def encode_template(self, crop: np.ndarray) -> Tensor:
        image = self.preprocess(crop)
        if not self.options.cache_template_tokens:
            return image[0]
        return self.net.backbone.embed_templates(image.unsqueeze(1))[0, 0]  # (P, C)

    def run(self, templates: Sequence[Tensor], search_crop: np.ndarray, template_keep: Optional[Tensor]
            ) -> tuple[Tensor, Optional[Tensor]]:
        logits, keeps = self.run_batch([templates], [search_crop],
                                       None if template_keep is None else [template_keep[0]])
        return logits, None if keeps is None else keeps[0]

    @torch.inference_mode()
    def run_batch(self, templates: Sequence[Sequence[Tensor]], search_crops: Sequence[np.ndarray],
                  template_keeps: Optional[Sequence[Tensor]]) -> tuple[Tensor, Optional[list[Tensor]]]:
        """One network call for B trackers: ``templates[b]`` the slots of tracker b, ``template_keeps[b]`` its
        (T, P) keep-mask (sparse family). Returns the (B, 4, V) float32 logits and the B newest keep-masks (P,).

        Dropping pruned tokens needs one token count per call: samples whose slots keep different counts (the
        sparse family's first frame keeps all 245 template tokens, later frames 197) run as one call per count.
        Paths that mask pruned keys (faithful, CUDA graphs) mix them in one call."""
        stacked = torch.stack([torch.stack(list(slots)) for slots in templates])
        search = self.preprocess_batch(search_crops)
        keep = None if template_keeps is None else torch.stack(list(template_keeps)).to(self.device)
        groups = [torch.arange(len(search_crops))]
        if keep is not None and self.net.drop_pruned_tokens and len(search_crops) > 1:
            counts = keep.flatten(1).sum(dim=1)
            groups = [torch.nonzero(counts == count).flatten() for count in counts.unique()]
        if len(groups) == 1:
            logits, newest = self._call(stacked, search, keep)
        else:
            parts = [self._call(stacked[rows], search[rows], keep[rows]) for rows in groups]
            order = torch.argsort(torch.cat(groups))
            logits = torch.cat([part[0] for part in parts])[order]
            newest = torch.cat([part[1] for part in parts])[order]
        return logits.float(), None if newest is None else list(newest.unbind(0))

    def _call(self, templates: Tensor, search: Tensor, template_keep: Optional[Tensor]
              ) -> tuple[Tensor, Optional[Tensor]]:
        if self.options.cache_template_tokens:
            out = self._forward(templates, search, template_keep)
        else:
            out = self.net(templates, search, template_keep=template_keep)
        return out["logits"], out.get("template_keep")

    def _network_call(self, template_tokens: Tensor, search: Tensor, template_keep: Optional[Tensor]
                      ) -> dict[str, Tensor]:
        """The fast path's forward, reduced to what :meth:`run` reads."""
        out = self.net(None, search, template_keep=template_keep, template_tokens=template_tokens)
        return {name: out[name] for name in ("logits", "template_keep") if name in out}
