"""Camera trajectory canvas, spec `ltx-camera-canvas/1` (docs/camera-canvas-v1.md).

Each canvas pixel carries one camera ray as Plücker coordinates relative to the FIRST frame's
camera (OpenCV axes: x right, y down, z forward; metres): direction d (unit) and moment
m = o x d, o the camera centre. Six numbers do not fit three channels, so columns alternate:
even columns hold d, odd columns hold m, each pixel for the ray through its own centre. LTX-2's
VAE starts by folding 4x4 pixel blocks into channels, so the two kinds of column land in separate
channels at its first layer instead of being blurred together, and the canvas keeps its spatial
alignment with the target video (each 2-pixel pair describes the rays at that image position).

Ranges are fixed (no per-shot normalisation) so a LoRA learns absolute meaning:
d in [-1, 1] linearly; m companded with a signed log, 5 cm scale, clipped at 50 m.
"""

from __future__ import annotations

import math

import numpy as np

from .camera_moves import check_camera_track, relative_poses
from .request import CameraFrame

CANVAS_VERSION = "ltx-camera-canvas/1"
MOMENT_SCALE_M = 0.05  # moments around this size get the most code values
MOMENT_MAX_M = 50.0  # |m| components beyond this clip to the extreme code


def encode_moment(moment: np.ndarray) -> np.ndarray:
    """Moment component (metres) -> [-1, 1]: sign(m) * ln(1 + |m|/0.05) / ln(1 + 50/0.05), clipped."""
    scale = math.log1p(MOMENT_MAX_M / MOMENT_SCALE_M)
    return np.clip(np.sign(moment) * np.log1p(np.abs(moment) / MOMENT_SCALE_M) / scale, -1.0, 1.0)


def decode_moment(code: np.ndarray) -> np.ndarray:
    """Inverse of encode_moment for values in [-1, 1] (metres)."""
    scale = math.log1p(MOMENT_MAX_M / MOMENT_SCALE_M)
    return np.sign(code) * np.expm1(np.abs(code) * scale) * MOMENT_SCALE_M


def quantize(value: np.ndarray) -> np.ndarray:
    """[-1, 1] -> uint8: floor((v + 1) * 127.5 + 0.5), clipped to 0..255 (0 maps to 128)."""
    return np.clip(np.floor((np.asarray(value) + 1.0) * 127.5 + 0.5), 0, 255).astype(np.uint8)


def dequantize(code: np.ndarray) -> np.ndarray:
    """uint8 -> [-1, 1]: code / 127.5 - 1 (inverse of quantize up to half a step)."""
    return np.asarray(code, dtype=np.float64) / 127.5 - 1.0


def canvas_rays(frame: CameraFrame, rotation: np.ndarray, centre: np.ndarray, width: int, height: int,
                output_width: int, output_height: int) -> tuple[np.ndarray, np.ndarray]:
    """Plücker rays of one frame at every canvas pixel centre, in first-camera coordinates.

    rotation (3, 3) maps this camera's directions to the first camera's; centre (3,) is this
    camera's centre in first-camera coordinates (metres), both from `camera.relative_poses`.
    Canvas pixel (x, y) samples output pixel (u, v) = ((x + 0.5) * output_width / width,
    (y + 0.5) * output_height / height); intrinsics are in output pixels.
    Returns (directions (H, W, 3) unit, moments (H, W, 3) metres).
    """
    directions = _camera_rays(frame, width, height, output_width, output_height) @ rotation.T
    return directions, _moment(centre, directions)


def _camera_rays(frame: CameraFrame, width: int, height: int, output_width: int,
                 output_height: int) -> np.ndarray:
    """Unit pixel-centre rays in the frame's own camera axes, (H, W, 3)."""
    u = (np.arange(width, dtype=np.float64) + 0.5) * (output_width / width)
    v = (np.arange(height, dtype=np.float64) + 0.5) * (output_height / height)
    ray = np.empty((height, width, 3))
    ray[..., 0] = ((u - frame.cx) / frame.fx)[None, :]
    ray[..., 1] = ((v - frame.cy) / frame.fy)[:, None]
    ray[..., 2] = 1.0
    ray /= np.sqrt(np.einsum("hwc,hwc->hw", ray, ray))[..., None]
    return ray


def _moment(centre: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """o x d for one centre (3,) and many directions (..., 3); written out (np.cross is slower)."""
    dx, dy, dz = directions[..., 0], directions[..., 1], directions[..., 2]
    ox, oy, oz = (float(c) for c in centre)
    return np.stack([oy * dz - oz * dy, oz * dx - ox * dz, ox * dy - oy * dx], axis=-1)


def trajectory_canvas(frames: list[CameraFrame], width: int, height: int, *, output_width: int | None = None,
                      output_height: int | None = None) -> np.ndarray:
    """The camera reference canvas, spec `ltx-camera-canvas/1`.

    frames: the shot's camera per output frame; intrinsics in pixels of the output size.
    width, height: canvas (reference) size in pixels, usually output size / reference factor.
    output_width, output_height: the size the intrinsics refer to; default round(2 * cx),
    round(2 * cy) of the first frame (exact for an unshifted lens).
    Returns (F, height, width, 3) uint8: even columns the ray direction, odd columns the moment.
    """
    check_camera_track(frames)
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"canvas {name} must be an integer >= 2 pixels (got {value!r})")
    if output_width is None:
        output_width = int(round(2.0 * frames[0].cx))
    if output_height is None:
        output_height = int(round(2.0 * frames[0].cy))
    if output_width <= 0 or output_height <= 0:
        raise ValueError(f"output size must be positive pixels (got {output_width}x{output_height}); "
                         "pass output_width and output_height, the size the intrinsics refer to")

    rotations, centres = relative_poses(frames)
    canvas = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    rays, intrinsics = None, None
    for i, frame in enumerate(frames):  # one frame at a time keeps memory at one (H, W, 3) float
        if (frame.fx, frame.fy, frame.cx, frame.cy) != intrinsics:  # reuse unless the lens changed
            intrinsics = (frame.fx, frame.fy, frame.cx, frame.cy)
            rays = _camera_rays(frame, width, height, output_width, output_height)
        directions = (rays.reshape(-1, 3) @ rotations[i].T).reshape(rays.shape)  # first-camera axes
        canvas[i, :, 0::2] = quantize(directions[:, 0::2])
        canvas[i, :, 1::2] = quantize(encode_moment(_moment(centres[i], directions[:, 1::2])))
    return canvas


def decode_trajectory_canvas(canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Read a canvas back: (directions at even columns (F, H, ceil(W/2), 3),
    moments in metres at odd columns (F, H, floor(W/2), 3)). Used by tests and training tools."""
    canvas = np.asarray(canvas)
    if canvas.ndim != 4 or canvas.shape[-1] != 3 or canvas.dtype != np.uint8:
        raise ValueError(f"a camera canvas is (F, H, W, 3) uint8 (got {canvas.shape} {canvas.dtype})")
    return dequantize(canvas[:, :, 0::2]), decode_moment(dequantize(canvas[:, :, 1::2]))
