"""The library side of the training commands.

* ``tracking/train.py`` (:func:`run_train_command`): start the run in this process
  (:func:`lib.train.run.run_training`), or re-run the script under ``torchrun`` for ``--mode multiple``, and turn
  the ways a run stops into exit statuses (0 done, 1 the run cannot start or stopped, with the reason logged,
  130 interrupted).
* ``tracking/train_throughput.py`` (:func:`run_throughput_command`): :func:`lib.train.throughput.measure`, its
  report and JSON file.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from json import dumps
from pathlib import Path
from typing import Any, Optional, Sequence

from lib.config.loader import ConfigError
from lib.train.dataset.base import TrainDatasetError
from lib.train.distributed import started_by_torchrun
from lib.train.run import DEFAULT_SEED, TrainingSetupError, TrainOptions, run_training
from lib.train.throughput import format_report, measure
from lib.train.trainer import NonFiniteLossError
from lib.utils.checkpoint import CheckpointError

#: The log name of ``tracking/train.py``.
logger = logging.getLogger("train")

#: Launcher options of the command, not forwarded to the processes ``torchrun`` starts.
LAUNCHER_OPTIONS = ("--mode", "--nproc_per_node", "--master_port")


def torchrun_command(script_path: Path, argv: Sequence[str], nproc_per_node: int, master_port: Optional[int]
                     ) -> list[str]:
    """``torchrun`` (``python -m torch.distributed.run``) on ``script_path`` with ``argv`` minus the launcher
    options."""
    forwarded, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in LAUNCHER_OPTIONS:
            skip = "=" not in item
            continue
        forwarded.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}"]
    command += [f"--master_port={master_port}"] if master_port else ["--standalone"]
    return [*command, str(script_path), *forwarded]


def launch_torchrun(script_path: Path, argv: Sequence[str], nproc_per_node: int, master_port: Optional[int]) -> int:
    """Re-run the training script under torchrun with the same arguments (minus the launcher ones)."""
    command = torchrun_command(script_path, argv, nproc_per_node, master_port)
    logger.info("launching: %s", " ".join(command))
    return subprocess.call(command, env=os.environ.copy())


def run_train_command(script_path: Path, argv: Sequence[str], *, script: str, config: str,
                      save_dir: Path = Path("output"), mode: str = "single", nproc_per_node: int = 1,
                      master_port: Optional[int] = None, use_wandb: int = 0, use_lmdb: int = 0,
                      seed: int = DEFAULT_SEED, device: str = "auto", pretrained: Optional[Path] = None,
                      resume: Optional[str] = None, opts: Sequence[Any] = ()) -> int:
    """Run ``tracking/train.py`` (``script_path``, command line ``argv``, its options by name); its exit status."""
    if mode == "multiple" and not started_by_torchrun():
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        return launch_torchrun(script_path, argv, nproc_per_node, master_port)
    if use_wandb and importlib.util.find_spec("wandb") is None:
        logger.error("--use_wandb 1 needs the wandb package: pip install -e '.[wandb]'")
        return 1
    options = TrainOptions(
        script=script, config=config, save_dir=save_dir, opts=opts, seed=seed, use_lmdb=bool(use_lmdb),
        use_wandb=bool(use_wandb), resume=resume, pretrained=pretrained, device=device,
        argv=["tracking/train.py", *argv],
    )
    try:
        run_training(options)
    except (ConfigError, TrainDatasetError, TrainingSetupError, CheckpointError, NonFiniteLossError,
            FileNotFoundError) as error:
        logger.error("training failed: %s", error)
        return 1
    except KeyboardInterrupt:
        logger.error("interrupted; resume with --resume (continues from the last checkpoint written)")
        return 130
    return 0


def run_throughput_command(*, script: str, config: str, samples: int = 32, batches: int = 8, steps: int = 3,
                           workers: Optional[int] = None, use_lmdb: int = 0, opts: Sequence[Any] = (),
                           json: Optional[Path] = None) -> int:
    """Run ``tracking/train_throughput.py`` (its options by name): print the report, write ``json``; exit status 0,
    or 1 with ``error: ...`` on stderr when the config or the datasets cannot be used."""
    try:
        result = measure(script, config, opts, samples=samples, batches=batches, steps=steps, workers=workers,
                         use_lmdb=bool(use_lmdb))
    except (ConfigError, TrainDatasetError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_report(result))
    if json:
        json.parent.mkdir(parents=True, exist_ok=True)
        json.write_text(dumps(result, indent=2))
    return 0
