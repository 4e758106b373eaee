"""Local VOT workspaces: VOT-format sequences from GOT-10k-like folders and a small experiment stack.

The toolkit's own stacks download their datasets (``vot initialize vot2022/stb``); offline, or for other data, a
workspace can hold any sequences in the toolkit's native format (``vot.dataset.common.read_sequence``)::

    <workspace>/sequences/list.txt                 one sequence folder name per line
    <workspace>/sequences/<name>/sequence          key=value metadata: channels.color=color/%08d.jpg, fps, length
    <workspace>/sequences/<name>/color/00000001.jpg ...
    <workspace>/sequences/<name>/groundtruth.txt   x,y,w,h per frame; nan,nan,nan,nan where the target has no box
    <workspace>/sequences/<name>/<tag>.label       optional per-frame 0/1 tags (copied from the source)

:func:`write_vot_sequence` builds one from a folder of frames (``.jpg`` / ``.png``, sorted by name) with a
``groundtruth.txt`` of ``x,y,w,h`` lines (``0,0,0,0`` or any non-positive size where the target has no box), such as
``../shared/data/real-sequences/*``. Frames are symbolic links to the originals (or copies, ``copy=True``): the
pixels the toolkit sends are the source's. Only ``groundtruth.txt`` is carried over, so extra
``groundtruth_*.txt`` files of the source (which the toolkit would read as further objects) stay out.

:func:`write_local_stack` writes ``stack.yaml``: one unsupervised run per sequence (initialised on the first frame,
no resets, as a long-term / OTB-style evaluation) analysed for accuracy (average overlap) and for the tracking
precision / recall over confidence thresholds (``average_tpr``, which reads the ``confidence`` our server reports).
Initialise the workspace with it: ``vot initialize <absolute path>/stack.yaml --workspace W --nodownload`` (any
toolkit version; 0.8+ also offers ``vot initialize custom``, which keeps an existing ``stack.yaml``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from lib.test.evaluation.datasets import DatasetError
from lib.test.evaluation.datasets import read_boxes as read_ground_truth

PathLike = Union[str, "os.PathLike[str]"]

#: Frame file types a source folder may hold (one type per sequence).
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
#: The first line of the placeholder that ``vot initialize custom`` writes (replaced by :func:`write_local_stack`).
PLACEHOLDER_STACK = "# Custom stack file, edit before use!"

LOCAL_STACK = """\
# Written by tracking/vot_setup.py (lib/vot/workspace.py): one unsupervised run per sequence, initialised on the
# first frame and never reset; accuracy = average overlap, average_tpr = precision / recall / F over the
# confidence thresholds (the tracker's best_score reported as the TraX "confidence" property).
title: FARTrack local stack (unsupervised, one run per sequence)
experiments:
  baseline:
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_accuracy
        name: accuracy
        burnin: 1
      - type: average_tpr
        name: average_tpr
"""


def read_boxes(path: PathLike) -> list[Optional[list[float]]]:
    """``x,y,w,h`` rows (:func:`lib.test.evaluation.datasets.read_boxes`) -> boxes, None where the box is missing,
    not finite or empty."""
    try:
        rows = read_ground_truth(Path(path))
    except DatasetError as error:
        raise ValueError(str(error)) from None
    return [[float(v) for v in row] if np.isfinite(row).all() and row[2] > 0 and row[3] > 0 else None
            for row in rows]


def _frames(source: Path) -> list[Path]:
    frames = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS)
    if not frames:
        raise ValueError(f"no frames ({', '.join(FRAME_EXTENSIONS)}) in {source}")
    return frames


def write_vot_sequence(source: PathLike, sequences_dir: PathLike, *, name: Optional[str] = None,
                       max_frames: Optional[int] = None, copy: bool = False) -> Path:
    """Write ``<sequences_dir>/<name>`` in the toolkit's format from a GOT-10k-like folder; returns its path.

    Args:
        source: frames (sorted by file name) and ``groundtruth.txt`` (``x,y,w,h`` per frame).
        sequences_dir: the workspace's ``sequences`` folder.
        name: sequence name (default: the source folder's name).
        max_frames: keep only the first frames.
        copy: copy the frames instead of linking them.

    Raises:
        ValueError: no frames, mixed frame types, a missing or short ground truth, no box in the first frame (the
            toolkit initialises there), or an existing folder that is not a sequence written here.
    """
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"not a sequence folder: {source}")
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"max_frames must be at least 2 (an initial frame and a tracked one), got {max_frames}")
    frames = _frames(source)[:max_frames]
    extensions = {p.suffix.lower().replace(".jpeg", ".jpg") for p in frames}
    if len(extensions) != 1:
        raise ValueError(f"{source} mixes frame types {sorted(extensions)}")
    extension = extensions.pop()
    groundtruth = source / "groundtruth.txt"
    if not groundtruth.is_file():
        raise ValueError(f"no groundtruth.txt (x,y,w,h per frame) in {source}")
    boxes = read_boxes(groundtruth)
    if len(boxes) < len(frames):
        raise ValueError(f"{groundtruth} has {len(boxes)} boxes for {len(frames)} frames")
    boxes = boxes[:len(frames)]
    if boxes[0] is None:
        raise ValueError(f"{groundtruth}: the first frame has no box; the toolkit initialises the tracker there")

    target = Path(sequences_dir) / (name or source.name)
    if target.exists():
        if not (target / "sequence").is_file():
            raise ValueError(f"{target} exists and is not a VOT sequence folder: not replacing it")
        shutil.rmtree(target)
    (target / "color").mkdir(parents=True)
    for index, frame in enumerate(frames, start=1):
        destination = target / "color" / f"{index:08d}{extension}"
        if copy:
            shutil.copyfile(frame, destination)
        else:
            destination.symlink_to(frame.resolve())
    lines = ["nan,nan,nan,nan" if box is None else ",".join(f"{v:.10g}" for v in box)
             for box in boxes]
    (target / "groundtruth.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for tags in sorted([*source.glob("*.label"), *source.glob("*.tag")]):
        values = tags.read_text(encoding="utf-8").splitlines()[:len(frames)]
        (target / tags.name).write_text("\n".join(values) + "\n", encoding="utf-8")
    metadata = {"channels.color": f"color/%08d{extension}", "channel.default": "color", "format": "default",
                "fps": "30", "length": str(len(frames))}
    (target / "sequence").write_text("".join(f"{k}={v}\n" for k, v in metadata.items()), encoding="utf-8")
    return target


def add_to_list(sequences_dir: PathLike, names: Iterable[str]) -> Path:
    """Append ``names`` to ``<sequences_dir>/list.txt`` (once each, existing order kept)."""
    path = Path(sequences_dir) / "list.txt"
    listed = path.read_text(encoding="utf-8").split() if path.is_file() else []
    listed += [name for name in names if name not in listed]
    path.write_text("\n".join(listed) + "\n", encoding="utf-8")
    return path


def write_local_stack(workspace: PathLike, *, overwrite: bool = False) -> Optional[Path]:
    """Write ``<workspace>/stack.yaml`` (:data:`LOCAL_STACK`) unless a stack other than the placeholder of
    ``vot initialize custom`` is there (``overwrite`` replaces it). Returns the path written, or None when an existing
    stack was kept."""
    path = Path(workspace) / "stack.yaml"
    if path.is_file() and not overwrite:
        if not path.read_text(encoding="utf-8").startswith(PLACEHOLDER_STACK):
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOCAL_STACK, encoding="utf-8")
    return path


def prepare_workspace(workspace: PathLike, sources: Iterable[PathLike], *, max_frames: Optional[int] = None,
                      copy: bool = False) -> list[str]:
    """Write the sequences of ``sources`` into ``<workspace>/sequences`` (and its ``list.txt``) and the local stack
    (kept if the workspace has its own). Returns the sequence names. Names must be unique."""
    sources = [Path(s) for s in sources]
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"several sources are named {duplicates}: sequence names must be unique")
    sequences_dir = Path(workspace) / "sequences"
    for source in sources:
        write_vot_sequence(source, sequences_dir, max_frames=max_frames, copy=copy)
    add_to_list(sequences_dir, names)
    write_local_stack(workspace)
    return names


__all__ = ["LOCAL_STACK", "read_boxes", "write_vot_sequence", "add_to_list", "write_local_stack",
           "prepare_workspace"]
