"""Randomised camera paths for training datasets (pure numpy): dolly, orbit, pan, zoom, dolly zoom.

A path starts from the scene camera's pose and lens at the clip's first frame and moves relative
to a subject point (the chosen targets' centre, else the centre of the scene's meshes). Poses are
Blender camera matrices (camera looks down its local -Z, +Y up, world Z up; metres in scene
units), lenses in millimetres. Motion eases in and out (smoothstep), as a real camera move does.

Kinds and what `amount` means:
- "scene":      the scene's own camera, untouched (amount unused)
- "dolly":      move along the view axis by amount x the subject distance (+ in, - out)
- "orbit":      circle the subject about the world Z axis by amount degrees
- "pan":        turn about the world Z axis through the camera by amount degrees
- "zoom":       the lens ends at amount x its start (the camera stays put)
- "dolly_zoom": the distance to the subject along the view axis and the lens both end at amount
                x their start, so the subject keeps its size on screen while the set stretches
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PATH_KINDS = ("scene", "dolly", "orbit", "pan", "zoom", "dolly_zoom")
# (low, high) of |amount| drawn for each kind; dolly as a fraction of the subject distance, orbit and
# pan in degrees, zoom and dolly_zoom as the lens ratio (>= 1; its inverse is drawn half the time).
AMOUNT_RANGES = {"dolly": (0.15, 0.4), "orbit": (10.0, 35.0), "pan": (8.0, 25.0), "zoom": (1.25, 1.8),
                 "dolly_zoom": (1.3, 1.8)}


@dataclass(frozen=True)
class CameraPath:
    kind: str
    amount: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PATH_KINDS:
            raise ValueError(f"camera path must be one of {', '.join(PATH_KINDS)} (got {self.kind!r})")
        if self.kind in ("zoom", "dolly_zoom") and not self.amount > 0:
            raise ValueError(f"a {self.kind} needs a positive lens ratio (got {self.amount})")

    def to_json(self) -> dict:
        return {"kind": self.kind, "amount": float(self.amount)}


@dataclass(frozen=True)
class CameraPose:
    """camera_to_world: (4, 4) Blender camera matrix without scale; lens_mm: focal length."""

    camera_to_world: np.ndarray
    lens_mm: float


def parse_path_kinds(text: str) -> list[str]:
    """'dolly,orbit' -> ['dolly', 'orbit'], refusing unknown names (with the list of known ones)."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in PATH_KINDS]
    if unknown or not kinds:
        raise ValueError(f"camera paths {', '.join(unknown) or '(none)'} unknown; use some of {', '.join(PATH_KINDS)}")
    return kinds


def random_path(rng: np.random.Generator, kind: str) -> CameraPath:
    """A path of `kind` with a random amount and direction (AMOUNT_RANGES)."""
    if kind == "scene":
        return CameraPath("scene")
    low, high = AMOUNT_RANGES[kind]
    size = float(rng.uniform(low, high))
    if kind in ("zoom", "dolly_zoom"):
        return CameraPath(kind, size if rng.random() < 0.5 else 1.0 / size)
    return CameraPath(kind, size if rng.random() < 0.5 else -size)


def ease(u: float) -> float:
    """Smoothstep: 0 -> 0, 1 -> 1, zero speed at both ends."""
    u = min(1.0, max(0.0, float(u)))
    return u * u * (3.0 - 2.0 * u)


def _rotation_about_z(degrees: float, pivot: np.ndarray) -> np.ndarray:
    """4x4: rotate about the world Z axis through `pivot`."""
    a = math.radians(degrees)
    rot = np.eye(4)
    rot[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    to_pivot, back = np.eye(4), np.eye(4)
    to_pivot[:3, 3], back[:3, 3] = -pivot, pivot
    return back @ rot @ to_pivot


def camera_poses(path: CameraPath, start: CameraPose, subject, num_frames: int) -> list[CameraPose]:
    """One pose per frame of the clip (frame 0 = `start`). `subject`: (3,) world point the moves refer to."""
    m0 = np.asarray(start.camera_to_world, dtype=np.float64)
    subject = np.asarray(subject, dtype=np.float64)
    position, forward = m0[:3, 3].copy(), -m0[:3, 2] / np.linalg.norm(m0[:3, 2])
    along = float(np.dot(subject - position, forward))  # subject distance along the view axis
    if path.kind in ("dolly", "dolly_zoom") and not along > 1e-6:
        raise ValueError(f"a {path.kind} needs the subject in front of the camera (it is {along:.3f} along the "
                         "view axis); aim the camera at the targets or choose other --paths")
    poses = []
    for i in range(num_frames):
        e = ease(i / max(1, num_frames - 1))
        m, lens = m0.copy(), float(start.lens_mm)
        if path.kind == "dolly":
            m[:3, 3] = position + forward * (path.amount * along * e)
        elif path.kind == "dolly_zoom":
            distance = along * (1.0 + (path.amount - 1.0) * e)
            m[:3, 3] = position - forward * (distance - along)
            lens = start.lens_mm * distance / along  # lens / distance constant: the subject keeps its size
        elif path.kind == "zoom":
            lens = start.lens_mm * (1.0 + (path.amount - 1.0) * e)
        elif path.kind == "orbit":
            m = _rotation_about_z(path.amount * e, subject) @ m0
        elif path.kind == "pan":
            m = _rotation_about_z(path.amount * e, position) @ m0
        poses.append(CameraPose(m, lens))
    return poses
