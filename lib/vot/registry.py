"""The ``trackers.ini`` entry that lets the VOT toolkit launch our TraX server from this checkout.

The toolkit (vot-toolkit 0.7.4 to 0.9.0) reads ``<workspace>/trackers.ini`` (its ``registry``) with
:mod:`configparser`: one section per tracker identifier, with

- ``protocol = traxpython``: the toolkit runs ``<python> -m <command>`` with ``PYTHONPATH=<paths>`` and
  ``PYTHONUNBUFFERED=1`` (``vot.tracker.adapters.PythonAdapter``) in a temporary working directory, and speaks TraX
  over the process's stdin / stdout;
- ``python``: the interpreter, here the one that writes the entry (``sys.executable``, e.g. ``.venv/bin/python``),
  shell-quoted because the toolkit splits the command line with :func:`shlex.split`;
- ``command = tracking.vot_tracker``: the module run with ``-m`` (``tracking/`` is a namespace package on
  ``paths``);
- ``paths``: the repository root (absolute);
- ``env_<NAME> = value``: environment variables of the tracker process (the toolkit upper-cases the name): our
  options ``FARTRACK_VOT_*`` (:data:`lib.vot.server.ENVIRONMENT`);
- ``timeout``: seconds the toolkit waits for each reply before it kills the tracker; the first reply includes
  importing torch and building the network, since the server builds the tracker right after the TraX handshake.

Values go through configparser's interpolation when the toolkit reads them, so ``%`` is written as ``%%``; the
toolkit also expands ``$VARIABLES`` in ``env_`` values (``os.path.expandvars``).
"""
from __future__ import annotations

import configparser
import io
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Mapping, Optional, Union

from lib.vot.server import ENVIRONMENT, ServerOptions

#: The repository root (``paths`` of the entry): ``tracking.vot_tracker`` and ``lib`` are imported from there.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The module the toolkit runs with ``python -m`` (``tracking/vot_tracker.py``).
SERVER_MODULE = "tracking.vot_tracker"
#: Tracker identifiers the toolkit accepts (``vot.tracker.VALID_IDENTIFIER``).
VALID_NAME = re.compile(r"^[a-zA-Z0-9\-_]+$")
#: Default seconds the toolkit waits for a reply (the first one includes importing torch and building the network).
DEFAULT_TIMEOUT = 120


def tracker_entry(options: ServerOptions, *, label: Optional[str] = None, python: Optional[str] = None,
                  repo_root: Union[str, os.PathLike, None] = None, timeout: int = DEFAULT_TIMEOUT) -> dict[str, str]:
    """The ``trackers.ini`` keys (unescaped values) that launch the server with ``options``.

    Relative checkpoint / config paths are made absolute (the toolkit runs the tracker in a temporary directory);
    a config given as a name (``fartrack_sparse_224_full``) stays a name.
    """
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    root = Path(repo_root if repo_root is not None else REPO_ROOT).resolve()
    interpreter = python or sys.executable
    if not interpreter:
        raise ValueError("cannot tell the Python interpreter (sys.executable is empty): pass python=")
    entry = {
        "label": label or _default_label(options),
        "protocol": "traxpython",
        "command": SERVER_MODULE,
        "python": shlex.quote(os.path.abspath(interpreter)),
        "paths": str(root),
        "timeout": str(int(timeout)),
    }
    values = {
        "script": options.script,
        "config": _absolute_if_path(options.config),
        "checkpoint": None if options.checkpoint is None else os.path.abspath(options.checkpoint),
        "depth": options.depth,
        "device": options.device,
        "precision": options.precision,
        "threads": options.threads,
        "random_weights": "1" if options.random_weights else None,
    }
    for name, value in values.items():
        if value is not None:
            entry[f"env_{ENVIRONMENT[name]}"] = str(value)
    return entry


def _default_label(options: ServerOptions) -> str:
    parts = [options.script or "FARTrack"]
    if options.config:
        parts.append(Path(options.config).stem)
    if options.depth:
        parts.append(f"depth {options.depth}")
    if options.random_weights:
        parts.append("random weights")
    return "FARTrack " + " / ".join(parts)


def _absolute_if_path(config: Optional[str]) -> Optional[str]:
    if config is None:
        return None
    if config.endswith((".yaml", ".yml")) or os.sep in config or os.path.isfile(config):
        return os.path.abspath(config)
    return config


def registry_file(workspace_or_file: Union[str, os.PathLike]) -> Path:
    """``trackers.ini`` of a workspace folder, or the given ``.ini`` file."""
    path = Path(workspace_or_file)
    return path if path.suffix == ".ini" else path / "trackers.ini"


def write_tracker_entry(workspace_or_file: Union[str, os.PathLike], name: str, entry: Mapping[str, str]) -> Path:
    """Add (or replace) the section ``name`` of a ``trackers.ini``; other sections are kept. Returns the file.

    Raises ValueError when ``name`` is not a valid toolkit identifier (letters, digits, ``-`` and ``_``).
    """
    if not VALID_NAME.match(name):
        raise ValueError(f"invalid tracker name {name!r}: the VOT toolkit accepts letters, digits, '-' and '_'")
    path = registry_file(workspace_or_file)
    parser = configparser.ConfigParser(interpolation=None)  # keep existing values (and their %%) verbatim
    parser.optionxform = str  # keep the case of existing keys
    if path.is_file():
        parser.read(path, encoding="utf-8")
    if parser.has_section(name):
        parser.remove_section(name)
    parser.add_section(name)
    for key, value in entry.items():
        parser.set(name, key, str(value).replace("%", "%%"))
    buffer = io.StringIO()
    parser.write(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


__all__ = ["REPO_ROOT", "SERVER_MODULE", "DEFAULT_TIMEOUT", "tracker_entry", "registry_file", "write_tracker_entry"]
