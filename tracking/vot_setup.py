"""Write the trackers.ini entry that lets the VOT toolkit run this checkout's tracker (and, optionally, local data).

    python tracking/vot_setup.py --workspace W --name fartrack_sparse --script fartrack_sparse \\
        --checkpoint FARTrackSparse_ep0015.pth.tar --depth 6
    python tracking/vot_setup.py --workspace W --name fartrack_smoke --script fartrack_sparse --random_weights \\
        --sequences ../shared/data/real-sequences/vot_ball1 ../shared/data/real-sequences/otb_Crossing --max_frames 30

The entry (section --name of W/trackers.ini, replaced if present, other sections kept) runs tracking/vot_tracker.py
with this interpreter (sys.executable), protocol traxpython, and the options as env_FARTRACK_VOT_* variables.
--sequences also writes GOT-10k-like folders (frames + groundtruth.txt x,y,w,h) into W/sequences in the toolkit's
format and W/stack.yaml (one unsupervised run per sequence) unless W has its own stack. Then (offline):
vot initialize $PWD/W/stack.yaml --workspace W --nodownload, vot evaluate --workspace W NAME,
vot analysis --workspace W NAME. See docs/vot.md. Exits 2 on bad options.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.test.tracker.backends import PRECISIONS  # noqa: E402
from lib.vot.registry import DEFAULT_TIMEOUT, tracker_entry, write_tracker_entry  # noqa: E402
from lib.vot.server import ServerOptions  # noqa: E402
from lib.vot.workspace import prepare_workspace  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True, help="VOT workspace folder (created if absent)")
    parser.add_argument("--name", required=True, help="tracker identifier in trackers.ini (letters, digits, - and _)")
    parser.add_argument("--label", help="label in the toolkit's reports")
    parser.add_argument("--script", help="family (default: the checkpoint's)")
    parser.add_argument("--config", help="config name or YAML path (default: the family's official config)")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint", type=Path, help="weights (stored as an absolute path)")
    weights.add_argument("--random_weights", action="store_true", help="random initialisation (smoke runs only)")
    parser.add_argument("--depth", type=int, help="layers to run (Tiny/Nano/Pico = 15/10/6)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default: CUDA when available)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--threads", type=int, help="torch CPU threads of the tracker process")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds the toolkit waits per reply")
    parser.add_argument("--python", help="interpreter of the tracker process (default: this one, sys.executable)")
    parser.add_argument("--sequences", type=Path, nargs="+", help="GOT-10k-like folders to add to W/sequences")
    parser.add_argument("--max_frames", type=int, help="with --sequences: keep the first frames only")
    parser.add_argument("--copy", action="store_true", help="with --sequences: copy frames instead of linking them")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = ServerOptions(script=args.script, config=args.config,
                            checkpoint=None if args.checkpoint is None else str(args.checkpoint), depth=args.depth,
                            device=args.device, precision=args.precision, threads=args.threads,
                            random_weights=args.random_weights)
    try:
        entry = tracker_entry(options, label=args.label, python=args.python, timeout=args.timeout)
        path = write_tracker_entry(args.workspace, args.name, entry)
        names = prepare_workspace(args.workspace, args.sequences, max_frames=args.max_frames,
                                  copy=args.copy) if args.sequences else []
    except (ValueError, OSError) as error:
        print(f"vot_setup: {error}", file=sys.stderr)
        return 2
    print(f"wrote [{args.name}] to {path}:")
    print("\n".join(f"  {key} = {value}" for key, value in entry.items()))
    if names:
        print(f"sequences in {args.workspace / 'sequences'}: {', '.join(names)}")
    workspace = args.workspace.resolve()
    if not (workspace / "config.yaml").is_file():
        local = (workspace / "stack.yaml").is_file()
        stack = f"{workspace / 'stack.yaml'} --nodownload" if local else "<stack, e.g. vot2022/shorttermbox>"
        print(f"next: vot initialize {stack} --workspace {workspace}")
    print(f"then: vot evaluate --workspace {workspace} {args.name}\n"
          f"      vot analysis --workspace {workspace} {args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
