"""From a RenderRequest to what one generation uses: active LoRA adapters and reference canvases.

Control canvas -> a reference at the control LoRA's factor (or the request's override) with a
per-token strength map. Camera, by mode:
- "auto": classify the track; apply the installed preset LoRA for that move (if any);
- "preset": the named preset LoRA;
- "trajectory": a trajectory canvas at the trajectory LoRA's factor (or the request's override)
  as a second reference (strength 1) plus that LoRA;
- "off": nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .loras import LoraInfo
from .references import ReferenceCanvas, latent_grid, reference_size
from .request import InvalidRequest, RenderRequest, UnknownLora

CAMERA_MODES = ("auto", "preset", "trajectory", "off")


@dataclass
class Conditioning:
    adapters: list[tuple[str, float]] = field(default_factory=list)  # (LoRA name, weight), in order
    references: list[ReferenceCanvas] = field(default_factory=list)
    control: dict = field(default_factory=dict)  # what RenderResult.info["control"] reports
    camera: dict = field(default_factory=dict)  # what RenderResult.info["camera"] reports


def lookup(registry: dict[str, LoraInfo], name: str, want: tuple[str, ...], role: str) -> LoraInfo:
    """The installed LoRA `name`, checked to be of a kind in `want`."""
    if name not in registry:
        installed = ", ".join(sorted(registry)) or "none"
        raise UnknownLora(f"{role} LoRA {name!r} is not installed on this server; installed: {installed}")
    info = registry[name]
    if info.kind not in want:
        raise InvalidRequest(f"{role} LoRA {name!r} is a {info.kind} LoRA; {role} needs one of kind "
                             f"{' or '.join(want)}")
    return info


def _check_weight(name: str, weight: float) -> float:
    if not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise InvalidRequest(f"weight of LoRA {name!r} must be a finite number (got {weight!r})")
    return float(weight)


def plan_conditioning(req: RenderRequest, registry: dict[str, LoraInfo], width: int | None = None,
                      height: int | None = None) -> Conditioning:
    """Adapters and reference canvases for `req`. width/height: the size of the generation that
    carries the references (default the output size; half of it for stage 1 of two-stage mode)."""
    plan = Conditioning()
    size = (width or req.width, height or req.height)
    _plan_control(req, registry, plan, size)
    _plan_camera(req, registry, plan, size)
    for name, weight in req.extra_loras:
        lookup(registry, name, ("style", "control", "camera_preset", "camera_trajectory"), "extra")
        plan.adapters.append((name, _check_weight(name, weight)))
    names = [n for n, _ in plan.adapters]
    if len(set(names)) != len(names):
        raise InvalidRequest(f"a LoRA is requested twice ({', '.join(names)}); list each LoRA once")
    return plan


def _plan_control(req: RenderRequest, registry: dict[str, LoraInfo], plan: Conditioning,
                  size: tuple[int, int]) -> None:
    from .strength import reference_token_strength, validate_strength

    if req.control_frames is None:
        plan.control = {"canvas": False}
        return
    frames = np.asarray(req.control_frames) if not isinstance(req.control_frames, np.ndarray) else req.control_frames
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InvalidRequest(f"control_frames must be uint8 RGB images (F, H, W, 3) (got {frames.dtype} "
                             f"{tuple(frames.shape)})")
    if len(frames) != req.num_frames:
        raise InvalidRequest(f"control canvas has {len(frames)} frames but the shot has {req.num_frames}; "
                             "send one canvas image per output frame")
    factor = 1
    info: LoraInfo | None = None
    if req.control_lora:
        info = lookup(registry, req.control_lora, ("control",), "control")
        factor = info.reference_downscale_factor or 1
        plan.adapters.append((info.name, _check_weight(info.name, req.control_lora_weight)))
    if req.reference_downscale_factor is not None:
        factor = req.reference_downscale_factor
    reference_size(size[0], size[1], factor)
    try:
        validate_strength(req.num_frames, req.strength, req.frame_strength, req.masks, req.background_strength)
    except ValueError as e:
        raise InvalidRequest(str(e)) from None
    lf, lh, lw = latent_grid(req.num_frames, size[0], size[1], factor)
    strength = reference_token_strength(req.num_frames, lf, lh, lw, req.strength, req.frame_strength,
                                        req.masks, req.background_strength)
    plan.references.append(ReferenceCanvas("control", frames, factor, strength))
    plan.control = {
        "canvas": True,
        "lora": info.name if info else None,
        "lora_weight": float(req.control_lora_weight) if info else None,
        "reference_downscale_factor": factor,
        "factor_source": "request" if req.reference_downscale_factor is not None else (
            "lora metadata" if info else "default"),
        "strength": float(req.strength),
        "frame_strength": req.frame_strength is not None,
        "regional": req.masks is not None,
        "background_strength": req.background_strength,
        "token_strength_min": float(np.min(strength)),
        "token_strength_max": float(np.max(strength)),
        "note": None if info else "no control LoRA: the base model sees the canvas without training for it",
    }


def _classify(req: RenderRequest) -> dict:
    from .camera import classify_camera_move

    if not req.camera.frames:
        return {"move": None, "preset": None, "confidence": 0.0, "details": {}}
    if len(req.camera.frames) != req.num_frames:
        raise InvalidRequest(f"camera track has {len(req.camera.frames)} frames but the shot has "
                             f"{req.num_frames}; send one camera per output frame")
    try:
        move = classify_camera_move(req.camera.frames)
    except ValueError as e:
        raise InvalidRequest(f"camera track: {e}") from None
    return {"move": move.move, "preset": move.preset, "confidence": float(move.confidence),
            "details": move.details}


def _plan_camera(req: RenderRequest, registry: dict[str, LoraInfo], plan: Conditioning,
                 size: tuple[int, int]) -> None:
    cam = req.camera
    if cam.mode not in CAMERA_MODES:
        raise InvalidRequest(f"camera mode must be one of {', '.join(CAMERA_MODES)} (got {cam.mode!r})")
    if cam.mode == "off":
        plan.camera = {"mode": "off"}
        return
    weight = _check_weight("camera", cam.weight)
    plan.camera = {"mode": cam.mode, **_classify(req), "lora": None, "weight": weight}
    if cam.mode == "auto":
        wanted = plan.camera["preset"]
        matches = [i for i in registry.values() if i.kind == "camera_preset" and i.camera_move == wanted]
        if wanted is None:
            plan.camera["note"] = ("no camera track" if not cam.frames else
                                   f"move {plan.camera['move']!r} has no preset LoRA; none applied")
        elif not matches:
            plan.camera["note"] = f"no camera preset LoRA for {wanted!r} is installed; none applied"
        else:
            plan.camera["lora"] = sorted(matches, key=lambda i: i.name)[0].name
    elif cam.mode == "preset":
        if not cam.preset_lora:
            raise InvalidRequest("camera mode 'preset' needs preset_lora (a camera preset LoRA name)")
        plan.camera["lora"] = lookup(registry, cam.preset_lora, ("camera_preset",), "camera preset").name
    else:
        _plan_trajectory(req, registry, plan, size)
    if plan.camera["lora"]:
        plan.adapters.append((plan.camera["lora"], weight))


def _plan_trajectory(req: RenderRequest, registry: dict[str, LoraInfo], plan: Conditioning,
                     size: tuple[int, int]) -> None:
    from .camera_canvas import trajectory_canvas

    cam = req.camera
    name = cam.trajectory_lora
    if not name:
        found = sorted(n for n, i in registry.items() if i.kind == "camera_trajectory")
        if len(found) != 1:
            raise InvalidRequest("camera mode 'trajectory' needs trajectory_lora; installed trajectory LoRAs: "
                                 f"{', '.join(found) or 'none'}")
        name = found[0]
    info = lookup(registry, name, ("camera_trajectory",), "camera trajectory")
    if not cam.frames:
        raise InvalidRequest("camera mode 'trajectory' needs the camera track (one camera per frame)")
    factor = info.reference_downscale_factor or 1
    if cam.reference_downscale_factor is not None:
        factor = cam.reference_downscale_factor
    ref_w, ref_h = reference_size(size[0], size[1], factor)
    try:
        # Intrinsics are in output pixels; the canvas generator rescales them to the canvas.
        canvas = trajectory_canvas(cam.frames, ref_w, ref_h, output_width=req.width, output_height=req.height)
    except ValueError as e:
        raise InvalidRequest(f"camera track: {e}") from None
    plan.references.append(ReferenceCanvas("camera_trajectory", canvas, factor, 1.0))
    plan.camera.update(lora=info.name, reference_downscale_factor=factor, canvas_size=[ref_w, ref_h],
                       factor_source="request" if cam.reference_downscale_factor is not None else "lora metadata",
                       canvas_spec="ltx-camera-canvas/1")
