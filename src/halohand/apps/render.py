"""A small pure-numpy mesh renderer (orthographic z-buffer, smooth shading) for figures.

No OpenGL: every triangle's bounding-box pixels are rasterised at once with numpy, the
nearest fragment wins, normals and colours are interpolated per pixel and shaded in linear
light (key, fill and rim lights over a hemisphere ambient), and the image is supersampled
and averaged for anti-aliasing. Fast enough for tens of thousands of triangles at a few
hundred pixels (tens to a few hundred milliseconds). Text labels use Pillow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from halohand.skeleton.colors import PART_COLORS as PART_COLORS  # figures colour by part

#: A light skin tone (sRGB 0..1) used when no colours are given.
SKIN_TONE = np.array([0.93, 0.76, 0.65])

#: Named views: (azimuth, elevation) in degrees around the model's +Y axis. The hand model
#: frame has +Y toward the fingers, +Z out of the back of the hand, thumb on -X (right hand).
VIEWS: dict[str, tuple[float, float]] = {
    "palm": (180.0, 0.0),
    "back": (0.0, 0.0),
    "thumb": (-90.0, 0.0),
    "palm34": (215.0, 20.0),
    "back34": (-30.0, 20.0),
}


def view_rotation(view: str | tuple[float, float] | np.ndarray = "palm34") -> np.ndarray:
    """``[3, 3]`` rotation from model to camera coordinates (camera looks along -z, y up).

    ``view`` is a name of :data:`VIEWS`, an ``(azimuth, elevation)`` pair in degrees (azimuth
    0 looks at the +Z side of the model, elevation raises the camera toward +Y), or a
    rotation matrix.
    """
    if isinstance(view, str):
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
        view = VIEWS[view]
    arr = np.asarray(view, dtype=np.float64)
    if arr.shape == (3, 3):
        return arr
    if arr.shape != (2,):
        raise ValueError("view must be a name, an (azimuth, elevation) pair or a 3x3 rotation")
    az, el = np.deg2rad(arr)
    ca, sa, ce, se = np.cos(az), np.sin(az), np.cos(el), np.sin(el)
    yaw = np.array([[ca, 0.0, -sa], [0.0, 1.0, 0.0], [sa, 0.0, ca]])
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, ce, -se], [0.0, se, ce]])
    return pitch @ yaw


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``[V, 3]`` of an outward-oriented mesh."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray | Sequence[float] | None = None,
    size: tuple[int, int] = (256, 256),
    view: str | tuple[float, float] | np.ndarray = "palm34",
    center: np.ndarray | None = None,
    extent: float | None = None,
    background: Sequence[float] | np.ndarray = (1.0, 1.0, 1.0),
    supersample: int = 2,
) -> np.ndarray:
    """Render a triangle mesh to an RGB image (key, fill and rim light, anti-aliased).

    Args:
        vertices: ``[V, 3]`` positions (any unit).
        faces: ``[F, 3]`` triangle indices, outward orientation (used for the normals).
        colors: ``[V, 3]`` per-vertex or ``[3]`` uniform sRGB in 0..1 (default: skin tone).
        size: ``(width, height)`` of the image in pixels.
        view: camera direction, see :func:`view_rotation`.
        center: ``[3]`` model point at the image centre (default: bounding-box centre).
        extent: model-space length spanned by the shorter image side (default: fit the mesh
            with a margin); pass the same value for several meshes to keep their scale.
        background: sRGB ``[3]`` in 0..1, or an image ``[height, width, 3]`` (uint8, or
            float in 0..1) such as :func:`gradient_background`.
        supersample: rendering scale per axis for anti-aliasing (the samples are averaged in
            linear light, so edges blend into the background without dark fringes).

    Returns:
        ``[height, width, 3]`` uint8 image.
    """
    width, height = int(size[0]), int(size[1])
    rgb, alpha = render_layer(vertices, faces, colors, size, view, center, extent, supersample)
    bg = np.asarray(background)
    if bg.ndim == 3:
        if bg.shape != (height, width, 3):
            raise ValueError(f"background image must be [{height}, {width}, 3], got {bg.shape}")
        bg = bg / 255.0 if bg.dtype == np.uint8 else bg.astype(np.float64)
    else:
        bg = np.broadcast_to(np.asarray(bg, dtype=np.float64), (height, width, 3))
    out = rgb + (1.0 - alpha[..., None]) * srgb_to_linear(bg)
    return to_uint8(linear_to_srgb(out))


def render_layer(
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray | Sequence[float] | None = None,
    size: tuple[int, int] = (256, 256),
    view: str | tuple[float, float] | np.ndarray = "palm34",
    center: np.ndarray | None = None,
    extent: float | None = None,
    supersample: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """The shaded mesh as a premultiplied linear-light layer, for compositing.

    Same arguments as :func:`render_mesh` (no background). Returns ``rgb [H, W, 3]`` (linear
    light, premultiplied by coverage) and ``alpha [H, W]`` (pixel coverage in 0..1).
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise ValueError("vertices must be [V, 3] and faces [F, 3]")
    width, height = int(size[0]), int(size[1])
    ss = max(1, int(supersample))
    w_px, h_px = width * ss, height * ss

    if colors is None:
        col = np.broadcast_to(SKIN_TONE, v.shape)
    else:
        col = np.asarray(colors, dtype=np.float64)
        col = np.broadcast_to(col, v.shape) if col.shape == (3,) else col
        if col.shape != v.shape:
            raise ValueError(f"colors must be [3] or [V, 3], got {list(col.shape)}")
    # Shading is done in linear light (colours are sRGB): lights then add up physically and
    # the terminator falls off softly instead of the muddy mid-tones of sRGB arithmetic.
    col = srgb_to_linear(col)

    rot = view_rotation(view)
    cam = v @ rot.T
    if center is None:
        center_cam = 0.5 * (cam.min(0) + cam.max(0)) if len(cam) else np.zeros(3)
    else:
        center_cam = np.asarray(center, dtype=np.float64) @ rot.T
    if extent is None:
        span = (cam.max(0) - cam.min(0))[:2] if len(cam) else np.ones(2)
        extent = float(max(span[0] * min(w_px, h_px) / w_px, span[1] * min(w_px, h_px) / h_px))
        extent *= 1.08
    px_per_unit = min(w_px, h_px) / max(extent, 1e-12)

    rgb = np.zeros((h_px * w_px, 3))
    alpha = np.zeros(h_px * w_px)
    if len(f) and len(v):
        normals = vertex_normals(v, f) @ rot.T
        # Pixel coordinates: x to the right, y down; depth = camera z (larger is nearer).
        sx = (cam[:, 0] - center_cam[0]) * px_per_unit + 0.5 * w_px
        sy = -(cam[:, 1] - center_cam[1]) * px_per_unit + 0.5 * h_px
        frag = _rasterize(sx, sy, cam[:, 2], f, w_px, h_px)
        if frag is not None:
            _paint(frag, f, normals, col, rgb, alpha)
    return _resolve(rgb, alpha, height, width, ss)


def _paint(
    frag: tuple[np.ndarray, np.ndarray, np.ndarray], faces: np.ndarray, normals: np.ndarray,
    colors: np.ndarray, rgb: np.ndarray, alpha: np.ndarray,
) -> None:  # fmt: skip
    """Shade the rasterised fragments ``(pixels, triangles, barycentrics)`` into the flat
    ``rgb [P, 3]`` / ``alpha [P]`` buffers from per-vertex normals and colours."""
    pix, tri, bary = frag
    corners = faces[tri]
    n = np.einsum("fk,fkc->fc", bary, normals[corners])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    c = np.einsum("fk,fkc->fc", bary, colors[corners])
    rgb[pix] = _shade(n, c)
    alpha[pix] = 1.0


def _resolve(
    rgb: np.ndarray, alpha: np.ndarray, height: int, width: int, ss: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat supersampled buffers -> ``[height, width, 3]`` / ``[height, width]`` images
    (box filter over ``ss x ss`` samples)."""
    rgb = rgb.reshape(height * ss, width * ss, 3)
    alpha = alpha.reshape(height * ss, width * ss)
    if ss > 1:
        rgb = rgb.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))
        alpha = alpha.reshape(height, ss, width, ss).mean(axis=(1, 3))
    return rgb, alpha


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB (0..1) to linear light."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light to sRGB (0..1), clipped."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1.0 / 2.4) - 0.055)


def to_uint8(c: np.ndarray) -> np.ndarray:
    """0..1 floats to uint8."""
    return np.clip(np.round(np.asarray(c) * 255.0), 0, 255).astype(np.uint8)


def gradient_background(
    size: tuple[int, int],
    top: Sequence[float] = (0.93, 0.94, 0.95),
    bottom: Sequence[float] = (0.78, 0.79, 0.81),
) -> np.ndarray:
    """A vertical studio-style gradient ``[height, width, 3]`` (sRGB floats in 0..1).

    A neutral grey that darkens slightly downward reads as a floor and a backdrop without
    competing with the part colours.
    """
    width, height = int(size[0]), int(size[1])
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    # ease so that most of the frame stays light and only the lower part darkens
    t = t * t
    col = (1.0 - t) * np.asarray(top, dtype=np.float64) + t * np.asarray(bottom, dtype=np.float64)
    return np.broadcast_to(col, (height, width, 3)).copy()


#: Lights in camera space (viewer along +z, y up): direction toward the light, linear RGB
#: intensity. A warm key from the upper left, a cool dim fill from the right, and a rim
#: light from behind that outlines the silhouette against the background.
KEY_LIGHT = (np.array([-0.45, 0.65, 0.62]), np.array([1.00, 0.96, 0.90]) * 0.95)
FILL_LIGHT = (np.array([0.75, -0.05, 0.45]), np.array([0.80, 0.88, 1.00]) * 0.30)
RIM_LIGHT = (np.array([0.35, 0.45, -0.80]), np.array([1.00, 1.00, 1.00]) * 0.55)
#: Hemisphere ambient: sky (from +y) and ground (from -y) colours, linear RGB.
SKY_AMBIENT = np.array([0.22, 0.24, 0.27])
GROUND_AMBIENT = np.array([0.12, 0.11, 0.10])


def _shade(normals: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Key / fill / rim lighting with hemisphere ambient, in linear light (viewer along +z).

    Diffuse terms use wrapped Lambert (light reaches a little past the terminator, as it
    does through skin) and the key light adds a soft Blinn-Phong highlight.
    """
    n = normals
    view_dir = np.array([0.0, 0.0, 1.0])
    up = 0.5 + 0.5 * n[:, 1:2]
    out = colors * (up * SKY_AMBIENT + (1.0 - up) * GROUND_AMBIENT)
    wrap = 0.25
    for direction, color in (KEY_LIGHT, FILL_LIGHT):
        d = direction / np.linalg.norm(direction)
        diffuse = np.clip((n @ d + wrap) / (1.0 + wrap), 0.0, None)
        out = out + diffuse[:, None] * colors * color
    d, color = KEY_LIGHT
    d = d / np.linalg.norm(d)
    half = (d + view_dir) / np.linalg.norm(d + view_dir)
    spec = np.clip(n @ half, 0.0, None) ** 40 * (n @ d > 0)
    out = out + 0.18 * spec[:, None] * color
    # Rim: grazing normals (facing away from the viewer) that also face the back light.
    d, color = RIM_LIGHT
    d = d / np.linalg.norm(d)
    grazing = np.clip(1.0 - n @ view_dir, 0.0, 1.0) ** 3
    facing = np.clip(n[:, :2] @ d[:2] / np.linalg.norm(d[:2]) * 0.5 + 0.5, 0.0, 1.0)
    out = out + (grazing * facing)[:, None] * color * (0.35 + 0.65 * colors)
    return out


def _rasterize(
    sx: np.ndarray, sy: np.ndarray, depth: np.ndarray, faces: np.ndarray, w: int, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Visible fragments: flat pixel index ``[N]``, triangle ``[N]``, barycentrics ``[N, 3]``."""
    x = sx[faces]
    y = sy[faces]
    x0 = np.clip(np.floor(x.min(1) - 0.5).astype(np.int64) + 1, 0, w)
    x1 = np.clip(np.floor(x.max(1) - 0.5).astype(np.int64) + 1, 0, w)
    y0 = np.clip(np.floor(y.min(1) - 0.5).astype(np.int64) + 1, 0, h)
    y1 = np.clip(np.floor(y.max(1) - 0.5).astype(np.int64) + 1, 0, h)
    bw, bh = x1 - x0, y1 - y0
    count = np.where((bw > 0) & (bh > 0), bw * bh, 0)
    total = int(count.sum())
    if total == 0:
        return None
    tri = np.repeat(np.arange(len(faces)), count)
    local = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    px = x0[tri] + local % bw[tri]
    py = y0[tri] + local // bw[tri]
    cx, cy = px + 0.5, py + 0.5
    xa, xb, xc = x[tri, 0], x[tri, 1], x[tri, 2]
    ya, yb, yc = y[tri, 0], y[tri, 1], y[tri, 2]
    area = (xb - xa) * (yc - ya) - (xc - xa) * (yb - ya)
    ok = np.abs(area) > 1e-12
    safe = np.where(ok, area, 1.0)
    l1 = ((xc - xb) * (cy - yb) - (yc - yb) * (cx - xb)) / safe
    l2 = ((xa - xc) * (cy - yc) - (ya - yc) * (cx - xc)) / safe
    l3 = 1.0 - l1 - l2
    inside = ok & (l1 >= -1e-9) & (l2 >= -1e-9) & (l3 >= -1e-9)
    if not inside.any():
        return None
    tri, px, py = tri[inside], px[inside], py[inside]
    bary = np.stack([l1[inside], l2[inside], l3[inside]], axis=1)
    z = np.einsum("nk,nk->n", bary, depth[faces[tri]])
    pix = py * w + px
    # Keep the nearest fragment per pixel: sort by pixel, then by depth descending.
    order = np.lexsort((-z, pix))
    pix, tri, bary = pix[order], tri[order], bary[order]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    return pix[first], tri[first], bary[first]


def image_grid(images: Sequence[np.ndarray], columns: int, pad: int = 4,
               background: Sequence[int] = (255, 255, 255)) -> np.ndarray:  # fmt: skip
    """Tile equally sized ``[H, W, 3]`` uint8 images into a grid ``columns`` wide."""
    if not images:
        raise ValueError("no images to tile")
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    grid = np.empty((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), dtype=np.uint8)
    grid[:] = np.asarray(background, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = img
    return grid


def save_png(path: str, image: np.ndarray) -> None:
    """Write a uint8 ``[H, W, 3]`` image as PNG (Pillow)."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(path, format="PNG")


def draw_text(
    image: np.ndarray,
    text: str,
    xy: tuple[int, int],
    size: int = 14,
    color: Sequence[int] = (40, 40, 45),
    anchor: str | None = "la",
) -> np.ndarray:
    """``image`` with ``text`` drawn at pixel ``xy`` (Pillow's default font at ``size``).

    ``anchor`` is Pillow's text anchor (``"la"``: left / ascender, ``"ra"``: right...).
    """
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed-size bitmap font, which has no anchors
        font = ImageFont.load_default()
        anchor = None
    ImageDraw.Draw(img).text(xy, text, fill=tuple(int(c) for c in color), font=font, anchor=anchor)
    return np.asarray(img)


def render_camera_layer(
    vertices: np.ndarray,
    faces: np.ndarray,
    intrinsics: np.ndarray,
    size: tuple[int, int],
    colors: np.ndarray | Sequence[float] | None = None,
    supersample: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """A mesh seen through a pinhole camera, as a premultiplied linear-light layer.

    Args:
        vertices: ``[V, 3]`` in the camera frame (``x`` right, ``y`` down, ``z`` ahead;
            any unit); vertices at or behind ``z = 0`` are not drawn.
        faces: ``[F, 3]`` outward-oriented triangles (several meshes concatenated share
            one z-buffer, so they hide each other correctly).
        intrinsics: ``[3, 3]`` ``K`` in pixels of an image ``size`` = ``(width, height)``.
        colors: ``[V, 3]`` or ``[3]`` sRGB in 0..1 (default: skin tone).
        supersample: rendering scale per axis for anti-aliasing.

    Returns:
        ``rgb [H, W, 3]`` (linear light, premultiplied by coverage), ``alpha [H, W]``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    k = np.asarray(intrinsics, dtype=np.float64)
    width, height = int(size[0]), int(size[1])
    ss = max(1, int(supersample))
    w_px, h_px = width * ss, height * ss
    col = SKIN_TONE if colors is None else np.asarray(colors, dtype=np.float64)
    col = srgb_to_linear(np.broadcast_to(col, v.shape) if col.shape == (3,) else col)
    if len(f):  # a face with a vertex at or behind the camera is dropped whole
        f = f[(v[f, 2] > 1e-9).all(axis=1)]
    rgb = np.zeros((h_px * w_px, 3))
    alpha = np.zeros(h_px * w_px)
    if len(f):
        z = v[:, 2]
        safe = np.where(z > 1e-9, z, 1.0)
        sx = (k[0, 0] * v[:, 0] / safe + k[0, 2]) * ss
        sy = (k[1, 1] * v[:, 1] / safe + k[1, 2]) * ss
        # the rasteriser keeps the largest depth: nearer is smaller z here
        frag = _rasterize(sx, sy, -z, f, w_px, h_px)
        if frag is not None:
            # shading looks along +z with y up: flip y and z of the camera-frame normals
            normals = vertex_normals(v, f) * np.array([1.0, -1.0, -1.0])
            _paint(frag, f, normals, col, rgb, alpha)
    return _resolve(rgb, alpha, height, width, ss)


#: Overlays whose meshes cover a box above this many pixels are drawn without supersampling.
SUPERSAMPLE_MAX_PIXELS = 250_000


def overlay_meshes(
    image: np.ndarray,
    meshes: Sequence,
    intrinsics: np.ndarray,
    opacity: float = 0.8,
    max_side: int = 1600,
) -> np.ndarray:
    """Meshes (camera frame, e.g. :meth:`halohand.image.PhotoHands.meshes`) drawn over the
    photo they were placed in, through its camera; ``[H', W', 3]`` uint8, the photo scaled
    down to at most ``max_side`` pixels per side (a 12 MP overlay would be mostly PNG)."""
    from PIL import Image

    img = np.asarray(image, dtype=np.uint8)
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale < 1.0:
        # reducing_gap: a box-filtered reduction first, then Lanczos (4x faster on 12 MP)
        img = np.asarray(
            Image.fromarray(img).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        )
    k = np.asarray(intrinsics, dtype=np.float64).copy()
    k[:2] *= np.array([[size[0] / w], [size[1] / h]])
    verts, faces, cols = [], [], []
    offset = 0
    for mesh in meshes:
        v = np.asarray(mesh.vertices, dtype=np.float64)
        verts.append(v)
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + offset)
        vc = getattr(mesh.visual, "vertex_colors", None)
        cols.append(
            np.asarray(vc, dtype=np.float64)[:, :3] / 255.0
            if vc is not None and len(vc) == len(v)
            else np.broadcast_to(SKIN_TONE, v.shape)
        )
        offset += len(v)
    if not verts:
        return img.copy()
    v = np.concatenate(verts)
    # Render only the meshes' box on the photo (a hand is a small part of most photos).
    front = v[:, 2] > 1e-9
    if not front.any():
        return img.copy()
    uv = v[front, :2] / v[front, 2:3] * np.diag(k)[:2] + k[:2, 2]
    x0, y0 = np.clip(np.floor(uv.min(0)).astype(int) - 1, 0, size)
    x1, y1 = np.clip(np.ceil(uv.max(0)).astype(int) + 1, 0, size)
    if x1 <= x0 or y1 <= y0:
        return img.copy()
    k_box = k.copy()
    k_box[:2, 2] -= (x0, y0)
    # a large hand's edges are long and smooth: anti-aliasing there costs 4x for little
    ss = 2 if (x1 - x0) * (y1 - y0) <= SUPERSAMPLE_MAX_PIXELS else 1
    rgb, alpha = render_camera_layer(
        v, np.concatenate(faces), k_box, (x1 - x0, y1 - y0), np.concatenate(cols), ss
    )
    out = img.copy()
    photo = srgb_to_linear(img[y0:y1, x0:x1] / 255.0)
    a = opacity * alpha[..., None]
    out[y0:y1, x0:x1] = to_uint8(linear_to_srgb(opacity * rgb + (1.0 - a) * photo))
    return out
