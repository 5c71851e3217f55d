"""From a photo to hands in its camera frame: :func:`from_image`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.image.find import find_hands
from halohand.image.fit import LandmarkFit, fit_landmarks, plausibility
from halohand.image.io import Photo, load_photo
from halohand.image.landmarks import HandLandmarks
from halohand.image.place import (
    default_focal_px,
    photo_camera,
    reprojection_px,
    snap_to_rays,
    solve_translation,
)
from halohand.scene import Camera, Hand, Scene

if TYPE_CHECKING:  # pragma: no cover
    import trimesh

    from halohand.inference.halo import HALO

#: Most hands one photo is searched for.
MAX_HANDS = 10


@dataclass(frozen=True, eq=False)
class PhotoHand:
    """One hand of a photo, placed in the camera frame.

    Attributes:
        landmarks: what the models saw: pixel joints ``[21, 2]``, metric joints ``[21, 3]``
            around the hand's centre, presence, handedness, the region.
        keypoints: ``[21, 3]`` metres, camera frame (``x`` right, ``y`` down, ``z`` ahead),
            the project's ``openpose`` joint order: the metric joints placed by the
            least-squares translation, each then moved onto its pixel's ray at its depth
            (:mod:`halohand.image.place`).
        translation: ``[3]`` metres, the least-squares translation of the metric joints.
        reprojection_px: ``[21]`` pixel distance of each keypoint's projection to the
            pixel joint.
        rigid_reprojection_px: ``[21]`` the same for the metric joints moved by
            ``translation`` alone (how far the model's metric and pixel joints disagree).
        fit: with ``from_image(..., fit=True)``, the hand model fitted to the landmarks
            (:class:`~halohand.image.fit.LandmarkFit`); ``keypoints`` and
            ``reprojection_px`` are then the fit's.
        placed_keypoints: ``[21, 3]`` the placed keypoints (snapped onto the pixel rays),
            whether or not a fit replaced them.
    """

    landmarks: HandLandmarks
    keypoints: np.ndarray
    translation: np.ndarray
    reprojection_px: np.ndarray
    rigid_reprojection_px: np.ndarray
    fit: LandmarkFit | None = None
    placed_keypoints: np.ndarray | None = None

    @property
    def side(self) -> str:
        return self.landmarks.side

    def to_hand(self) -> Hand:
        return Hand.from_keypoints(self.keypoints, self.side, units="m", convention="openpose")


@dataclass(frozen=True, eq=False)
class PhotoHands:
    """The hands found in one photo.

    Attributes:
        photo: the decoded photo (upright RGB, name, EXIF focal length).
        camera: the pinhole camera the hands are placed with (camera frame = world frame).
        focal_source: where its focal length came from: ``"given"``, ``"exif"`` or
            ``"default"`` (:func:`~halohand.image.place.default_focal_px`).
        hands: the hands, most confident palm first (empty when the photo shows none).
    """

    photo: Photo
    camera: Camera
    focal_source: str
    hands: tuple[PhotoHand, ...]

    @property
    def scene(self) -> Scene:
        """The hands and the camera (with the photo) as a :class:`~halohand.scene.Scene`."""
        return Scene(hands=tuple(h.to_hand() for h in self.hands), camera=self.camera)

    def meshes(
        self, model: HALO, resolution: int = 128, *, touching: str = "merge"
    ) -> list[trimesh.Trimesh]:
        """One watertight mesh per hand (metres, camera frame), from ``model``
        (e.g. ``HALO.pretrained()``); ``touching`` as :meth:`~halohand.HALO.meshes`."""
        return [
            model.reconstruct(
                h.keypoints,
                side=h.side,
                units="m",
                resolution=resolution,
                convention="rig",
                touching=touching,
            )  # fmt: skip
            for h in self.hands
        ]

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (pixels, metres)."""
        w, h = self.photo.size
        return {
            "image": self.photo.name,
            "width": w,
            "height": h,
            "camera": {
                "intrinsics": self.camera.intrinsics.tolist(),
                "focal_px": float(self.camera.intrinsics[0, 0]),
                "focal_source": self.focal_source,
                "frame": "x right, y down, z ahead (metres); pixels: x right, y down",
            },
            "hands": [
                {
                    "side": hand.side,
                    "right_score": round(hand.landmarks.right_score, 4),
                    "presence": round(hand.landmarks.presence, 4),
                    "region": {
                        "center_px": hand.landmarks.region.center.round(2).tolist(),
                        "size_px": round(hand.landmarks.region.size, 2),
                        "rotation_deg": round(float(np.degrees(hand.landmarks.region.rotation)), 2),
                    },
                    "landmarks_px": hand.landmarks.pixels.round(2).tolist(),
                    "world_landmarks_m": hand.landmarks.world.round(5).tolist(),
                    "keypoints_m": hand.keypoints.round(5).tolist(),
                    "keypoint_format": "openpose",
                    "translation_m": hand.translation.round(5).tolist(),
                    "reprojection_px_mean": round(float(hand.reprojection_px.mean()), 3),
                    "rigid_reprojection_px_mean": round(
                        float(hand.rigid_reprojection_px.mean()), 3
                    ),
                    **({"fit": _fit_dict(hand)} if hand.fit is not None else {}),
                }
                for hand in self.hands
            ],
        }


def _fit_dict(hand: PhotoHand) -> dict[str, Any]:
    """The fit's parameters and its plausibility against the placed keypoints'."""
    fit = hand.fit
    assert fit is not None and hand.placed_keypoints is not None
    return {
        "seconds": round(fit.seconds, 3),
        "reprojection_px_mean": round(float(fit.reprojection_px.mean()), 3),
        "start_reprojection_px_mean": round(float(fit.start_reprojection_px.mean()), 3),
        "pose_deg": {k: [round(a, 2) for a in v] for k, v in fit.pose.to_degrees().items()},
        "hand_length_m": round(float(fit.identity.hand_length or 0.0), 4),
        "length_factors": np.round(fit.identity.length_factors, 4).tolist(),
        "palm_width": round(fit.identity.palm_width, 4),
        "translation_m": fit.translation.round(5).tolist(),
        "placed_keypoints_m": hand.placed_keypoints.round(5).tolist(),
        "plausibility": {
            "placed": plausibility(hand.placed_keypoints, hand.side),
            "fit": plausibility(fit.keypoints, hand.side),
        },
    }


def from_image(
    image: Any, max_hands: int = 2, focal_px: float | None = None, fit: bool = True
) -> PhotoHands:
    """Find the hands of a photo and place them in its camera frame.

    Args:
        image: a path, a ``PIL.Image`` or an ``[H, W, 3]`` uint8 RGB array
            (:func:`~halohand.image.io.load_photo`).
        max_hands: most hands to return (1..10).
        focal_px: the camera's focal length in pixels; default: the photo's EXIF 35 mm
            focal length, else the image diagonal.
        fit: fit the hand model to each hand's landmarks (:mod:`halohand.image.fit`:
            twist-swing start, then pose within the joint limits and the pose prior,
            identity within its prior, rotation and camera translation) and use its
            keypoints, which have a real hand's bone proportions and joint angles (about
            0.5 s per hand on a shared 2-core machine). On rendered photos with ground
            truth the fit is closer to the true joints than the placed keypoints in 2D and
            in 3D (``benchmarks/studies/photo_benchmark.py``). ``False``: the placed
            keypoints (each joint on its landmark's ray: exact reprojection, bone lengths
            as the landmark model gave them).

    Returns:
        :class:`PhotoHands`; ``.scene`` is a :class:`~halohand.scene.Scene` (keypoints in
        metres, camera frame) and ``.meshes(HALO.pretrained())`` its meshes. Each hand is
        placed from its own landmarks, so two overlapping hands can come out inside each
        other: :func:`halohand.apps.photo_outputs.pair_photo_hands` parts them along the
        camera rays and :func:`~halohand.apps.photo_outputs.pair_meshes` meshes them as a
        pair (what ``halohand image`` does with two hands).

    Raises:
        HalohandInputError: an unreadable, empty, truncated, too large or too small image,
            or a bad ``max_hands`` / ``focal_px``.
    """
    if isinstance(max_hands, bool) or not isinstance(max_hands, int | np.integer):
        raise HalohandInputError(f"max_hands must be an integer, got {max_hands!r}")
    if not 1 <= max_hands <= MAX_HANDS:
        raise HalohandInputError(f"max_hands must be in 1..{MAX_HANDS}, got {max_hands}")
    if focal_px is not None and not (np.isfinite(focal_px) and focal_px > 0):
        raise HalohandInputError(f"focal_px must be a positive number of pixels, got {focal_px}")
    photo = load_photo(image)
    width, height = photo.size
    if focal_px is not None:
        focal, source = float(focal_px), "given"
    elif photo.focal_px() is not None:
        focal, source = float(photo.focal_px()), "exif"
    else:
        focal, source = default_focal_px(width, height), "default"
    camera = photo_camera(width, height, focal, image=photo.rgb)
    hands = []
    for found in find_hands(photo.rgb, int(max_hands)):
        t = solve_translation(found.world, found.pixels, camera.intrinsics)
        rigid = found.world + t
        keypoints = snap_to_rays(rigid, found.pixels, camera.intrinsics)
        hands.append(
            PhotoHand(
                found,
                keypoints,
                t,
                reprojection_px(keypoints, found.pixels, camera),
                reprojection_px(rigid, found.pixels, camera),
                placed_keypoints=keypoints,
            )
        )
    if fit and hands:
        fits = fit_landmarks(
            np.stack([h.landmarks.pixels for h in hands]),
            np.stack([h.landmarks.world for h in hands]),
            np.stack([h.keypoints for h in hands]),
            [h.side for h in hands],
            camera.intrinsics,
        )
        hands = [
            replace(h, keypoints=f.keypoints, reprojection_px=f.reprojection_px, fit=f)
            for h, f in zip(hands, fits, strict=True)
        ]
    return PhotoHands(photo, camera, source, tuple(hands))
