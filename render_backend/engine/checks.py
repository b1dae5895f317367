"""The one check over a render request (like diffusers' `check_inputs`): every rule a request must
follow, from the engine's capabilities alone, before any pixel arrives or any GPU work starts.

The server calls it on a submitted manifest before the upload (through `RenderEngine.
check_request`), the engine again in `render()` with the pixels attached. Each problem raises
`InvalidRequest` or `UnknownLora` with a message that says what to change ("frames must be 8k+1
(got 120); try 121 or 113"); things that work but are odd come back as warnings.
"""

from __future__ import annotations

import math

import numpy as np

from .contract import EngineCapabilities, LoraCapability
from .request import CANVAS_KINDS, CameraRequest, ControlInput, InvalidRequest, RenderRequest, UnknownLora

CAMERA_MODES = ("auto", "preset", "trajectory", "off")


def check_request(req: RenderRequest, caps: EngineCapabilities) -> list[str]:
    """Raise for the first problem in `req`; return warnings. Works with or without pixels."""
    warnings: list[str] = []
    _check_text(req, caps)
    _check_names(req, caps)
    _check_frames(req.num_frames, caps)
    _check_stages(req, caps)
    _check_size(req, caps)
    _check_numbers(req, caps)
    for i, control in enumerate(req.controls):
        _check_control(req, caps, i, control, warnings)
    if len(req.conditions) > 1:
        raise InvalidRequest(f"{len(req.conditions)} frame conditions; send at most one (the previous window's "
                             "last frames, at the shot's start)")
    for i, condition in enumerate(req.conditions):
        _check_condition(req, caps, i, condition)
    _check_camera(req, caps, warnings)
    for name, weight in req.extra_loras:
        lora = _installed(caps, name, ("style", "camera_preset", "control", "camera_trajectory"), "extra")
        _weight(f"extra LoRA '{name}' weight", weight, caps)
        if lora.kind in ("control", "camera_trajectory"):
            warnings.append(f"extra LoRA '{name}' is a {lora.kind} LoRA applied without its canvas; it was "
                            "trained to read one (send it as a control or camera trajectory instead)")
    names = [c.lora for c in req.controls if c.lora] + [n for n, _ in req.extra_loras]
    names += [req.camera.preset_lora] if req.camera.mode == "preset" else []
    names += [req.camera.trajectory_lora] if req.camera.mode == "trajectory" else []
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidRequest(f"LoRA {', '.join(map(repr, repeated))} is requested twice; list each LoRA once "
                             "(as a control, camera or extra LoRA)")
    return warnings


# ---------------------------------------------------------------- the shot
def nearest_valid_frames(n: int, step: int, max_frames: int) -> list[int]:
    """Valid frame counts (step*k + 1, within [1 + step, max_frames]) nearest to n, closest first."""
    k = (n - 1) / step
    cands = {step * max(1, math.floor(k)) + 1, step * max(1, math.ceil(k)) + 1}
    cands = sorted((c for c in cands if c <= max_frames), key=lambda c: (abs(c - n), -c))
    return cands or [step * max(1, (max_frames - 1) // step) + 1]


def nearest_multiples(v: float, m: int) -> list[int]:
    lo, hi = int(v // m) * m, (int(v // m) + 1) * m
    return [x for x in (lo, hi) if x > 0]


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _finite(x) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool) and math.isfinite(x)


def _check_text(req: RenderRequest, caps: EngineCapabilities) -> None:
    if not isinstance(req.prompt, str) or not req.prompt.strip():
        raise InvalidRequest("prompt is empty; describe the shot (subject, action, look, sound)")
    most = caps.limits.max_prompt_chars
    for name, text in (("prompt", req.prompt), ("negative_prompt", req.negative_prompt)):
        if len(text) > most:
            raise InvalidRequest(f"{name} is {len(text)} characters; shorten it to at most {most}")


def _check_names(req: RenderRequest, caps: EngineCapabilities) -> None:
    """Names are looked up and quoted back in messages: bound them before either."""
    most = caps.limits.max_name_chars
    names = [(f"controls[{i}].{key}", getattr(c, key)) for i, c in enumerate(req.controls) for key in ("kind", "lora")]
    names += [("camera.preset_lora", req.camera.preset_lora), ("camera.trajectory_lora", req.camera.trajectory_lora)]
    names += [(f"extra_loras[{i}].name", name) for i, (name, _) in enumerate(req.extra_loras)]
    for where, name in names:
        if not isinstance(name, str) or len(name) > most:
            size = f"{len(name)} characters" if isinstance(name, str) else type(name).__name__
            raise InvalidRequest(f"{where} is {size}; names are at most {most} characters (use the names "
                                 "Capabilities lists)")


def _check_frames(n, caps: EngineCapabilities) -> None:
    step = caps.frame_step
    if not _whole(n) or n < caps.min_frames or (n - 1) % step:
        tries = " or ".join(map(str, nearest_valid_frames(int(n) if _whole(n) else 0, step, caps.max_frames)))
        raise InvalidRequest(f"frames must be {step}k+1 and at least {caps.min_frames} (got {n}); try {tries}")
    if n > caps.max_frames:
        raise InvalidRequest(f"frames must be at most {caps.max_frames} per shot on this server (got {n}); "
                             f"try {caps.max_frames} or split the range into several shots")


def _check_stages(req: RenderRequest, caps: EngineCapabilities) -> None:
    stages = req.stages
    if stages is None:
        return
    if not _whole(stages) or stages not in (1, 2):
        raise InvalidRequest(f"stages must be 1 (one stage at full size, fast preview) or 2 (half-size stage, "
                             f"latent upsampler, full-size refine) (got {stages!r}); leave it unset for the "
                             f"server's default ({caps.stages})")
    if stages == 2 and caps.stages != 2:
        raise InvalidRequest(f"stages 2 is not available on this server: {caps.single_stage_reason or 'no latent upsampler'}; "
                             "send stages 1 or leave it unset")


def stages_of(req: RenderRequest, caps: EngineCapabilities) -> int:
    """The number of stages a (checked) request runs."""
    return req.stages or caps.stages


def _check_size(req: RenderRequest, caps: EngineCapabilities) -> None:
    two = stages_of(req, caps) == 2
    mult = caps.size_multiple_for(stages_of(req, caps))
    why = (" (two-stage mode renders stage 1 at half size; stages 1 renders one stage at full size)"
           if two else "")
    for name, v, most in (("width", req.width, caps.max_width), ("height", req.height, caps.max_height)):
        if not _whole(v) or v <= 0 or v % mult:
            tries = " or ".join(map(str, nearest_multiples(v, mult))) if _finite(v) else str(mult)
            raise InvalidRequest(f"{name} must be a multiple of {mult}{why} (got {v}); try {tries}")
        if v > most:
            raise InvalidRequest(f"{name} must be at most {most} on this server (got {v}); lower the resolution")
    for name, v, least in (("width", req.width, caps.min_width), ("height", req.height, caps.min_height)):
        least = max(least, mult)
        if v < least:
            raise InvalidRequest(f"{name} must be at least {least} on this model (got {v}); try {least}")


def _check_numbers(req: RenderRequest, caps: EngineCapabilities) -> None:
    lim = caps.limits
    if not _finite(req.fps) or not lim.min_fps <= req.fps <= lim.max_fps:
        raise InvalidRequest(f"fps must be between {lim.min_fps:g} and {lim.max_fps:g} (got {req.fps}); "
                             "use the scene's fps, e.g. 24")
    if not _whole(req.seed) or not 0 <= req.seed < 2**64:
        raise InvalidRequest(f"seed must be a whole number from 0 to 2^64-1 (got {req.seed!r})")
    steps = req.num_inference_steps
    if steps is not None and (not _whole(steps) or not 1 <= steps <= lim.max_steps):
        raise InvalidRequest(f"num_inference_steps must be 1..{lim.max_steps} (got {steps}); leave it unset for "
                             f"the model's default ({caps.default_steps})")
    g = req.guidance_scale
    if g is not None and (not _finite(g) or not 1 <= g <= lim.max_guidance_scale):
        raise InvalidRequest(f"guidance_scale must be between 1 (no guidance) and {lim.max_guidance_scale:g} "
                             f"(got {g}); leave it unset for the model's default ({caps.default_guidance_scale:g})")


# ---------------------------------------------------------------- LoRAs and strengths
def _installed(caps: EngineCapabilities, name: str, kinds: tuple[str, ...], role: str) -> LoraCapability:
    lora = caps.lora(name)
    if lora is None or lora.kind not in kinds:
        installed = ", ".join(caps.lora_names(*kinds)) or "none"
        extra = "" if lora is None else f" ('{name}' is a {lora.kind} LoRA)"
        raise UnknownLora(f"{role} LoRA '{name}' is not installed on this server{extra}; installed: {installed}"
                          " (install it with `render-backend serve --lora NAME=PATH`)")
    return lora


def _weight(name: str, w, caps: EngineCapabilities) -> None:
    most = caps.limits.max_lora_weight
    if not _finite(w) or not 0 <= w <= most:
        raise InvalidRequest(f"{name} must be between 0 and {most:g} (got {w})")


def _unit(name: str, x) -> None:
    if not _finite(x) or not 0.0 <= x <= 1.0:
        raise InvalidRequest(f"{name} must be between 0 and 1 (got {x}); 1 follows the control fully, "
                             "0 ignores it")


def reference_size(req: RenderRequest, caps: EngineCapabilities, factor, who: str, field_name: str,
                   from_request: bool) -> tuple[int, int]:
    """(w, h) of the reference canvas the engine reads; refuses a size whose w or h is not a whole
    number of latent cells (the engine would fail after the upload and the queue wait)."""
    if not _whole(factor) or factor < 1:
        raise InvalidRequest(f"{field_name} must be a positive whole number (got {factor!r}); 1 = full size")
    stages = stages_of(req, caps)
    d = caps.reference_divisor(factor, stages)
    cell = caps.latent_cell
    multiple = cell * d
    if req.width % multiple == 0 and req.height % multiple == 0:
        return caps.reference_size(req.width, req.height, factor, stages)
    source = f"{field_name} {factor}" if from_request else f"the LoRA's reference_downscale_factor {factor}"
    two = ", halved again in two-stage mode" if stages == 2 else ""
    ok = [f for f in range(1, 17) if req.width % (cell * caps.reference_divisor(f, stages)) == 0
          and req.height % (cell * caps.reference_divisor(f, stages)) == 0]
    fix = " or ".join(map(str, ok[-2:])) if from_request and ok else None
    tries = "; ".join(f"{name} {' or '.join(map(str, nearest_multiples(v, multiple)))}"
                      for name, v in (("width", req.width), ("height", req.height)) if v % multiple)
    raise InvalidRequest(f"{who} reads its canvas at 1/{d} of {req.width}x{req.height} ({source}{two}) = "
                         f"{req.width / d:g}x{req.height / d:g} pixels, but both sides must be multiples of {cell}; "
                         f"make width and height multiples of {multiple} (try {tries})"
                         + (f" or set {field_name} to {fix}" if fix else ""))


def _check_temporal_scale(req: RenderRequest, caps: EngineCapabilities, lora: LoraCapability) -> None:
    """An IC-LoRA that reads every S-th canvas frame (reference_temporal_scale_factor S) needs frames
    8*S*k + 1: the frames it reads (0, 1, 1+S, ...) must make whole latent frames of 8."""
    scale = lora.reference_temporal_scale_factor
    if scale == 1 or (req.num_frames - 1) % (caps.frame_step * scale) == 0:
        return
    step = caps.frame_step * scale
    tries = " or ".join(map(str, nearest_valid_frames(req.num_frames, step, caps.max_frames)))
    raise InvalidRequest(f"LoRA '{lora.name}' reads every {scale}th canvas frame (reference_temporal_scale_factor "
                         f"{scale}), so frames must be {step}k+1 (got {req.num_frames}); try {tries}")


def _check_control(req: RenderRequest, caps: EngineCapabilities, i: int, c: ControlInput,
                   warnings: list[str]) -> None:
    where = f"controls[{i}]"
    if c.kind not in CANVAS_KINDS:
        raise InvalidRequest(f"{where}.kind {c.kind!r} is not a canvas kind; use one of {', '.join(CANVAS_KINDS)}")
    if not c.lora:
        raise InvalidRequest(f"{where} ({c.kind}) has no LoRA: the base model was not trained to follow a "
                             "canvas; pick one of: " + (", ".join(caps.lora_names("control")) or "none installed"))
    lora = _installed(caps, c.lora, ("control",), "control")
    if not lora.reads(c.kind):
        kinds = " or ".join(lora.canvas.split(","))
        raise InvalidRequest(f"control LoRA '{c.lora}' was trained on {kinds} canvases but {where} is {c.kind}; "
                             f"export a {kinds} canvas, or pick a LoRA that reads {c.kind}")
    _weight(f"{where}.lora_weight", c.lora_weight, caps)
    _check_temporal_scale(req, caps, lora)
    _unit(f"{where}.strength", c.strength)
    if c.strength == 0:
        warnings.append(f"{where}.strength is 0: the {c.kind} canvas has no influence (1 follows it fully)")
    if c.frame_strength is not None:
        if len(c.frame_strength) != req.num_frames:
            raise InvalidRequest(f"{where}.frame_strength has {len(c.frame_strength)} values; it needs one per "
                                 f"frame ({req.num_frames}) or none")
        for k, v in enumerate(c.frame_strength):
            if not _finite(v) or not 0 <= v <= 1:
                raise InvalidRequest(f"{where}.frame_strength[{k}] must be between 0 and 1 (got {v}); check the "
                                     "strength curve's keyframes")
    if c.background_strength is not None:
        _unit(f"{where}.background_strength", c.background_strength)
        if not c.has_mask:
            warnings.append(f"{where}.background_strength is ignored without mask frames")
    if c.num_frames != req.num_frames:
        raise InvalidRequest(f"{where} has {c.num_frames} canvas frames but the shot has {req.num_frames}; "
                             "send one canvas image per output frame")
    from_request = c.reference_downscale_factor is not None
    factor = c.reference_downscale_factor if from_request else (lora.reference_downscale_factor or 1)
    rw, rh = reference_size(req, caps, factor, f"control LoRA '{c.lora}'", f"{where}.reference_downscale_factor",
                            from_request)
    cw, ch = c.width, c.height
    if not (_whole(cw) and _whole(ch) and 0 < cw <= req.width and 0 < ch <= req.height) \
            or abs(cw / ch - req.width / req.height) > 0.01 * (req.width / req.height):
        raise InvalidRequest(f"{where} canvas {cw}x{ch} must have the shot's aspect ratio and be at most "
                             f"{req.width}x{req.height}; export it at {rw}x{rh}")
    if (cw, ch) != (rw, rh):
        warnings.append(f"{where} canvas is {cw}x{ch}; the engine reads it at {rw}x{rh} (export that size to "
                        "save time)")
    if c.frames is not None:
        frames = c.frames
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise InvalidRequest(f"{where} frames must be uint8 RGB images (F, H, W, 3) (got {frames.dtype} "
                                 f"{tuple(frames.shape)})")
    if c.masks is not None:
        if len(c.masks) != req.num_frames:
            raise InvalidRequest(f"{where} has {len(c.masks)} masks for {req.num_frames} frames; send one per frame")
        for k, mask in enumerate(c.masks):
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != (ch, cw):
                raise InvalidRequest(f"{where}.masks[{k}] must be a bool {cw}x{ch} image like its canvas "
                                     f"(got {mask.dtype} {mask.shape[1::-1] if mask.ndim == 2 else mask.shape})")


def _check_condition(req: RenderRequest, caps: EngineCapabilities, i: int, c) -> None:
    where = f"conditions[{i}]"
    n, step = c.num_frames, caps.frame_step
    if not _whole(n) or n < 1 or (n - 1) % step:
        raise InvalidRequest(f"{where} has {n} frames; a frame condition is {step}m+1 frames (1, {step + 1}, "
                             f"{2 * step + 1}, ...): the VAE encodes a clip as its first frame plus groups of {step}")
    if c.start_frame != 0:
        raise InvalidRequest(f"{where}.start_frame is {c.start_frame}; frame conditions continue a shot from its "
                             "first frame (0) only")
    if n >= req.num_frames:
        raise InvalidRequest(f"{where} has {n} frames but the shot only {req.num_frames}; the condition must leave "
                             "new frames to generate")
    _unit(f"{where}.strength", c.strength)
    if (c.width, c.height) != (req.width, req.height):
        raise InvalidRequest(f"{where} frames are {c.width}x{c.height}; they must be the shot's {req.width}x"
                             f"{req.height} (the previous window's own frames)")
    if c.frames is not None and (c.frames.ndim != 4 or c.frames.shape[-1] != 3 or c.frames.dtype != np.uint8):
        raise InvalidRequest(f"{where} frames must be uint8 RGB images (F, H, W, 3) (got {c.frames.dtype} "
                             f"{tuple(c.frames.shape)})")


# ---------------------------------------------------------------- camera
def _check_camera(req: RenderRequest, caps: EngineCapabilities, warnings: list[str]) -> None:
    cam: CameraRequest = req.camera
    if cam.mode not in CAMERA_MODES:
        raise InvalidRequest(f"camera mode {cam.mode!r} is unknown; use one of {', '.join(CAMERA_MODES)}")
    if cam.mode == "off":
        return
    _weight("camera.weight", cam.weight, caps)
    if cam.mode == "preset":
        if not cam.preset_lora:
            raise InvalidRequest("camera mode 'preset' needs preset_lora (a camera preset LoRA); pick one of: "
                                 + (", ".join(caps.lora_names("camera_preset")) or "none installed"))
        _installed(caps, cam.preset_lora, ("camera_preset",), "camera preset")
    if cam.mode == "trajectory":
        if not cam.trajectory_lora:
            raise InvalidRequest("camera mode 'trajectory' needs trajectory_lora; pick one of: "
                                 + (", ".join(caps.lora_names("camera_trajectory")) or "none installed"))
        lora = _installed(caps, cam.trajectory_lora, ("camera_trajectory",), "camera trajectory")
        _check_temporal_scale(req, caps, lora)
        from_request = cam.reference_downscale_factor is not None
        factor = cam.reference_downscale_factor if from_request else (lora.reference_downscale_factor or 1)
        reference_size(req, caps, factor, f"camera trajectory LoRA '{cam.trajectory_lora}'",
                       "camera.reference_downscale_factor", from_request)
        if not cam.frames:
            raise InvalidRequest(f"camera mode 'trajectory' needs the camera track; send {req.num_frames} frames")
    elif cam.reference_downscale_factor is not None:
        warnings.append("camera.reference_downscale_factor is used only in trajectory mode; it is ignored")
    if not cam.frames:
        if cam.mode == "auto":
            warnings.append("no camera track sent: camera LoRAs are off for this shot")
        return
    if len(cam.frames) != req.num_frames:
        raise InvalidRequest(f"camera track has {len(cam.frames)} frames; it needs one per output frame "
                             f"({req.num_frames})")
    for i, f in enumerate(cam.frames):
        px = caps.limits.max_intrinsics_px
        if not all(_finite(v) and 0 < v <= px for v in (f.fx, f.fy)) or \
                not all(_finite(v) and abs(v) <= px for v in (f.cx, f.cy)):
            raise InvalidRequest(f"camera frame {i}: intrinsics must be positive pixels up to {px:g} (got fx={f.fx}, "
                                 f"fy={f.fy}, cx={f.cx}, cy={f.cy}); check the camera's lens and sensor")
        w2c = np.asarray(f.world_to_camera, dtype=np.float64)
        if w2c.size != 16:
            raise InvalidRequest(f"camera frame {i}: world_to_camera needs 16 numbers (4x4 row-major), "
                                 f"got {w2c.size}")
        w2c = w2c.reshape(4, 4)
        rot = w2c[:3, :3]
        rigid = (np.all(np.isfinite(w2c)) and np.allclose(w2c[3], [0, 0, 0, 1], atol=1e-6)
                 and np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0)
        if not rigid:
            raise InvalidRequest(f"camera frame {i}: world_to_camera is not a rigid transform (rotation + "
                                 "translation, last row 0 0 0 1); apply the camera's scale before exporting")
        far = caps.limits.max_camera_distance_m
        centre = rot.T @ w2c[:3, 3]  # minus the camera centre, metres
        scale = float(np.max(np.abs(centre)))
        distance = scale * float(np.linalg.norm(centre / scale)) if scale > 0 else 0.0  # no overflow at 1e300
        if not distance <= far:
            raise InvalidRequest(f"camera frame {i}: world_to_camera translation puts the camera {distance:.3g} m "
                                 f"from the world origin; keep it within {far:g} m (move the scene closer to "
                                 "the origin or check the export's units)")
