"""Protobuf <-> engine types, in one place: the manifest becomes a RenderRequest, the engine's
typed capabilities become `Capabilities`. Plus the only checks that belong to the transport
(ids, enum numbers, how many controls a message may announce); every rule about the shot itself
is the engine's (engine/checks.py).

Errors are `ShotError(code, message)`, code a grpc status name, the message what to change.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import __version__
from ..engine.contract import EngineCapabilities
from ..engine.request import CameraFrame, CameraRequest, ControlInput, FrameCondition, RenderRequest
from ..proto import render_pb2 as pb
from ..shot_cost import CostModel, cost_to_proto

PROTOCOL_VERSION = "2.1"
CAMERA_MODES = {pb.CAMERA_MODE_UNSPECIFIED: "auto", pb.CAMERA_MODE_AUTO: "auto",
                pb.CAMERA_MODE_PRESET: "preset", pb.CAMERA_MODE_TRAJECTORY: "trajectory",
                pb.CAMERA_MODE_OFF: "off"}
LORA_KINDS = {"control": pb.LORA_KIND_CONTROL, "camera_preset": pb.LORA_KIND_CAMERA_PRESET,
              "camera_trajectory": pb.LORA_KIND_CAMERA_TRAJECTORY, "style": pb.LORA_KIND_STYLE}
MAX_REQUEST_ID_CHARS = 128
MAX_CONTROLS = 4  # canvases in one shot; each costs a VAE encode and reference tokens
# Bounds on what one message may make large, checked before anything is converted: names become file
# names (<= 255 bytes with the suffix, 2 bytes per character at most for the stem's ASCII fallback),
# per-frame arrays never need more entries than any engine renders frames.
MAX_SHOT_NAME_CHARS = 120
MAX_CLIENT_INFO_CHARS = 256
MAX_EXTRA_LORAS = 16
MAX_PER_FRAME_VALUES = 4096
ARTIFACT_KINDS = {pb.ARTIFACT_KIND_VIDEO_MP4: "VIDEO_MP4", pb.ARTIFACT_KIND_AUDIO_WAV: "AUDIO_WAV",
                  pb.ARTIFACT_KIND_SIDECAR_JSON: "SIDECAR_JSON", pb.ARTIFACT_KIND_TAIL_ZIP: "TAIL_ZIP",
                  pb.ARTIFACT_KIND_FRAMES_ZIP: "FRAMES_ZIP"}


class ShotError(Exception):
    """A request the server refuses; `code` is a grpc status name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def capabilities_to_proto(caps: EngineCapabilities, auth_required: bool,
                          cost: Optional[CostModel] = None) -> pb.Capabilities:
    """cost: the server's current cost model (measured on its jobs); None = the engine's a-priori one."""
    lim = caps.limits
    c = pb.Capabilities(
        protocol_version=PROTOCOL_VERSION, server_version=__version__, model_id=caps.model_id,
        model_variant=caps.model_variant, frame_step=caps.frame_step, max_frames=caps.max_frames,
        size_multiple=caps.size_multiple, max_width=caps.max_width, max_height=caps.max_height,
        gpu_memory_free_bytes=caps.gpu_memory_free_bytes, device=caps.device, default_steps=caps.default_steps,
        default_guidance_scale=caps.default_guidance_scale, default_fps=caps.default_fps,
        audio_sample_rate=caps.audio_sample_rate, two_stage=caps.two_stage, auth_required=auth_required,
        engine=caps.engine, min_frames=caps.min_frames, latent_cell=caps.latent_cell, min_fps=lim.min_fps,
        max_fps=lim.max_fps, max_steps=lim.max_steps, max_guidance_scale=lim.max_guidance_scale,
        max_prompt_chars=lim.max_prompt_chars, max_lora_weight=lim.max_lora_weight,
        variant_source=caps.variant_source, default_stages=caps.stages, guidance=caps.guidance,
        min_width=max(caps.min_width, caps.size_multiple), min_height=max(caps.min_height, caps.size_multiple),
        model_generation=caps.model_generation)
    for lo in caps.loras:
        c.loras.add(name=lo.name, kind=LORA_KINDS.get(lo.kind, pb.LORA_KIND_UNSPECIFIED),
                    reference_downscale_factor=lo.reference_downscale_factor or 0,
                    camera_move=lo.camera_move or "", sha256=lo.sha256, rank=lo.rank, canvas=lo.canvas or "",
                    base_model=lo.base or "", reference_temporal_scale_factor=lo.reference_temporal_scale_factor)
    cost = cost or caps.cost_model
    if cost is not None:
        cost_to_proto(cost, c.cost_model)
    return c


def check_transport(m: pb.ShotManifest) -> None:
    """What the engine cannot judge: ids, names and enum numbers of the message itself, and how many
    entries its lists have (before converting them costs anything)."""
    for name, text, most in (("request_id", m.request_id, MAX_REQUEST_ID_CHARS),
                             ("shot_name", m.shot_name, MAX_SHOT_NAME_CHARS),
                             ("client_info", m.client_info, MAX_CLIENT_INFO_CHARS)):
        if len(text) > most:
            raise ShotError("INVALID_ARGUMENT", f"{name} is {len(text)} characters; use at most {most}")
    if len(m.extra_loras) > MAX_EXTRA_LORAS:
        raise ShotError("INVALID_ARGUMENT", f"{len(m.extra_loras)} extra LoRAs in one shot; send at most "
                        f"{MAX_EXTRA_LORAS}")
    if len(m.controls) > MAX_CONTROLS:
        raise ShotError("INVALID_ARGUMENT", f"{len(m.controls)} controls in one shot; send at most {MAX_CONTROLS} "
                        "(composite them onto one canvas, e.g. depth+pose)")
    _bounded("camera.frames", len(m.camera.frames))
    for i, f in enumerate(m.camera.frames):
        _bounded(f"camera.frames[{i}].world_to_camera", len(f.world_to_camera))
    for i, c in enumerate(m.controls):
        _bounded(f"controls[{i}].frame_strength", len(c.frame_strength))
    if m.camera.mode not in CAMERA_MODES:
        raise ShotError("INVALID_ARGUMENT", f"camera.mode {m.camera.mode} is unknown; use AUTO, PRESET, "
                        "TRAJECTORY or OFF")


def _bounded(name: str, n: int) -> None:
    if n > MAX_PER_FRAME_VALUES:
        raise ShotError("INVALID_ARGUMENT", f"{name} has {n} entries; a shot needs one per frame (16 numbers for "
                        f"a world_to_camera), never more than {MAX_PER_FRAME_VALUES}")


def check_artifact_kind(kind: int) -> None:
    """A number the ArtifactKind enum does not have is a bad request (UNSPECIFIED is a kind no job has)."""
    if kind not in pb.ArtifactKind.values():
        *first, last = (f"{k} ({v})" for k, v in ARTIFACT_KINDS.items())
        raise ShotError("INVALID_ARGUMENT", f"artifact kind {kind} does not exist; use {', '.join(first)} or {last}")


def manifest_to_request(m: pb.ShotManifest, frames: Optional[list[Optional[np.ndarray]]] = None,
                        masks: Optional[list[Optional[list[np.ndarray]]]] = None,
                        conditions: Optional[list[np.ndarray]] = None) -> RenderRequest:
    """The engine request for a manifest. frames/masks: per control, the decoded canvas (F, H, W, 3)
    uint8 and its bool masks, once uploaded; conditions: per frame condition its frames; without
    them the request says what will arrive."""
    check_transport(m)
    cam = m.camera
    camera_frames = [CameraFrame(fx=f.fx, fy=f.fy, cx=f.cx, cy=f.cy, lens_mm=f.lens_mm,
                                 world_to_camera=np.asarray(f.world_to_camera, np.float64))
                     for f in cam.frames]
    for f in camera_frames:
        if f.world_to_camera.size == 16:
            f.world_to_camera = f.world_to_camera.reshape(4, 4)
    controls = []
    for i, c in enumerate(m.controls):
        control = ControlInput(
            kind=c.kind, lora=c.lora, lora_weight=c.lora_weight or 1.0, width=c.width, height=c.height,
            num_frames=c.num_frames, strength=c.strength if c.HasField("strength") else 1.0,
            frame_strength=list(c.frame_strength) or None, has_mask=c.has_mask,
            background_strength=c.background_strength if c.HasField("background_strength") else None,
            reference_downscale_factor=c.reference_downscale_factor or None)
        if frames is not None and frames[i] is not None:
            control.attach(frames[i], masks[i] if masks is not None else None)
        controls.append(control)
    frame_conditions = [FrameCondition(num_frames=c.num_frames, width=c.width, height=c.height,
                                       start_frame=c.start_frame, strength=c.strength or 1.0)
                        for c in m.conditions]
    for condition, pixels in zip(frame_conditions, conditions or [], strict=False):
        condition.attach(pixels)
    return RenderRequest(
        prompt=m.prompt, negative_prompt=m.negative_prompt, width=m.width, height=m.height,
        num_frames=m.num_frames, fps=m.fps, seed=m.seed,
        num_inference_steps=m.num_inference_steps or None, guidance_scale=m.guidance_scale or None,
        controls=controls, conditions=frame_conditions,
        camera=CameraRequest(mode=CAMERA_MODES[cam.mode], preset_lora=cam.preset_lora,
                             trajectory_lora=cam.trajectory_lora, weight=cam.weight or 1.0, frames=camera_frames,
                             reference_downscale_factor=cam.reference_downscale_factor or None),
        extra_loras=[(e.name, e.weight or 1.0) for e in m.extra_loras], audio=m.audio,
        stages=m.stages or None)
