"""The TraX server that lets the VOT toolkit run our trackers (``tracking/vot_tracker.py``).

The toolkit starts the tracker process (``trackers.ini``: :mod:`lib.vot.registry`), then sends TraX requests over the
process's stdin / stdout:

- *initialize*: the path of the first frame and the target region. The server declares rectangle regions, so the
  toolkit converts polygons to their bounding rectangles; a special region (the target has no box in that frame),
  an empty region (width or height not positive, or not finite) or one entirely outside the frame is refused with
  a clear message, sent as the reason of the session's end and logged (the toolkit shows the tracker's log).
- *frame*: the path of the next frame; the server replies with the tracker's box and its score as the region's
  ``confidence`` property (:func:`lib.api.build_tracker`'s ``best_score``; VOT long-term analyses read it).

Frames are read from the paths TraX gives (``cv2.imread``, BGR converted to RGB). Everything the process prints goes
into the same pipe as the protocol (the toolkit merges stderr into stdout); TraX passes lines that are not protocol
messages to the toolkit's log, so logging stays on stderr and nothing here prints to stdout.

Options come from the command line of ``tracking/vot_tracker.py`` or from the ``FARTRACK_VOT_*`` environment variables
(:data:`ENVIRONMENT`), which the ``trackers.ini`` entry sets (``env_FARTRACK_VOT_SCRIPT = ...``).
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping, Optional, Sequence

from lib.api import build_tracker
from lib.utils.box_ops import overlaps_image
from lib.vot import import_optional

logger = logging.getLogger(__name__)

#: Environment variable of each :class:`ServerOptions` field (set by the ``trackers.ini`` entry).
ENVIRONMENT = {
    "script": "FARTRACK_VOT_SCRIPT",
    "config": "FARTRACK_VOT_CONFIG",
    "checkpoint": "FARTRACK_VOT_CHECKPOINT",
    "depth": "FARTRACK_VOT_DEPTH",
    "device": "FARTRACK_VOT_DEVICE",
    "precision": "FARTRACK_VOT_PRECISION",
    "threads": "FARTRACK_VOT_THREADS",
    "random_weights": "FARTRACK_VOT_RANDOM_WEIGHTS",
}

#: Exit codes of :func:`serve`: a clean end, a refused request (invalid region or frame), an unexpected error.
EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


class VotServerError(RuntimeError):
    """A request the server refuses (the message says why); the session ends with that message as its reason."""


class InvalidRegionError(VotServerError, ValueError):
    """The initial region is special (no box), empty, not finite, or outside the frame."""


class FrameReadError(VotServerError):
    """The request's image is missing, not a file path, or cannot be read."""


@dataclass(frozen=True)
class ServerOptions:
    """What :func:`build_from_options` passes to :func:`lib.api.build_tracker`."""

    script: Optional[str] = None
    config: Optional[str] = None
    checkpoint: Optional[str] = None
    depth: Optional[int] = None
    #: ``auto``: CUDA when available, else the CPU.
    device: str = "auto"
    precision: str = "fp32"
    threads: Optional[int] = None
    #: Run the random initialisation (smoke runs only: the boxes are meaningless).
    random_weights: bool = False

    def problems(self) -> list[str]:
        """What is wrong with these options (empty when they can build a tracker)."""
        found = []
        if self.random_weights and self.checkpoint:
            found.append("give a checkpoint or random weights, not both")
        if not self.random_weights and not self.checkpoint:
            found.append(f"no checkpoint: pass --checkpoint (env {ENVIRONMENT['checkpoint']}) or, for smoke runs only, "
                         f"--random_weights (env {ENVIRONMENT['random_weights']}=1)")
        if self.random_weights and not self.script:
            found.append(f"random weights need the script (--script, env {ENVIRONMENT['script']})")
        if self.checkpoint and not os.path.isfile(self.checkpoint):
            found.append(f"checkpoint not found: {self.checkpoint}")
        for name in ("depth", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                found.append(f"{name} must be a positive integer, got {value}")
        return found


def _parse_flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"expected 1/0, true/false, yes/no or on/off, got {value!r}")


def options_from_environment(environ: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """The :class:`ServerOptions` fields set by ``FARTRACK_VOT_*`` variables (command-line defaults).

    Raises ValueError naming the variable when a value cannot be parsed.
    """
    environ = os.environ if environ is None else environ
    types = {field.name: field.type for field in fields(ServerOptions)}
    values: dict[str, Any] = {}
    for name, variable in ENVIRONMENT.items():
        raw = environ.get(variable)
        if raw is None or (raw.strip() == "" and name != "random_weights"):
            continue
        try:
            if name == "random_weights":
                values[name] = _parse_flag(raw)
            elif "int" in str(types[name]):
                values[name] = int(raw)
            else:
                values[name] = raw
        except ValueError as error:
            raise ValueError(f"invalid {variable}={raw!r}: {error}") from None
    return values


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is available, else ``cpu``; any other value unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_from_options(options: ServerOptions) -> Any:
    """The online tracker (``initialize`` / ``track``) of ``options``, through :func:`lib.api.build_tracker`."""
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    return build_tracker(options.script, options.config, None if options.random_weights else options.checkpoint,
                         device=resolve_device(options.device), depth=options.depth, precision=options.precision,
                         threads=options.threads)


def region_to_box(region: Any, image_size: Optional[Sequence[int]] = None) -> list[float]:
    """A TraX region (rectangle, or polygon: its bounding box) as ``[x, y, w, h]``; refuses unusable regions.

    Args:
        region: a ``trax.region`` object from an *initialize* request.
        image_size: ``(width, height)`` of the frame: a region without any overlap with it is refused too.

    Raises:
        InvalidRegionError: a special region (the target has no box), a mask, an empty or non-finite box, or a box
            outside the frame.
    """
    from trax.region import Mask, Polygon, Rectangle, Special

    if isinstance(region, Rectangle):
        box = [float(v) for v in region.bounds()]
    elif isinstance(region, Polygon):
        points = list(region)
        if not points:
            raise InvalidRegionError("the initial region is an empty polygon")
        xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    elif isinstance(region, Special):
        raise InvalidRegionError(f"the initial region is a special region (code {region.code}): the target has no "
                                 "box in the initial frame, cannot initialise")
    elif isinstance(region, Mask):
        raise InvalidRegionError("the initial region is a mask; this tracker takes rectangles (the toolkit converts "
                                 "polygons, not masks)")
    else:
        raise InvalidRegionError(f"unsupported initial region {region!r}")
    x, y, w, h = box
    text = ",".join(f"{v:g}" for v in box)
    if not all(math.isfinite(v) for v in box) or w <= 0 or h <= 0:
        raise InvalidRegionError(f"empty or invalid initial region x,y,w,h = {text}: width and height must be "
                                 "positive and finite")
    if image_size is not None:
        width, height = image_size
        if not overlaps_image(box, width, height):
            raise InvalidRegionError(f"the initial region x,y,w,h = {text} lies outside the {width}x{height} frame")
    return box


def read_frame(images: Mapping[str, Any]) -> Any:
    """The color image of a TraX request (``{"color": FileImage}``) as an RGB uint8 array (H, W, 3)."""
    import cv2
    from trax.image import FileImage

    image = images.get("color") if images else None
    if image is None:
        raise FrameReadError(f"the request carries no color image (channels: {sorted(images or {})})")
    if not isinstance(image, FileImage):
        raise FrameReadError(f"expected an image path, got {type(image).__name__} (the server declares path images)")
    path = image.path()
    if not os.path.isfile(path):
        raise FrameReadError(f"cannot read image {path!r}: no such file")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FrameReadError(f"cannot read image {path!r}: unreadable or not an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _reply(rectangle_class: Any, box: Sequence[float], score: float) -> tuple[Any, dict[str, str]]:
    return rectangle_class.create(*(float(v) for v in box)), {"confidence": f"{float(score):.6f}"}


def serve(make_tracker: Callable[[], Any], *, name: str = "FARTrack") -> int:
    """Answer TraX requests until the client quits; returns an exit code (:data:`EXIT_OK`, ...).

    ``make_tracker`` is called once, after the TraX handshake (so a failing build ends the session with its message
    as the reason instead of a silent handshake failure). Re-initialisation (the toolkit's supervised experiments)
    calls ``initialize`` again on the same tracker.
    """
    trax = import_optional("trax", "the VOT tracker server")
    from trax.region import Rectangle

    server = trax.Server([trax.Region.RECTANGLE], [trax.Image.PATH], tracker_name=name,
                         tracker_description="FARTrack re-implementation (lib.api.build_tracker)",
                         tracker_family="FARTrack")
    frames, started = 0, time.perf_counter()
    initialised = False
    try:
        tracker = make_tracker()
        while True:
            request = server.wait()
            if request.type in (trax.TraxStatus.QUIT, trax.TraxStatus.ERROR):
                break
            rgb = read_frame(request.image)
            if request.type == trax.TraxStatus.INITIALIZE:
                if len(request.objects) != 1:
                    raise VotServerError(f"initialisation with {len(request.objects)} objects: this tracker follows "
                                         "one target (single-object stacks)")
                box = region_to_box(request.objects[0][0], (rgb.shape[1], rgb.shape[0]))
                tracker.initialize(rgb, {"init_bbox": box})
                initialised = True
                reply = _reply(Rectangle, box, 1.0)
            elif request.type == trax.TraxStatus.FRAME:
                if not initialised:
                    raise VotServerError("frame request before any initialisation")
                out = tracker.track(rgb)
                reply = _reply(Rectangle, out["target_bbox"], out["best_score"])
            else:
                raise VotServerError(f"unexpected TraX request {request.type!r}")
            server.status([reply])
            frames += 1
    except VotServerError as error:
        logger.error("%s", error)
        _quit(server, str(error))
        return EXIT_REFUSED
    except Exception as error:  # noqa: BLE001 - any failure ends the session with its message
        logger.exception("tracker failed")
        _quit(server, f"{type(error).__name__}: {error}")
        return EXIT_FAILED
    elapsed = time.perf_counter() - started
    logger.info("served %d frames in %.1f s", frames, elapsed)
    _quit(server, None)
    return EXIT_OK


def _quit(server: Any, reason: Optional[str]) -> None:
    try:
        server.quit(reason=reason)
    except Exception as error:  # noqa: BLE001 - the client may already be gone
        logger.debug("TraX quit failed: %s", error)


__all__ = ["ENVIRONMENT", "ServerOptions", "VotServerError", "InvalidRegionError", "FrameReadError",
           "options_from_environment", "build_from_options", "region_to_box", "read_frame", "serve"]
