"""Inspect a checkpoint and check that it loads into a FARTrack network, without executing pickled code.

    python tracking/check_checkpoint.py CHECKPOINT [--script fartrack_sparse] [--config fartrack_sparse_224_full]

Prints what the file holds (epoch, network / actor type, the recorded official objects), then the strict-load
report against the network of ``--script`` (default: the family the checkpoint was saved from). Exits 1 when the
file is refused or does not load.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config.loader import load_config  # noqa: E402

from lib.families import OFFICIAL_CONFIGS, FAMILY_NAMES
from lib.models.fartrack.network import NET_CLASS_NAMES, build_network  # noqa: E402
from lib.models.fartrack.weights import load_network_weights  # noqa: E402
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file  # noqa: E402

def describe(checkpoint: dict) -> list[str]:
    lines = []
    for key in ("epoch", "net_type", "actor_type"):
        if key in checkpoint:
            lines.append(f"{key}: {checkpoint[key]}")
    for key, value in checkpoint.items():
        if isinstance(value, dict) and "__class__" in value:
            lines.append(f"{key}: recorded official object {value['__class__']} ({len(value) - 1} attributes)")
    lines.append(f"top-level keys: {', '.join(map(str, checkpoint))}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--script", choices=FAMILY_NAMES, help="network family to load into (default: the saved one)")
    parser.add_argument("--config", help="config name or YAML path (default: the official config of the script)")
    parser.add_argument("--depth", type=int, help="layers the network will run")
    args = parser.parse_args()
    try:
        checkpoint = load_checkpoint_file(args.checkpoint)
    except CheckpointError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    print("\n".join(describe(checkpoint)))
    saved_family = {name: family for family, name in NET_CLASS_NAMES.items()}.get(checkpoint.get("net_type"))
    script = args.script or saved_family or "fartrack_sparse"
    net = build_network(load_config(script, args.config or OFFICIAL_CONFIGS[script]), depth=args.depth)
    try:
        report = load_network_weights(net, args.checkpoint)
    except CheckpointError as error:
        print(f"does not load into {net.net_type} (depth {net.depth}):\n{error}", file=sys.stderr)
        return 1
    print(f"loads into {net.net_type} (depth {net.depth}): {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
