"""Procedural tracking videos and still images with exact ground truth (the built-in data of the quickstart).

A sequence is a textured target (a box, disc or diamond with a striped, checkered, ringed or spotted texture and a
border) moving over a larger textured background that the camera pans and zooms, among similar distractors, with
occluder bars passing in front of it, excursions out of the image, abrupt jumps, scale and aspect changes, motion
blur, illumination drifts and sensor noise, each controlled by a :class:`Difficulty`. Everything is drawn from one
``numpy.random.Generator`` seeded by the caller, so a seed gives the same pixels on every run.

Ground truth (pixels, ``x, y, w, h``) is measured on the drawn target mask, before blur and noise:

* the box of a visible frame is the bounding box of the target pixels that are visible (inside the image and not
  under an occluder); objects are drawn at integer positions, so boxes are integers;
* ``cover`` is the visible fraction of the whole target in eighths, as GOT-10k's ``cover.label``: 8 = fully
  visible, 1..7 = ``floor(8 * fraction)`` clipped to 1..7, 0 = absent;
* the target is *out of view* when less than :data:`MIN_VISIBLE_FRACTION` of it lies inside the image, and *fully
  occluded* when it is not out of view but less than that fraction is visible; both are *absent*;
* absent frames keep a LaSOT-style box: the in-image extent of the hidden target when fully occluded, ``0, 0, 0, 0``
  when out of view (the writers derive the other datasets' conventions from the flags).

The first frame of a sequence is always fully visible and unoccluded. Distractors pass behind the target, occluder
bars in front of everything.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import cv2
import numpy as np

SHAPES = ("box", "disc", "diamond")
PATTERNS = ("striped", "checkered", "ringed", "spotted")
#: Target classes, ``<pattern>_<shape>``; used as object classes / COCO categories.
CLASS_NAMES = tuple(f"{pattern}_{shape}" for shape in SHAPES for pattern in PATTERNS)
#: Named difficulty levels (:meth:`Difficulty.from_level`).
LEVELS = {"clean": 0.0, "easy": 0.25, "medium": 0.5, "hard": 0.85}
#: Below this visible fraction of the whole target a frame is absent (slivers are not annotated).
MIN_VISIBLE_FRACTION = 0.1

# Target size sqrt(w * h) as a fraction of sqrt(H * W), and w / W, h / H limits (sequences / COCO images).
_TRACK_SCALE, _TRACK_SIDE = (0.1, 0.28), (0.08, 0.35)
_IMAGE_SCALE, _IMAGE_SIDE = (0.14, 0.4), (0.06, 0.6)
_ASPECT = (0.5, 2.0)  # w / h
_SPRITE = 96  # side of the precomputed object textures, resized per frame
_CANVAS = 1.5  # background canvas size relative to the frame, room for panning
_NOISE_PAD = 16  # the noise field is larger than the frame and cropped at a random offset per frame
_HUE_NAMES = {"red": 0, "orange": 30, "yellow": 58, "green": 120, "cyan": 180, "blue": 225, "purple": 275,
              "pink": 320}

Seed = Union[int, Sequence[int]]
Size = tuple[int, int]  # (H, W)


@dataclass(frozen=True)
class Difficulty:
    """The strength of every nuisance. :meth:`from_level` sets them all from one level in 0..1, where 0 gives clean
    scenes (smooth motion and camera pan only: no distractor, jump, occlusion, excursion, blur, lighting change or
    noise)."""

    distractors: int = 2  # most distractors (similar objects) per sequence
    speed: float = 0.1  # most target speed per frame, in target sizes (sqrt(w * h))
    jump_rate: float = 0.01  # probability of an abrupt jump per frame
    jump_size: float = 1.0  # longest jump, in target sizes (a 4x search region still holds most of them)
    scale_rate: float = 0.0175  # std of the per-frame change of log size and of log aspect ratio
    camera_speed: float = 1.75  # most background pan per frame, in pixels
    camera_zoom: float = 0.15  # largest background zoom-in (relative)
    occlusion_rate: float = 1.2  # occluder bars passing per 100 frames
    out_of_view_rate: float = 0.5  # excursions out of the image per 100 frames
    blur_prob: float = 0.15  # probability of a motion-blurred frame
    blur_max: int = 9  # longest blur kernel, in pixels
    illumination: float = 0.25  # amplitude of the gain / gamma / tint drifts
    noise: float = 5.0  # std of the Gaussian pixel noise (0..255 scale)

    @classmethod
    def from_level(cls, level: float) -> Difficulty:
        """Every knob scaled by ``level`` in 0..1 (``"medium"`` = 0.5 gives the defaults)."""
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"difficulty level must be in 0..1, got {level}")
        return cls(distractors=round(4 * level), speed=0.04 + 0.12 * level, jump_rate=0.02 * level,
                   jump_size=0.4 + 1.2 * level, scale_rate=0.005 + 0.025 * level, camera_speed=0.5 + 2.5 * level,
                   camera_zoom=0.3 * level, occlusion_rate=2.4 * level, out_of_view_rate=level,
                   blur_prob=0.3 * level, blur_max=3 + round(12 * level), illumination=0.5 * level,
                   noise=10.0 * level)

    @classmethod
    def parse(cls, value: Union[str, float, Difficulty]) -> Difficulty:
        """A :class:`Difficulty`, a level name of :data:`LEVELS`, or a level 0..1 (number or numeric string)."""
        if isinstance(value, Difficulty):
            return value
        if isinstance(value, str):
            if value in LEVELS:
                return cls.from_level(LEVELS[value])
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"unknown difficulty {value!r}: use {', '.join(LEVELS)} or a number in 0..1") \
                    from None
        return cls.from_level(float(value))


@dataclass
class RenderedSequence:
    """A rendered video: RGB frames and per-frame ground truth (see the module docstring for the conventions)."""

    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) float64 x, y, w, h
    absent: np.ndarray  # (N,) bool: occluded | out_of_view
    cover: np.ndarray  # (N,) int64 0..8
    occluded: np.ndarray  # (N,) bool, fully occluded
    out_of_view: np.ndarray  # (N,) bool
    cut_by_image: np.ndarray  # (N,) bool, part of the target lies outside the image
    area: np.ndarray  # (N,) int64 pixels of the whole target, visible or not (cover is relative to it)
    class_name: str  # one of CLASS_NAMES
    description: str  # e.g. "the blue striped disc with a dark border"
    masks: Optional[list[np.ndarray]] = None  # (H, W) bool visible target pixels, when asked for


@dataclass(frozen=True)
class ImageObject:
    """One annotated object of a still image: its visible box and pixel area; crowds group small objects."""

    class_name: str
    box: tuple[int, int, int, int]  # x, y, w, h
    area: int
    iscrowd: bool


@dataclass
class RenderedImage:
    """A still RGB image with its annotated objects."""

    image: np.ndarray
    objects: list[ImageObject]


# ------------------------------------------------------------------------------------------------ textures
def _rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value)) * 255.0


def _hue_name(hue: float) -> str:
    degrees = (hue % 1.0) * 360.0
    gaps = {name: abs(degrees - centre) for name, centre in _HUE_NAMES.items()}
    return min(gaps, key=lambda name: min(gaps[name], 360.0 - gaps[name]))


def _palette(stops: np.ndarray) -> np.ndarray:
    """``(k, 3)`` colours -> a ``(256, 3)`` uint8 lookup table interpolating them over 0..1."""
    grid, ramp = np.linspace(0.0, 1.0, len(stops)), np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(ramp, grid, stops[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def _colourize(field: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """A field in 0..1 mapped through the palette of ``stops``: ``(h, w, 3)`` uint8."""
    return _palette(stops)[np.clip(field * 255.0, 0, 255).astype(np.uint8)]


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise with about ``cells`` features across the longer side, in 0..1."""
    grid = rng.random((max(2, round(cells * h / max(h, w))) + 1, max(2, round(cells * w / max(h, w))) + 1))
    return np.clip(cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _pattern(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """A ``(h, w)`` float32 field in 0..1 of texture ``kind`` (a pattern of :data:`PATTERNS`, ``wavy`` or
    ``cloudy``) with random frequency, orientation and phase."""
    side = float(max(h, w))
    y = (np.arange(h, dtype=np.float32)[:, None] - h / 2) / side
    x = (np.arange(w, dtype=np.float32)[None, :] - w / 2) / side
    theta = rng.uniform(0.0, math.pi)
    u, v = x * math.cos(theta) + y * math.sin(theta), y * math.cos(theta) - x * math.sin(theta)
    if kind == "striped":
        wave = np.sin(2 * math.pi * rng.uniform(2.5, 6.0) * u + rng.uniform(0, 2 * math.pi))
        return 0.5 + 0.5 * np.tanh(3.0 * wave)
    if kind == "checkered":
        cells = rng.uniform(2.5, 5.0)
        return ((np.floor(u * cells + rng.random()) + np.floor(v * cells + rng.random())) % 2).astype(np.float32)
    if kind == "ringed":
        radius = np.hypot(x - rng.uniform(-0.2, 0.2), y - rng.uniform(-0.2, 0.2))
        return 0.5 + 0.5 * np.tanh(3.0 * np.sin(2 * math.pi * rng.uniform(2.5, 5.0) * radius + rng.random() * 6.3))
    if kind == "spotted":
        noise = _smooth_noise(rng, h, w, int(rng.integers(4, 8)))
        return 1.0 / (1.0 + np.exp(-12.0 * (noise - np.median(noise))))
    if kind == "wavy":
        field = np.zeros((h, w), dtype=np.float32)
        for _ in range(4):
            angle = rng.uniform(0.0, math.pi)
            field += np.sin(2 * math.pi * rng.uniform(0.8, 4.0) * (x * math.cos(angle) + y * math.sin(angle))
                            + rng.uniform(0, 2 * math.pi))
        return 0.5 + field / 8.0
    if kind == "cloudy":
        field = sum(_smooth_noise(rng, h, w, cells) / cells ** 0.5 for cells in (3, 7, 16, 36))
        return (field - field.min()) / max(float(field.max() - field.min()), 1e-6)
    raise ValueError(f"unknown texture {kind!r}")


def _background(rng: np.random.Generator, h: int, w: int, salience: float = 0.0) -> np.ndarray:
    """A muted ``(h, w, 3)`` RGB texture: clouds and waves, sometimes with faint stripes or checks.

    ``salience`` in 0..1 (see :func:`render_sequence`) mutes and darkens it: the stripes / checks (which resemble
    the target patterns) fade out, the saturation shrinks by ``1 - salience`` and the brightness by
    ``1 - 0.7 * salience`` (0.2..0.9 -> 0.06..0.27 at 1). The random draws are the same for every ``salience``."""
    field = 0.6 * _pattern(rng, "cloudy", h, w) + 0.4 * _pattern(rng, "wavy", h, w)
    if rng.random() < 0.4:
        stripes = 0.25 * (1.0 - salience)
        field = (1.0 - stripes) * field + stripes * _pattern(rng, str(rng.choice(["striped", "checkered"])), h, w)
    hue = rng.random()

    def value(drawn: float) -> float:  # exactly the drawn value at salience 0
        return drawn if salience == 0 else drawn * (1.0 - 0.7 * salience)

    stops = np.stack([_rgb(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.05, 0.5) * (1.0 - salience),
                           value(rng.uniform(0.2, 0.9)))
                      for _ in range(int(rng.integers(3, 5)))])
    return _colourize(field, stops)


@dataclass
class _Look:
    """The appearance of an object class instance: class, palette stops and border colour."""

    shape: str
    pattern: str
    stops: np.ndarray
    border: np.ndarray
    hue: float
    dark_border: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, class_name: str, salience: float = 0.0) -> _Look:
        """A random look of ``class_name``; ``salience`` in 0..1 pulls both palette stops towards full saturation
        and brightness (the second one half-way, so the pattern stays visible), and makes the border a light one
        (pure white at 1). The random draws are the same for every ``salience``."""
        pattern, shape = class_name.split("_")
        hue = rng.random()

        def towards_one(value: float) -> float:
            return value + (1.0 - value) * salience

        def half_towards_one(value: float) -> float:
            return value + (1.0 - value) * 0.5 * salience

        stops = np.stack([_rgb(hue, towards_one(rng.uniform(0.6, 1.0)), towards_one(rng.uniform(0.7, 1.0))),
                          _rgb(hue + rng.uniform(0.1, 0.5), towards_one(rng.uniform(0.5, 1.0)),
                               half_towards_one(rng.uniform(0.3, 0.8)))])
        dark = bool(rng.random() < 0.5) and salience == 0
        keep = 1.0 - salience
        border = _rgb(hue, 0.3, 0.1) if dark else _rgb(hue, 0.1 * keep, 0.97 + 0.03 * salience)
        return cls(shape, pattern, stops, border, hue, dark)

    def similar(self, rng: np.random.Generator) -> _Look:
        """A distractor look: same class and border, palette jittered a little."""
        jitter = rng.normal(0.0, 18.0, self.stops.shape)
        return _Look(self.shape, self.pattern, np.clip(self.stops + jitter, 0, 255), self.border, self.hue,
                     self.dark_border)

    def describe(self) -> str:
        border = "dark" if self.dark_border else "light"
        return f"the {_hue_name(self.hue)} {self.pattern} {self.shape} with a {border} border"


def _shape_mask(shape: str, side: int) -> np.ndarray:
    """``(side, side)`` uint8 0/1 mask of ``shape`` filling the square."""
    c = (np.arange(side, dtype=np.float32) + 0.5) / side * 2.0 - 1.0
    y, x = c[:, None], c[None, :]
    if shape == "box":
        return np.ones((side, side), dtype=np.uint8)
    if shape == "disc":
        return (x * x + y * y <= 1.0).astype(np.uint8)
    if shape == "diamond":
        return (np.abs(x) + np.abs(y) <= 1.0).astype(np.uint8)
    raise ValueError(f"unknown shape {shape!r}")


@dataclass
class _Sprite:
    """A textured object at :data:`_SPRITE` resolution, resized to its size of each frame."""

    texture: np.ndarray  # (S, S, 3) uint8; the border colour outside the shape, so resizing blends only the border
    mask: np.ndarray  # (S, S) uint8 0/1

    @classmethod
    def draw(cls, rng: np.random.Generator, look: _Look, salience: float = 0.0) -> _Sprite:
        """``salience`` in 0..1 widens the border (3..7 px of the 96 px sprite, up to 1.5 times that at 1)."""
        mask = _shape_mask(look.shape, _SPRITE)
        texture = _colourize(_pattern(rng, look.pattern, _SPRITE, _SPRITE), look.stops)
        width = round(int(rng.integers(3, 8)) * (1.0 + 0.5 * salience))
        inner = cv2.erode(mask, np.ones((2 * width + 1, 2 * width + 1), np.uint8), borderValue=0)
        texture[inner == 0] = look.border.round().astype(np.uint8)
        return cls(texture, mask)

    def at(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Texture and boolean mask at size ``w x h``."""
        shrink = w < _SPRITE and h < _SPRITE
        texture = cv2.resize(self.texture, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return texture, cv2.resize(self.mask, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def _paste(frame: np.ndarray, texture: np.ndarray, mask: np.ndarray, x0: int, y0: int
           ) -> Optional[tuple[int, int, np.ndarray]]:
    """Draw ``texture`` where ``mask`` with its top-left corner at ``(x0, y0)``, clipped to the frame.

    Returns ``(left, top, clipped mask)`` of the in-image part, None when nothing lies inside."""
    height, width = frame.shape[:2]
    h, w = mask.shape
    left, top, right, bottom = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
    if right <= left or bottom <= top:
        return None
    inside = mask[top - y0:bottom - y0, left - x0:right - x0]
    np.copyto(frame[top:bottom, left:right], texture[top - y0:bottom - y0, left - x0:right - x0],
              where=inside[..., None])
    return left, top, inside


def _mask_box(mask: np.ndarray, left: int, top: int) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return left + int(cols[0]), top + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def _size(log_size: float, log_aspect: float, height: int, width: int, sides: tuple[float, float]
          ) -> tuple[float, float]:
    """``w, h`` of a size ``exp(log_size)`` and aspect ``exp(log_aspect)``, each side clipped to ``sides``."""
    size, aspect = math.exp(log_size), math.exp(log_aspect)
    return (min(max(size * math.sqrt(aspect), sides[0] * width), sides[1] * width),
            min(max(size / math.sqrt(aspect), sides[0] * height), sides[1] * height))


def _reflect(value: float, low: float, high: float) -> float:
    """``value`` folded back into ``[low, high]`` (a reflecting random walk)."""
    span = high - low
    offset = (value - low) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)


# --------------------------------------------------------------------------------------------- trajectories
@dataclass
class _Path:
    """Per-frame centre, size and velocity of one object (float pixels)."""

    cx: np.ndarray
    cy: np.ndarray
    w: np.ndarray
    h: np.ndarray
    vx: np.ndarray
    vy: np.ndarray

    def rect(self, t: int) -> tuple[int, int, int, int]:
        """The integer ``x0, y0, w, h`` the object is drawn at in frame ``t``."""
        w, h = max(4, round(self.w[t])), max(4, round(self.h[t]))
        return round(self.cx[t] - w / 2), round(self.cy[t] - h / 2), w, h


def _trajectory(rng: np.random.Generator, n: int, size: Size, diff: Difficulty) -> _Path:
    """Smooth motion (bounded speed, random acceleration), abrupt jumps, size and aspect random walks; the object
    starts fully inside the image and bounces so that at most ~30% of it leaves the image."""
    height, width = size
    side = math.sqrt(height * width)
    low, high = math.log(_TRACK_SCALE[0] * side), math.log(_TRACK_SCALE[1] * side)
    log_size, log_aspect = rng.uniform(low, high), rng.uniform(math.log(0.6), math.log(1.6))
    w, h = _size(log_size, log_aspect, height, width, _TRACK_SIDE)
    cx, cy = rng.uniform(w / 2 + 4, width - w / 2 - 4), rng.uniform(h / 2 + 4, height - h / 2 - 4)
    velocity = rng.normal(0.0, 0.5 * diff.speed * math.sqrt(w * h), 2)
    out = np.zeros((6, n))
    for t in range(n):
        out[:, t] = cx, cy, w, h, velocity[0], velocity[1]
        log_size = _reflect(log_size + rng.normal(0.0, diff.scale_rate), low, high)
        log_aspect = _reflect(log_aspect + rng.normal(0.0, diff.scale_rate), *map(math.log, _ASPECT))
        w, h = _size(log_size, log_aspect, height, width, _TRACK_SIDE)
        top_speed = diff.speed * math.sqrt(w * h)
        velocity += rng.normal(0.0, 0.25 * top_speed, 2)
        norm = float(np.hypot(*velocity))
        if norm > top_speed:
            velocity *= top_speed / norm
        if rng.random() < diff.jump_rate:
            angle, length = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, max(0.3, diff.jump_size))
            cx += math.cos(angle) * length * math.sqrt(w * h)
            cy += math.sin(angle) * length * math.sqrt(w * h)
        cx, cy = cx + velocity[0], cy + velocity[1]
        for axis, (centre, extent, limit) in enumerate(((cx, w, width), (cy, h, height))):
            if centre < 0.2 * extent:
                velocity[axis] = abs(velocity[axis])
            elif centre > limit - 0.2 * extent:
                velocity[axis] = -abs(velocity[axis])
        cx, cy = min(max(cx, 0.2 * w), width - 0.2 * w), min(max(cy, 0.2 * h), height - 0.2 * h)
    return _Path(*out)


def _add_excursions(rng: np.random.Generator, path: _Path, size: Size, rate: float) -> None:
    """Move the target out of the image through its nearest edge and back, ``rate`` times per 100 frames: an
    offset ramps up, holds (target fully outside) and ramps down. Never in the first eighth of the sequence."""
    height, width = size
    n = len(path.cx)
    for _ in range(int(rng.poisson(rate * n / 100))):
        ramp, hold = int(rng.integers(5, 11)), int(rng.integers(3, 13))
        first = max(5, n // 8)
        if n - 2 * ramp - hold <= first:
            continue
        start = int(rng.integers(first, n - 2 * ramp - hold))
        span = slice(start + ramp, start + ramp + hold)
        cx, cy, w, h = path.cx[span], path.cy[span], path.w[span], path.h[span]
        # Offset needed along each exit direction to be fully outside during the hold; take the shortest.
        needs = {(-1, 0): (cx + w / 2).max(), (1, 0): (width - cx + w / 2).max(),
                 (0, -1): (cy + h / 2).max(), (0, 1): (height - cy + h / 2).max()}
        (dx, dy), distance = min(needs.items(), key=lambda item: item[1])
        profile = np.concatenate([np.linspace(0, 1, ramp + 1)[1:], np.ones(hold), np.linspace(1, 0, ramp + 1)[:-1]])
        frames = slice(start, start + len(profile))
        path.cx[frames] += dx * (distance + 3) * profile
        path.cy[frames] += dy * (distance + 3) * profile


@dataclass
class _Occluder:
    """A bar across the whole image (vertical: moving horizontally) passing over the target."""

    vertical: bool
    position: np.ndarray  # (N,) leading coordinate (left or top) per frame
    active: np.ndarray  # (N,) bool, drawn in this frame
    strip: np.ndarray  # (H, thickness, 3) or (thickness, W, 3) uint8

    def span(self, t: int) -> tuple[int, int]:
        start = round(self.position[t])
        return start, start + (self.strip.shape[1] if self.vertical else self.strip.shape[0])

    def draw(self, frame: np.ndarray, t: int) -> None:
        start, stop = self.span(t)
        if self.vertical:
            lo, hi = max(start, 0), min(stop, frame.shape[1])
            if hi > lo:
                frame[:, lo:hi] = self.strip[:, lo - start:hi - start]
        else:
            lo, hi = max(start, 0), min(stop, frame.shape[0])
            if hi > lo:
                frame[lo:hi] = self.strip[lo - start:hi - start]

    def hide(self, visible: np.ndarray, left: int, top: int, t: int) -> None:
        """Clear the mask ``visible`` (placed at ``left, top``) where the bar covers it in frame ``t``."""
        start, stop = self.span(t)
        origin = left if self.vertical else top
        lo, hi = max(start - origin, 0), max(stop - origin, 0)
        if self.vertical:
            visible[:, lo:hi] = False
        else:
            visible[lo:hi] = False


def _occluders(rng: np.random.Generator, path: _Path, size: Size, rate: float, salience: float = 0.0
               ) -> list[_Occluder]:
    """Bars crossing the target ``rate`` times per 100 frames, two thirds wide enough to hide it fully for a few
    frames; each is drawn while it is inside the image, never in frame 0."""
    height, width = size
    n = len(path.cx)
    bars = []
    for _ in range(int(rng.poisson(rate * n / 100))):
        middle = int(rng.integers(min(n - 1, max(3, n // 10)), n))
        vertical = bool(rng.random() < 0.5)
        centre, extent = (path.cx, path.w) if vertical else (path.cy, path.h)
        full = rng.random() < 0.65
        thickness = max(3, round(extent[middle] * (rng.uniform(1.2, 1.8) if full else rng.uniform(0.25, 0.6))))
        speed = (thickness + extent[middle]) / rng.uniform(8, 20) * rng.choice([-1.0, 1.0])
        position = centre[middle] - thickness / 2 + speed * (np.arange(n) - middle)
        limit = width if vertical else height
        active = (position < limit) & (position + thickness > 0)
        active[0] = False
        shape = (height, thickness) if vertical else (thickness, width)
        if rng.random() < 0.4:
            strip = np.empty((*shape, 3), np.uint8)
            strip[:] = _rgb(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.15, 0.9)).round().astype(np.uint8)
        else:
            strip = _background(rng, *shape, salience=salience)
        bars.append(_Occluder(vertical, position, active, strip))
    return bars


# ------------------------------------------------------------------------------------------------ rendering
class _Camera:
    """A textured canvas larger than the frame, panned and zoomed slowly."""

    def __init__(self, rng: np.random.Generator, n: int, size: Size, diff: Difficulty, salience: float = 0.0
                 ) -> None:
        height, width = size
        self.size = size
        self.canvas = _background(rng, round(height * _CANVAS), round(width * _CANVAS), salience)
        canvas_h, canvas_w = self.canvas.shape[:2]
        centre = np.array([canvas_w / 2, canvas_h / 2])
        velocity = rng.normal(0.0, 0.5 * diff.camera_speed, 2)
        self.centres = np.zeros((n, 2))
        for t in range(n):
            self.centres[t] = centre
            velocity = np.clip(velocity + rng.normal(0.0, 0.2 * diff.camera_speed, 2),
                               -diff.camera_speed, diff.camera_speed)
            centre = centre + velocity
            # The view (at zoom >= 1) stays on the canvas; bounce on its margins.
            for axis, (half, extent) in enumerate(((width / 2, canvas_w), (height / 2, canvas_h))):
                if not half <= centre[axis] <= extent - half:
                    velocity[axis] = -velocity[axis]
                    centre[axis] = min(max(centre[axis], half), extent - half)
        period = rng.uniform(n, 3 * n) + 1
        self.zoom = 1.0 + diff.camera_zoom * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / period
                                                                 + rng.uniform(0, 2 * np.pi)))
        self.velocity = np.gradient(self.centres, axis=0) if n > 1 else np.zeros((n, 2))

    def frame(self, t: int) -> np.ndarray:
        height, width = self.size
        zoom, (cx, cy) = self.zoom[t], self.centres[t]
        matrix = np.array([[zoom, 0.0, width / 2 - zoom * cx], [0.0, zoom, height / 2 - zoom * cy]])
        return cv2.warpAffine(self.canvas, matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)


def _line_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised ``length x length`` motion-blur kernel along ``angle``."""
    kernel = np.zeros((length, length), np.float32)
    half = (length - 1) / 2
    dx, dy = math.cos(angle) * half, math.sin(angle) * half
    cv2.line(kernel, (round(half - dx), round(half - dy)), (round(half + dx), round(half + dy)), 1.0, 1)
    return kernel / kernel.sum()


class _Photometry:
    """Illumination drifts (gain, gamma, colour tint) and sensor noise, per frame."""

    def __init__(self, rng: np.random.Generator, n: int, size: Size, diff: Difficulty) -> None:
        t = np.arange(n)[:, None]
        amp = diff.illumination
        self.luts: Optional[np.ndarray] = None
        if amp > 0:
            phases, periods = rng.uniform(0, 2 * np.pi, 5), rng.uniform(0.5 * n, 2 * n, 5) + 1
            waves = np.sin(2 * np.pi * t / periods + phases)  # (n, 5)
            gain = 1.0 + 0.6 * amp * waves[:, :1] + 0.15 * amp * waves[:, 2:5]  # (n, 3): gain and tint
            gamma = np.exp(0.8 * amp * waves[:, 1:2])
            levels = np.arange(256) / 255.0
            self.luts = np.clip(255.0 * gain[:, None, :] * levels[None, :, None] ** gamma[:, None, :], 0, 255
                                ).round().astype(np.uint8)[:, None]  # (n, 1, 256, 3)
        self.noise: Optional[tuple[np.ndarray, np.ndarray]] = None
        if diff.noise > 0:
            height, width = size
            field = rng.normal(0.0, diff.noise, (height + _NOISE_PAD, width + _NOISE_PAD, 3))
            self.noise = (np.clip(field, 0, 255).astype(np.uint8), np.clip(-field, 0, 255).astype(np.uint8))
        self.offsets = rng.integers(0, _NOISE_PAD + 1, (n, 2))

    def apply(self, frame: np.ndarray, t: int) -> np.ndarray:
        if self.luts is not None:
            frame = cv2.LUT(frame, self.luts[t])
        if self.noise is not None:
            height, width = frame.shape[:2]
            dy, dx = self.offsets[t]
            positive, negative = (part[dy:dy + height, dx:dx + width] for part in self.noise)
            frame = cv2.subtract(cv2.add(frame, positive), negative)  # saturating, unlike numpy
        return frame


def _check_salience(salience: float) -> float:
    salience = float(salience)
    if not 0.0 <= salience <= 1.0:
        raise ValueError(f"salience must be in 0..1, got {salience}")
    return salience


def render_sequence(seed: Seed, num_frames: int, size: Size = (240, 320),
                    difficulty: Union[str, float, Difficulty] = "medium", return_masks: bool = False,
                    salience: float = 0.0) -> RenderedSequence:
    """Render ``num_frames`` frames of ``size = (H, W)`` and their ground truth, deterministically from ``seed``.

    ``return_masks`` adds the visible target pixels of every frame (before blur).

    ``salience`` in 0..1 (default 0: the original look) makes the objects stand out from the background by their
    colour statistics, up to bright objects on a dark background at 1: saturated, bright object palettes with wider
    light borders on darker, greyer backgrounds without target-like stripes or checks (textured occluder bars are
    background textures, so they are darkened too). Only colours and border widths change: the random draws are the
    same, so a seed gives the same classes, trajectories, distractors, occluders, nuisances and ground truth at
    every ``salience`` (the target mask, hence every box and label, is identical); the description names a light
    border whenever ``salience > 0``."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    height, width = size
    if min(height, width) < 32:
        raise ValueError(f"image size {size} too small (H and W must be >= 32)")
    diff = Difficulty.parse(difficulty)
    salience = _check_salience(salience)
    rng = np.random.default_rng(seed)
    n = num_frames

    class_name = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
    look = _Look.draw(rng, class_name, salience)
    target = _Sprite.draw(rng, look, salience)
    camera = _Camera(rng, n, size, diff, salience)
    path = _trajectory(rng, n, size, diff)
    _add_excursions(rng, path, size, diff.out_of_view_rate)
    occluders = _occluders(rng, path, size, diff.occlusion_rate, salience)
    distractors = [(_Sprite.draw(rng, look.similar(rng), salience), _trajectory(rng, n, size, diff))
                   for _ in range(int(rng.integers(0, diff.distractors + 1)))]
    photometry = _Photometry(rng, n, size, diff)
    blur_on = rng.random(n) < diff.blur_prob
    blur_length = rng.integers(3, max(3, diff.blur_max) + 1, n)
    blur_camera = rng.random(n) < 0.4

    frames, masks = [], []
    boxes = np.zeros((n, 4))
    cover, area = np.zeros(n, np.int64), np.zeros(n, np.int64)
    occluded, out_of_view, cut = (np.zeros(n, bool) for _ in range(3))
    for t in range(n):
        frame = camera.frame(t)
        for sprite, track in distractors:
            x0, y0, w, h = track.rect(t)
            _paste(frame, *sprite.at(w, h), x0, y0)
        x0, y0, w, h = path.rect(t)
        texture, mask = target.at(w, h)
        total = area[t] = int(np.count_nonzero(mask))
        placed = _paste(frame, texture, mask, x0, y0)
        inside = visible_count = 0
        if placed is not None:
            left, top, in_image = placed
            visible = in_image.copy()
            for bar in occluders:
                if bar.active[t]:
                    bar.hide(visible, left, top, t)
            inside, visible_count = int(np.count_nonzero(in_image)), int(np.count_nonzero(visible))
        for bar in occluders:
            if bar.active[t]:
                bar.draw(frame, t)
        cut[t] = inside < total
        out_of_view[t] = inside < MIN_VISIBLE_FRACTION * total
        occluded[t] = not out_of_view[t] and visible_count < MIN_VISIBLE_FRACTION * total
        if not out_of_view[t]:
            boxes[t] = _mask_box(in_image if occluded[t] else visible, left, top)
        if not (out_of_view[t] or occluded[t]):
            cover[t] = 8 if visible_count == total else min(7, max(1, 8 * visible_count // total))
        if return_masks:
            full = np.zeros((height, width), bool)
            if placed is not None:
                full[top:top + visible.shape[0], left:left + visible.shape[1]] = visible
            masks.append(full)

        if blur_on[t]:
            if blur_camera[t]:
                angle = math.atan2(camera.velocity[t, 1], camera.velocity[t, 0])
                frame = cv2.filter2D(frame, -1, _line_kernel(int(blur_length[t]), angle))
            else:  # the target alone, along its motion; the region grows by the kernel so its edges smear
                angle = math.atan2(path.vy[t], path.vx[t])
                pad = int(blur_length[t])
                y_lo, y_hi = max(y0 - pad, 0), min(y0 + h + pad, height)
                x_lo, x_hi = max(x0 - pad, 0), min(x0 + w + pad, width)
                if y_hi > y_lo and x_hi > x_lo:
                    frame[y_lo:y_hi, x_lo:x_hi] = cv2.filter2D(frame[y_lo:y_hi, x_lo:x_hi], -1,
                                                               _line_kernel(pad, angle))
        frames.append(photometry.apply(frame, t))

    absent = occluded | out_of_view
    return RenderedSequence(frames, boxes, absent, cover, occluded, out_of_view, cut, area, class_name,
                            look.describe(), masks if return_masks else None)


def render_image(seed: Seed, size: Size = (240, 320), difficulty: Union[str, float, Difficulty] = "medium",
                 salience: float = 0.0) -> RenderedImage:
    """A still image with 2..6 textured objects of random classes (later ones in front), sometimes a crowd of
    small ones (annotated as one ``iscrowd`` region). Boxes and areas are those of the visible pixels; objects with
    less than :data:`MIN_VISIBLE_FRACTION` visible are not annotated. ``salience``: as in
    :func:`render_sequence` (same objects and annotations, other colours)."""
    height, width = size
    diff = Difficulty.parse(difficulty)
    salience = _check_salience(salience)
    rng = np.random.default_rng(seed)
    image = _background(rng, height, width, salience)
    owner = np.full((height, width), -1, np.int16)  # index of the object seen at each pixel
    objects: list[tuple[str, int, bool]] = []  # class, full pixel area, crowd
    side = math.sqrt(height * width)

    def place(class_name: str, scale: tuple[float, float], sides: tuple[float, float], centre: tuple[float, float],
              index: int) -> int:
        look = _Look.draw(rng, class_name, salience)
        w, h = _size(rng.uniform(*np.log(np.array(scale) * side)), rng.uniform(*np.log(_ASPECT)), height, width,
                     sides)
        w, h = max(4, round(w)), max(4, round(h))
        texture, mask = _Sprite.draw(rng, look, salience).at(w, h)
        x0, y0 = round(centre[0] - w / 2), round(centre[1] - h / 2)
        placed = _paste(image, texture, mask, x0, y0)
        if placed is not None:
            left, top, in_image = placed
            region = owner[top:top + in_image.shape[0], left:left + in_image.shape[1]]
            region[in_image] = index
        return int(np.count_nonzero(mask))

    if rng.random() < 0.2:
        class_name = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
        centre = rng.uniform(0.25, 0.75, 2) * (width, height)
        area = 0
        for _ in range(int(rng.integers(5, 10))):
            offset = rng.normal(0.0, 0.08 * side, 2)
            area += place(class_name, (0.035, 0.07), (0.02, 0.2), tuple(centre + offset), len(objects))
        objects.append((class_name, area, True))
    for _ in range(int(rng.integers(2, 7))):
        class_name = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
        centre = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height)
        objects.append((class_name, place(class_name, _IMAGE_SCALE, _IMAGE_SIDE, centre, len(objects)), False))

    annotations = []
    for index, (class_name, area, crowd) in enumerate(objects):
        visible = owner == index
        count = int(np.count_nonzero(visible))
        if count >= MIN_VISIBLE_FRACTION * area and count > 0:
            annotations.append(ImageObject(class_name, _mask_box(visible, 0, 0), count, crowd))
    image = _Photometry(rng, 1, size, diff).apply(image, 0)
    return RenderedImage(image, annotations)
