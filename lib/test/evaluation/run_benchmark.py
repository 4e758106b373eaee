"""The library side of ``tracking/test.py``: check the argument combination, resolve the checkpoint, the sequences
and the results folder, run the tracker over the sequences and report.

* **Checkpoint** (:func:`default_checkpoint`): ``<save_dir>/checkpoints/train/<script>/<config>/<NetClass>_ep%04d
  .pth.tar`` with ``TEST.EPOCH`` (:func:`lib.utils.run_layout.checkpoint_path`), unless one is given.
* **Results folder** (:func:`benchmark_label`): ``<results_path>/<script>/<label>``, the label built by
  :func:`lib.utils.run_layout.results_label` from the family record's :attr:`~lib.families.Family.results_variant`
  and the precision.
* **Exit codes** of :func:`run_benchmark`: 0 every sequence tracked (or skipped), 1 some sequence failed (listed),
  2 bad arguments or inputs (config, checkpoint, dataset, sequence, device, option combination).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from lib.config.loader import ConfigError, load_config
from lib.families import Family, get_family
from lib.test.evaluation.datasets import DatasetError, get_dataset
from lib.test.evaluation.environment import env_settings
from lib.test.evaluation.running import TrackerSpec, run_sequences
from lib.test.tracker.backends import InferenceOptions
from lib.utils import run_layout

#: The log name of ``tracking/test.py`` (its messages read ``INFO test: ...``).
logger = logging.getLogger("test")

PathLike = Union[str, "os.PathLike[str]"]


def config_name(cfg: Any, config: PathLike) -> str:
    """The run's config name: the config's own, else the YAML file's stem."""
    return cfg.name or Path(config).stem


def default_checkpoint(save_dir: PathLike, script: str, name: str, epoch: int) -> Path:
    """The official test-time checkpoint location of a run (``TEST.EPOCH`` of config ``name``)."""
    return run_layout.checkpoint_path(save_dir, script, name, get_family(script).net_class_name, epoch)


def benchmark_label(family: Family, cfg: Any, config: PathLike, depth: Optional[int] = None,
                    precision: str = "fp32", faithful: bool = False) -> str:
    """The results folder name of a tracker: ``<config>[_depth<L> | _tau<t>][_<precision>][_faithful]``.

    The family record's ``results_variant`` key (``MODEL.DEPTH``, ``MODEL.DECODER.TAU``) is compared between the
    config file and what runs (``--depth`` if given, else the config after ``--opts``); a difference is named in the
    label, so results of another depth or threshold never land in the config's own folder."""
    name = family.results_variant[1]
    value = depth if depth is not None else family.variant_value(cfg)
    differs = value != family.variant_value(load_config(family.name, config))
    return run_layout.results_label(config_name(cfg, config), [(name, value if differs else None)], precision,
                                    faithful)


def option_error(family: Family, device: str, depth: Optional[int], faithful: bool, precision: str,
                 cuda_graphs: bool, batch: int = 1) -> Optional[str]:
    """Why the inference options cannot run together (None when they can)."""
    if batch < 1:
        return f"--batch must be at least 1, got {batch}"
    if batch > 1 and not family.lockstep:
        return f"{family.name} tracks one sequence per network call (its exits are per frame); drop --batch"
    if not family.inference_paths and (depth is not None or faithful or precision != "fp32" or cuda_graphs):
        key = family.results_variant[0]
        return f"{family.name} runs in fp32 on its one path and has no --depth (it varies by {key}: --opts {key} VALUE)"
    if faithful and precision != "fp32":
        return f"--faithful runs in fp32; drop --precision {precision}"
    if cuda_graphs and (faithful or device != "cuda"):
        return "--cuda_graphs replays the fast path on a CUDA device: drop --faithful and use --device cuda"
    return None


def select_sequence(sequences: Sequence[Any], sequence: str) -> Optional[list[Any]]:
    """The one sequence named ``sequence`` (a name, or an index in the dataset); None when there is none."""
    names = [seq.name for seq in sequences]
    if sequence in names:
        return [sequences[names.index(sequence)]]
    if sequence.isdigit() and int(sequence) < len(sequences):
        return [sequences[int(sequence)]]
    return None


def run_benchmark(script: str, config: str, *, dataset: str = "otb", sequence: Optional[str] = None,
                  threads: int = 0, num_gpus: int = 1, device: Optional[str] = None,
                  checkpoint: Optional[PathLike] = None, depth: Optional[int] = None, opts: Sequence[Any] = (),
                  allow_missing: bool = False, no_progress: bool = False, faithful: bool = False,
                  precision: str = "fp32", cuda_graphs: bool = False, batch: int = 1) -> int:
    """Run ``tracking/test.py``'s job (its options, same names); returns its exit status (module docstring)."""
    family = get_family(script)
    try:
        cfg = load_config(script, config, opts)
    except (ConfigError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    name = config_name(cfg, config)
    env = env_settings()
    checkpoint = checkpoint or default_checkpoint(env.save_dir, script, name, cfg.TEST.EPOCH)
    if not Path(checkpoint).is_file():
        logger.error("checkpoint %s not found (pass --checkpoint, or set TEST.EPOCH / --save_dir paths)", checkpoint)
        return 2
    try:
        sequences = get_dataset(dataset, env, allow_missing=allow_missing)
    except DatasetError as error:
        logger.error("%s", error)
        return 2
    if sequence is not None:
        selected = select_sequence(sequences, sequence)
        if selected is None:
            logger.error("sequence %r is not in %s", sequence, dataset)
            return 2
        sequences = selected
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        logger.error("--device cuda requested but no CUDA device is available")
        return 2
    problem = option_error(family, device, depth, faithful, precision, cuda_graphs, batch)
    if problem is not None:
        logger.error("%s", problem)
        return 2
    label = benchmark_label(family, cfg, config, depth, precision, faithful)
    results_dir = run_layout.tracker_results_dir(env.results_path, script, label)
    options = (InferenceOptions.faithful() if faithful
               else InferenceOptions(precision=precision, cuda_graphs=cuda_graphs))
    spec = TrackerSpec(script, config, str(checkpoint), depth, tuple(opts), options)
    logger.info("%s:%s on %s (%d sequences%s) -> %s", script, label, dataset, len(sequences),
                f", {batch} per network call" if batch > 1 else "", results_dir)
    summary = run_sequences(spec, sequences, results_dir, threads=threads, num_gpus=num_gpus, device=device,
                            progress=not no_progress, batch=batch)
    return report(summary, len(sequences))


def report(summary: Any, total: int) -> int:
    """Log what a run did; 1 when a sequence failed (each listed), else 0."""
    done, skipped = summary.count("done"), summary.count("skipped")
    logger.info("tracked %d sequences, skipped %d with existing results; %.1f FPS over the tracked frames",
                done, skipped, summary.fps)
    if not summary.failed:
        return 0
    for outcome in summary.failed:
        logger.error("sequence %s failed: %s", outcome.name, outcome.error.splitlines()[0])
    logger.error("%d of %d sequences failed; their results were not written", len(summary.failed), total)
    return 1
