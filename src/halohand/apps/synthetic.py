"""Rendered photos of posed hands with their ground truth: ``halohand data render``.

Each image is one hand of the embedded model (identity from the identity prior, pose from the
pose prior, either side) with a forearm that continues its wrist,
seen through a pinhole camera of random field of view from a random direction (palm or back
toward the camera), at a distance where the hand spans 25-65 % of the image, lit by a random
key light and an ambient light tinted by the surroundings, and exposed for the hand as a
camera would. The skin's albedo is one of eight tones spanning measured skin colour (light
to dark; palms and finger undersides lighter), with slight blotches, redder knuckles,
lighter nails and creases darkened by an ambient-occlusion-like measure of how much nearby
surface rises above each point (:func:`crease_occlusion`). The background is a lit wall, a
gradient, a room out of focus or a wood, fabric or stone texture, in the colours of everyday
surfaces, out of focus by a random amount; a little sensor noise is added. Every realism
step has a switch (:class:`Look`) so that what it does to the photo path can be measured
(``benchmarks/studies/render_detection.py``). Written per image ``i`` into the output
folder, each atomically:

* ``images/000042.png``: the photo (sRGB, ``--size`` pixels square);
* ``masks/000042.png``: 0 background, 1 hand, 2 forearm (the visible, front-most surface);
* ``labels/000042.npz``: ``keypoints_2d [21, 2]`` (pixels), ``keypoints_3d [21, 3]`` (metres,
  camera frame: ``x`` right, ``y`` down, ``z`` ahead), ``intrinsics [3, 3]``, ``side``
  (0 right, 1 left), ``pose [15, 3]`` (radians), ``length_factors [16]``, ``palm_width``,
  ``hand_length`` (metres), ``vertices [V, 3]`` and ``faces [F, 3]`` of the hand mesh
  (camera frame), ``skin_srgb [3]``, ``background`` (kind index, see
  :data:`BACKGROUNDS`);
* ``manifest.json``: the settings (seed, size, renderer, format version, the :class:`Look`
  switches turned off); a rerun with the same settings skips every image whose three files
  exist and extends to a larger ``--n``; other settings are refused.

Determinism: image ``i`` draws everything from ``SeedSequence(seed, spawn_key=(RENDER_KEY,
i))`` (an image's crease shading and backgrounds from seeds drawn there), so its bytes
depend on neither ``--n`` nor the order of work. The renderer is
``moderngl`` on a headless EGL context (OpenGL 3.3, 4x multisampling, key light with wrapped
diffuse for skin, Blinn-Phong highlight); where EGL is unavailable the project's numpy
rasteriser (:func:`halohand.apps.render.render_camera_layer`, its fixed studio lighting)
draws the same scenes, and the manifest says which ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.atomic import atomic_path, write_text_atomic
from halohand.core.errors import HalohandInputError

#: Format version of the rendered sets (bumped when a scene or a file changes).
RENDER_VERSION = 3
#: Spawn key that separates these seeds from the data engine's splits.
RENDER_KEY = 7
MANIFEST = "manifest.json"
RENDERERS = ("auto", "egl", "numpy")
#: Background kinds: a lit wall, a gradient, an out-of-focus room (blurred shapes) and a
#: surface texture (wood, fabric or stone); ``Look(backgrounds=False)`` draws version 2's
#: smooth two-colour noise and coloured noise octaves for the last two.
BACKGROUNDS = ("plain", "gradient", "clutter", "texture")
#: Skin albedos (sRGB 0..255), light to dark: CIELAB (75, 11, 18), (69, 13, 20), (63, 14, 22),
#: (57, 15, 24), (50, 15, 24), (43, 14, 22), (36, 12, 19), (29, 9, 14), spanning the lightness,
#: redness and yellowness of measured skin (photographed hands: a* 10-22, b* 10-35).
SKIN_TONES = np.array(
    [
        (217, 177, 152), (204, 159, 133), (189, 143, 114), (175, 126, 96),
        (155, 109, 79), (134, 92, 66), (112, 77, 55), (89, 63, 47),
    ],
    dtype=np.float64,
) / 255.0  # fmt: skip
#: The palette of format version 2 (grey-beige, light tones near paper white), rendered by
#: ``Look(skin=False)`` to measure what the palette above changed.
SKIN_TONES_V2 = np.array(
    [
        (246, 222, 200), (236, 198, 170), (224, 176, 140), (200, 148, 110),
        (170, 116, 84), (136, 90, 62), (100, 66, 46), (72, 48, 36),
    ],
    dtype=np.float64,
) / 255.0  # fmt: skip
#: Skins at least this CIELAB lightness count as "light" in reports (the first four tones).
LIGHT_SKIN_L = 53.5
#: A visible hand covers at least this fraction of the image with its own mask (0.5 %:
#: 36 x 36 pixels of a 512-pixel image, about the smallest palm the detector is made for).
MIN_HAND_AREA = 0.005
MAX_IMAGES = 1_000_000


@dataclass(frozen=True)
class Look:
    """Switches of the renders' realism, all on by default; the tuning study
    (``benchmarks/studies/render_detection.py``) renders with one off to measure it.

    Attributes:
        skin: :data:`SKIN_TONES` (else version 2's palette).
        shading: crease darkening, albedo variation, redder knuckles and lighter nails.
        exposure: the hand exposed as a camera would (else the raw sum of the lights).
        backgrounds: photo-like backgrounds (else version 2's saturated noise).
        wrist: the forearm continues the hand's wrist (else a fixed frustum whose step
            shows as a band around the wrist).
        smooth: the hand drawn once Loop-subdivided (4x the triangles: round fingers, not
            the model's 2.3k facets); labels keep the model's own mesh.
        photo: the camera's own marks: a slight blur of the whole image (0.3-1 px at 512),
            darker corners (vignetting) and JPEG compression (quality 70-95), as most
            photos are stored.
        camera: fields of view of everyday cameras, 35-60 degrees across the image (a
            phone's main camera cropped square ~46-53, a webcam or front camera ~43-53;
            else version 2's 35-75, a third of it ultra-wide).
    """

    skin: bool = True
    shading: bool = True
    exposure: bool = True
    backgrounds: bool = True
    wrist: bool = True
    smooth: bool = True
    camera: bool = True
    photo: bool = True

    def changed(self) -> dict[str, bool]:
        """The switches that differ from the default (what a manifest records)."""
        return {k: v for k, v in vars(self).items() if v is not getattr(Look(), k)}


def skin_group(skin_srgb: np.ndarray) -> str:
    """``"light"`` or ``"dark"``: a skin albedo (sRGB 0..1) against :data:`LIGHT_SKIN_L`."""
    from halohand.apps.render import srgb_to_linear

    y = float(srgb_to_linear(skin_srgb) @ [0.2126, 0.7152, 0.0722])
    lightness = 116.0 * np.cbrt(y) - 16.0 if y > 0.008856 else 903.3 * y
    return "light" if lightness >= LIGHT_SKIN_L else "dark"


def hand_visible(keypoints_2d: np.ndarray, mask: np.ndarray) -> bool:
    """Whether a rendered hand is fully visible, by its ground truth: all 21 keypoints
    ``[21, 2]`` (pixels) inside the ``[H, W]`` mask's frame, and the hand's own mask
    (value 1: where it is the front-most surface) covering at least :data:`MIN_HAND_AREA`
    of the image. A hand cut by the border or hidden behind its forearm is not."""
    h, w = mask.shape
    u, v = keypoints_2d[:, 0], keypoints_2d[:, 1]
    inside = bool(((u >= 0) & (u < w) & (v >= 0) & (v < h)).all())
    return inside and float((mask == 1).mean()) >= MIN_HAND_AREA


@dataclass(frozen=True)
class Scene:
    """One rendered case (every random draw of image ``index``)."""

    index: int
    side: str
    pose: np.ndarray
    length_factors: np.ndarray
    palm_width: float
    hand_length: float
    rotation: np.ndarray
    translation: np.ndarray
    intrinsics: np.ndarray
    size: int
    skin: np.ndarray
    light_dir: np.ndarray
    light_rgb: np.ndarray
    ambient: float
    background: int
    arm_bend: np.ndarray
    noise_sigma: float
    bg_seed: int
    defocus_px: float
    exposure: float
    tone: int
    lens_blur_px: float
    vignette: float
    jpeg_quality: int


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _hand_axes(rest_keypoints: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit finger direction (wrist -> middle knuckle) and palm normal (out of the palm) of
    a hand's rest keypoints in its model frame."""
    kp = rest_keypoints
    finger = kp[9] - kp[0]
    finger /= np.linalg.norm(finger)
    across = kp[5] - kp[17]  # little finger -> index knuckle
    normal = np.cross(across, finger) if side == "right" else np.cross(finger, across)
    normal -= finger * (normal @ finger)
    return finger, normal / np.linalg.norm(normal)


def sample_scene(seed: int, index: int, size: int, look: Look | None = None) -> tuple[Scene, Any]:
    """The scene of image ``index`` and its posed hand (a :class:`PosedHand`); ``look``
    chooses the field of view's range (:attr:`Look.camera`) from the same draw."""
    from halohand.handmodel.prior import IdentityPrior, PosePrior
    from halohand.handmodel.webxr import default_model

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(RENDER_KEY, index)))
    model = default_model()
    side = "right" if rng.random() < 0.5 else "left"
    identity = IdentityPrior().sample(rng)
    pose = PosePrior().sample(rng, identity, model)
    hand = model.pose(pose, identity, side=side)
    finger, normal = _hand_axes(hand.rest_keypoints, side)
    # Base orientation: fingers up in the image (camera -y), palm toward the camera (-z).
    src = np.stack([finger, normal, np.cross(finger, normal)], axis=1)
    up, toward = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, -1.0])
    dst = np.stack([up, toward, np.cross(up, toward)], axis=1)
    rot = dst @ src.T
    if rng.random() < 0.4:  # the back of the hand toward the camera
        rot = _rot(up, np.pi) @ rot
    rot = _rot(up, rng.uniform(-1.0, 1.0)) @ rot  # turn about the fingers (+-57 deg)
    rot = _rot(np.array([1.0, 0.0, 0.0]), rng.uniform(-0.6, 0.5)) @ rot  # tilt
    rot = _rot(toward, rng.normal(0.0, 0.6)) @ rot  # roll in the image plane
    fov_range = (35.0, 60.0) if (look is None or look.camera) else (35.0, 75.0)
    fov = np.radians(fov_range[0] + (fov_range[1] - fov_range[0]) * rng.random())
    focal = 0.5 * size / np.tan(0.5 * fov)
    k = np.array([[focal, 0.0, size / 2.0], [0.0, focal, size / 2.0], [0.0, 0.0, 1.0]])
    span = rng.uniform(0.25, 0.65)
    kp = hand.keypoints @ rot.T
    extent = np.ptp(kp[:, :2], axis=0).max()
    depth = focal * max(extent, 0.5 * identity.hand_length) / (span * size)
    centre_px = size / 2.0 + rng.uniform(-0.12, 0.12, 2) * size
    centre = np.array([(centre_px[0] - k[0, 2]) / focal, (centre_px[1] - k[1, 2]) / focal, 1.0])
    mid = 0.5 * (kp.min(0) + kp.max(0))
    trans = depth * centre - mid
    # Key light from the camera's side of the hand (any direction in that half-space).
    light = rng.normal(size=3)
    light[2] = -abs(light[2]) - 0.3
    # The draws keep version 2's order (the same hands, cameras and lights per index); the
    # ones added since come after them.
    tone = int(rng.integers(len(SKIN_TONES)))
    # +-6 % brightness, but only half that per channel (more turns light skin green or grey)
    jitter = rng.uniform(0.94, 1.06, 3)
    skin = np.clip(SKIN_TONES[tone] * (0.5 * jitter + 0.5 * jitter.mean()), 0, 1)
    # a lamp's colour lies between warm and cool white (per-channel jitter made green light)
    strength, tint = rng.uniform(0.7, 1.2), rng.uniform(0.9, 1.1, 3)
    warmth = (tint[0] - 0.9) / 0.2  # 0 cool (daylight) .. 1 warm (tungsten)
    cool, warm = np.array([0.92, 0.97, 1.05]), np.array([1.0, 0.9, 0.75])
    light_rgb = strength * (cool * (1 - warmth) + warm * warmth)
    ambient = float(rng.uniform(0.15, 0.45))
    kind = int(rng.integers(len(BACKGROUNDS)))
    arm_bend = rng.uniform(-0.25, 0.25, 2)
    noise_sigma = float(rng.uniform(0.0, 0.02))
    bg_seed = int(rng.integers(2**31))
    defocus_px = float(rng.uniform(0.0, 4.0) * size / 512)
    exposure = float(rng.uniform(0.8, 1.3))
    lens_blur_px = float(rng.uniform(0.3, 1.0) * size / 512)
    vignette = float(rng.uniform(0.0, 0.3))
    jpeg_quality = int(rng.integers(70, 96))
    scene = Scene(
        index=index,
        side=side,
        pose=pose.as_array(),
        length_factors=identity.length_factors,
        palm_width=identity.palm_width,
        hand_length=float(identity.hand_length),
        rotation=rot,
        translation=trans,
        intrinsics=k,
        size=size,
        skin=skin,
        light_dir=light / np.linalg.norm(light),
        light_rgb=light_rgb,
        ambient=ambient,
        background=kind,
        arm_bend=arm_bend,
        noise_sigma=noise_sigma,
        bg_seed=bg_seed,
        defocus_px=defocus_px,
        exposure=exposure,
        tone=tone,
        lens_blur_px=lens_blur_px,
        vignette=vignette,
        jpeg_quality=jpeg_quality,
    )
    return scene, hand


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """``[size, size]`` value noise in 0..1: a ``cells``-square random grid, bicubic."""
    from PIL import Image

    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """sRGB (0..1) of an everyday surface: any hue, mostly low saturation (walls, wood,
    cloth and furniture are rarely the saturated colours of uniform random RGB)."""
    import colorsys

    hue, sat, val = rng.random(), 0.6 * rng.beta(1.3, 3.0), rng.uniform(0.12, 0.95)
    return np.array(colorsys.hsv_to_rgb(hue, sat, val))


def _wood(rng: np.random.Generator, size: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Planks: grain along one direction, warped by smooth noise, each plank its own shade."""
    import colorsys

    hue, sat = rng.uniform(0.06, 0.11), rng.uniform(0.3, 0.65)
    light, dark = rng.uniform(0.5, 0.9), rng.uniform(0.2, 0.45)
    angle = rng.uniform(0, np.pi)
    v = -x * np.sin(angle) + y * np.cos(angle)  # across the grain
    plank = rng.uniform(0.08, 0.25)
    index = np.floor(v / plank)
    warp = _smooth_noise(rng, size, int(rng.integers(3, 8)))
    # fine grain (tens of lines across a plank seen a metre away), gently wavy
    lines = 0.5 + 0.5 * np.sin(2 * np.pi * (v * rng.uniform(40, 120) + 1.5 * warp + index * 1.7))
    shade = 1.0 + 0.12 * np.sin(index * 12.9898 + rng.uniform(0, 6))  # plank to plank
    seam = 1.0 - 0.5 * np.exp(-(((v / plank - index) * plank) ** 2) / (2 * 0.002**2))
    t = (0.3 * lines**3 + 0.15 * _smooth_noise(rng, size, 40))[..., None]
    lo, hi = (np.array(colorsys.hsv_to_rgb(hue, sat, val)) for val in (dark, light))
    img = hi * (1 - t) + lo * t
    return img * (shade * seam * (0.9 + 0.2 * _smooth_noise(rng, size, 30)))[..., None]


def _fabric(rng: np.random.Generator, size: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A woven or knitted cloth: a fine weave over soft folds in one muted colour."""
    colour = _muted_colour(rng)
    period = rng.uniform(3.0, 9.0) / size
    weave = 0.5 + 0.25 * (np.sin(2 * np.pi * x / period) + np.sin(2 * np.pi * y / period))
    folds = _smooth_noise(rng, size, int(rng.integers(2, 6)))
    light = (0.85 + 0.15 * weave) * (0.6 + 0.6 * folds)
    return colour * light[..., None]


def _stone(rng: np.random.Generator, size: int) -> np.ndarray:
    """Speckled stone, carpet or plaster: fine noise between two close muted colours."""
    a = _muted_colour(rng)
    b = np.clip(a * rng.uniform(0.6, 1.3) + rng.normal(0, 0.05, 3), 0, 1)
    u = 0.6 * _smooth_noise(rng, size, size // 3) + 0.4 * _smooth_noise(rng, size, 12)
    return a * (1 - u[..., None]) + b * u[..., None]


def _clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """A room out of focus: large shapes (furniture, windows, shelves) in everyday colours
    over a wall, blurred as a lens focused on a near hand blurs them."""
    from PIL import Image, ImageDraw
    from scipy.ndimage import gaussian_filter

    img = Image.new("RGB", (size, size), tuple(int(c * 255) for c in _muted_colour(rng)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(5, 20))):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.05, 0.6, 2) * size
        fill = tuple(int(c * 255) for c in _muted_colour(rng))
        box = (float(x0), float(y0), float(x0 + w), float(y0 + h))
        (draw.ellipse if rng.random() < 0.3 else draw.rectangle)(box, fill=fill)
    arr = np.asarray(img, dtype=np.float64) / 255.0
    sigma = rng.uniform(0.01, 0.04) * size
    return gaussian_filter(arr, sigma=(sigma, sigma, 0.0), mode="reflect")


def background(
    kind: int, size: int, seed: int, defocus_px: float = 0.0, photo_like: bool = True
) -> np.ndarray:
    """``[size, size, 3]`` linear-light background of kind ``BACKGROUNDS[kind]``, blurred
    by a Gaussian of ``defocus_px`` (a hand in focus, the scene behind it not).

    With ``photo_like`` (the default) its colours are those of everyday surfaces
    (:func:`_muted_colour`), a plain wall is lit unevenly, ``clutter`` is a room out of focus
    and ``texture`` wood, fabric or stone; without it, version 2's: uniform random colours,
    two-colour smooth noise and octaves of coloured noise."""
    from halohand.apps.render import srgb_to_linear

    rng = np.random.default_rng(seed)
    if not photo_like:
        return _background_v2(rng, kind, size, defocus_px)
    name = BACKGROUNDS[kind]
    y, x = np.mgrid[0:size, 0:size] / size
    base = _muted_colour(rng)
    if name == "plain":
        # a wall or table under one lamp: brighter toward a point, darker away from it
        cx, cy = rng.uniform(-0.3, 1.3, 2)
        fall = 1.0 - rng.uniform(0.1, 0.4) * np.clip(((x - cx) ** 2 + (y - cy) ** 2) / 2, 0, 1)
        img = base * fall[..., None]
    elif name == "gradient":
        other = _muted_colour(rng)
        angle = rng.uniform(0, 2 * np.pi)
        u = np.clip(0.5 + (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle), 0, 1)
        img = base * (1 - u[..., None]) + other * u[..., None]
    elif name == "clutter":
        img = _clutter(rng, size)
    else:
        pick = rng.random()
        img = (
            _wood(rng, size, x, y)
            if pick < 0.4
            else _fabric(rng, size, x, y)
            if pick < 0.7
            else _stone(rng, size)
        )
    img = srgb_to_linear(np.clip(img, 0.0, 1.0))
    return _defocus(img, defocus_px)


def _defocus(img: np.ndarray, defocus_px: float) -> np.ndarray:
    if defocus_px > 0.3:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=(defocus_px, defocus_px, 0.0), mode="reflect")
    return img


def _background_v2(rng: np.random.Generator, kind: int, size: int, defocus_px: float):
    """Version 2's backgrounds (uniform random colours; noise and noise octaves)."""
    from halohand.apps.render import srgb_to_linear

    base = rng.random(3)
    if kind == 0:
        img = np.broadcast_to(base, (size, size, 3)).copy()
    elif kind == 1:
        other = rng.random(3)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:size, 0:size] / size
        u = np.clip(0.5 + (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle), 0, 1)
        img = base * (1 - u[..., None]) + other * u[..., None]
    elif kind == 2:
        other = rng.random(3)
        u = _smooth_noise(rng, size, int(rng.integers(3, 12)))
        img = base * (1 - u[..., None]) + other * u[..., None]
    else:
        img = np.zeros((size, size, 3))
        for octave, cells in enumerate((4, 16, 64)):
            colour = rng.random(3)
            u = _smooth_noise(rng, size, cells)
            img += (0.6**octave) * u[..., None] * colour
        img /= img.max() + 1e-9
    return _defocus(srgb_to_linear(np.clip(img, 0.0, 1.0)), defocus_px)


def arm_stub(
    scene: Scene, keypoints: np.ndarray, hand_vertices: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A forearm (elliptic frustum, closed at the far end) leaving the wrist away from the
    fingers, in the camera frame: ``(vertices [V, 3], faces [F, 3])``. Given the hand's
    ``hand_vertices`` ``[V, 3]``, it starts inside the hand's wrist end with the wrist's
    cross-section (no step where the two meet), else at a fixed size inside the heel of the
    palm.

    (A sleeve over part of the forearm was tried: on the tuning seed it cost 2 of 150 hands
    and found none, so the forearm is bare. A forearm leaving along the wrist's own axis
    with its outline, which hides the thin line where the two meet, found 137 of the tuning
    seed's 150 hands against 139 with this one, so it was not kept.)"""
    kp = keypoints
    finger = kp[9] - kp[0]
    finger /= np.linalg.norm(finger)
    across = kp[5] - kp[17]
    across -= finger * (across @ finger)
    across /= np.linalg.norm(across)
    thick = np.cross(finger, across)
    axis = -finger
    axis = _rot(across, scene.arm_bend[0]) @ _rot(thick, scene.arm_bend[1]) @ axis
    size = scene.hand_length / 0.185
    start = kp[0] + 0.012 * size * finger  # starts inside the heel of the palm
    w0, h0 = 0.028, 0.018  # half-axes at the wrist (metres, for an 18.5 cm hand)
    if hand_vertices is not None:
        d = hand_vertices - kp[0]
        along = d @ finger
        end = along.min()
        cut = d[along < end + 0.012 * size]  # the last 1.2 cm of the hand's wrist
        if len(cut) >= 6:
            u, v = cut @ across, cut @ thick
            middle = across * 0.5 * (u.max() + u.min()) + thick * 0.5 * (v.max() + v.min())
            # a little wider than the wrist and 1.2 cm into it: the arm covers the wrist's
            # capped end (whose rim would shade as a band) and leaves the hand without a step
            start = kp[0] + middle + finger * (end + 0.012 * size)
            w0, h0 = 0.53 * np.ptp(u) / size, 0.53 * np.ptp(v) / size
    length = 0.30 * size
    ring = 24
    theta = np.linspace(0, 2 * np.pi, ring, endpoint=False)
    # half-axes along the arm: wrist, muscle, elbow end (the forearm widens to the elbow)
    ts, ws, hs = [0.0, 0.35, 1.0], [w0, w0 + 0.005, w0 + 0.012], [h0, h0 + 0.006, h0 + 0.012]
    rings = []
    for t, w, h in zip(ts, ws, hs, strict=True):
        c = start + axis * length * t
        rings.append(c + size * (w * np.cos(theta)[:, None] * across
                                 + h * np.sin(theta)[:, None] * thick))  # fmt: skip
    verts = np.concatenate([*rings, [start + axis * length]])
    faces = []
    for r in range(len(rings) - 1):
        for q in range(ring):
            a, b = r * ring + q, r * ring + (q + 1) % ring
            c, d = a + ring, b + ring
            faces += [(a, c, b), (b, c, d)]
    cap = len(verts) - 1
    last = (len(rings) - 1) * ring
    faces += [(last + q, cap, last + (q + 1) % ring) for q in range(ring)]
    return verts, np.asarray(faces, dtype=np.int64)


def crease_occlusion(vertices: np.ndarray, normals: np.ndarray, radius: float) -> np.ndarray:
    """``[V]`` in ``0..1``: how much nearby surface (within ``radius``, metres) rises above
    each vertex's tangent plane, an ambient-occlusion-like measure (0 on open convex skin,
    large between touching fingers, in a fist's palm, at the roots of the fingers).

    Each pair of vertices closer than ``radius`` adds, for either end, the cosine of the
    other's direction from its normal (less 0.2, so a curved finger does not shade itself),
    weighted down with distance; the sum is over the weights of all neighbours."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(vertices).query_pairs(radius, output_type="ndarray")
    if not len(pairs):
        return np.zeros(len(vertices))
    i, j = pairs.T
    d = vertices[j] - vertices[i]
    dist = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
    w = 1.0 - dist / radius
    up_i = np.clip((normals[i] * d).sum(1) / dist - 0.2, 0.0, None) * w
    up_j = np.clip(-(normals[j] * d).sum(1) / dist - 0.2, 0.0, None) * w
    n = len(vertices)
    total = np.bincount(i, w, n) + np.bincount(j, w, n)
    occ = np.bincount(i, up_i, n) + np.bincount(j, up_j, n)
    return np.clip(occ / np.maximum(total, 1e-12), 0.0, 1.0)


#: The last phalanges in the project's order: (DIP, tip) of thumb, index, ..., little.
_TIPS = ((3, 4), (7, 8), (11, 12), (15, 16), (19, 20))


def skin_albedo(hand, scene: Scene, skin: np.ndarray, shading: bool) -> np.ndarray:
    """``[V, 3]`` linear albedo of the hand's vertices: palms and finger undersides lighter
    and pinker than the back (most of all on dark skin); with ``shading`` also a slight
    blotchy variation, redder darker knuckles and lighter, pinker nails, all placed on the
    rest-pose surface (so they move with the fingers)."""
    from halohand.apps.render import srgb_to_linear, vertex_normals

    lin = srgb_to_linear(skin)
    rest_v = hand.canonical_vertices
    rest_n = vertex_normals(rest_v, hand.faces)
    _, palm_normal = _hand_axes(hand.rest_keypoints, scene.side)
    palmar = np.clip(rest_n @ palm_normal, 0.0, 1.0)[:, None] ** 0.7
    lighter = srgb_to_linear(np.clip(skin + 0.3 * (1.0 - skin) * [1.0, 0.85, 0.8], 0, 1))
    colors = lin * (1.0 - palmar) + lighter * palmar
    if not shading:
        return colors
    rng = np.random.default_rng(scene.bg_seed + 2)
    kp = hand.rest_keypoints
    scale = scene.hand_length / 0.185
    # blotches: three random plane waves of 3-8 cm wavelength, +-5 % brightness and redness
    waves = rng.normal(size=(3, 3))
    waves *= (2 * np.pi / (rng.uniform(0.03, 0.08, 3) * scale))[:, None] / np.linalg.norm(
        waves, axis=1, keepdims=True
    )
    blotch = np.sin(rest_v @ waves.T + rng.uniform(0, 2 * np.pi, 3)).mean(1)
    colors = colors * (1.0 + 0.05 * blotch[:, None] * [1.0, 0.7, 0.6])
    dorsal = np.clip(-(rest_n @ palm_normal), 0.0, 1.0)
    # knuckles (dorsal skin over the finger joints): wrinkled, a little darker and redder
    joints = kp[[2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]]
    near = np.linalg.norm(rest_v[:, None] - joints[None], axis=2).min(1)
    knuckle = dorsal * np.exp(-((near / (0.007 * scale)) ** 2))
    colors = colors * (1.0 - 0.12 * knuckle[:, None] * [1.0, 1.25, 1.3])
    # nails: the dorsal side of the last phalanx's outer two thirds
    across = kp[5] - kp[17]
    nail = np.zeros(len(rest_v))
    for f, (dip, tip) in enumerate(_TIPS):
        bone = kp[tip] - kp[dip]
        t = (rest_v - kp[dip]) @ bone / (bone @ bone)
        radial = np.linalg.norm(rest_v - kp[dip] - t[:, None] * bone, axis=1)
        up = -palm_normal
        if f == 0:  # the thumb's nail faces away from the palm and the index finger
            side = across / np.linalg.norm(across)
            up = up + side  # (a left hand's rest keypoints are mirrored: the same rule)
            up /= np.linalg.norm(up)
        facing = np.clip((rest_n @ up - 0.4) / 0.3, 0.0, 1.0)
        along = np.clip((t - 0.3) / 0.2, 0.0, 1.0) * (t < 1.1)
        nail = np.maximum(nail, facing * along * (radial < 0.013 * scale))
    nail_rgb = srgb_to_linear(np.clip(skin + 0.4 * (1.0 - skin) * [1.0, 0.8, 0.8], 0, 1))
    return colors * (1.0 - nail[:, None]) + nail_rgb * nail[:, None]


_VERTEX = """
#version 330
uniform mat4 proj;
in vec3 in_pos; in vec3 in_normal; in vec3 in_color;
out vec3 v_normal; out vec3 v_color; out vec3 v_pos;
void main() {
    v_normal = in_normal; v_color = in_color; v_pos = in_pos;
    gl_Position = proj * vec4(in_pos, 1.0);
}
"""
_FRAGMENT = """
#version 330
uniform vec3 light_dir; uniform vec3 light_rgb; uniform vec3 ambient; uniform float id_mode;
in vec3 v_normal; in vec3 v_color; in vec3 v_pos;
out vec4 f_color;
vec3 view_fallback() { return normalize(-v_pos); }
void main() {
    if (id_mode > 0.0) { f_color = vec4(v_color, 1.0); return; }
    vec3 n = length(v_normal) > 0.0 ? normalize(v_normal) : view_fallback();
    vec3 view = normalize(-v_pos);
    if (dot(n, view) < 0.0) n = -n;
    vec3 l = -light_dir;
    float wrap = 0.35;  // light bleeding past the terminator, as through skin
    float diff = max((dot(n, l) + wrap) / (1.0 + wrap), 0.0);
    vec3 h = normalize(l + view);
    float spec = pow(max(dot(n, h), 0.0), 24.0) * 0.06;
    float sky = 0.5 + 0.5 * dot(n, vec3(0.0, -1.0, 0.0));
    vec3 c = v_color * (light_rgb * diff + ambient * mix(0.6, 1.0, sky)) + light_rgb * spec;
    f_color = vec4(c, 1.0);
}
"""


class EGLRenderer:
    """Headless OpenGL (moderngl on EGL) renderer of triangle meshes through a pinhole
    camera; one per process, reused for every image of one size."""

    def __init__(self, size: int) -> None:
        import moderngl

        self.size = size
        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.prog = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self.msaa = self.ctx.framebuffer(
            color_attachments=[self.ctx.renderbuffer((size, size), 4, samples=4, dtype="f4")],
            depth_attachment=self.ctx.depth_renderbuffer((size, size), samples=4),
        )
        self.plain = self.ctx.framebuffer(
            color_attachments=[self.ctx.renderbuffer((size, size), 4, dtype="f4")],
            depth_attachment=self.ctx.depth_renderbuffer((size, size)),
        )
        # A multisampled buffer cannot be read: it is resolved (averaged) into this one.
        self.resolved = self.ctx.framebuffer(
            color_attachments=[self.ctx.renderbuffer((size, size), 4, dtype="f4")]
        )

    @staticmethod
    def projection(k: np.ndarray, size: int, near: float = 0.01, far: float = 10.0) -> np.ndarray:
        """Pinhole ``K`` -> clip matrix; image rows come out top first (``y`` down), as the
        framebuffer is read bottom row first."""
        w = h = float(size)
        return np.array(
            [
                [2 * k[0, 0] / w, 0.0, 2 * k[0, 2] / w - 1.0, 0.0],
                [0.0, 2 * k[1, 1] / h, 2 * k[1, 2] / h - 1.0, 0.0],
                [0.0, 0.0, (far + near) / (far - near), -2 * far * near / (far - near)],
                [0.0, 0.0, 1.0, 0.0],
            ]
        )

    def _draw(self, fbo, verts, normals, colors, faces, k, scene: Scene, id_mode: bool, ambient):
        import moderngl

        data = np.concatenate([verts, normals, colors], axis=1).astype("f4")
        vbo = self.ctx.buffer(data.tobytes())
        ibo = self.ctx.buffer(np.asarray(faces, dtype="i4").tobytes())
        vao = self.ctx.vertex_array(
            self.prog, [(vbo, "3f 3f 3f", "in_pos", "in_normal", "in_color")], ibo
        )
        self.prog["proj"].write(self.projection(k, self.size).T.astype("f4").tobytes())
        self.prog["light_dir"].value = tuple(scene.light_dir)
        self.prog["light_rgb"].value = tuple(scene.light_rgb)
        self.prog["ambient"].value = tuple(ambient)
        self.prog["id_mode"].value = 1.0 if id_mode else 0.0
        fbo.use()
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE)
        vao.render(moderngl.TRIANGLES)
        if fbo is self.msaa:
            self.ctx.copy_framebuffer(self.resolved, self.msaa)
            fbo = self.resolved
        out = np.frombuffer(fbo.read(components=4, dtype="f4"), dtype="f4")
        for obj in (vao, vbo, ibo):
            obj.release()
        return out.reshape(self.size, self.size, 4).astype(np.float64)

    def render(self, verts, normals, colors, ids, faces, k, scene, ambient=None):
        """``(rgb [H, W, 3] linear premultiplied, alpha [H, W], ids [H, W] uint8)``;
        ``ambient``: the ambient light's linear RGB (default ``scene.ambient`` white)."""
        ambient = np.full(3, scene.ambient) if ambient is None else ambient
        rgba = self._draw(self.msaa, verts, normals, colors, faces, k, scene, False, ambient)
        id_colors = np.zeros_like(colors)
        id_colors[:, 0] = ids
        idimg = self._draw(self.plain, verts, normals, id_colors, faces, k, scene, True, ambient)
        return rgba[..., :3], rgba[..., 3], np.round(idimg[..., 0]).astype(np.uint8)


def _numpy_render(verts, normals, colors, ids, faces, k, scene, ambient=None):
    """The fallback: the project's numpy rasteriser (its own studio lighting)."""
    from halohand.apps.render import linear_to_srgb, render_camera_layer

    size = (scene.size, scene.size)
    rgb, alpha = render_camera_layer(verts, faces, k, size, linear_to_srgb(colors), 2)
    hand_only = faces[(ids[faces] == 1).all(axis=1)]
    _, hand_alpha = render_camera_layer(verts, hand_only, k, size, supersample=1)
    _, all_alpha = render_camera_layer(verts, faces, k, size, supersample=1)
    # ids: hand where the hand alone covers the pixel (the arm lies behind the hand there)
    id_img = np.where(hand_alpha > 0.5, 1, np.where(all_alpha > 0.5, 2, 0)).astype(np.uint8)
    return rgb, alpha, id_img


def render_scene(
    scene: Scene, hand, renderer: EGLRenderer | None, look: Look | None = None
) -> dict[str, Any]:
    """Render one scene: ``image`` uint8 ``[S, S, 3]``, ``mask`` uint8 ``[S, S]`` and the
    labels of :mod:`this module <halohand.apps.synthetic>`; ``look``: the realism switches
    (default all on)."""
    from halohand.apps.render import linear_to_srgb, srgb_to_linear, to_uint8, vertex_normals

    look = Look() if look is None else look
    rot, t, k = scene.rotation, scene.translation, scene.intrinsics
    hv = hand.vertices @ rot.T + t
    kp3 = hand.keypoints @ rot.T + t
    av, af = arm_stub(scene, kp3, hv if look.wrist else None)
    verts = np.concatenate([hv, av])
    faces = np.concatenate([hand.faces, af + len(hv)])
    hand_n, arm_n = vertex_normals(hv, hand.faces), vertex_normals(av, af)
    normals = np.concatenate([hand_n, arm_n])
    skin_srgb = (
        scene.skin
        if look.skin
        else np.clip(scene.skin / SKIN_TONES[scene.tone] * SKIN_TONES_V2[scene.tone], 0, 1)
    )
    skin = srgb_to_linear(skin_srgb)
    colors = np.broadcast_to(skin, verts.shape).copy()
    colors[: len(hv)] = skin_albedo(hand, scene, skin_srgb, look.shading)
    # the forearm's inner side lighter, as the palm (its normals in the camera frame)
    _, palm_normal = _hand_axes(hand.rest_keypoints, scene.side)
    lighter = srgb_to_linear(np.clip(skin_srgb + 0.3 * (1.0 - skin_srgb) * [1.0, 0.85, 0.8], 0, 1))
    arm_palmar = np.clip(arm_n @ (rot @ palm_normal), 0.0, 1.0)[:, None] ** 0.7
    colors[len(hv) :] = skin * (1.0 - arm_palmar) + lighter * arm_palmar
    if look.shading:
        # creases, the gaps between fingers and a fist's palm get less light, and what
        # they get has passed through skin (redder): darken toward a red-brown
        occ = crease_occlusion(hv, hand_n, 0.02 * scene.hand_length / 0.185)[:, None]
        colors[: len(hv)] *= 1.0 - 0.75 * occ * [0.8, 1.0, 1.05]
    bg = background(scene.background, scene.size, scene.bg_seed, scene.defocus_px, look.backgrounds)
    ambient = np.full(3, scene.ambient)
    if look.backgrounds:
        # light bounced off the surroundings takes their colour
        mean = bg.reshape(-1, 3).mean(0)
        # (a little: a camera's white balance takes most of the cast away)
        ambient = ambient * (0.85 + 0.15 * mean / max(float(mean.mean()), 1e-3))
    if look.smooth:
        # positions and colours by the same (linear) Loop rule, normals from the new mesh
        import trimesh

        hand_colors, _ = trimesh.remesh.subdivide_loop(colors[: len(hv)], hand.faces, 1)
        hv_draw, hand_faces = trimesh.remesh.subdivide_loop(hv, hand.faces, 1)
        verts = np.concatenate([hv_draw, av])
        faces = np.concatenate([hand_faces, af + len(hv_draw)])
        normals = np.concatenate([vertex_normals(hv_draw, hand_faces), arm_n])
        colors = np.concatenate([hand_colors, colors[len(hv) :]])
    n_hand = len(verts) - len(av)
    ids = np.r_[np.ones(n_hand), 2 * np.ones(len(av))]
    draw = renderer.render if renderer is not None else _numpy_render
    rgb, alpha, id_img = draw(verts, normals, colors, ids, faces, k, scene, ambient)
    if look.exposure:
        # a camera exposes for its subject: the hand's median brightness lands near its
        # albedo's (times 0.8-1.3), wherever the lights put it
        on_hand = (id_img == 1) & (alpha > 0.99)
        if on_hand.sum() > 20:
            lum = rgb[on_hand] @ [0.2126, 0.7152, 0.0722]
            target = float(skin @ [0.2126, 0.7152, 0.0722]) * scene.exposure
            rgb = rgb * float(np.clip(target / max(np.median(lum), 1e-6), 0.5, 4.0))
    lin = bg * (1.0 - alpha[..., None]) + rgb
    if look.photo:
        from scipy.ndimage import gaussian_filter

        y, x = (np.mgrid[0 : scene.size, 0 : scene.size] + 0.5) / scene.size - 0.5
        lin = lin * (1.0 - scene.vignette * (x**2 + y**2) / 0.5)[..., None]
        blur = scene.lens_blur_px
        lin = gaussian_filter(lin, sigma=(blur, blur, 0.0), mode="reflect")
    rng = np.random.default_rng(scene.bg_seed + 1)
    srgb = linear_to_srgb(np.clip(lin, 0.0, 1.0)) + scene.noise_sigma * rng.standard_normal(
        lin.shape
    )
    image = to_uint8(srgb)
    if look.photo:
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=scene.jpeg_quality)
        image = np.asarray(Image.open(buffer).convert("RGB")).copy()
    pix = kp3[:, :2] / kp3[:, 2:3] * [k[0, 0], k[1, 1]] + [k[0, 2], k[1, 2]]
    labels = {
        "keypoints_2d": pix,
        "keypoints_3d": kp3,
        "intrinsics": k,
        "side": np.int64(0 if scene.side == "right" else 1),
        "pose": scene.pose,
        "length_factors": scene.length_factors,
        "palm_width": np.float64(scene.palm_width),
        "hand_length": np.float64(scene.hand_length),
        "vertices": hv,
        "faces": np.asarray(hand.faces, dtype=np.int64),
        "skin_srgb": skin_srgb,
        "background": np.int64(scene.background),
    }
    return {"image": image, "mask": id_img, "labels": labels}


def make_renderer(choice: str, size: int) -> tuple[EGLRenderer | None, str]:
    """The renderer for ``--renderer`` (``auto``: EGL if it starts, else numpy) and its
    name as the manifest records it."""
    if choice not in RENDERERS:
        raise HalohandInputError(
            f"--renderer must be one of {', '.join(RENDERERS)}, got {choice!r}"
        )
    if choice == "numpy":
        return None, "numpy"
    try:
        return EGLRenderer(size), "egl"
    except Exception as exc:  # no moderngl, no EGL display, no GL 3.3: say so, fall back
        if choice == "egl":
            raise HalohandInputError(f"the EGL renderer did not start: {exc}") from exc
        return None, "numpy"


def _files(out: Path, index: int) -> tuple[Path, Path, Path]:
    name = f"{index:06d}"
    return (
        out / "images" / f"{name}.png",
        out / "masks" / f"{name}.png",
        out / "labels" / f"{name}.npz",
    )


def read_labels(out: Path, index: int) -> dict[str, np.ndarray]:
    """The labels of image ``index`` of a rendered set."""
    with np.load(_files(Path(out), index)[2]) as z:
        return {key: z[key] for key in z.files}


def render_set(
    out: Path,
    n: int,
    seed: int,
    size: int = 512,
    renderer: str = "auto",
    log=print,
    look: Look | None = None,
) -> dict[str, Any]:
    """Render images ``0..n-1`` into ``out`` (see the module docstring); resumable.
    ``look``: the realism switches (default all on; others are recorded in the manifest).

    Returns:
        ``{"renderer", "rendered", "skipped", "seconds"}``.
    """
    import time

    from halohand.apps.render import save_png
    from halohand.data.shards import write_npz_deterministic

    if isinstance(n, bool) or not 1 <= int(n) <= MAX_IMAGES:
        raise HalohandInputError(f"--n must be in 1..{MAX_IMAGES}, got {n}")
    if not 64 <= int(size) <= 4096:
        raise HalohandInputError(f"--size must be in 64..4096 pixels, got {size}")
    if out.exists() and not out.is_dir():
        raise HalohandInputError(f"--out {out}: exists and is not a folder")
    manifest_path = out / MANIFEST
    previous = None
    if manifest_path.is_file():
        try:
            previous = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise HalohandInputError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    gl, name = make_renderer(renderer, size)
    look = Look() if look is None else look
    settings = {
        "format": RENDER_VERSION,
        "seed": int(seed),
        "size": int(size),
        "renderer": name,
        "look": look.changed(),  # the switches turned off ({} for the full look)
    }
    if previous is not None:
        old = {key: previous.get(key, {} if key == "look" else None) for key in settings}
        if old != settings:
            diff = ", ".join(
                f"{k} {old[k]} -> {settings[k]}" for k in settings if old[k] != settings[k]
            )
            raise HalohandInputError(
                f"{out} holds a rendered set with other settings ({diff}); use another --out"
            )
    for sub in ("images", "masks", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    count = max(int(n), int(previous.get("n", 0)) if previous else 0)
    write_text_atomic(manifest_path, json.dumps({**settings, "n": count}, indent=1) + "\n")
    t0 = time.perf_counter()
    rendered = skipped = 0
    for i in range(int(n)):
        files = _files(out, i)
        if all(f.is_file() for f in files):
            skipped += 1
            continue
        scene, hand = sample_scene(int(seed), i, int(size), look)
        result = render_scene(scene, hand, gl, look)
        with atomic_path(files[0]) as tmp:
            save_png(str(tmp), result["image"])
        with atomic_path(files[1]) as tmp:
            from PIL import Image

            Image.fromarray(result["mask"]).save(tmp, format="PNG")
        write_npz_deterministic(files[2], result["labels"])
        rendered += 1
        if log is not None and rendered % 50 == 0:
            log(f"rendered {rendered} ({i + 1}/{n})")
    return {
        "renderer": name,
        "rendered": rendered,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 2),
    }
