"""Make docs/images/control-canvas-example.png: an example control canvas for the README.

Two capsule mannequins and a ball are ray-cast in numpy (planar Z depth, as Blender's Z pass),
then the canvas is built with the add-on's own core code: one depth range for the shot,
masked inverse depth in grey, OpenPose COCO-18 skeletons on top, PNG written by core.png.

    .venv/bin/python scripts/make_readme_images.py [--out docs/images/control-canvas-example.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blender_addon.core.canvas import compose_control  # noqa: E402
from blender_addon.core.depth import shot_depth_range  # noqa: E402
from blender_addon.core.openpose import COCO18_NAMES, keypoints_from_projection  # noqa: E402
from blender_addon.core.png import write_png  # noqa: E402

WIDTH, HEIGHT = 768, 512
K = np.array([[620.0, 0, WIDTH / 2], [0, 620.0, HEIGHT / 2 + 40], [0, 0, 1]])  # OpenCV pinhole, pixels

# A person facing the camera, OpenCV axes (x right, y down, z away), metres, feet at y=0.
# The character's right side is on the image's left.
WAVING = {
    "nose": (0, -1.60, -0.11), "neck": (0, -1.45, 0),
    "r_shoulder": (-0.20, -1.45, 0), "r_elbow": (-0.33, -1.19, -0.05), "r_wrist": (-0.40, -0.95, -0.14),
    "l_shoulder": (0.20, -1.45, 0), "l_elbow": (0.43, -1.60, 0), "l_wrist": (0.52, -1.86, -0.05),
    "r_hip": (-0.10, -0.95, 0), "r_knee": (-0.13, -0.50, -0.04), "r_ankle": (-0.15, -0.08, 0),
    "l_hip": (0.10, -0.95, 0), "l_knee": (0.22, -0.53, -0.12), "l_ankle": (0.28, -0.10, 0.02),
    "r_eye": (-0.035, -1.64, -0.09), "l_eye": (0.035, -1.64, -0.09),
    "r_ear": (-0.085, -1.62, 0), "l_ear": (0.085, -1.62, 0),
}  # fmt: skip
WALKING = dict(
    WAVING,
    r_elbow=(-0.26, -1.20, 0.12), r_wrist=(-0.27, -0.97, 0.22),
    l_elbow=(0.27, -1.20, -0.12), l_wrist=(0.30, -0.98, -0.24),
    r_knee=(-0.12, -0.52, -0.20), r_ankle=(-0.13, -0.12, 0.02),
    l_knee=(0.12, -0.50, 0.08), l_ankle=(0.13, -0.08, 0.30),
)  # fmt: skip
BODY = [  # (joint a, joint b, radius m)
    ("r_shoulder", "r_elbow", 0.055), ("r_elbow", "r_wrist", 0.045), ("l_shoulder", "l_elbow", 0.055),
    ("l_elbow", "l_wrist", 0.045), ("r_hip", "r_knee", 0.08), ("r_knee", "r_ankle", 0.06),
    ("l_hip", "l_knee", 0.08), ("l_knee", "l_ankle", 0.06), ("r_shoulder", "l_shoulder", 0.07),
    ("r_hip", "l_hip", 0.10),
]  # fmt: skip


def person_spheres(pose: dict, offset) -> tuple[np.ndarray, list[tuple[np.ndarray, float]]]:
    """(18, 3) joints and the spheres approximating the body (capsules as sphere chains)."""
    joints = np.array([pose[n] for n in COCO18_NAMES], dtype=np.float64) + np.asarray(offset)
    j = {n: joints[i] for i, n in enumerate(COCO18_NAMES)}
    spheres = []
    segments = [(j[a], j[b], r) for a, b, r in BODY]
    pelvis = (j["r_hip"] + j["l_hip"]) / 2
    segments += [(j["neck"] + [0, 0.05, 0.02], pelvis, 0.15), (j["neck"], j["neck"] + [0, -0.12, 0], 0.05)]
    for a, b, r in segments:
        steps = max(2, int(np.linalg.norm(b - a) / (r / 3)))
        spheres += [(a + (b - a) * t, r) for t in np.linspace(0, 1, steps)]
    spheres.append((np.array([0, -1.63, 0.0]) + offset, 0.11))  # head
    return joints, spheres


def ray_cast(spheres) -> np.ndarray:
    """(H, W) planar Z depth of the union of spheres; 1e10 where nothing is hit (as Blender)."""
    depth = np.full((HEIGHT, WIDTH), 1e10)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    rays = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0], (ys + 0.5 - K[1, 2]) / K[1, 1], np.ones_like(xs, float)], -1)
    for centre, r in spheres:
        # ray p = t * d with d_z = 1, so t is planar Z: |t d - c|^2 = r^2
        dd = (rays**2).sum(-1)
        dc = rays @ centre
        disc = dc**2 - dd * (centre @ centre - r * r)
        hit = disc >= 0
        t = np.where(hit, (dc - np.sqrt(np.maximum(disc, 0))) / dd, 1e10)
        depth = np.minimum(depth, np.where(hit & (t > 0), t, 1e10))
    return depth


def project(joints: np.ndarray) -> np.ndarray:
    z = joints[:, 2]
    xy = np.stack([K[0, 0] * joints[:, 0] / z + K[0, 2], K[1, 1] * joints[:, 1] / z + K[1, 2]], -1)
    return keypoints_from_projection(xy, z, WIDTH, HEIGHT)


def example_canvas() -> np.ndarray:
    near_joints, near_spheres = person_spheres(WAVING, (-0.55, 1.05, 3.4))
    far_joints, far_spheres = person_spheres(WALKING, (1.0, 1.05, 4.8))
    ball = [(np.array([0.25, 0.88, 3.0]), 0.17)]
    depth = ray_cast(near_spheres + far_spheres + ball)
    mask = depth < 1e9
    near, far = shot_depth_range([depth], [mask], far_level=0.1)  # far figure stays visible
    return compose_control(depth, mask, near, far, [project(near_joints), project(far_joints)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs/images/control-canvas-example.png"))
    args = parser.parse_args()
    path = write_png(args.out, example_canvas(), compress_level=9)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
