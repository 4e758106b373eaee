"""The library side of ``tracking/generate_synthetic.py``: the config from the command's options, the run and its
report (exit status 0, or 1 with ``error: ...`` on stderr)."""
from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

from lib.synthetic.writers import DATASETS, SyntheticConfig, SyntheticDataError, write_synthetic_data
from lib.train.admin.environment import train_env_settings
from lib.utils.local_paths import LocalFileError

#: Count options generated from the SyntheticConfig fields named after a dataset (--got10k_train, --lasot_test ...).
COUNT_FIELDS = [item.name for item in fields(SyntheticConfig) if item.name.split("_")[0] in DATASETS]


def describe(name: str, entry: dict) -> str:
    """One line of the report: what was written (or skipped) for dataset ``name``."""
    state = "skipped (same parameters)" if entry["skipped"] else "generated"
    if name == "coco":
        counts = f"{entry['images']} images, {entry['annotations']} objects (+{entry['crowd_annotations']} crowd)"
    else:
        splits = ", ".join(f"{split} {entry[split]}" for split in ("train", "val", "test") if split in entry)
        counts = f"{splits} sequences, {entry['frames']} frames ({entry['absent_frames']} with the target absent)"
    return f"  {name:<12} {state}: {counts}"


def print_summary(summary: dict, config: SyntheticConfig, settings_dir: Path) -> None:
    """The report of :func:`lib.synthetic.write_synthetic_data`'s ``summary``."""
    width, height = config.image_size
    print(f"synthetic data in {summary['data_dir']} (seed {config.seed}, difficulty {config.difficulty}, "
          f"{width}x{height}):")
    for name, entry in summary["datasets"].items():
        print(describe(name, entry))
    if summary["frames"]:
        print(f"{summary['frames']} frames in {summary['seconds']:.1f} s ({summary['frames_per_second']:.0f} frames/s)")
    lasot = summary["datasets"].get("lasot")
    if lasot:
        print(f"LaSOT test sequences (get_dataset('lasot', sequences=...)): {' '.join(lasot['test_sequences'])}")
    if Path(summary["data_dir"]) != settings_dir.resolve():
        print(f"point the path settings at it: export FARTRACK_DATA_DIR={summary['data_dir']}")


def run_generate(*, data_dir: Optional[Path] = None, seed: int, difficulty: str, salience: float,
                 datasets: Sequence[str] = DATASETS, frames: Optional[int] = None, image_size: Sequence[int],
                 force: bool = False, quiet: bool = False, **counts: int) -> int:
    """Run ``tracking/generate_synthetic.py`` (its options by name; ``counts``: the :data:`COUNT_FIELDS`)."""
    try:
        settings_dir = train_env_settings().data_dir
        config = SyntheticConfig(seed=seed, difficulty=difficulty, salience=salience, image_size=tuple(image_size),
                                 **{name: counts[name] for name in COUNT_FIELDS})
        if frames is not None:
            config = config.with_frames(frames)
        summary = write_synthetic_data(data_dir or settings_dir, config, datasets=datasets, force=force,
                                       progress=not quiet)
    except (SyntheticDataError, LocalFileError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print_summary(summary, config, settings_dir)
    return 0
