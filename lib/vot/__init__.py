"""VOT toolkit integration: a TraX tracker server, the ``trackers.ini`` entry and local VOT workspaces.

The VOT toolkit (``vot-toolkit``) drives trackers through the TraX protocol (``vot-trax``): it starts the tracker as
a separate process, sends each frame's image path and, at initialisation, the target region, and records the region
and properties (``confidence``) the tracker replies with. Both packages are optional (``pip install -e '.[vot]'``).

- :mod:`lib.vot.server`: the TraX server loop over :func:`lib.api.build_tracker` (``tracking/vot_tracker.py``);
- :mod:`lib.vot.registry`: the ``trackers.ini`` entry that launches it from this checkout (``tracking/vot_setup.py``);
- :mod:`lib.vot.workspace`: VOT-format sequences from GOT-10k-like folders and a small local experiment stack, for
  offline evaluation without the toolkit's dataset downloads.

See ``docs/vot.md`` for the ``vot initialize / evaluate / analysis`` workflow.
"""
from __future__ import annotations

import importlib
from types import ModuleType

#: The command that installs the optional toolkit packages (pinned in setup.py's ``vot`` extra).
INSTALL_HINT = "pip install -e '.[vot]'  (vot-toolkit, vot-trax)"


class VotExtraMissing(ImportError):
    """The optional VOT packages are not installed; the message names the ``pip install`` command."""


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (``trax`` or ``vot``), or raise :class:`VotExtraMissing` naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise VotExtraMissing(f"{purpose} needs the {module!r} package ({error}); install the VOT extra: "
                              f"{INSTALL_HINT}") from error


__all__ = ["INSTALL_HINT", "VotExtraMissing", "import_optional"]
