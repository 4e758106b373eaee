"""Parameters and MACs of a FARTrack network at several depths and template retention rates.

    python tracking/model_summary.py --script fartrack_sparse --config fartrack_sparse_224_full [--json FILE]

Counts are exact (no timing): parameters the paper's way and over the full state_dict; MACs of one forward at
batch 1 from ``torch.utils.flop_counter``, split into projections (what the paper / thop count) and attention.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config.loader import load_config  # noqa: E402

from lib.families import FAMILY_NAMES
from lib.models.fartrack.complexity import count_macs, paper_param_count  # noqa: E402
from lib.models.fartrack.network import build_network  # noqa: E402
from lib.models.fartrack.sparsify import num_pruned  # noqa: E402


def summarise(script: str, config: str, depths: list[int], prune_ratios: list[float]) -> list[dict]:
    cfg = load_config(script, config)
    net = build_network(cfg)
    spec = net.spec
    rows = []
    for depth in depths:
        net.depth = depth
        for ratio in prune_ratios:
            kept = spec.tokens_per_template - num_pruned(spec.tokens_per_template, ratio)
            # Inference: every stored template except the newest carries its pruned mask (official schedule).
            kept_per_template = [kept] * (spec.num_templates - 1) + [spec.tokens_per_template]
            macs = count_macs(net, kept_per_template)
            rows.append({
                "depth": depth,
                "template_retention": kept / spec.tokens_per_template,
                "paper_params": paper_param_count(net),
                "state_dict_params": sum(v.numel() for v in net.state_dict().values()),
                **macs.as_dict(),
            })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", default="fartrack_sparse", choices=FAMILY_NAMES)
    parser.add_argument("--config", default="fartrack_sparse_224_full")
    parser.add_argument("--depths", type=int, nargs="+", default=[15, 10, 6])
    parser.add_argument("--prune_ratios", type=float, nargs="+", default=[0.0, 0.25])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = summarise(args.script, args.config, args.depths, args.prune_ratios)
    print("| depth | template retention | tokens | params (paper) | params (state_dict) | GMACs projections "
          "(paper/thop) | GMACs attention | GMACs total |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['depth']} | {r['template_retention']:.1%} | {r['tokens']} | {r['paper_params'] / 1e6:.4f} M "
              f"| {r['state_dict_params'] / 1e6:.4f} M | {r['projection_macs'] / 1e9:.3f} "
              f"| {r['attention_macs'] / 1e9:.3f} | {r['total_macs'] / 1e9:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
