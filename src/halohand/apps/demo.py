"""``halohand demo``: the main job on the embedded default hand model.

A looping sequence through the natural key poses shipped with the package
(:mod:`halohand.handmodel.keyposes`): the joint angles are interpolated with an ease curve
and the rigged template is posed at every frame (so every frame is a valid hand), its 21
keypoints go through the HALO model (``HALO.reconstruct``), and the posed template (ground
truth) and the reconstruction are rendered side by side on the CPU while the camera sways
slowly around the hand. Written, atomically, into ``--out-dir``:

* ``frames/frame_0000.png ...``: one two-panel image per frame;
* ``demo.gif``: the frames as a looping animation (key poses held a little longer);
* ``contact_sheet.png``: the frames closest to the key poses, in a grid;
* ``keypoints.json``: the sequence's keypoints ``[N, 21, 3]`` (metres, OpenPose order,
  with ``side``), an input ``halohand reconstruct`` reads directly;
* ``meshes/frame_0000.ply ...`` with ``--meshes``: the reconstructed meshes (metres);
* ``timings.json``: wall time per stage (the summary line printed at the end);
* ``gestures.png``, ``samples.png`` and ``hands/`` (unless ``--no-gallery``): every
  gesture of the pose prior and a few random hands (``--samples``, ``--seed``) on the
  template, rendered, with their PLY meshes and keypoints;
* ``photo.png`` and ``photo/`` (unless ``--no-photo``): one photo through the photo path
  (``halohand image``: palm detection, landmarks, placement in its camera frame, HALO), the
  photo with its landmarks beside the meshes drawn over it through its camera, and the
  command's outputs (JSON, overlay PNG, a mesh per hand). The photo is ``--photo``, by
  default the thumbs-up example of ``examples/photos`` when the demo runs from the source
  tree (an installed package has no examples: the step is then skipped, and says so).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer

from halohand.core.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from halohand.core.errors import HalohandInputError

#: Camera: azimuth / elevation (degrees, see ``halohand.apps.render.view_rotation``) around which
#: the camera sways during the loop. A three-quarter palm view shows the thumb opposition of
#: ok / pinch and the extended fingers of point / victory at once.
CAMERA_AZIMUTH = 215.0
CAMERA_ELEVATION = 15.0
#: Sway amplitudes (degrees): one full sine over the loop, so the GIF loops seamlessly.
CAMERA_SWAY_AZIMUTH = 30.0
CAMERA_SWAY_ELEVATION = 8.0

#: GIF timing (milliseconds): in-between frames, and frames at a key pose (held so that
#: each gesture can be recognised).
GIF_FRAME_MS = 90
GIF_HOLD_MS = 450

#: The photo of the photo step when ``--photo`` is not given (the source tree's example).
DEFAULT_PHOTO = (
    Path(__file__).resolve().parents[3] / "examples" / "photos" / "mpsamples_hand_thumb_up.jpg"
)

#: Text colours (RGB).
_INK = (45, 48, 55)
_INK_LIGHT = (110, 114, 122)


@dataclass
class _Timer:
    """Accumulated wall and CPU seconds per stage.

    CPU time next to wall time: on a busy machine the wall time says little about what the
    demo costs on an idle one (with one torch thread, CPU time ~ idle wall time).
    """

    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def add(self, stage: str, since: tuple[float, float]) -> None:
        wall, cpu = self.now()
        self.wall[stage] = self.wall.get(stage, 0.0) + wall - since[0]
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu - since[1]


def camera_views(frames: int, side: str = "right") -> list[tuple[float, float]]:
    """``(azimuth, elevation)`` per frame: a slow sway that returns to the start.

    A left hand is the mirror image (x -> -x) of the right one, so its camera is mirrored
    too (azimuth negated): both sides are seen from the palm side, thumb toward the viewer.
    """
    phase = 2.0 * np.pi * np.arange(frames) / max(frames, 1)
    az = CAMERA_AZIMUTH + CAMERA_SWAY_AZIMUTH * np.sin(phase)
    if side == "left":
        az = -az
    el = CAMERA_ELEVATION + CAMERA_SWAY_ELEVATION * np.sin(2.0 * phase)
    return [(float(a), float(e)) for a, e in zip(az, el, strict=True)]


def frame_framing(
    vertices: list[np.ndarray], views: list[tuple[float, float]], margin: float = 1.25
) -> tuple[np.ndarray, float]:
    """One ``(center, extent)`` for the whole sequence, so that the camera does not zoom.

    ``center`` is the centre of the bounding box of every frame's vertices (model space);
    ``extent`` the largest image-plane span around it over all frames and their views,
    times ``margin`` (room for a reconstruction that bulges past the template).
    """
    from halohand.apps.render import view_rotation

    allv = np.concatenate(vertices)
    center = 0.5 * (allv.min(0) + allv.max(0))
    half = 0.0
    for v, view in zip(vertices, views, strict=True):
        cam = (v - center) @ view_rotation(view).T
        half = max(half, float(np.abs(cam[:, :2]).max()))
    return center, 2.0 * half * margin


def _export_hand(hand, out: Path, name: str) -> np.ndarray:
    """Write one posed hand (PLY + keypoints JSON); return its per-vertex colours."""
    import trimesh

    from halohand.apps.render import PART_COLORS

    colors = PART_COLORS[hand.part_labels]
    mesh = trimesh.Trimesh(
        hand.vertices,
        hand.faces,
        vertex_colors=(np.c_[colors, np.ones(len(colors))] * 255).astype(np.uint8),
        process=False,
    )
    write_bytes_atomic(out / f"{name}.ply", mesh.export(file_type="ply"))
    doc = {
        "order": "openpose",
        "units": "m",
        "side": hand.side,
        "keypoints": np.round(hand.keypoints, 6).tolist(),
    }
    write_bytes_atomic(out / f"{name}_keypoints.json", json.dumps(doc, indent=1).encode())
    return colors


def _gallery(out_dir: Path, samples: int, seed: int) -> int:
    """The gesture library and random hands on the template: PLY, keypoints, two grids."""
    from halohand.apps.render import gradient_background, image_grid, render_mesh, save_png
    from halohand.handmodel.prior import GESTURES, PosePrior
    from halohand.handmodel.webxr import WebXRHandSource, default_model

    model = default_model()
    prior = PosePrior()
    source = WebXRHandSource(model=model)
    rng = np.random.default_rng(seed)
    hands_dir = out_dir / "hands"
    bg = gradient_background((240, 240))
    images: dict[str, list[np.ndarray]] = {"gestures": [], "samples": []}
    count = 0
    for name in GESTURES:
        hand = model.pose(prior.gesture(name))
        colors = _export_hand(hand, hands_dir, f"gesture_{name}")
        img = render_mesh(hand.vertices, hand.faces, colors, (240, 240), extent=0.24, background=bg)
        images["gestures"].append(_label(img, name))
        count += 1
    sides = ["right", "left"] * (samples // 2) + ["right"] * (samples % 2)
    for i, side in enumerate(sides):
        hand = source.sample(rng, side=side)
        colors = _export_hand(hand, hands_dir, f"sample_{i:02d}")
        img = render_mesh(hand.vertices, hand.faces, colors, (240, 240), extent=0.24, background=bg)
        images["samples"].append(_label(img, f"sample {i:02d} ({side})"))
        count += 1
    for key, imgs in images.items():
        if imgs:
            with atomic_path(out_dir / f"{key}.png") as tmp:
                save_png(str(tmp), image_grid(imgs, columns=min(6, len(imgs))))
    return count


def draw_landmarks(image: np.ndarray, pixels: np.ndarray, width: int = 3) -> np.ndarray:
    """``[H, W, 3]`` uint8 with the 21 ``[21, 2]`` pixel joints drawn as a skeleton (bones
    in their finger's colour, joints as white dots)."""
    from PIL import Image, ImageDraw

    from halohand.skeleton import PARENTS

    finger_colors = [(230, 90, 60), (240, 180, 40), (80, 180, 80), (60, 130, 230), (170, 90, 210)]
    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    pts = [tuple(map(float, p)) for p in pixels]
    for j in range(1, len(pts)):
        draw.line([pts[int(PARENTS[j])], pts[j]], fill=finger_colors[(j - 1) // 4], width=width)
    r = max(2.0, 1.2 * width)
    for x, y in pts:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 255), outline=(40, 40, 40))
    return np.asarray(img)


def _photo_step(photo: Path, out_dir: Path, model, resolution: int, height: int) -> str:
    """The photo path on ``photo``: ``photo/`` (the ``halohand image`` outputs) and
    ``photo.png`` (landmarks | meshes over the photo, ``height`` pixels tall); returns the
    summary line."""
    from PIL import Image

    from halohand.apps.photo_outputs import write_photo_outputs
    from halohand.apps.render import image_grid, save_png
    from halohand.image import from_image

    result = from_image(photo)
    report = write_photo_outputs(photo, result, model, out_dir / "photo", resolution)
    rgb = result.photo.rgb
    width_px = rgb.shape[1]
    marked = rgb
    for hand in result.hands:
        marked = draw_landmarks(marked, hand.landmarks.pixels, max(2, width_px // 250))
    overlay = np.asarray(Image.open(out_dir / "photo" / report["overlay"]).convert("RGB"))
    tiles = []
    for img, title in ((marked, "photo: 21 landmarks"), (overlay, "HALO meshes, photo camera")):
        pil = Image.fromarray(img)
        pil = pil.resize((max(1, round(pil.width * height / pil.height)), height))
        tiles.append(_label(np.asarray(pil), title))
    with atomic_path(out_dir / "photo.png") as tmp:
        save_png(str(tmp), image_grid(tiles, columns=2, pad=6))
    sides = ", ".join(h["side"] for h in report["hands"]) or "no hand"
    return f"photo {photo.name}: {len(report['hands'])} hand(s) ({sides}) -> photo.png, photo/"


def _label(image: np.ndarray, text: str) -> np.ndarray:
    from halohand.apps.render import draw_text

    return draw_text(image, text, (8, 6), size=max(10, image.shape[0] // 20), color=_INK)


def compose_frame(
    left: np.ndarray,
    right: np.ndarray,
    titles: tuple[str, str],
    caption: str,
    counter: str,
) -> np.ndarray:
    """Two panels side by side, their titles in a header band and the pose caption and a
    frame counter in a footer band (text in bands never covers a finger)."""
    from halohand.apps.render import draw_text

    h, w, _ = left.shape
    gap = max(2, w // 160)
    size = max(9, h // 22)
    band = int(size * 1.8)
    frame = np.empty((h + 2 * band, 2 * w + gap, 3), dtype=np.uint8)
    frame[:] = 250
    frame[band : band + h, :w] = left
    frame[band : band + h, w + gap :] = right
    frame = draw_text(frame, titles[0], (w // 2, band // 2), size, _INK, "mm")
    frame = draw_text(frame, titles[1], (w + gap + w // 2, band // 2), size, _INK, "mm")
    mid = h + band + band // 2
    frame = draw_text(frame, caption, (frame.shape[1] // 2, mid), size, _INK, "mm")
    small = max(8, size - 3)
    return draw_text(frame, counter, (frame.shape[1] - size // 2, mid), small, _INK_LIGHT, "rm")


def save_gif(path: Path, frames: list[np.ndarray], durations_ms: list[int]) -> None:
    """An endlessly looping GIF (one adaptive palette per frame, dithered), atomically."""
    from PIL import Image

    images = [
        Image.fromarray(f).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=1)
        for f in frames
    ]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations_ms,
            loop=0,
            optimize=False,
            disposal=1,
        )


def contact_sheet(frames: list[np.ndarray], picks: list[int], columns: int = 4) -> np.ndarray:
    """The picked frames at half size in a grid."""
    from PIL import Image

    from halohand.apps.render import image_grid

    tiles = []
    for i in picks:
        img = Image.fromarray(frames[i])
        tiles.append(
            np.asarray(img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS))
        )
    return image_grid(tiles, columns=min(columns, len(tiles)), pad=6)


def _remove_stale(folder: Path, pattern: str, keep: int) -> None:
    """Delete numbered outputs of an earlier, longer run (``frame_0040.png`` after a rerun
    with 32 frames), so that the folder holds exactly this run's sequence."""
    if not folder.is_dir():
        return
    for path in folder.glob(pattern):
        index = path.stem.rsplit("_", 1)[-1]
        if index.isdigit() and int(index) >= keep:
            path.unlink(missing_ok=True)


def key_frame_indices(n_frames: int, n_keys: int) -> list[int]:
    """Per key pose, the frame closest to it in the loop (distinct, in order)."""
    picks = []
    for k in range(n_keys):
        i = int(round(k * n_frames / n_keys)) % n_frames
        if i not in picks:
            picks.append(i)
    return picks


def run_demo(
    *,
    out_dir: Path,
    frames: int,
    resolution: int,
    size: int,
    side: str,
    meshes: bool,
    gallery: bool,
    samples: int,
    seed: int,
    checkpoint: Path | None,
    photo: Path | None = None,
    with_photo: bool = True,
) -> None:
    """``halohand demo`` (declared, with its defaults, in :mod:`halohand.apps.cli.demo`).

    Args:
        out_dir: folder for the outputs (see the module docstring).
        frames: frames of the animation.
        resolution: HALO extraction lattice cells per axis.
        size: panel size in pixels (square).
        side: ``right`` or ``left``.
        meshes: also write ``meshes/frame_*.ply``.
        gallery: also render every gesture and ``samples`` random hands (seed ``seed``).
        checkpoint: model file (``None``: the shipped weights).
        photo: the photo step's photo (``None``: :data:`DEFAULT_PHOTO` if it exists).
        with_photo: run the photo step.
    """
    from tqdm import tqdm

    from halohand.apps.render import (
        PART_COLORS,
        gradient_background,
        render_mesh,
        save_png,
    )
    from halohand.handmodel.keyposes import interpolate_sequence, load_key_poses
    from halohand.handmodel.pose import HandIdentity, HandPose
    from halohand.handmodel.prior import REAL_GIRTH_THICKNESS_MEAN
    from halohand.handmodel.webxr import check_side, default_model
    from halohand.inference.halo import HALO
    from halohand.skeleton import NUM_PARTS

    if out_dir.exists() and not out_dir.is_dir():
        raise HalohandInputError(f"--out-dir {out_dir}: exists and is not a folder")
    if photo is not None and not photo.is_file():
        raise HalohandInputError(f"--photo {photo}: no such file")
    if with_photo and photo is None and DEFAULT_PHOTO.is_file():
        photo = DEFAULT_PHOTO
    if photo is not None and with_photo:
        from halohand.image import load_photo

        load_photo(photo)  # a bad photo stops the demo before anything is written
    timer = _Timer()
    t_start = timer.now()
    side = check_side(side.lower())

    t0 = timer.now()
    key_poses = load_key_poses()
    sequence = interpolate_sequence(key_poses, frames)
    template = default_model()
    # the truth at the girth of the shipped model's training hands (keypoints do not show it)
    girth = HandIdentity(thickness_offsets=np.full(NUM_PARTS, REAL_GIRTH_THICKNESS_MEAN))
    hands = [
        template.pose(HandPose.from_array(f.angles), identity=girth, side=side) for f in sequence
    ]
    views = camera_views(frames, side)
    center, extent = frame_framing([h.vertices for h in hands], views)
    timer.add("pose", t0)

    t0 = timer.now()
    model = HALO.pretrained(checkpoint)
    timer.add("load model", t0)

    panel = (size, size)
    background = gradient_background(panel)
    titles = ("template (ground truth)", f"HALO from 21 keypoints (grid {resolution})")
    images: list[np.ndarray] = []
    frames_dir = out_dir / "frames"
    for i, (frame, hand, view) in enumerate(
        tqdm(list(zip(sequence, hands, views, strict=True)), desc="demo", unit="frame")
    ):
        t0 = timer.now()
        mesh = model.reconstruct(
            hand.keypoints, side=side, units="m", resolution=resolution, convention="rig"
        )
        timer.add("reconstruct", t0)

        t0 = timer.now()
        gt = render_mesh(
            hand.vertices, hand.faces, PART_COLORS[hand.part_labels], panel, view, center,
            extent, background,
        )  # fmt: skip
        colors = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0 if len(mesh.faces) else None
        rec = render_mesh(
            mesh.vertices, mesh.faces, colors, panel, view, center, extent, background
        )
        image = compose_frame(gt, rec, titles, frame.label.replace("_", " "), f"{i + 1}/{frames}")
        images.append(image)
        timer.add("render", t0)

        t0 = timer.now()
        with atomic_path(frames_dir / f"frame_{i:04d}.png") as tmp:
            save_png(str(tmp), image)
        if meshes:
            write_bytes_atomic(
                out_dir / "meshes" / f"frame_{i:04d}.ply", mesh.export(file_type="ply")
            )
        timer.add("write frames", t0)

    t0 = timer.now()
    _remove_stale(frames_dir, "frame_*.png", frames)
    _remove_stale(out_dir / "meshes", "frame_*.ply", frames if meshes else 0)
    picks = key_frame_indices(frames, len(key_poses))
    durations = [GIF_HOLD_MS if i in picks else GIF_FRAME_MS for i in range(frames)]
    save_gif(out_dir / "demo.gif", images, durations)
    with atomic_path(out_dir / "contact_sheet.png") as tmp:
        save_png(str(tmp), contact_sheet(images, picks))
    doc = {
        "order": "openpose",
        "units": "m",
        "side": side,
        "key_poses": [p.name for p in key_poses],
        "labels": [f.label for f in sequence],
        "keypoints": np.round(np.stack([h.keypoints for h in hands]), 6).tolist(),
    }
    write_text_atomic(out_dir / "keypoints.json", json.dumps(doc) + "\n")
    timer.add("gif and sheet", t0)

    n_gallery = 0
    if gallery:
        t0 = timer.now()
        n_gallery = _gallery(out_dir, samples, seed)
        timer.add("gallery", t0)

    photo_line = (
        "photo step skipped (--no-photo)"
        if not with_photo
        else ("photo step skipped: no --photo and no examples/photos (installed package)")
    )
    if with_photo and photo is not None:
        t0 = timer.now()
        photo_line = _photo_step(photo, out_dir, model, resolution, size)
        timer.add("photo", t0)

    total, total_cpu = (b - a for a, b in zip(t_start, timer.now(), strict=True))
    per_frame = ("reconstruct", "render", "write frames")
    report = {
        "frames": frames,
        "photo": photo_line,
        "resolution": resolution,
        "panel_size": size,
        "total_s": round(total, 2),
        "cpu_s": round(total_cpu, 2),
        "stages_s": {k: round(v, 2) for k, v in timer.wall.items()},
        "stages_cpu_s": {k: round(v, 2) for k, v in timer.cpu.items()},
        "per_frame_s": {k: round(timer.wall.get(k, 0.0) / frames, 3) for k in per_frame},
        "per_frame_cpu_s": {k: round(timer.cpu.get(k, 0.0) / frames, 3) for k in per_frame},
    }
    write_text_atomic(out_dir / "timings.json", json.dumps(report, indent=1) + "\n")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in timer.wall.items())
    pf, pc = report["per_frame_s"], report["per_frame_cpu_s"]
    typer.echo(
        f"wrote {frames} frames, demo.gif and contact_sheet.png to {out_dir}"
        + (f" (+ {n_gallery} gallery hands)" if gallery else "")
    )
    typer.echo(photo_line)
    typer.echo(f"total {total:.1f} s ({total_cpu:.1f} s CPU): {stages}")
    typer.echo(
        "per frame (wall / CPU): "
        + ", ".join(f"{k} {pf[k]:.2f} / {pc[k]:.2f} s" for k in per_frame)
    )
