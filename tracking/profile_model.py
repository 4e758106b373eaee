"""Profile a FARTrack tracker: parameters, MACs, model-only and end-to-end latency, FLOP/s against the roofline.

    python tracking/profile_model.py --script fartrack_sparse --config fartrack_sparse_224_full \
        --depth 15 10 6 --paths faithful fast bf16 int8 --threads 2 --json output/profile/sparse.json

For FastSeqTrack (``--script fastseqtrack``) there is one path; its early exits follow ``MODEL.DECODER.TAU``
(``--opts MODEL.DECODER.TAU 0.3``). FARTrack paths: ``faithful``, the official per-frame work and arithmetic;
``fast``, the default path, with the fastest kernels for the device; ``fast-torch``, the same with PyTorch's own
kernels (SDPA and ``nn.Linear``); ``bf16`` / ``int8`` (CPU) / ``fp16`` (CUDA), the fast path in lower
precision; ``cuda-graphs`` / ``fp16-cuda-graphs`` (CUDA), the fast path replayed from CUDA graphs. Peer runtimes
on the network exported to ONNX once per depth (the same files for all of them): ``onnx``, ONNX Runtime in float32
and ``onnx-int8``, its dynamically quantised int8 frame graph (the ``onnx`` extra); ``openvino``, OpenVINO in
float32 (the ``openvino`` extra). For every depth and path it prints the median and p90 latency and FPS of the network alone and of the whole tracker step on real
frames, the speed-up over the first path measured in the same run, and how far each path's boxes move from the
first path's (max corner difference in px and mean IoU over the sequence). MACs come from
``torch.utils.flop_counter`` (projections + attention products, batch 1) at 100 % and, for the sparse family, at
the inference retention; the achieved FLOP/s (2 x MACs / model-only median) is compared with a large fp32 matrix
product timed in the same run (the faster of PyTorch's matmul and oneDNN's). See ``lib/test/profiling.py`` for
exactly what is timed.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.families import FAMILY_NAMES  # noqa: E402
from lib.test.profiling import DEFAULT_FRAMES, PATHS, RUNTIME_PATHS, run_profile  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, choices=FAMILY_NAMES)
    parser.add_argument("--config", required=True, help="config name under experiments/<script>/ or a YAML path")
    parser.add_argument("--depth", type=int, nargs="+", help="layers to run (default: the config's MODEL.DEPTH)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--paths", nargs="+", choices=[*PATHS, *RUNTIME_PATHS],
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


def main(argv: list[str] | None = None) -> int:
    options = vars(parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_profile(json_path=options.pop("json"), **options)


if __name__ == "__main__":
    sys.exit(main())
