"""One command that checks everything a CUDA machine adds, in one 10-minute run: ``make gpu-check``.

Parts (each a subprocess with its own time budget; a failure or a timeout is recorded and the next part runs):

* ``cuda-tests``: the pytest tests that skip without CUDA (``-k`` :data:`CUDA_TEST_SELECTION`);
* ``profile-<script>``: ``tracking/profile_model.py --device cuda`` for fp32 (``fast``), ``bf16``, ``fp16`` and CUDA
  graphs (fp32 and fp16) at depth 15 / 10 / 6, model only and end to end, dense and sparse;
* ``batch-<N>``: ``tracking/test.py --batch N`` throughput (N = 1, 8, 32) on the built-in synthetic GOT-10k val
  sequences, from the per-frame time files; skipped with the reason when the option is missing;
* ``train-<script>``: two epochs of stage 1 (``fartrack``) and stage 3 (``fartrack_sparse``) of the quickstart
  configs, reduced, on the built-in synthetic data, with AMP, through ``torchrun`` (nccl).

Without CUDA the CPU-compatible parts run instead (the profiler on the CPU at one depth, fp32 and bf16; a short
stage-1 train through ``torchrun`` with gloo) and every other part is recorded as skipped, with the reason. Everything
goes into one JSON (``<out>/gpu_check.json``) and a human summary (``<out>/summary.md``, also printed); each part's
output is in ``<out>/logs/``. The exit status is 0 when every part that ran passed, 1 otherwise.

``dry_run`` writes the plan (commands, budgets, skip reasons) without running anything.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from lib.api import load_network
from lib.families import get_family
from lib.utils.checkpoint import save_checkpoint
from lib.utils.local_paths import REPO_ROOT

logger = logging.getLogger(__name__)

#: pytest ``-k`` expression of the tests that need CUDA (they skip elsewhere).
CUDA_TEST_SELECTION = "cuda or gpu"
#: Profiler paths on CUDA: fp32 (the fast path, the reference), bf16, fp16, CUDA graphs in fp32 and fp16.
CUDA_PROFILE_PATHS = ("fast", "bf16", "fp16", "cuda-graphs", "fp16-cuda-graphs")
CPU_PROFILE_PATHS = ("fast", "bf16")
DEPTHS = (15, 10, 6)
BATCHES = (1, 8, 32)
PROFILE_CONFIGS = {"fartrack": "fartrack_tiny_224_full", "fartrack_sparse": "fartrack_sparse_224_full"}
#: The quickstart configs the train parts reduce (two epochs of a few hundred samples, AMP, one data worker).
TRAIN_CONFIGS = {"fartrack": "fartrack_quickstart", "fartrack_sparse": "fartrack_sparse_quickstart"}
#: Seconds per part: the whole CUDA plan sums to about 9 minutes, inside a 10-minute device run.
BUDGETS_S = {"cuda-tests": 120, "profile": 75, "batch": 35, "train": 60, "data": 60}
#: Synthetic data of the check: GOT-10k only (train for the train parts, 32 val sequences for the batch parts).
SYNTHETIC = {"got10k_train": 8, "got10k_val": 32, "got10k_test": 1, "got10k_frames": 40, "salience": 1.0}


@dataclass
class PartResult:
    """What one part did: ``passed`` / ``failed`` / ``timeout`` / ``skipped`` / ``planned`` (dry run)."""

    name: str
    status: str
    command: list[str] = field(default_factory=list)
    budget_s: float = 0.0
    seconds: float = 0.0
    reason: str = ""
    returncode: Optional[int] = None
    log: str = ""
    details: dict = field(default_factory=dict)


def run_part(name: str, command: Sequence[str], budget_s: float, log_dir: Path, env: Optional[dict] = None
             ) -> PartResult:
    """Run ``command`` (from the repository root) for at most ``budget_s`` seconds, its output into
    ``log_dir/<name>.log``; a non-zero exit is ``failed``, running past the budget ``timeout``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    result = PartResult(name, "passed", list(map(str, command)), budget_s, log=str(log_path))
    start = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            done = subprocess.run(result.command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=budget_s)
            result.returncode = done.returncode
            if done.returncode != 0:
                result.status, result.reason = "failed", f"exit {done.returncode}: {tail(log_path)}"
        except subprocess.TimeoutExpired:
            result.status, result.reason = "timeout", f"still running after its {budget_s:.0f} s budget"
    result.seconds = time.perf_counter() - start
    logger.info("%s: %s in %.1f s%s", name, result.status, result.seconds,
                f" ({result.reason})" if result.reason else "")
    return result


def tail(path: Path, lines: int = 3) -> str:
    """The last non-empty lines of a log, joined (what a failure shows in the summary)."""
    text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(text[-lines:])


def batch_option_present(python: str) -> bool:
    """Whether ``tracking/test.py`` has ``--batch`` (lockstep batched tracking)."""
    help_text = subprocess.run([python, "tracking/test.py", "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    return "--batch" in help_text.stdout


def junit_counts(path: Path) -> dict:
    """Tests, failures, errors and skips of a pytest ``--junitxml`` file."""
    suite = ElementTree.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    return {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}


def tracked_fps(results_dir: Path) -> dict:
    """Frames and tracking frames per second from a results folder's ``*_time.txt`` files (per-frame seconds)."""
    times = [np.loadtxt(path, ndmin=1) for path in sorted(results_dir.rglob("*_time.txt"))]
    frames, seconds = sum(len(t) for t in times), float(sum(t.sum() for t in times))
    return {"sequences": len(times), "frames": frames, "tracking_seconds": seconds,
            "fps": frames / seconds if seconds > 0 else None}


@dataclass
class Plan:
    """The parts of one check, in order: (name, kind, command or None, skip reason)."""

    parts: list[tuple[str, str, Optional[list[str]], str]] = field(default_factory=list)

    def add(self, name: str, kind: str, command: Optional[list[str]] = None, skip: str = "") -> None:
        self.parts.append((name, kind, command, skip))


def build_plan(out: Path, cuda: bool, python: str, has_batch: bool) -> Plan:
    """The parts for a machine with or without CUDA (see the module docstring)."""
    plan = Plan()
    data, save = out / "data", out / "train"
    no_cuda = "no CUDA device"
    plan.add("data", "data", [python, "-c", "import sys, json; from lib.synthetic import write_synthetic_data; "
                              "write_synthetic_data(sys.argv[1], datasets=['got10k'], progress=False, "
                              "**json.loads(sys.argv[2]))", str(data), json.dumps(SYNTHETIC)])
    if cuda:
        plan.add("cuda-tests", "cuda-tests", [python, "-m", "pytest", "-q", "-rs", "-k", CUDA_TEST_SELECTION, "tests",
                                              f"--junitxml={out / 'cuda_tests.xml'}"])
    else:
        plan.add("cuda-tests", "cuda-tests", skip=no_cuda)
    for script, config in PROFILE_CONFIGS.items():
        if cuda:
            options = ["--device", "cuda", "--depth", *map(str, DEPTHS), "--paths", *CUDA_PROFILE_PATHS,
                       "--frames", "30", "--calls", "20", "--warmup", "5"]
        else:  # one depth, fp32 and bf16 at 2 threads: what a CPU can show in the budget
            options = ["--device", "cpu", "--depth", "6", "--paths", *CPU_PROFILE_PATHS, "--threads", "2",
                       "--frames", "12", "--calls", "10", "--warmup", "3"]
        plan.add(f"profile-{script}", "profile",
                 [python, "tracking/profile_model.py", "--script", script, "--config", config, *options,
                  "--json", str(out / f"profile_{script}.json")])
    checkpoint = out / "random_fartrack_tiny.pth.tar"
    for batch in BATCHES:
        skip = ("" if cuda and has_batch else no_cuda if not cuda
                else "tracking/test.py has no --batch option yet")
        plan.add(f"batch-{batch}", "batch",
                 [python, "tracking/test.py", "fartrack", "fartrack_tiny_224_full", "--dataset", "got10k_val",
                  "--batch", str(batch), "--device", "cuda", "--checkpoint", str(checkpoint), "--no_progress"]
                 if not skip else None, skip)
    launcher = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    reduce = ["TRAIN.EPOCH", "2", "TRAIN.AMP", "True", "TRAIN.NUM_WORKER", "1", "TRAIN.VAL_EPOCH_INTERVAL", "2",
              "DATA.TRAIN.DATASETS_NAME", "['GOT10K_all']", "DATA.TRAIN.DATASETS_RATIO", "[1]"]
    samples = {"fartrack": ("640", "32"), "fartrack_sparse": ("64", "16")} if cuda else \
        {"fartrack": ("32", "8"), "fartrack_sparse": ("8", "4")}
    for script, config in TRAIN_CONFIGS.items():
        family = get_family(script)
        skip = "" if cuda or not family.sequence_batches else "CPU: stage 1 only (sequence training is minutes)"
        train, val = samples[script]
        command = [*launcher, "tracking/train.py", "--script", script, "--config", config, "--save_dir", str(save),
                   "--device", "cuda" if cuda else "cpu", "--opts", *reduce,
                   "DATA.TRAIN.SAMPLE_PER_EPOCH", train, "DATA.VAL.SAMPLE_PER_EPOCH", val]
        if family.previous_stage is not None:  # stage 3 from stage 1's weights (converted), not a trained stage 2
            command[command.index("--opts"):command.index("--opts")] = [
                "--pretrained", str(save / "checkpoints/train/fartrack/fartrack_quickstart/FARTrack_ep0002.pth.tar")]
        plan.add(f"train-{script}", "train", command if not skip else None, skip)
    return plan


def environment(cuda: bool) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "cuda": cuda}
    if cuda:
        info.update(gpu=torch.cuda.get_device_name(0), cuda_runtime=torch.version.cuda,
                    nccl=".".join(map(str, torch.cuda.nccl.version())))
    return info


def part_details(kind: str, result: PartResult, out: Path) -> dict:
    """What a finished part measured: test counts, the profiler rows, tracking FPS."""
    if kind == "cuda-tests" and (out / "cuda_tests.xml").is_file():
        return junit_counts(out / "cuda_tests.xml")
    if kind == "profile" and result.status == "passed":
        profile = json.loads(Path(result.command[result.command.index("--json") + 1]).read_text())
        return {"rows": [{"depth": r["depth"], "path": r["path"], "model_ms": r["model_only"]["median_ms"],
                          "end_to_end_ms": r["end_to_end"]["median_ms"],
                          "max_px_vs_fp32": r["boxes_vs_reference"]["max_corner_diff_px"]} for r in profile["rows"]]}
    if kind == "batch" and result.status == "passed":
        return tracked_fps(out / result.name / "test" / "tracking_results")
    return {}


def write_random_checkpoint(path: Path) -> None:
    """Seeded random weights for the batch parts (throughput does not depend on the weights)."""
    torch.manual_seed(0)
    family = get_family("fartrack")
    save_checkpoint(path, net=load_network("fartrack", "fartrack_tiny_224_full"), epoch=1,
                    net_type=family.net_class_name, actor_type="random")


def summary_text(report: dict) -> str:
    lines = [f"# GPU check: {report['verdict']}", "",
             f"environment: {json.dumps(report['environment'])}", "",
             "| part | status | seconds (budget) | notes |", "|---|---|---|---|"]
    for part in report["parts"]:
        details = part["details"]
        notes = part["reason"]
        if "fps" in details and details["fps"]:
            notes = f"{details['frames']} frames, {details['fps']:.1f} tracked frames/s"
        elif "tests" in details:
            notes = ", ".join(f"{k} {v}" for k, v in details.items())
        lines.append(f"| {part['name']} | {part['status']} | {part['seconds']:.1f} ({part['budget_s']:.0f}) "
                     f"| {notes} |")
    for part in report["parts"]:
        for row in part["details"].get("rows", []):
            if row is part["details"]["rows"][0]:
                lines += ["", f"{part['name']}: | depth | path | model ms | end-to-end ms | max px vs fp32 |",
                          "|---|---|---|---|---|"]
            lines.append(f"| {row['depth']} | {row['path']} | {row['model_ms']:.2f} | {row['end_to_end_ms']:.2f} "
                         f"| {row['max_px_vs_fp32']:.2f} |")
    return "\n".join(lines) + "\n"


def run_gpu_check(out: Path, *, dry_run: bool = False, cuda: Optional[bool] = None,
                  python: str = sys.executable) -> int:
    """Run (or, ``dry_run``, plan) the check into ``out``; returns the exit status (see the module docstring)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARTRACK_")}
    # every data, checkpoint and result path of the parts under out/ (as the quickstart does)
    env.update(FARTRACK_DATA_DIR=str(out / "data"), FARTRACK_SAVE_DIR=str(out / "env"),
               FARTRACK_WORKSPACE_DIR=str(out / "env"), FARTRACK_TRAIN_LOCAL_FILE=str(out / "no_local_file.py"),
               FARTRACK_TEST_LOCAL_FILE=str(out / "no_local_file.py"), PYTHONPATH=str(REPO_ROOT))
    plan = build_plan(out, cuda, python, batch_option_present(python))
    if not dry_run and any(kind == "batch" and command for _, kind, command, _ in plan.parts):
        write_random_checkpoint(out / "random_fartrack_tiny.pth.tar")
    results = []
    for name, kind, command, skip in plan.parts:
        if skip or dry_run:
            results.append(PartResult(name, "skipped" if skip else "planned", command or [],
                                      BUDGETS_S[kind], reason=skip))
            continue
        # each batch size writes its results into its own folder (a second run would skip tracked sequences)
        part_env = {**env, "FARTRACK_SAVE_DIR": str(out / name)} if kind == "batch" else env
        result = run_part(name, command, BUDGETS_S[kind], out / "logs", part_env)
        try:
            result.details = part_details(kind, result, out)
        except (OSError, ValueError, KeyError) as error:  # a part that ran but left unreadable output
            result.status, result.reason = "failed", f"unreadable output: {error}"
        results.append(result)
    ran = [r for r in results if r.status not in ("skipped", "planned")]
    failed = [r.name for r in ran if r.status != "passed"]
    verdict = ("dry run" if dry_run else f"{len(ran) - len(failed)} of {len(ran)} parts passed"
               + (f"; failed: {', '.join(failed)}" if failed else ""))
    report = {"verdict": verdict, "environment": environment(cuda), "dry_run": dry_run,
              "parts": [asdict(r) for r in results]}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    summary = summary_text(report)
    (out / "summary.md").write_text(summary)
    print(summary)
    return 1 if failed else 0
