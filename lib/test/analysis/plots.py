"""Success, precision and normalised-precision plots comparing trackers (PNG, matplotlib Agg backend)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence as Seq

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the headless backend)

from lib.test.analysis import metrics  # noqa: E402
from lib.test.analysis.report import TrackerScores  # noqa: E402

logger = logging.getLogger(__name__)

#: (file stem, curve attribute, thresholds, score key shown in the legend, x label, y label, title)
PLOTS = (
    ("success_plot", "success_curve", metrics.SUCCESS_THRESHOLDS, "AUC", "Overlap threshold",
     "Overlap precision [%]", "Success plot"),
    ("precision_plot", "precision_curve", metrics.PRECISION_THRESHOLDS, "Precision",
     "Location error threshold [pixels]", "Distance precision [%]", "Precision plot"),
    ("norm_precision_plot", "norm_precision_curve", metrics.NORM_PRECISION_THRESHOLDS, "NormPrecision",
     "Normalised location error threshold", "Distance precision [%]", "Normalised precision plot"),
)


def plot_curves(scores: Seq[TrackerScores], dataset_name: str, out_dir: Path) -> list[Path]:
    """Write the three comparison plots into ``out_dir`` (created); trackers sorted by the plotted score, the score
    in percent in the legend as in the official plots. Returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, attribute, thresholds, key, xlabel, ylabel, title in PLOTS:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for s in sorted(scores, key=lambda s: s.overall[key], reverse=True):
            ax.plot(thresholds, getattr(s, attribute) * 100.0, linewidth=2, label=f"{s.name} [{s.overall[key]:.1f}]")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title} on {dataset_name}",
               xlim=(thresholds[0], thresholds[-1]), ylim=(0, 100))
        ax.grid(True, linestyle=":")
        ax.legend(loc="lower left" if key == "AUC" else "lower right", fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=150)
        plt.close(fig)
        written.append(path)
        logger.info("wrote %s", path)
    return written
