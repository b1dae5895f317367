"""Checking a shot manifest against the server's rules, and turning it into a RenderRequest.

Every check raises `ShotError(code, message)` where code is the grpc status name (one per
cause: INVALID_ARGUMENT for bad values, FAILED_PRECONDITION for a LoRA that is not installed)
and the message tells the user what to change ("frames must be 8k+1 (got 120); try 121 or 113").
Pure Python + numpy: no grpc server state, so it is easy to test and reuse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..engine.request import CameraFrame, CameraRequest, RenderRequest
from ..proto import render_pb2 as pb

CAMERA_MODES = {pb.CAMERA_MODE_UNSPECIFIED: "auto", pb.CAMERA_MODE_AUTO: "auto",
                pb.CAMERA_MODE_PRESET: "preset", pb.CAMERA_MODE_TRAJECTORY: "trajectory",
                pb.CAMERA_MODE_OFF: "off"}


class ShotError(Exception):
    """A request the server refuses; `code` is a grpc status name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(message: str) -> ShotError:
    return ShotError("INVALID_ARGUMENT", message)


REFERENCE_CELL = 32  # reference canvas pixels per latent cell: its width and height must be multiples


@dataclass
class Limits:
    """The rules a shot must follow: the engine's capabilities plus server-side limits."""

    frame_step: int = 8
    max_frames: int = 257
    size_multiple: int = 32
    max_width: int = 1920
    max_height: int = 1088
    max_steps: int = 200
    max_guidance: float = 30.0
    max_fps: float = 240.0
    max_prompt_chars: int = 4000
    max_request_id_chars: int = 128
    max_lora_weight: float = 4.0
    two_stage: bool = False  # references ride in the half-size stage 1
    loras: dict[str, dict] = field(default_factory=dict)  # name -> capabilities LoRA dict

    @classmethod
    def from_capabilities(cls, caps: dict, **overrides) -> Limits:
        keys = ("frame_step", "max_frames", "size_multiple", "max_width", "max_height")
        kw = {k: int(caps[k]) for k in keys if caps.get(k)}
        kw["loras"] = {lo["name"]: lo for lo in caps.get("loras", [])}
        kw["two_stage"] = bool(caps.get("two_stage"))
        kw.update(overrides)
        return cls(**kw)

    def names(self, *kinds: str) -> list[str]:
        return sorted(n for n, lo in self.loras.items() if not kinds or lo.get("kind") in kinds)

    def divisor(self, factor: int) -> int:
        """Output pixels per reference pixel (as Capabilities' reference_size_divisor)."""
        return factor * (2 if self.two_stage else 1)


# ---------------------------------------------------------------- suggestions
def nearest_valid_frames(n: int, step: int, max_frames: int) -> list[int]:
    """Valid frame counts (step*k + 1, within [1 + step, max_frames]) nearest to n, closest first."""
    k = (n - 1) / step
    cands = {step * max(1, math.floor(k)) + 1, step * max(1, math.ceil(k)) + 1}
    cands = sorted((c for c in cands if c <= max_frames), key=lambda c: (abs(c - n), -c))
    return cands or [step * max(1, (max_frames - 1) // step) + 1]


def nearest_multiples(v: int, m: int) -> list[int]:
    lo, hi = (v // m) * m, (v // m + 1) * m
    return [x for x in (lo, hi) if x > 0]


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _unit(name: str, x: float) -> None:
    if not _finite(x) or not 0.0 <= x <= 1.0:
        raise _bad(f"{name} must be between 0 and 1 (got {x}); 1 follows the control fully, 0 ignores it")


def _lora(limits: Limits, name: str, kinds: tuple[str, ...], what: str) -> dict:
    lora = limits.loras.get(name)
    if lora is None or lora.get("kind") not in kinds:
        installed = ", ".join(limits.names(*kinds)) or "none"
        extra = "" if lora is None else f" ('{name}' is a {lora.get('kind')} LoRA)"
        raise ShotError("FAILED_PRECONDITION",
                        f"{what} LoRA '{name}' is not installed on this server{extra}; installed: {installed}"
                        " (install it with `render-backend serve --lora NAME=PATH`)")
    return lora


# ---------------------------------------------------------------- manifest
def check_manifest(m: pb.ShotManifest, limits: Limits) -> list[str]:
    """Raise ShotError for the first problem in `m`; return warnings for things that work but are odd."""
    warnings: list[str] = []
    if len(m.request_id) > limits.max_request_id_chars:
        raise _bad(f"request_id is {len(m.request_id)} characters; use at most {limits.max_request_id_chars}")
    if not m.prompt.strip():
        raise _bad("prompt is empty; describe the shot (subject, action, look, sound)")
    for name, text in (("prompt", m.prompt), ("negative_prompt", m.negative_prompt)):
        if len(text) > limits.max_prompt_chars:
            raise _bad(f"{name} is {len(text)} characters; shorten it to at most {limits.max_prompt_chars}")

    step, n = limits.frame_step, m.num_frames
    if n < step + 1 or (n - 1) % step:
        tries = " or ".join(map(str, nearest_valid_frames(n, step, limits.max_frames)))
        raise _bad(f"frames must be {step}k+1 (got {n}); try {tries}")
    if n > limits.max_frames:
        raise _bad(f"frames must be at most {limits.max_frames} on this server (got {n}); "
                   f"try {limits.max_frames} or split the range into several shots")

    mult = limits.size_multiple
    for name, v, vmax in (("width", m.width, limits.max_width), ("height", m.height, limits.max_height)):
        if v <= 0 or v % mult:
            tries = " or ".join(map(str, nearest_multiples(v, mult)))
            raise _bad(f"{name} must be a multiple of {mult} (got {v}); try {tries}")
        if v > vmax:
            raise _bad(f"{name} must be at most {vmax} on this server (got {v}); lower the resolution")

    if not _finite(m.fps) or m.fps <= 0 or m.fps > limits.max_fps:
        raise _bad(f"fps must be between 0 and {limits.max_fps:g} (got {m.fps}); use the scene's fps, e.g. 24")
    if m.num_inference_steps > limits.max_steps:
        raise _bad(f"num_inference_steps must be 1..{limits.max_steps} (got {m.num_inference_steps}); "
                   "0 uses the server default (8 for the distilled model)")
    g = m.guidance_scale
    if not _finite(g) or (g != 0 and not 1 <= g <= limits.max_guidance):
        raise _bad(f"guidance_scale must be between 1 (no guidance) and {limits.max_guidance:g} (got {g}); "
                   "0 uses the server default (1 for the distilled model)")
    _check_control(m, limits, warnings)
    _check_camera(m, limits, warnings)
    for extra in m.extra_loras:
        _lora(limits, extra.name, ("style", "camera_preset"), "extra")
        _weight(f"extra LoRA '{extra.name}' weight", extra.weight, limits)
    return warnings


def _weight(name: str, w: float, limits: Limits) -> None:
    if not _finite(w) or not 0 <= w <= limits.max_lora_weight:
        raise _bad(f"{name} must be between 0 and {limits.max_lora_weight:g} (got {w}); 0 means 1.0")


def _check_control(m: pb.ShotManifest, limits: Limits, warnings: list[str]) -> None:
    c = m.control
    if m.has_mask and m.num_control_frames == 0:
        raise _bad("mask frames need control frames: set num_control_frames (and control.lora), "
                   "or send no mask (has_mask=false)")
    if m.num_control_frames and m.num_control_frames != m.num_frames:
        raise _bad(f"num_control_frames must equal num_frames ({m.num_frames}) or be 0 "
                   f"(got {m.num_control_frames}); send one control canvas per output frame")
    if c.HasField("strength") and not c.lora:
        warnings.append("control.strength is set but no control LoRA is: it is ignored")
    if c.lora and not m.num_control_frames:
        raise _bad(f"control.lora is '{c.lora}' but no control frames are sent; set num_control_frames "
                   f"to {m.num_frames} and send the canvas, or clear control.lora")
    if m.num_control_frames and not c.lora:
        raise _bad("control frames are sent but control.lora is empty; pick one of: "
                   + (", ".join(limits.names("control")) or "none installed"))
    if not c.lora:
        return
    lora = _lora(limits, c.lora, ("control",), "control")
    _weight("control.lora_weight", c.lora_weight, limits)
    if c.HasField("strength"):  # not set = 1.0
        _unit("control.strength", c.strength)
        if c.strength == 0:
            warnings.append("control.strength is 0: the control canvas has no influence (1 follows it fully)")
    if c.frame_strength:
        if len(c.frame_strength) != m.num_frames:
            raise _bad(f"control.frame_strength has {len(c.frame_strength)} values; it needs one per "
                       f"frame ({m.num_frames}) or none")
        for i, v in enumerate(c.frame_strength):
            if not _finite(v) or not 0 <= v <= 1:
                raise _bad(f"control.frame_strength[{i}] must be between 0 and 1 (got {v}); "
                           "check the strength curve's keyframes")
    if c.has_background_strength:
        _unit("control.background_strength", c.background_strength)
        if not m.has_mask:
            warnings.append("control.background_strength is ignored without mask frames")
    factor = c.reference_downscale_factor or int(lora.get("reference_downscale_factor") or 1)
    rw, rh = _reference_size(m, limits, factor, f"control LoRA '{c.lora}'", "control.reference_downscale_factor",
                             bool(c.reference_downscale_factor))
    cw, ch = m.control_width or m.width, m.control_height or m.height
    if cw > m.width or ch > m.height or abs(cw / ch - m.width / m.height) > 0.01 * (m.width / m.height):
        raise _bad(f"control canvas {cw}x{ch} must have the shot's aspect ratio and be at most "
                   f"{m.width}x{m.height}; export it at {rw}x{rh}")
    if (cw, ch) != (rw, rh):
        warnings.append(f"control canvas is {cw}x{ch}; the engine reads it at {rw}x{rh} "
                        "(export that size to save time)")


def _reference_size(m: pb.ShotManifest, limits: Limits, factor: int, who: str, field_name: str,
                    from_request: bool) -> tuple[int, int]:
    """(w, h) of the reference canvas the engine will read; refuses a size whose w or h is not a
    whole number of latent cells (the engine would fail after the upload and the queue wait)."""
    d = limits.divisor(factor)
    multiple = REFERENCE_CELL * d
    if m.width % multiple == 0 and m.height % multiple == 0:
        return m.width // d, m.height // d
    source = f"{field_name} {factor}" if from_request else f"the LoRA's reference_downscale_factor {factor}"
    two = ", halved again in two-stage mode" if limits.two_stage else ""
    ok = [f for f in range(1, 17) if m.width % (REFERENCE_CELL * limits.divisor(f)) == 0
          and m.height % (REFERENCE_CELL * limits.divisor(f)) == 0]
    fix = " or ".join(map(str, ok[-2:])) if from_request else None
    tries = "; ".join(f"{name} {' or '.join(map(str, nearest_multiples(v, multiple)))}"
                      for name, v in (("width", m.width), ("height", m.height)) if v % multiple)
    raise _bad(f"{who} reads its canvas at 1/{d} of {m.width}x{m.height} ({source}{two}) = "
               f"{m.width / d:g}x{m.height / d:g} pixels, but both sides must be multiples of {REFERENCE_CELL}; "
               f"make width and height multiples of {multiple} (try {tries})"
               + (f" or set {field_name} to {fix}" if fix else ""))


def _check_camera(m: pb.ShotManifest, limits: Limits, warnings: list[str]) -> None:
    cam = m.camera
    if cam.mode not in CAMERA_MODES:
        raise _bad(f"camera.mode {cam.mode} is unknown; use AUTO, PRESET, TRAJECTORY or OFF")
    mode = CAMERA_MODES[cam.mode]
    _weight("camera.weight", cam.weight, limits)
    if mode == "preset":
        if not cam.preset_lora:
            raise _bad("camera.mode is PRESET but camera.preset_lora is empty; pick one of: "
                       + (", ".join(limits.names("camera_preset")) or "none installed"))
        _lora(limits, cam.preset_lora, ("camera_preset",), "camera preset")
    if mode == "trajectory":
        if not cam.trajectory_lora:
            raise _bad("camera.mode is TRAJECTORY but camera.trajectory_lora is empty; pick one of: "
                       + (", ".join(limits.names("camera_trajectory")) or "none installed"))
        lora = _lora(limits, cam.trajectory_lora, ("camera_trajectory",), "camera trajectory")
        factor = cam.reference_downscale_factor or int(lora.get("reference_downscale_factor") or 1)
        _reference_size(m, limits, factor, f"camera trajectory LoRA '{cam.trajectory_lora}'",
                        "camera.reference_downscale_factor", bool(cam.reference_downscale_factor))
    elif cam.reference_downscale_factor:
        warnings.append("camera.reference_downscale_factor is used only in TRAJECTORY mode; it is ignored")
    if mode in ("auto", "trajectory") and not cam.frames:
        if mode == "trajectory":
            raise _bad(f"camera.mode is TRAJECTORY but no camera frames were sent; send {m.num_frames}")
        warnings.append("no camera track sent: camera LoRAs are off for this shot")
        return
    if cam.frames and len(cam.frames) != m.num_frames:
        raise _bad(f"camera track has {len(cam.frames)} frames; it needs one per output frame ({m.num_frames})")
    for i, f in enumerate(cam.frames):
        if not all(_finite(v) and v > 0 for v in (f.fx, f.fy)) or not all(_finite(v) for v in (f.cx, f.cy)):
            raise _bad(f"camera frame {i}: intrinsics must be positive pixels (got fx={f.fx}, fy={f.fy}, "
                       f"cx={f.cx}, cy={f.cy}); check the camera's lens and sensor")
        if len(f.world_to_camera) != 16:
            raise _bad(f"camera frame {i}: world_to_camera needs 16 numbers (4x4 row-major), "
                       f"got {len(f.world_to_camera)}")
        w2c = np.asarray(f.world_to_camera, dtype=np.float64).reshape(4, 4)
        rot = w2c[:3, :3]
        rigid = (np.all(np.isfinite(w2c)) and np.allclose(w2c[3], [0, 0, 0, 1], atol=1e-6)
                 and np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0)
        if not rigid:
            raise _bad(f"camera frame {i}: world_to_camera is not a rigid transform (rotation + "
                       "translation, last row 0 0 0 1); apply the camera's scale before exporting")


# ---------------------------------------------------------------- request
def build_request(m: pb.ShotManifest, control_frames: Optional[list[np.ndarray]],
                  masks: Optional[list[np.ndarray]]) -> RenderRequest:
    """The engine request for a checked manifest and its decoded frames (uint8 RGB, bool masks)."""
    c, cam = m.control, m.camera
    mode = CAMERA_MODES[cam.mode]
    frames = [CameraFrame(fx=f.fx, fy=f.fy, cx=f.cx, cy=f.cy, lens_mm=f.lens_mm,
                          world_to_camera=np.asarray(f.world_to_camera, np.float64).reshape(4, 4))
              for f in cam.frames]
    if mode == "auto" and not frames:
        mode = "off"
    return RenderRequest(
        prompt=m.prompt, negative_prompt=m.negative_prompt, width=m.width, height=m.height,
        num_frames=m.num_frames, fps=m.fps, seed=m.seed,
        num_inference_steps=m.num_inference_steps or None, guidance_scale=m.guidance_scale or None,
        control_frames=control_frames if c.lora else None, control_lora=c.lora,
        control_lora_weight=c.lora_weight or 1.0,
        strength=c.strength if c.lora and c.HasField("strength") else 1.0,  # not set = follow the control
        frame_strength=list(c.frame_strength) or None, masks=masks if c.lora else None,
        background_strength=c.background_strength if c.has_background_strength else None,
        reference_downscale_factor=c.reference_downscale_factor or None,
        camera=CameraRequest(mode=mode, preset_lora=cam.preset_lora, trajectory_lora=cam.trajectory_lora,
                             weight=cam.weight or 1.0, frames=frames,
                             reference_downscale_factor=cam.reference_downscale_factor or None),
        extra_loras=[(e.name, e.weight or 1.0) for e in m.extra_loras], audio=m.audio)
