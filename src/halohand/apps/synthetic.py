"""Rendered photos of posed hands with their ground truth: ``halohand data render``.

Each image is one hand of the embedded model (identity from the identity prior, pose from the
pose prior, either side) with a forearm stub, seen through a pinhole camera of random field of
view from a random direction (palm or back toward the camera), at a distance where the hand
spans 25-65 % of the image, lit by a random key light and ambient light, with a skin tone
drawn from a palette (light to dark; palms and finger undersides lighter), over a
background that is a plain colour, a gradient, smooth noise or a texture of several noise
octaves, out of focus by a random amount, and a little sensor noise. Written per
image ``i`` into the output folder, each atomically:

* ``images/000042.png``: the photo (sRGB, ``--size`` pixels square);
* ``masks/000042.png``: 0 background, 1 hand, 2 forearm (the visible, front-most surface);
* ``labels/000042.npz``: ``keypoints_2d [21, 2]`` (pixels), ``keypoints_3d [21, 3]`` (metres,
  camera frame: ``x`` right, ``y`` down, ``z`` ahead), ``intrinsics [3, 3]``, ``side``
  (0 right, 1 left), ``pose [15, 3]`` (radians), ``length_factors [16]``, ``palm_width``,
  ``hand_length`` (metres), ``vertices [V, 3]`` and ``faces [F, 3]`` of the hand mesh
  (camera frame), ``skin_srgb [3]``, ``background`` (kind index, see
  :data:`BACKGROUNDS`);
* ``manifest.json``: the settings (seed, size, renderer, format version); a rerun with the
  same settings skips every image whose three files exist and extends to a larger ``--n``;
  other settings are refused.

Determinism: image ``i`` draws everything from ``SeedSequence(seed, spawn_key=(RENDER_KEY,
i))``, so its bytes depend on neither ``--n`` nor the order of work. The renderer is
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
RENDER_VERSION = 2
#: Spawn key that separates these seeds from the data engine's splits.
RENDER_KEY = 7
MANIFEST = "manifest.json"
RENDERERS = ("auto", "egl", "numpy")
BACKGROUNDS = ("plain", "gradient", "noise", "texture")
#: Skin tones (sRGB 0..255), light to dark.
SKIN_TONES = np.array(
    [
        (246, 222, 200), (236, 198, 170), (224, 176, 140), (200, 148, 110),
        (170, 116, 84), (136, 90, 62), (100, 66, 46), (72, 48, 36),
    ],
    dtype=np.float64,
) / 255.0  # fmt: skip
MAX_IMAGES = 1_000_000


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


def sample_scene(seed: int, index: int, size: int) -> tuple[Scene, Any]:
    """The scene of image ``index`` and its posed hand (a :class:`PosedHand`)."""
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
    fov = np.radians(rng.uniform(35.0, 75.0))
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
        skin=np.clip(SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.94, 1.06, 3), 0, 1),
        light_dir=light / np.linalg.norm(light),
        light_rgb=np.array([1.0, 0.97, 0.92]) * rng.uniform(0.7, 1.2) * rng.uniform(0.9, 1.1, 3),
        ambient=float(rng.uniform(0.15, 0.45)),
        background=int(rng.integers(len(BACKGROUNDS))),
        arm_bend=rng.uniform(-0.25, 0.25, 2),
        noise_sigma=float(rng.uniform(0.0, 0.02)),
        bg_seed=int(rng.integers(2**31)),
        defocus_px=float(rng.uniform(0.0, 4.0) * size / 512),
    )
    return scene, hand


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """``[size, size]`` value noise in 0..1: a ``cells``-square random grid, bicubic."""
    from PIL import Image

    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)


def background(kind: int, size: int, seed: int, defocus_px: float = 0.0) -> np.ndarray:
    """``[size, size, 3]`` linear-light background of kind ``BACKGROUNDS[kind]``, blurred
    by a Gaussian of ``defocus_px`` (a hand in focus, the scene behind it not)."""
    from halohand.apps.render import srgb_to_linear

    rng = np.random.default_rng(seed)
    base = rng.random(3)
    name = BACKGROUNDS[kind]
    if name == "plain":
        img = np.broadcast_to(base, (size, size, 3)).copy()
    elif name == "gradient":
        other = rng.random(3)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:size, 0:size] / size
        u = np.clip(0.5 + (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle), 0, 1)
        img = base * (1 - u[..., None]) + other * u[..., None]
    elif name == "noise":
        other = rng.random(3)
        u = _smooth_noise(rng, size, int(rng.integers(3, 12)))
        img = base * (1 - u[..., None]) + other * u[..., None]
    else:  # texture: octaves of coloured noise (cloth, wood, clutter at a glance)
        img = np.zeros((size, size, 3))
        for octave, cells in enumerate((4, 16, 64)):
            colour = rng.random(3)
            u = _smooth_noise(rng, size, cells)
            img += (0.6**octave) * u[..., None] * colour
        img /= img.max() + 1e-9
    img = srgb_to_linear(np.clip(img, 0.0, 1.0))
    if defocus_px > 0.3:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=(defocus_px, defocus_px, 0.0), mode="reflect")
    return img


def arm_stub(scene: Scene, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A forearm (elliptic frustum, closed at the far end) leaving the wrist away from the
    fingers, in the camera frame: ``(vertices [V, 3], faces [F, 3])``."""
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
    length = 0.30 * size
    ring = 24
    theta = np.linspace(0, 2 * np.pi, ring, endpoint=False)
    rings = []
    for t, (w, h) in zip((0.0, 0.35, 1.0), ((0.028, 0.018), (0.033, 0.024), (0.04, 0.03)),
                         strict=True):  # fmt: skip
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
uniform vec3 light_dir; uniform vec3 light_rgb; uniform float ambient; uniform float id_mode;
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

    def _draw(self, fbo, verts, normals, colors, faces, k, scene: Scene, id_mode: bool):
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
        self.prog["ambient"].value = scene.ambient
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

    def render(self, verts, normals, colors, ids, faces, k, scene):
        """``(rgb [H, W, 3] linear premultiplied, alpha [H, W], ids [H, W] uint8)``."""
        rgba = self._draw(self.msaa, verts, normals, colors, faces, k, scene, False)
        id_colors = np.zeros_like(colors)
        id_colors[:, 0] = ids
        idimg = self._draw(self.plain, verts, normals, id_colors, faces, k, scene, True)
        return rgba[..., :3], rgba[..., 3], np.round(idimg[..., 0]).astype(np.uint8)


def _numpy_render(verts, normals, colors, ids, faces, k, scene):
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


def render_scene(scene: Scene, hand, renderer: EGLRenderer | None) -> dict[str, Any]:
    """Render one scene: ``image`` uint8 ``[S, S, 3]``, ``mask`` uint8 ``[S, S]`` and the
    labels of :mod:`this module <halohand.apps.synthetic>`."""
    from halohand.apps.render import linear_to_srgb, srgb_to_linear, vertex_normals

    rot, t, k = scene.rotation, scene.translation, scene.intrinsics
    hv = hand.vertices @ rot.T + t
    kp3 = hand.keypoints @ rot.T + t
    av, af = arm_stub(scene, kp3)
    verts = np.concatenate([hv, av])
    faces = np.concatenate([hand.faces, af + len(hv)])
    normals = np.concatenate([vertex_normals(hv, hand.faces), vertex_normals(av, af)])
    skin = srgb_to_linear(scene.skin)
    colors = np.broadcast_to(skin, verts.shape).copy()
    # Palms and the undersides of the fingers are lighter than the back of the hand (most
    # of all on dark skin): blend toward a lighter, pinker tone where the rest-pose surface
    # faces out of the palm.
    _, palm_normal = _hand_axes(hand.rest_keypoints, scene.side)
    rest_normals = vertex_normals(hand.canonical_vertices, hand.faces)
    palmar = np.clip(rest_normals @ palm_normal, 0.0, 1.0)[:, None] ** 0.7
    lighter = srgb_to_linear(
        np.clip(scene.skin + 0.3 * (1.0 - scene.skin) * [1.0, 0.85, 0.8], 0, 1)
    )
    colors[: len(hv)] = skin * (1.0 - palmar) + lighter * palmar
    # the forearm's inner side likewise (its normals in the camera frame, the palm's too)
    arm_palmar = np.clip(vertex_normals(av, af) @ (rot @ palm_normal), 0.0, 1.0)[:, None]
    colors[len(hv) :] = skin * (1.0 - arm_palmar**0.7) + lighter * arm_palmar**0.7
    ids = np.r_[np.ones(len(hv)), 2 * np.ones(len(av))]
    draw = renderer.render if renderer is not None else None
    if draw is not None:
        rgb, alpha, id_img = draw(verts, normals, colors, ids, faces, k, scene)
    else:
        rgb, alpha, id_img = _numpy_render(verts, normals, colors, ids, faces, k, scene)
    bg = background(scene.background, scene.size, scene.bg_seed, scene.defocus_px)
    lin = bg * (1.0 - alpha[..., None]) + rgb
    rng = np.random.default_rng(scene.bg_seed + 1)
    srgb = linear_to_srgb(np.clip(lin, 0.0, 1.0)) + scene.noise_sigma * rng.standard_normal(
        lin.shape
    )
    image = np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)
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
        "skin_srgb": scene.skin,
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
    out: Path, n: int, seed: int, size: int = 512, renderer: str = "auto", log=print
) -> dict[str, Any]:
    """Render images ``0..n-1`` into ``out`` (see the module docstring); resumable.

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
    settings = {"format": RENDER_VERSION, "seed": int(seed), "size": int(size), "renderer": name}
    if previous is not None:
        old = {key: previous.get(key) for key in settings}
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
        scene, hand = sample_scene(int(seed), i, int(size))
        result = render_scene(scene, hand, gl)
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
