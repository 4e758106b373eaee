"""Reports about networks, behind ``tracking/check_checkpoint.py`` and ``tracking/model_summary.py``.

* :func:`check_checkpoint`: what a checkpoint file holds (read without executing pickled code) and the strict-load
  report against the network of a family (default: the family the checkpoint was saved from).
* :func:`summarise` / :func:`summary_table`: exact parameters and MACs (no timing) of a FARTrack network at several
  depths and template retention rates.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from lib.config.loader import load_config
from lib.families import UnknownFamilyError, family_of_net_type, get_family
from lib.models.fartrack.complexity import count_macs, paper_param_count
from lib.models.fartrack.network import FARTrackNetwork
from lib.models.fartrack.sparsify import num_pruned
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file

#: The family a checkpoint of unknown ``net_type`` is loaded into when none is given.
FALLBACK_SCRIPT = "fartrack_sparse"


def describe(checkpoint: dict) -> list[str]:
    """What a loaded checkpoint holds: epoch, network / actor type, recorded official objects, top-level keys."""
    lines = []
    for key in ("epoch", "net_type", "actor_type"):
        if key in checkpoint:
            lines.append(f"{key}: {checkpoint[key]}")
    for key, value in checkpoint.items():
        if isinstance(value, dict) and "__class__" in value:
            lines.append(f"{key}: recorded official object {value['__class__']} ({len(value) - 1} attributes)")
    lines.append(f"top-level keys: {', '.join(map(str, checkpoint))}")
    return lines


def saved_script(checkpoint: dict) -> Optional[str]:
    """The family a checkpoint was saved from (its ``net_type``), None when no record registers it."""
    try:
        return family_of_net_type(checkpoint.get("net_type")).name
    except UnknownFamilyError:
        return None


def network_label(net: Any) -> str:
    depth = getattr(net, "depth", None)
    return net.net_type if depth is None else f"{net.net_type} (depth {depth})"


def check_checkpoint(path: Path, script: Optional[str] = None, config: Optional[str] = None,
                     depth: Optional[int] = None) -> int:
    """Print what ``path`` holds and whether it loads into the network of ``script`` (default: the saved family,
    else :data:`FALLBACK_SCRIPT`) built from ``config`` (default: the family's official one). Exit status: 0 loads,
    1 refused or does not load, 2 no config to build the network from."""
    try:
        checkpoint = load_checkpoint_file(path)
    except CheckpointError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    print("\n".join(describe(checkpoint)))
    family = get_family(script or saved_script(checkpoint) or FALLBACK_SCRIPT)
    config = config or family.official_config
    if config is None:
        print(f"{family.name} has no official config: pass --config", file=sys.stderr)
        return 2
    net = family.build_network(load_config(family.name, config), depth=depth)
    try:
        report = family.load_weights(net, path)
    except CheckpointError as error:
        print(f"does not load into {network_label(net)}:\n{error}", file=sys.stderr)
        return 1
    print(f"loads into {network_label(net)}: {report}")
    return 0


def summarise(script: str, config: str, depths: Sequence[int], prune_ratios: Sequence[float]) -> list[dict]:
    """Parameters and MACs of ``script``'s network (a FARTrack family) at every depth x template prune ratio."""
    cfg = load_config(script, config)
    net = get_family(script).build_network(cfg)
    if not isinstance(net, FARTrackNetwork):
        raise ValueError(f"{script}: the summary counts FARTrack networks, not {net.net_type}")
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


def summary_table(rows: list[dict]) -> str:
    """The markdown table of :func:`summarise`'s rows."""
    lines = ["| depth | template retention | tokens | params (paper) | params (state_dict) | GMACs projections "
             "(paper/thop) | GMACs attention | GMACs total |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['depth']} | {r['template_retention']:.1%} | {r['tokens']} "
                     f"| {r['paper_params'] / 1e6:.4f} M | {r['state_dict_params'] / 1e6:.4f} M "
                     f"| {r['projection_macs'] / 1e9:.3f} | {r['attention_macs'] / 1e9:.3f} "
                     f"| {r['total_macs'] / 1e9:.3f} |")
    return "\n".join(lines)
