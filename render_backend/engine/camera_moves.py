"""Camera track reading and camera-move classification (pure numpy).

The published LTX-2 camera LoRAs are plain LoRAs, one per move (dolly in/out/left/right,
jib up/down, static). To pick one, the exported camera track is reduced to three numbers
and classified:

- translation: the camera centre's motion expressed in the FIRST frame's camera axes
  (OpenCV: x right, y down, z forward; metres). A straight line is least-squares fitted to
  the centres over the frame index, and the net move is the fit's slope times (F - 1), so
  per-frame jitter (hand-held noise, float round-off) averages out.
- rotation: the largest angle between any frame's orientation and the first frame's, in
  degrees, plus the final rotation vector split into tilt (about x), pan (about y), roll (z).
- zoom: the focal ratio fx_last / fx_first, read off a least-squares line fitted to fx.

Thresholds (documented here; also returned in `CameraMove.details`):

- A camera "moves" when the net translation exceeds `max(1 cm, 2 % of subject_distance_m
  (when given), 3 x the jitter RMS)`, jitter measured against a 9-frame moving average of the
  centres. The noise term keeps hand-held jitter from reading as a move.
- The path must be straight: after a 9-frame moving average, no point may stray from the fitted
  line by more than max(threshold, 50 % of the net move); an out-and-back or curved path is "other".
- A rotation above 8 degrees makes the move "other" (pan, tilt, orbit): no preset covers it.
- A zoom is a focal change above 3 % (|ln ratio| > ln 1.03).
- The dominant axis must carry at least 80 % of the translation (|d_axis| / |d| >= 0.8,
  about 37 degrees off-axis at most), otherwise the move is a diagonal: "other".
- Dolly zoom: a move along z with a zoom in the opposite sense (dolly in + zoom out, or dolly
  out + zoom in), which keeps the subject's size when fx_1 / fx_0 = D_1 / D_0 (D: subject
  distance). The subject distance this implies at the first frame is
  D_0 = dz / (1 - ratio) and is reported. When `subject_distance_m` is given, the zoom must also
  match it: |ln ratio - ln((D - dz) / D)| <= 0.15, else the move is a dolly with a zoom.
  A dolly zoom uses the preset of the dolly it physically does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .request import CameraFrame

MOVES = ("static", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down",
         "dolly_zoom", "other")
PRESETS = ("dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static")

MIN_TRANSLATION_M = 0.01
RELATIVE_TRANSLATION = 0.02  # of subject_distance_m, when the caller knows it
NOISE_FACTOR = 3.0  # times the jitter RMS around a moving average of the path
ROTATION_OTHER_DEG = 8.0
ZOOM_MIN_LOG = math.log(1.03)
DOMINANCE_MIN = 0.8
DOLLY_ZOOM_LOG_TOLERANCE = 0.15
STRAIGHTNESS = 0.5  # smoothed path may stray this fraction of the net move from the fitted line
SMOOTHING_FRAMES = 9


@dataclass(frozen=True)
class CameraMove:
    """A classified camera track.

    move: one of MOVES. preset: the camera LoRA move to apply (one of PRESETS) or None for
    "other". confidence: 0..1, how clearly the track is that move. details: JSON-ready numbers
    (metres, degrees, ratios) explaining the decision.
    """

    move: str
    preset: str | None
    confidence: float
    details: dict = field(default_factory=dict)


# --- reading the shot bundle -------------------------------------------------------------

def camera_track_from_json(frames: list[dict]) -> list[CameraFrame]:
    """Read `shot.json`'s `frames` entries (docs/shot-bundle.md) into CameraFrames.

    Each entry needs `intrinsics` {fx, fy, cx, cy} (pixels of the output size) and
    `world_to_camera` (4x4 nested lists, row-major, OpenCV axes, metres); `lens_mm` is optional.
    Raises ValueError naming the frame and the key to fix.
    """
    if not isinstance(frames, list) or not frames:
        raise ValueError("camera track: `frames` must be a non-empty list of frame entries")
    track = []
    for i, entry in enumerate(frames):
        where = f"frames[{i}]" + (f" (Blender frame {entry['frame']})" if isinstance(entry, dict)
                                  and "frame" in entry else "")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be an object with `intrinsics` and `world_to_camera`")
        intr = entry.get("intrinsics")
        if not isinstance(intr, dict):
            raise ValueError(f"{where}: missing `intrinsics` {{fx, fy, cx, cy}} (pixels)")
        values = {}
        for key in ("fx", "fy", "cx", "cy"):
            if key not in intr:
                raise ValueError(f"{where}: `intrinsics` lacks `{key}` (pixels of the output size)")
            try:
                values[key] = float(intr[key])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: intrinsics.{key} must be a number (got {intr[key]!r})") from None
        if "world_to_camera" not in entry:
            raise ValueError(f"{where}: missing `world_to_camera` (4x4 nested lists, row-major)")
        try:
            w2c = np.asarray(entry["world_to_camera"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: `world_to_camera` must be 4x4 numbers") from None
        try:
            lens_mm = float(entry.get("lens_mm", 0.0))
        except (TypeError, ValueError):
            raise ValueError(f"{where}: `lens_mm` must be a number (got {entry.get('lens_mm')!r})") from None
        frame = CameraFrame(world_to_camera=w2c, lens_mm=lens_mm, **values)
        _check_frame(frame, where)
        track.append(frame)
    return track


def _check_frame(frame: CameraFrame, where: str) -> None:
    if not (math.isfinite(frame.fx) and math.isfinite(frame.fy) and frame.fx > 0 and frame.fy > 0):
        raise ValueError(f"{where}: fx and fy must be positive pixels (got fx={frame.fx}, fy={frame.fy})")
    if not (math.isfinite(frame.cx) and math.isfinite(frame.cy)):
        raise ValueError(f"{where}: cx and cy must be finite pixels (got cx={frame.cx}, cy={frame.cy})")
    m = np.asarray(frame.world_to_camera, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"{where}: world_to_camera must be 4x4 (got shape {m.shape})")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{where}: world_to_camera has NaN or infinite values")
    r = m[:3, :3]
    # Blender exports without scale; 1e-3 tolerates float32 round trips through JSON.
    if np.abs(r @ r.T - np.eye(3)).max() > 1e-3 or np.linalg.det(r) < 0:
        raise ValueError(f"{where}: world_to_camera's 3x3 part must be a rotation (no scale or "
                         "mirroring); export the camera without object scale")


def check_camera_track(frames: list[CameraFrame]) -> None:
    """Raise ValueError if the track is empty or any frame is malformed."""
    if not frames:
        raise ValueError("camera track is empty: export at least one frame of the camera")
    for i, frame in enumerate(frames):
        _check_frame(frame, f"camera frame {i}")


# --- geometry ----------------------------------------------------------------------------

def relative_poses(frames: list[CameraFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's camera in the first frame's camera coordinates.

    Returns (rotations (F, 3, 3), centres (F, 3)): rotations[i] maps camera-i directions to
    first-camera directions, centres[i] is camera i's centre in first-camera coordinates (metres).
    Frame 0 gives the identity and the origin.
    """
    w2c = np.stack([np.asarray(f.world_to_camera, dtype=np.float64) for f in frames])  # (F, 4, 4)
    rot, trans = w2c[:, :3, :3], w2c[:, :3, 3]
    centres_world = -np.einsum("fji,fj->fi", rot, trans)  # c = -R^T t
    # Into the first camera's axes as R_0 (c_i - c_0), not R_0 c_i + t_0: equal in exact arithmetic, but with
    # Blender's float32 matrices the latter leaves ~1e-8 m at frame 0 and on a static camera, whose negative
    # moments then quantise to 127 instead of 128 (docs/camera-canvas-v1.md promises exactly zero there).
    centres = (centres_world - centres_world[0]) @ rot[0].T
    rotations = np.einsum("ij,fkj->fik", rot[0], rot)  # R_0 R_i^T
    return rotations, centres


def _rotation_vector(r: np.ndarray) -> np.ndarray:
    """Axis * angle (radians) of a 3x3 rotation."""
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = math.acos(cos)
    skew = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-8:
        return skew / 2.0
    if math.pi - angle < 1e-6:  # half turn: axis from the symmetric part
        axis = np.sqrt(np.clip((np.diag(r) + 1.0) / 2.0, 0.0, None))
        return axis * angle
    return skew / (2.0 * math.sin(angle)) * angle


def _line_fit(values: np.ndarray) -> np.ndarray:
    """Least-squares line over the frame index: values (F, D) -> net change over F - 1 frames (D,)."""
    count = values.shape[0]
    design = np.stack([np.ones(count), np.arange(count, dtype=np.float64)], axis=1)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return coef[1] * (count - 1)


def _path_shape(centres: np.ndarray) -> tuple[float, float]:
    """(jitter RMS, excursion) in metres, from a 9-frame moving average of the camera centres.

    jitter: RMS distance of the centres from the moving average (hand-held noise).
    excursion: largest distance of the moving average from the fitted straight line (the
    path's shape: out and back, curves). Keeping the two apart stops a curved path from
    passing as noise.
    """
    count = centres.shape[0]
    window = min(SMOOTHING_FRAMES, count)
    window -= 1 - window % 2  # odd, so the average is centred on a frame
    half = window // 2
    kernel = np.ones(window) / window
    smooth = np.stack([np.convolve(centres[:, k], kernel, mode="valid") for k in range(3)], axis=1)
    middle = centres[half:count - half]
    jitter = float(np.sqrt(np.mean(np.sum((middle - smooth) ** 2, axis=1)) * window / max(window - 1, 1)))
    t = np.arange(count, dtype=np.float64)
    design = np.stack([np.ones(count), t], axis=1)
    coef, *_ = np.linalg.lstsq(design, centres, rcond=None)
    line = design[half:count - half] @ coef
    return jitter, float(np.linalg.norm(smooth - line, axis=1).max())


# --- classification ----------------------------------------------------------------------

def classify_camera_move(frames: list[CameraFrame], subject_distance_m: float | None = None) -> CameraMove:
    """Classify a camera track into one of MOVES and the camera LoRA preset to use.

    frames: the shot's camera per frame (OpenCV world-to-camera, metres; fx in pixels).
    subject_distance_m: optional distance to the subject at the first frame, metres; makes the
    move threshold relative to the scene (2 %) and lets a dolly zoom be checked against it.
    See the module docstring for every threshold.
    """
    check_camera_track(frames)
    if subject_distance_m is not None and not (subject_distance_m > 0 and math.isfinite(subject_distance_m)):
        raise ValueError(f"subject_distance_m must be a positive number of metres (got {subject_distance_m})")
    rotations, centres = relative_poses(frames)
    fx = np.array([f.fx for f in frames], dtype=np.float64)

    if len(frames) == 1:
        move, noise, log_zoom, excursion = np.zeros(3), 0.0, 0.0, 0.0
    else:
        move = _line_fit(centres)
        noise, excursion = _path_shape(centres)
        # Fitted line through fx (not log fx): a dolly zoom's fx is linear in the distance.
        change = float(_line_fit(fx[:, None])[0])
        start = float(fx.mean() - change / 2.0)
        log_zoom = math.log(max(start + change, 1e-9) / max(start, 1e-9))
    angles = [math.degrees(np.linalg.norm(_rotation_vector(r))) for r in rotations]
    rotation_deg = float(max(angles))
    tilt, pan, roll = np.degrees(_rotation_vector(rotations[-1]))
    distance = float(np.linalg.norm(move))
    path = float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()) if len(frames) > 1 else 0.0
    threshold = max(MIN_TRANSLATION_M, NOISE_FACTOR * noise,
                    RELATIVE_TRANSLATION * subject_distance_m if subject_distance_m else 0.0)
    ratio = math.exp(log_zoom)
    details = {
        "translation_m": [float(v) for v in move],
        "translation_norm_m": distance,
        "path_length_m": path,
        "translation_threshold_m": threshold,
        "noise_rms_m": noise,
        "excursion_m": excursion,
        "rotation_max_deg": rotation_deg,
        "rotation_final_deg": {"tilt_x": float(tilt), "pan_y": float(pan), "roll_z": float(roll)},
        "focal_ratio": ratio,
        "frames": len(frames),
    }

    moving = distance >= threshold
    zooming = abs(log_zoom) >= ZOOM_MIN_LOG
    rotation_score = max(0.0, 1.0 - 0.5 * rotation_deg / ROTATION_OTHER_DEG)

    if excursion > max(threshold, STRAIGHTNESS * distance):
        details["reason"] = "the camera path is not a straight line (out and back, or curved)"
        return CameraMove("other", None, _score(excursion / max(threshold, STRAIGHTNESS * distance)), details)
    if rotation_deg >= ROTATION_OTHER_DEG:
        details["reason"] = "rotation (pan, tilt, roll or orbit): no preset covers it"
        return CameraMove("other", None, _score(rotation_deg / ROTATION_OTHER_DEG), details)
    if not moving and not zooming:
        # Closer to a threshold = less sure it is really static.
        nearness = max(distance / threshold, rotation_deg / ROTATION_OTHER_DEG, abs(log_zoom) / ZOOM_MIN_LOG)
        details["reason"] = "no translation, rotation or zoom above the thresholds"
        return CameraMove("static", "static", _clip01(1.0 - 0.5 * nearness), details)
    if not moving:
        details["reason"] = "zoom without camera motion: no preset covers it"
        return CameraMove("other", None, _score(abs(log_zoom) / ZOOM_MIN_LOG) * rotation_score, details)

    axis = int(np.argmax(np.abs(move)))
    dominance = abs(float(move[axis])) / distance
    details["dominance"] = dominance
    if dominance < DOMINANCE_MIN:
        details["reason"] = "diagonal translation: no single preset axis dominates"
        # 1/sqrt(3) is the least dominant a 3-vector can be (a perfect diagonal).
        spread = (DOMINANCE_MIN - dominance) / (DOMINANCE_MIN - 1.0 / math.sqrt(3.0))
        return CameraMove("other", None, _clip01(0.5 + 0.5 * spread), details)

    name = {0: ("dolly_right", "dolly_left"), 1: ("jib_down", "jib_up"), 2: ("dolly_in", "dolly_out")}
    preset = name[axis][0] if move[axis] > 0 else name[axis][1]
    confidence = _score(distance / threshold) * _clip01((dominance - DOMINANCE_MIN) / (1.0 - DOMINANCE_MIN)
                                                        * 0.5 + 0.5) * rotation_score
    if zooming and axis == 2 and _is_dolly_zoom(float(move[2]), ratio, subject_distance_m, details):
        details["reason"] = "dolly along the view axis with an opposite zoom (subject size kept)"
        return CameraMove("dolly_zoom", preset, _clip01(confidence), details)
    if zooming:
        details["reason"] = "translation with a zoom that does not keep the subject size"
        confidence *= 0.7
    else:
        details["reason"] = "translation along one camera axis"
    return CameraMove(preset, preset, _clip01(confidence), details)


def _is_dolly_zoom(dz: float, ratio: float, subject_distance_m: float | None, details: dict) -> bool:
    """Opposite zoom to the dolly (in + zoom out, or out + zoom in), consistent with the subject distance."""
    if (dz > 0) != (ratio < 1.0):
        return False
    implied = dz / (1.0 - ratio)  # D_0 from fx_1/fx_0 = (D_0 - dz)/D_0
    details["implied_subject_distance_m"] = float(implied)
    if subject_distance_m is None:
        return True
    remaining = subject_distance_m - dz
    if remaining <= 0:
        return False  # the camera passed the subject
    expected = remaining / subject_distance_m
    details["expected_focal_ratio"] = float(expected)
    return abs(math.log(ratio) - math.log(expected)) <= DOLLY_ZOOM_LOG_TOLERANCE


def _score(excess: float) -> float:
    """0.5 at the threshold (excess 1), 1.0 at twice the threshold."""
    return _clip01(0.5 * excess)


def _clip01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))
