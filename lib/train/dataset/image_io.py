"""Image decoding for training: ``(H, W, 3)`` uint8 **RGB** arrays from files or from raw bytes (LMDB values).

JPEG data is decoded with ``jpeg4py`` (libturbojpeg) when it imports and works; the probe runs once per process,
on first use. Everything else, and JPEG when ``jpeg4py`` is unusable, goes through OpenCV (``cv2.imdecode`` with
``IMREAD_COLOR``, then BGR -> RGB), which is what the official code uses. Grayscale images come back with three
equal channels, alpha channels are dropped.

Every failure -- a missing file, truncated or corrupt data, a decoder that returns nothing -- raises
:class:`~lib.train.dataset.base.ImageReadError` naming the file, so samplers can count it and draw again. OpenCV
decodes a truncated JPEG into a partly grey image with only a warning on stderr, so JPEG data without its
end-of-image marker is rejected before decoding.
"""
from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from lib.train.dataset.base import ImageReadError

logger = logging.getLogger(__name__)

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
#: Some encoders pad a JPEG after its end-of-image marker; the marker must lie within this many final bytes.
_JPEG_TAIL = 1024

_decoder: str | None = None


def _probe_jpeg4py() -> bool:
    """True when ``jpeg4py`` imports and libturbojpeg decodes a small in-memory JPEG correctly."""
    try:
        import jpeg4py
    except (ImportError, OSError):  # not installed, or its shared library failed to load
        return False
    red_bgr = np.zeros((16, 24, 3), dtype=np.uint8)
    red_bgr[:, :, 2] = 255  # pure red: checks the channel order too
    encoded = cv2.imencode(".jpg", red_bgr)[1]
    try:
        decoded = jpeg4py.JPEG(encoded.reshape(-1)).decode()
    except Exception as err:  # noqa: BLE001 - a missing libturbojpeg surfaces as various errors
        logger.info("jpeg4py is installed but unusable (%s); decoding with OpenCV", err)
        return False
    return decoded.shape == red_bgr.shape and int(decoded[8, 12, 0]) > 200 and int(decoded[8, 12, 2]) < 50


def decoder_name() -> str:
    """The JPEG backend of this process: ``"jpeg4py"`` or ``"opencv"`` (probed on the first call)."""
    global _decoder
    if _decoder is None:
        _decoder = "jpeg4py" if _probe_jpeg4py() else "opencv"
        logger.debug("JPEG decoder: %s", _decoder)
    return _decoder


def _decode_jpeg4py(buffer: np.ndarray) -> np.ndarray:
    import jpeg4py

    return jpeg4py.JPEG(buffer).decode()


def _decode_opencv(buffer: np.ndarray) -> np.ndarray | None:
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_image(data: bytes, source: str) -> np.ndarray:
    """Decode encoded image bytes into an ``(H, W, 3)`` uint8 RGB array; ``source`` names the file in errors."""
    if not data:
        raise ImageReadError(f"cannot read image {source}: the file is empty")
    is_jpeg = data[:2] == _JPEG_SOI
    if is_jpeg and _JPEG_EOI not in data[-_JPEG_TAIL:]:
        raise ImageReadError(f"cannot read image {source}: truncated JPEG (no end-of-image marker)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = _decode_jpeg4py(buffer) if is_jpeg and decoder_name() == "jpeg4py" else _decode_opencv(buffer)
    except Exception as err:  # noqa: BLE001 - decoder errors vary by backend; all mean "unreadable"
        raise ImageReadError(f"cannot read image {source}: {err}") from err
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ImageReadError(f"cannot read image {source}: not a decodable image")
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise ImageReadError(f"cannot read image {path}: {err.strerror or err}") from err
    return decode_image(data, os.fspath(path))
