"""The library side of ``tracking/analysis_results.py``: score the trackers on a dataset, print the tables, write the
JSON report and the plots; exit status 0, or 1 with ``error: ...`` on stderr."""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from lib.test.analysis.exits import exit_table
from lib.test.analysis.plots import plot_curves
from lib.test.analysis.report import EvaluationError, evaluate_trackers, markdown_table, per_sequence_table, to_json
from lib.test.analysis.results import ResultFileError
from lib.test.evaluation.datasets import DatasetError
from lib.test.evaluation.environment import env_settings


def run_analysis(tracker: Sequence[str], dataset: str, *, out: Optional[Path] = None, plot: bool = False,
                 per_sequence: bool = False, results_path: Optional[Path] = None,
                 plot_dir: Optional[Path] = None) -> int:
    """Run ``tracking/analysis_results.py`` (its options by name; ``tracker``: the ``<script>:<config>`` list)."""
    env = env_settings()
    if results_path is not None:
        env = replace(env, results_path=results_path.resolve())
    try:
        scores = evaluate_trackers(tracker, dataset, env)
    except (EvaluationError, DatasetError, ResultFileError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    print(f"\n{dataset}\n")
    print(markdown_table(scores))
    for s in scores:
        if s.missing:
            print(f"\n{s.name}: no results for {len(s.missing)} sequence(s), left out: {', '.join(s.missing)}")
        if s.exit_counts:
            print(f"\n{s.name}: early exits over {sum(s.exit_counts.values())} tracked frames\n")
            print(exit_table(s.name, s.exit_counts))
        if per_sequence:
            print("\n" + per_sequence_table(s))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(to_json(dataset, scores), indent=2))
        print(f"\nwrote {out}")
    if plot:
        plot_curves(scores, dataset, plot_dir or Path(env.result_plot_path) / dataset)  # logs each PNG written
    return 0
