"""Reading a ``torch.save``d file without executing code from it.

A pickle names the globals (classes, functions) it needs, and the ordinary unpickler imports and calls them: a
file can run arbitrary code. This module never lets it:

1. the pickle's GLOBALs are listed by static disassembly (``torch.serialization.get_unsafe_globals_in_checkpoint``,
   nothing is unpickled);
2. globals named by a :class:`RecordPolicy` (the classes of one package, plus a few named third-party attribute
   bags) are mapped to *inert records* (:class:`InertRecord`): classes defined here that only store their pickled
   arguments and state. The real modules are never imported, even when a package of that name is importable;
3. a short allow-list of numpy reconstruction helpers (numeric scalars and arrays, see :func:`_numpy_allowlist`)
   is permitted; every other global (``os.system``, ``builtins.eval``, ...) makes the load fail *before*
   anything is unpickled;
4. the file is then read with torch's hardened ``weights_only=True`` unpickler, with the records and the
   allow-list registered only for the duration of the call (``torch.serialization.safe_globals``);
5. :func:`to_plain` turns the records into plain dicts ``{"__class__": "<recorded name>", **state}`` and numpy
   values into Python numbers and lists.

:func:`load_inert` does steps 1 to 4; the caller checks what it got and applies :func:`to_plain`.
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

logger = logging.getLogger(__name__)

__all__ = ["InertRecord", "RecordPolicy", "SafeLoadError", "load_inert", "to_plain"]

PathLike = Union[str, "os.PathLike[str]"]

# sentences of torch's weights_only error messages that carry no information about the file
_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


class SafeLoadError(RuntimeError):
    """A file was refused before unpickling, or torch's restricted unpickler rejected it; nothing was executed."""


@dataclass(frozen=True)
class RecordPolicy:
    """Which globals of a file are loaded as inert records instead of being refused."""

    #: Every class of this package (``<package>.*``) is recorded: the package of the software that wrote the
    #: files (the "official" package), whose modules are never imported.
    package: str
    #: Classes of :attr:`package` known to occur in the files. When a file cannot be scanned beforehand (legacy
    #: format) only these names are recorded; anything else is then refused by torch.
    known_classes: tuple[str, ...] = ()
    #: Further classes (outside :attr:`package`) that are pure attribute bags, recorded and never instantiated.
    classes: tuple[str, ...] = ()

    def records(self, name: str) -> bool:
        """True for globals loaded as inert records: classes of :attr:`package` and :attr:`classes`."""
        return name.startswith(self.package + ".") or name in self.classes


# ----------------------------------------------------------------------------------------------------------
# inert records and the allow-list


class InertRecord:
    """Inert stand-in for a class named in a pickle; never imports or runs the original class.

    Supports what torch's restricted unpickler does with an allowed class: ``NEWOBJ`` (``cls.__new__(cls,
    *args)``), ``REDUCE`` (``cls(*args)``) and ``BUILD`` (``obj.__setstate__(state)``). Arguments and state
    are only stored. Subclasses (one per recorded name) are made by :func:`_record_class`.
    """

    __slots__ = ("args", "state")
    official_name = "<unnamed>"

    def __new__(cls, *args: Any) -> InertRecord:
        record = super().__new__(cls)
        record.args = args
        record.state = None
        return record

    def __init__(self, *args: Any) -> None:
        """Accept the constructor arguments (already stored by ``__new__``) and do nothing else."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"InertRecord({self.official_name}, args={self.args!r}, state={self.state!r})"


@functools.lru_cache(maxsize=None)
def _record_class(official_name: str) -> type[InertRecord]:
    """Return the (cached) inert record class standing in for the class called ``official_name``."""
    return type(f"InertRecord[{official_name}]", (InertRecord,), {"__slots__": (), "official_name": official_name})


@functools.lru_cache(maxsize=1)
def _numpy_allowlist() -> tuple[tuple[Any, str], ...]:
    """Numpy globals needed to rebuild numeric scalars and arrays, registered under their pickled names.

    This is the set torch's ``torch.load`` documentation recommends for numpy data (e.g. training meters
    holding numpy scalars): ``multiarray.scalar`` (bytes -> scalar), ``multiarray._reconstruct`` and
    ``ndarray`` (empty array whose buffer ``BUILD`` fills from bytes), ``dtype`` (parses a type string) and
    the concrete numeric dtype classes, which torch requires for the ``BUILD`` of a dtype. Object, string
    and structured dtypes are deliberately absent. Files written by numpy 1.x name ``numpy.core.multiarray``,
    numpy 2.x ``numpy._core.multiarray``; both names map to the installed functions.
    """
    core = getattr(np, "_core", None) or np.core
    entries: list[tuple[Any, str]] = [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray")]
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        entries.append((core.multiarray.scalar, f"{module_name}.scalar"))
        entries.append((core.multiarray._reconstruct, f"{module_name}._reconstruct"))
    for type_char in "?bhilqBHILQefdgFDG":
        dtype_class = type(np.dtype(type_char))
        entries.append((dtype_class, f"{dtype_class.__module__}.{dtype_class.__qualname__}"))
    return tuple(entries)


@functools.lru_cache(maxsize=1)
def _numpy_names() -> frozenset[str]:
    return frozenset(name for _, name in _numpy_allowlist())


# ----------------------------------------------------------------------------------------------------------
# loading


def load_inert(path: PathLike, policy: RecordPolicy) -> Any:
    """Unpickle the torch file ``path`` onto the CPU without executing code from it (steps 1-4 above).

    Globals named by ``policy`` come back as :class:`InertRecord` instances, numpy values as numpy objects
    (see :func:`to_plain`). The caller checks that ``path`` is a readable file first.

    Raises:
        SafeLoadError: the file names a global outside ``policy`` and the numpy allow-list (refused before
            unpickling), or torch's restricted unpickler rejects or cannot read it.
    """
    file_path = Path(path)
    unsafe = _scan_unsafe_globals(file_path)
    if unsafe is None:
        recorded = list(policy.known_classes + policy.classes)
    else:
        _refuse_disallowed_globals(file_path, unsafe, policy)
        recorded = [name for name in unsafe if policy.records(name)]
    return _restricted_load(file_path, recorded)


def _scan_unsafe_globals(file_path: Path) -> list[str] | None:
    """List the GLOBALs that torch does not allow by default, by static disassembly (nothing is unpickled).

    Returns None when the file cannot be scanned (legacy non-zip format, damaged archive, pickle opcodes
    the scanner does not know); the caller then relies on torch's restricted unpickler alone.
    """
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(file_path)))
    except Exception as exc:  # the scan only reads bytes; any failure just means "cannot scan"
        logger.info("cannot scan the globals of %s (%s: %s); relying on the restricted unpickler with the known "
                    "official classes only", file_path, type(exc).__name__, exc)
        return None


def _refuse_disallowed_globals(file_path: Path, unsafe: Iterable[str], policy: RecordPolicy) -> None:
    """Raise SafeLoadError naming every global that is neither recorded nor allow-listed."""
    refused = [name for name in unsafe if not policy.records(name) and name not in _numpy_names()]
    if refused:
        raise SafeLoadError(
            f"Refusing to load {file_path}: it references globals that could run code when unpickled: "
            f"{', '.join(refused)}. The file was NOT unpickled and nothing in it was executed. Accepted are only "
            f"classes of the official '{policy.package}' package (read as inert records), "
            f"{', '.join(policy.classes)} and numpy numeric scalars/arrays."
        )


def _restricted_load(file_path: Path, recorded: Iterable[str]) -> Any:
    """``torch.load(weights_only=True)`` on the CPU with inert records and the numpy allow-list registered."""
    allowed = [(_record_class(name), name) for name in recorded] + list(_numpy_allowlist())
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(file_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged files raise many types (zip, pickle, EOF, struct); all mean "unreadable"
        raise SafeLoadError(
            f"Cannot load {file_path} with torch's restricted (weights_only) unpickler "
            f"({_torch_error_summary(exc)}). No code from the file was executed."
        ) from exc


def _torch_error_summary(exc: Exception) -> str:
    """The informative lines of a torch.load error, without torch's advice to retry with weights_only=False."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith(_TORCH_BOILERPLATE)]
    return f"{type(exc).__name__}: {' '.join(kept) or 'no message'}"


# ----------------------------------------------------------------------------------------------------------
# plain data


def to_plain(obj: Any) -> Any:
    """Return ``obj`` with inert records and numpy values replaced by plain data.

    Records become ``{"__class__": name, **state}`` dicts (plus ``"__args__"`` when constructed with
    arguments, ``"__state__"`` when the state is not a dict), record classes ``{"__global__": name}``, numpy
    scalars / arrays Python numbers / lists. Dicts and lists are updated in place (keeping e.g. the
    ``_metadata`` of a state_dict OrderedDict); shared and cyclic references stay consistent.
    """
    return _to_plain(obj, {})


def _to_plain(obj: Any, memo: dict[int, Any]) -> Any:
    """:func:`to_plain`; ``memo`` maps ids of visited containers and records to their plain versions."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, type) and issubclass(obj, InertRecord):
        return {"__global__": obj.official_name}
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, InertRecord):
        return _record_to_plain(obj, memo)
    if isinstance(obj, dict):
        memo[id(obj)] = obj
        for key, value in obj.items():
            obj[key] = _to_plain(value, memo)
    elif isinstance(obj, list):
        memo[id(obj)] = obj
        obj[:] = [_to_plain(item, memo) for item in obj]
    elif isinstance(obj, tuple):
        return tuple(_to_plain(item, memo) for item in obj)
    return obj


def _record_to_plain(record: InertRecord, memo: dict[int, Any]) -> dict[str, Any]:
    """Convert an inert record into ``{"__class__": name, ["__args__": [...]], **state}``."""
    plain: dict[str, Any] = {"__class__": record.official_name}
    memo[id(record)] = plain
    if record.args:
        plain["__args__"] = [_to_plain(arg, memo) for arg in record.args]
    state = record.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        # (dict or None, slot dict), as pickled for classes with __slots__
        instance_dict, slot_dict = state
        state = {**(instance_dict or {}), **slot_dict}
    if isinstance(state, dict) and all(isinstance(key, str) for key in state):
        for key, value in state.items():
            if key not in ("__class__", "__args__"):
                plain[key] = _to_plain(value, memo)
    elif state is not None:
        plain["__state__"] = _to_plain(state, memo)
    return plain
