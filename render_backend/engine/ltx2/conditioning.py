"""From a checked RenderRequest to what one generation uses: active LoRA adapters and reference canvases.

Each control canvas -> a reference at its LoRA's factor (or the request's override) and temporal
scale, with a per-token strength map when it has one (strength.needs_strength_map). Camera, by mode:
- "auto": classify the track; apply the installed preset LoRA for that move (if any);
- "preset": the named preset LoRA;
- "trajectory": a trajectory canvas at the trajectory LoRA's factor (or the request's override)
  as one more reference (strength 1) plus that LoRA;
- "off": nothing.
Frame conditions (a previous window's last frames) -> the shot's first latent frames, held in place
(frame_conditions.py) in BOTH stages of a two-stage render.
The request has passed engine/checks.py; what is left to refuse here needs the pixels or the
camera track's geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..loras import LoraInfo
from ..request import ControlInput, InvalidRequest, RenderRequest
from .references import ReferenceCanvas, latent_grid, reference_size


@dataclass
class Conditioning:
    adapters: list[tuple[str, float]] = field(default_factory=list)  # (LoRA name, weight), in order
    # Stage 2 of two-stage mode: the plain (prompt) LoRAs only. Lightricks' IC-LoRA pipeline drops
    # the IC-LoRA after stage 1; its distilled and two-stage pipelines apply plain LoRAs (camera
    # presets, styles) in both stages.
    stage2_adapters: list[tuple[str, float]] = field(default_factory=list)
    references: list[ReferenceCanvas] = field(default_factory=list)
    conditions: list[ReferenceCanvas] = field(default_factory=list)  # frame conditions, held in both stages
    controls: list[dict] = field(default_factory=list)  # what RenderResult.info["controls"] reports
    camera: dict = field(default_factory=dict)  # what RenderResult.info["camera"] reports


def plan_conditioning(req: RenderRequest, registry: dict[str, LoraInfo], width: int | None = None,
                      height: int | None = None) -> Conditioning:
    """Adapters and reference canvases for `req`. width/height: the size of the generation that
    carries the references (default the output size; half of it for stage 1 of two-stage mode)."""
    plan = Conditioning()
    size = (width or req.width, height or req.height)
    for index, control in enumerate(req.controls):
        _plan_control(req, index, control, registry, plan, size)
    _plan_camera(req, registry, plan, size)
    for index, condition in enumerate(req.conditions):
        if condition.frames is None:
            raise InvalidRequest(f"conditions[{index}]: the frames never arrived; send the shot again")
        # Encoded at factor 1 like a canvas of F frames; frame_conditions.py holds the shot's first
        # latent frames to it (ltx-core's conditioning by latent index 0).
        plan.conditions.append(ReferenceCanvas(f"condition:{index}", condition.frames, 1, float(condition.strength),
                                               has_map=condition.strength < 1.0))
    for name, weight in req.extra_loras:
        plan.adapters.append((name, float(weight)))
    plan.stage2_adapters = [(n, w) for n, w in plan.adapters if not registry[n].reads_canvas]
    return plan


def _plan_control(req: RenderRequest, index: int, control: ControlInput, registry: dict[str, LoraInfo],
                  plan: Conditioning, size: tuple[int, int]) -> None:
    from ..strength import needs_strength_map, reference_token_strength

    if control.frames is None:
        raise InvalidRequest(f"controls[{index}] ({control.kind}): the canvas frames never arrived; send the shot again")
    info = registry[control.lora]
    plan.adapters.append((info.name, float(control.lora_weight)))
    from_request = control.reference_downscale_factor is not None
    factor = control.reference_downscale_factor if from_request else (info.reference_downscale_factor or 1)
    scale = info.reference_temporal_scale_factor
    reference_size(size[0], size[1], factor)
    lf, lh, lw = latent_grid(req.num_frames, size[0], size[1], factor, scale)
    has_map = needs_strength_map(control.strength, control.frame_strength, control.masks)
    strength = reference_token_strength(req.num_frames, lf, lh, lw, control.strength, control.frame_strength,
                                        control.masks, control.background_strength, scale)
    plan.references.append(ReferenceCanvas(f"control:{control.kind}", control.frames, factor, strength, has_map,
                                           scale))
    plan.controls.append({
        "kind": control.kind,
        "lora": info.name,
        "lora_weight": float(control.lora_weight),
        "reference_downscale_factor": factor,
        "factor_source": "request" if from_request else "lora metadata",
        "reference_temporal_scale_factor": scale,
        "strength": float(control.strength),
        "frame_strength": control.frame_strength is not None,
        "regional": control.masks is not None,
        "background_strength": control.background_strength,  # None: nothing outside the mask (Lightricks)
        "strength_map": has_map,
        "token_strength_min": float(np.min(strength)),
        "token_strength_max": float(np.max(strength)),
    })


def _classify(req: RenderRequest) -> dict:
    from ..camera_moves import classify_camera_move

    if not req.camera.frames:
        return {"move": None, "preset": None, "confidence": 0.0, "details": {}}
    try:
        move = classify_camera_move(req.camera.frames)
    except ValueError as e:
        raise InvalidRequest(f"camera track: {e}") from None
    return {"move": move.move, "preset": move.preset, "confidence": float(move.confidence),
            "details": move.details}


def _plan_camera(req: RenderRequest, registry: dict[str, LoraInfo], plan: Conditioning,
                 size: tuple[int, int]) -> None:
    cam = req.camera
    if cam.mode == "off" or (cam.mode == "auto" and not cam.frames):
        plan.camera = {"mode": "off"} if cam.mode == "off" else {
            "mode": "auto", "move": None, "preset": None, "confidence": 0.0, "details": {}, "lora": None,
            "weight": float(cam.weight), "note": "no camera track"}
        return
    plan.camera = {"mode": cam.mode, **_classify(req), "lora": None, "weight": float(cam.weight)}
    if cam.mode == "auto":
        wanted = plan.camera["preset"]
        matches = [i for i in registry.values() if i.kind == "camera_preset" and i.camera_move == wanted]
        if wanted is None:
            plan.camera["note"] = f"move {plan.camera['move']!r} has no preset LoRA; none applied"
        elif not matches:
            plan.camera["note"] = f"no camera preset LoRA for {wanted!r} is installed; none applied"
        else:
            plan.camera["lora"] = sorted(matches, key=lambda i: i.name)[0].name
    elif cam.mode == "preset":
        plan.camera["lora"] = cam.preset_lora
    else:
        _plan_trajectory(req, registry, plan, size)
    if plan.camera["lora"]:
        plan.adapters.append((plan.camera["lora"], float(cam.weight)))


def _plan_trajectory(req: RenderRequest, registry: dict[str, LoraInfo], plan: Conditioning,
                     size: tuple[int, int]) -> None:
    from ..camera_canvas import CANVAS_VERSION, trajectory_canvas

    cam = req.camera
    info = registry[cam.trajectory_lora]
    from_request = cam.reference_downscale_factor is not None
    factor = cam.reference_downscale_factor if from_request else (info.reference_downscale_factor or 1)
    ref_w, ref_h = reference_size(size[0], size[1], factor)
    try:
        # Intrinsics are in output pixels; the canvas generator rescales them to the canvas.
        canvas = trajectory_canvas(cam.frames, ref_w, ref_h, output_width=req.width, output_height=req.height)
    except ValueError as e:
        raise InvalidRequest(f"camera track: {e}") from None
    scale = info.reference_temporal_scale_factor
    plan.references.append(ReferenceCanvas("camera_trajectory", canvas, factor, 1.0, False, scale))
    plan.camera.update(lora=info.name, reference_downscale_factor=factor, canvas_size=[ref_w, ref_h],
                       reference_temporal_scale_factor=scale,
                       factor_source="request" if from_request else "lora metadata", canvas_spec=CANVAS_VERSION)
