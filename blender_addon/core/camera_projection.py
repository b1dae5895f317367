"""Camera math: Blender camera settings -> OpenCV intrinsics and extrinsics (pure numpy).

Conventions (docs/shot-bundle.md):
- OpenCV camera axes: x right, y down, z forward; metres.
- Pixel coordinates are continuous with pixel centres at +0.5: the top-left pixel covers
  [0, 1) x [0, 1) and its centre is (0.5, 0.5). u grows right, v grows down.
- Intrinsics are in pixels of the exported image (resolution x percentage).

Blender's view plane (BKE_camera_params_compute_viewplane): the sensor size maps to the image's
width (HORIZONTAL) or to its height times the pixel aspect (VERTICAL). AUTO picks HORIZONTAL when
the image is at least as wide as tall *in display units* (width * pixel_aspect_x >= height *
pixel_aspect_y), and always uses the sensor WIDTH, on whichever side is longer; only an explicit
VERTICAL fit uses the sensor height. Shift is a fraction of the fitted size.
`camera.angle_x/angle_y` are sensor angles, not the rendered field of view, so we never use them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")

# Blender camera axes (OpenGL: x right, y up, looking down -z) -> OpenCV (x right, y down, z forward).
_GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels; (width, height) is the image size they belong to."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def matrix(self) -> np.ndarray:
        """3x3 K (OpenCV)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera for an image resized to (width, height) pixels.

        Exact with the +0.5 pixel-centre convention: continuous coordinates just scale.
        """
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height))

    def as_dict(self) -> dict:
        """The bundle's `frames[i].intrinsics` entry."""
        return {"fx": float(self.fx), "fy": float(self.fy), "cx": float(self.cx), "cy": float(self.cy)}


def render_size(resolution_x: int, resolution_y: int, resolution_percentage: int) -> tuple[int, int]:
    """Pixel size Blender renders: resolution scaled by the percentage (truncated, like Blender)."""
    return (int(resolution_x * resolution_percentage / 100), int(resolution_y * resolution_percentage / 100))


def resolve_sensor_fit(sensor_fit: str, width: float, height: float, pixel_aspect_x: float = 1.0,
                       pixel_aspect_y: float = 1.0) -> str:
    """AUTO -> HORIZONTAL or VERTICAL, comparing the image's display width and height."""
    if sensor_fit not in SENSOR_FITS:
        raise ValueError(f"sensor_fit must be one of {', '.join(SENSOR_FITS)} (got {sensor_fit!r})")
    if sensor_fit != "AUTO":
        return sensor_fit
    return "HORIZONTAL" if width * pixel_aspect_x >= height * pixel_aspect_y else "VERTICAL"


def intrinsics_from_blender(lens_mm: float, sensor_width_mm: float, sensor_height_mm: float, sensor_fit: str,
                            shift_x: float, shift_y: float, resolution_x: int, resolution_y: int,
                            resolution_percentage: int = 100, pixel_aspect_x: float = 1.0,
                            pixel_aspect_y: float = 1.0) -> Intrinsics:
    """OpenCV intrinsics of a perspective Blender camera, in pixels of the rendered image.

    lens and sensor in millimetres; shift as in Blender (fraction of the fitted sensor side);
    resolution and percentage as in Output Properties; pixel aspect as in Format > Aspect.
    """
    if lens_mm <= 0:
        raise ValueError(f"lens must be > 0 mm (got {lens_mm})")
    if min(sensor_width_mm, sensor_height_mm) <= 0:
        raise ValueError(f"sensor size must be > 0 mm (got {sensor_width_mm} x {sensor_height_mm})")
    if min(pixel_aspect_x, pixel_aspect_y) <= 0:
        raise ValueError(f"pixel aspect must be > 0 (got {pixel_aspect_x} x {pixel_aspect_y})")
    width, height = render_size(resolution_x, resolution_y, resolution_percentage)
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive (got {width} x {height} px)")
    fit = resolve_sensor_fit(sensor_fit, width, height, pixel_aspect_x, pixel_aspect_y)
    # ycor: one pixel's height in units of its width (Blender's "ycor").
    ycor = pixel_aspect_y / pixel_aspect_x
    # The sensor side: sensor height only for an explicit VERTICAL fit; AUTO always uses the
    # sensor width, applied to the longer image side (BKE_camera_sensor_size).
    sensor_mm = sensor_height_mm if sensor_fit == "VERTICAL" else sensor_width_mm
    view_size = float(width) if fit == "HORIZONTAL" else ycor * height
    fx = lens_mm * view_size / sensor_mm
    fy = fx / ycor
    # Shift moves the view plane window by shift * view_size (in x-pixel units); image y flips.
    cx = width / 2.0 - shift_x * view_size
    cy = height / 2.0 + shift_y * view_size / ycor
    return Intrinsics(fx, fy, cx, cy, width, height)


def _without_scale(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"expected a 4x4 matrix (got shape {m.shape})")
    out = m.copy()
    norms = np.linalg.norm(m[:3, :3], axis=0)
    if np.any(norms < 1e-12):
        raise ValueError("camera matrix has a zero scale axis; set the camera object's scale to 1")
    out[:3, :3] = m[:3, :3] / norms
    return out


def world_to_camera_opencv(camera_to_world: np.ndarray) -> np.ndarray:
    """World-to-camera 4x4 in OpenCV axes from Blender's camera matrix_world (scale allowed, ignored)."""
    return _GL_TO_CV @ np.linalg.inv(_without_scale(camera_to_world))


def project_points(points_world: np.ndarray, intrinsics: Intrinsics, world_to_camera: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Project world points: returns xy (N, 2) in pixels (centres at +0.5) and z (N,) camera depth, metres.

    Points with z <= 0 are behind the camera; their xy is meaningless (NaN when z == 0).
    """
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    w2c = np.asarray(world_to_camera, dtype=np.float64)
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = intrinsics.fx * cam[:, 0] / z + intrinsics.cx
        y = intrinsics.fy * cam[:, 1] / z + intrinsics.cy
    return np.stack([x, y], axis=1), z


def normals_to_camera(normals_world: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    """(..., 3) world-space normals -> camera space (OpenCV axes), float32; zero vectors stay zero.

    world_to_camera: 4x4 (its rotation is used; scale-free, as world_to_camera_opencv returns).
    """
    rotation = np.asarray(world_to_camera, dtype=np.float64)[:3, :3]
    return (np.asarray(normals_world, dtype=np.float64) @ rotation.T).astype(np.float32)
