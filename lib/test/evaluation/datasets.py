"""Benchmark test sets in their official on-disk layouts, with the official sequence lists.

``get_dataset(name)`` returns a :class:`SequenceList`. Loading lists frames by formula or by a directory listing
and reads the ground-truth text files; it never opens an image, and for formula-named frames it only checks
that the first frame exists (``check_dataset`` checks every frame).

Sequence lists:

* ``otb``, ``nfs``, ``uav``, ``lasot``, ``lasot_extension_subset``: the official lists shipped in
  ``lib/test/evaluation/lists/*.json``. A listed sequence that is absent on disk is an error unless
  ``allow_missing=True`` (it is then skipped with a warning) or ``sequences=[...]`` selects only present ones.
* ``got10k_test`` / ``got10k_val``: ``<got10k_path>/<split>/list.txt``.
* ``got10k_ltrval``: the training-set validation split of pytracking: the 0-based indices in
  ``lib/train/data_specs/got10k_val_split.txt`` index the lines of ``<got10k_path>/train/list.txt`` (in file
  order; the official list.txt is sorted, so index ``i`` is ``GOT-10k_Train_{i + 1:06d}``).
* ``trackingnet``: the ``TEST/anno/*.txt`` files, sorted by name; ``tnl2k``: the sorted sub-folders of the root.

Conventions taken from the official (pytracking-derived) loaders:

* ground-truth files may be comma-, tab- or space-separated (OTB mixes them); they are read as float64 and NaN
  rows are kept (UAV123);
* OTB ``initOmit = k``: the first ``k`` frames and GT rows are dropped (only ``Tiger1``, ``k = 5``);
* NfS: ``anno/nfs_<name>.txt`` is the 4-column ``x y w h`` 30 fps file of the pytracking release; the raw NfS
  annotation format (track id, x1, y1, x2, y2, frame, flags, label at 240 fps) is not read;
* GOT-10k and TrackingNet frames are the ``.jpg`` files of the folder sorted by their integer stem, TNL2K frames
  the ``.jpg`` / ``.png`` files sorted by name; LaSOT has one frame per GT row;
* a GT row count that differs from the frame count is not an error at load time (the analysis truncates or
  pads); ``check_dataset`` reports it.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from lib.test.evaluation.data import Sequence, SequenceList
from lib.test.evaluation.environment import EnvSettings, env_settings
from lib.synthetic.writers import NO_DATA_HINT, builtin_data_notice
from lib.train.admin.environment import DATA_SPECS_DIR

logger = logging.getLogger(__name__)

DATASET_NAMES = ("otb", "nfs", "uav", "lasot", "lasot_extension_subset", "got10k_test", "got10k_val",
                 "got10k_ltrval", "trackingnet", "tnl2k")
LISTS_DIR = Path(__file__).resolve().parent / "lists"
GOT10K_VAL_SPLIT = DATA_SPECS_DIR / "got10k_val_split.txt"
#: Number of sequences in the official release of each test set.
OFFICIAL_COUNTS = {"otb": 100, "nfs": 100, "uav": 123, "lasot": 280, "lasot_extension_subset": 150,
                   "got10k_test": 180, "got10k_val": 180, "got10k_ltrval": 1401, "trackingnet": 511, "tnl2k": 700}


class DatasetError(RuntimeError):
    """A benchmark root that is missing or a sequence that does not follow the official layout."""


class MissingSequenceError(DatasetError):
    """A sequence of the sequence list whose files are absent."""


_LASOT_LAYOUT = """\
<root>/
  <class>/                      e.g. airplane/
    <class>-<n>/                e.g. airplane-1/
      img/00000001.jpg ...      one frame per ground-truth row
      groundtruth.txt           x,y,w,h per frame, comma separated
      full_occlusion.txt        one line of comma-separated 0/1, one per frame
      out_of_view.txt           one line of comma-separated 0/1, one per frame"""

_GOT10K_LAYOUT = """\
<root>/                         the GOT-10k root holding train/ val/ test/
  {split}/
    list.txt                    one sequence name per line
    <sequence>/                 e.g. {example}/
      00000001.jpg ...
      groundtruth.txt           x,y,w,h, comma separated ({rows})"""

LAYOUTS = {
    "otb": """\
<root>/                         sequences of lib/test/evaluation/lists/otb.json
  Basketball/
    img/0001.jpg ...            frames startFrame..endFrame, 'nz' digits
    groundtruth_rect.txt        x,y,w,h per frame (comma, tab or space separated)""",
    "nfs": """\
<root>/                         sequences of lib/test/evaluation/lists/nfs.json (30 fps)
  sequences/Gymnastics/00001.jpg ...
  anno/nfs_Gymnastics.txt       x,y,w,h per frame (comma, tab or space separated)""",
    "uav": """\
<root>/                         the UAV123 root; sequences of lib/test/evaluation/lists/uav.json
  data_seq/UAV123/bike1/000001.jpg ...
  anno/UAV123/bike1.txt         x,y,w,h per frame, comma separated (NaN rows allowed)""",
    "lasot": _LASOT_LAYOUT,
    "lasot_extension_subset": _LASOT_LAYOUT.replace("airplane", "atv"),
    "got10k_test": _GOT10K_LAYOUT.format(split="test", example="GOT-10k_Test_000001", rows="first frame only"),
    "got10k_val": _GOT10K_LAYOUT.format(split="val", example="GOT-10k_Val_000001", rows="one row per frame"),
    "got10k_ltrval": _GOT10K_LAYOUT.format(split="train", example="GOT-10k_Train_000001", rows="one row per frame")
    + f"\n  (sequences: the 0-based line indices of train/list.txt given in {GOT10K_VAL_SPLIT.name})",
    "trackingnet": """\
<root>/
  TEST/
    anno/<sequence>.txt         x,y,w,h of frame 0, comma separated
    frames/<sequence>/0.jpg 1.jpg ...   0-based, no zero padding""",
    "tnl2k": """\
<root>/                         one folder per test sequence
  <sequence>/
    imgs/*.jpg or *.png         sorted by name
    groundtruth.txt             x,y,w,h per frame, comma separated""",
}
_ROOT_KEYS = {"otb": "otb_path", "nfs": "nfs_path", "uav": "uav_path", "lasot": "lasot_path",
              "lasot_extension_subset": "lasot_extension_subset_path", "got10k_test": "got10k_path",
              "got10k_val": "got10k_path", "got10k_ltrval": "got10k_path", "trackingnet": "trackingnet_path",
              "tnl2k": "tnl2k_path"}


# ----------------------------------------------------------------------------------------------- text files
def read_boxes(path: Path) -> np.ndarray:
    """Read ``x, y, w, h`` rows separated by commas, tabs or spaces as a float64 ``(N, 4)`` array (NaN kept)."""
    if not path.is_file():
        raise DatasetError(f"missing ground-truth file {path}")
    text = path.read_text(encoding="utf-8", errors="replace").replace(",", " ")
    if not text.strip():
        raise DatasetError(f"{path}: the ground-truth file is empty")
    try:
        boxes = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DatasetError(f"{path}: unreadable ground truth ({err})") from err
    if boxes.shape[1] != 4:
        raise DatasetError(f"{path}: expected 4 values per row (x, y, w, h), found {boxes.shape[1]}")
    return boxes


def read_flags(path: Path) -> np.ndarray:
    """Read a LaSOT flag file (0/1 values separated by commas or whitespace) as a bool array."""
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    tokens = path.read_text(encoding="utf-8", errors="replace").replace(",", " ").split()
    if any(token not in ("0", "1") for token in tokens):
        raise DatasetError(f"{path}: expected comma-separated 0/1 values")
    return np.array([token == "1" for token in tokens], dtype=bool)


def _list_frames(folder: Path, extensions: tuple[str, ...], numeric: bool) -> list[str]:
    """The image files of ``folder``, sorted by integer stem (``numeric``) or by name."""
    if not folder.is_dir():
        raise MissingSequenceError(f"missing frame folder {folder}")
    names = [name for name in os.listdir(folder) if name.lower().endswith(extensions)]
    if not names:
        raise DatasetError(f"{folder}: no {'/'.join(extensions)} frames")
    if numeric:
        try:
            names.sort(key=lambda name: int(os.path.splitext(name)[0]))
        except ValueError as err:
            raise DatasetError(f"{folder}: frame names must be integers ({err})") from err
    else:
        names.sort()
    return [f"{folder}/{name}" for name in names]


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"missing sequence list {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@functools.lru_cache(maxsize=None)
def _load_json_list(name: str) -> tuple:
    """The official list ``lists/<name>.json``: names (LaSOT) or per-sequence dicts (OTB, NfS, UAV)."""
    with open(LISTS_DIR / f"{name}.json", encoding="utf-8") as handle:
        return tuple(json.load(handle))


# ------------------------------------------------------------------------------------- per-layout loaders
@dataclass(frozen=True)
class _Loader:
    """How one dataset names its sequences (``list_names(root)``) and loads one (``load(root, name)``)."""

    list_names: Callable[[Path], list[str]]
    load: Callable[[Path, str], Sequence]


def _json_loader(list_name: str) -> _Loader:
    """OTB / NfS / UAV: frames ``<root>/<path>/<i:0nz>.<ext>`` for ``i`` in ``startFrame + initOmit .. endFrame``.

    The list name is the dataset tag."""

    def list_names(root: Path) -> list[str]:
        return [entry["name"] for entry in _load_json_list(list_name)]

    def load(root: Path, name: str) -> Sequence:
        info = next(entry for entry in _load_json_list(list_name) if entry["name"] == name)
        omit = info.get("initOmit", 0)
        folder = root / info["path"]
        frames = [f"{folder}/{i:0{info['nz']}d}.{info['ext']}"
                  for i in range(info["startFrame"] + omit, info["endFrame"] + 1)]
        anno = root / info["anno_path"]
        for required in (Path(frames[0]), anno):
            if not required.is_file():
                raise MissingSequenceError(f"missing {required}")
        boxes = read_boxes(anno)[omit:]
        return Sequence(name, frames, boxes, list_name, object_class=info["object_class"])

    return _Loader(list_names, load)


def _lasot_loader(list_name: str) -> _Loader:
    """LaSOT / LaSOT_ext: ``<root>/<class>/<class>-<n>/img/%08d.jpg``, one frame per GT row, visibility flags.

    The list name is the dataset tag."""

    def load(root: Path, name: str) -> Sequence:
        object_class = name.rsplit("-", 1)[0]
        folder = root / object_class / name
        if not folder.is_dir():
            raise MissingSequenceError(f"missing sequence folder {folder}")
        boxes = read_boxes(folder / "groundtruth.txt")
        flags = {file_name: read_flags(folder / file_name) for file_name in ("full_occlusion.txt", "out_of_view.txt")}
        for file_name, values in flags.items():
            if len(values) != len(boxes):
                raise DatasetError(f"{folder / file_name}: {len(values)} visibility flags for {len(boxes)} "
                                   "ground-truth rows")
        visible = ~flags["full_occlusion.txt"] & ~flags["out_of_view.txt"]
        frames = [f"{folder}/img/{i:08d}.jpg" for i in range(1, len(boxes) + 1)]
        if not Path(frames[0]).is_file():
            raise DatasetError(f"missing frame {frames[0]}")
        return Sequence(name, frames, boxes, list_name, target_visible=visible, object_class=object_class)

    return _Loader(lambda root: list(_load_json_list(list_name)), load)


def _got10k_loader(split: str) -> _Loader:
    """GOT-10k: ``<root>/<split>/<seq>/%08d.jpg`` and ``groundtruth.txt``; ``ltrval`` reads the train folder."""
    folder = "train" if split == "ltrval" else split

    def list_names(root: Path) -> list[str]:
        names = _read_lines(root / folder / "list.txt")
        if split != "ltrval":
            return names
        indices = [int(line) for line in _read_lines(GOT10K_VAL_SPLIT)]
        if max(indices) >= len(names):
            raise DatasetError(f"{root / folder / 'list.txt'} has {len(names)} lines but {GOT10K_VAL_SPLIT.name} "
                               f"refers to line {max(indices)} (0-based): use the complete official train list")
        return [names[i] for i in indices]

    def load(root: Path, name: str) -> Sequence:
        seq_dir = root / folder / name
        frames = _list_frames(seq_dir, (".jpg",), numeric=True)
        return Sequence(name, frames, read_boxes(seq_dir / "groundtruth.txt"), "got10k")

    return _Loader(list_names, load)


def _trackingnet_list(root: Path) -> list[str]:
    anno_dir = root / "TEST" / "anno"
    if not anno_dir.is_dir():
        raise DatasetError(f"missing annotation folder {anno_dir}")
    return sorted(name[:-4] for name in os.listdir(anno_dir) if name.endswith(".txt"))


def _trackingnet_load(root: Path, name: str) -> Sequence:
    frames = _list_frames(root / "TEST" / "frames" / name, (".jpg",), numeric=True)
    return Sequence(name, frames, read_boxes(root / "TEST" / "anno" / f"{name}.txt"), "trackingnet")


def _tnl2k_list(root: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir())


def _tnl2k_load(root: Path, name: str) -> Sequence:
    frames = _list_frames(root / name / "imgs", (".jpg", ".png"), numeric=False)
    return Sequence(name, frames, read_boxes(root / name / "groundtruth.txt"), "tnl2k")


_LOADERS: dict[str, _Loader] = {
    "otb": _json_loader("otb"),
    "nfs": _json_loader("nfs"),
    "uav": _json_loader("uav"),
    "lasot": _lasot_loader("lasot"),
    "lasot_extension_subset": _lasot_loader("lasot_extension_subset"),
    "got10k_test": _got10k_loader("test"),
    "got10k_val": _got10k_loader("val"),
    "got10k_ltrval": _got10k_loader("ltrval"),
    "trackingnet": _Loader(_trackingnet_list, _trackingnet_load),
    "tnl2k": _Loader(_tnl2k_list, _tnl2k_load),
}


# ------------------------------------------------------------------------------------------------ public API
def _check_name(name: str) -> None:
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")


def dataset_root(name: str, env: Optional[EnvSettings] = None) -> Path:
    """The root folder of dataset ``name`` according to ``env`` (default: a fresh :func:`env_settings`)."""
    _check_name(name)
    return Path(getattr(env or env_settings(), _ROOT_KEYS[name]))


def layout_help(name: str, root: Path) -> str:
    """The expected on-disk layout of ``name`` and how to point at it."""
    key = _ROOT_KEYS[name]
    return (f"expected layout of {name!r}, with <root> = {root}:\n{LAYOUTS[name]}\n"
            f"set the root with FARTRACK_{key.upper()} (or FARTRACK_DATA_DIR), or {key} in "
            f"lib/test/evaluation/local.py (tracking/create_default_local_file.py)")


def _sequence_names(name: str, root: Path, sequences: Optional[Iterable[str]]) -> list[str]:
    """The names to load: the official list of ``name``, narrowed to ``sequences`` when given."""
    if not root.is_dir():
        raise DatasetError(f"dataset {name!r} not found: {root} is not a directory\n{layout_help(name, root)}\n"
                           f"{NO_DATA_HINT}")
    try:
        names = _LOADERS[name].list_names(root)
    except DatasetError as err:
        raise DatasetError(f"{err}\n{layout_help(name, root)}") from err
    if sequences is None:
        return names
    wanted = list(sequences)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise DatasetError(f"not in the {name!r} sequence list: {', '.join(unknown)}")
    return wanted


def get_dataset(
    name: str | Iterable[str],
    env: Optional[EnvSettings] = None,
    *,
    sequences: Optional[Iterable[str]] = None,
    allow_missing: bool = False,
) -> SequenceList:
    """Load one dataset, or several (a list of names, concatenated in order).

    ``sequences`` keeps only these names (an unknown name is an error). Absent sequences of the list raise
    :class:`DatasetError` naming them, unless ``allow_missing`` (then they are skipped with a warning). A
    missing root or a malformed sequence always raises, with the expected layout in the message.
    """
    env = env or env_settings()
    if not isinstance(name, str):
        names = list(name)
        if sequences is not None and len(names) != 1:
            raise DatasetError("`sequences` selects within one dataset; load several datasets without it")
        return SequenceList(seq for single in names
                            for seq in get_dataset(single, env, sequences=sequences, allow_missing=allow_missing))
    _check_name(name)
    root = dataset_root(name, env)
    notice = builtin_data_notice(root)
    if notice:
        logger.info("%s: %s", name, notice)
    loader = _LOADERS[name]
    loaded, missing = SequenceList(), []
    for seq_name in _sequence_names(name, root, sequences):
        try:
            loaded.append(loader.load(root, seq_name))
        except MissingSequenceError as err:
            missing.append((seq_name, str(err)))
        except DatasetError as err:
            raise DatasetError(f"malformed sequence {seq_name!r} of {name!r}: {err}\n{layout_help(name, root)}") \
                from err
    if missing:
        shown = "\n".join(f"  {seq}: {why}" for seq, why in missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        message = f"{len(missing)} of {len(missing) + len(loaded)} sequences of {name!r} are missing:\n{shown}{more}"
        if not allow_missing:
            raise DatasetError(f"{message}\n(pass allow_missing=True or select sequences to load a partial "
                               f"dataset)\n{layout_help(name, root)}")
        logger.warning("%s\nskipping them", message)
    return loaded


# ------------------------------------------------------------------------------------------------ checking
@dataclass
class DatasetReport:
    """What :func:`check_dataset` found for one dataset: listed sequences absent on disk (``missing``) and
    defects of the present ones (``problems``)."""

    name: str
    root: Path
    present: bool
    listed: int = 0
    found: int = 0
    official: Optional[int] = None
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Present, every listed sequence found, and no problem."""
        return self.present and not self.missing and not self.problems

    def summary(self, max_problems: int = 5) -> str:
        """A few human-readable lines."""
        if not self.present:
            return f"{self.name}: ABSENT\n" + "\n".join(f"  {line}" for problem in self.problems
                                                      for line in problem.splitlines())
        status = "OK" if self.ok else "BROKEN"
        lines = [f"{self.name}: {status}, {self.found} of {self.listed} listed sequences found "
                 f"(official release: {self.official}) in {self.root}"]
        if self.missing:
            more = ", ..." if len(self.missing) > max_problems else ""
            lines.append(f"  - {len(self.missing)} missing: {', '.join(self.missing[:max_problems])}{more}")
        lines += [f"  - {problem}" for problem in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            lines.append(f"  ... {len(self.problems) - max_problems} more problems")
        return "\n".join(lines)


def _frame_problems(seq: Sequence) -> list[str]:
    """Missing frame files and GT row counts that do not match the frame count."""
    problems = []
    by_folder: dict[str, list[str]] = {}
    for frame in seq.frames:
        folder, file_name = os.path.split(frame)
        by_folder.setdefault(folder, []).append(file_name)
    for folder, names in by_folder.items():
        present = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        absent = [name for name in names if name not in present]
        if absent:
            problems.append(f"{seq.name}: {len(absent)} of {len(names)} frames missing, first {folder}/{absent[0]}")
    rows, frames = len(seq.ground_truth_rect), len(seq.frames)
    first_frame_only = seq.dataset in ("got10k", "trackingnet") and rows == 1
    if rows != frames and not first_frame_only:
        problems.append(f"{seq.name}: {rows} ground-truth rows for {frames} frames")
    return problems


def check_dataset(name: str, env: Optional[EnvSettings] = None) -> DatasetReport:
    """Check every sequence of ``name``: present, readable GT, every frame on disk, GT rows == frames."""
    root = dataset_root(name, env)
    report = DatasetReport(name, root, present=root.is_dir(), official=OFFICIAL_COUNTS[name])
    if not report.present:
        report.problems.append(layout_help(name, root))
        return report
    try:
        names = _LOADERS[name].list_names(root)
    except DatasetError as err:
        report.problems.append(f"{err}\n{layout_help(name, root)}")
        return report
    report.listed = len(names)
    for seq_name in names:
        try:
            seq = _LOADERS[name].load(root, seq_name)
        except MissingSequenceError:
            report.missing.append(seq_name)
            continue
        except DatasetError as err:
            report.found += 1
            report.problems.append(f"{seq_name}: {err}")
            continue
        report.found += 1
        report.problems.extend(_frame_problems(seq))
    return report
