"""What the connected server accepts, as reported by GetCapabilities and remembered per profile
(at the last "Test connection"), and the snapping that follows from it. No bpy, no network.

With no limits known ({}), the model's fixed rules apply: sizes /32, any maximum.
"""

from __future__ import annotations

from ..core.planning import snap_size
from ..proto import render_pb2 as pb


def server_limits(caps: pb.Capabilities) -> dict:
    """Size rule and maxima, frames per shot, each control LoRA's reference downscale factor
    (so the canvas is exported at the size the engine reads, never bigger), and the names of
    the installed camera preset and camera trajectory LoRAs."""
    return {
        "size_multiple": caps.size_multiple or 32,
        "max_width": caps.max_width,
        "max_height": caps.max_height,
        "max_frames": caps.max_frames,
        "lora_factors": {lo.name: lo.reference_downscale_factor for lo in caps.loras
                         if lo.kind == pb.LORA_KIND_CONTROL and lo.reference_downscale_factor},
        "camera_presets": sorted(lo.name for lo in caps.loras if lo.kind == pb.LORA_KIND_CAMERA_PRESET),
        "camera_trajectories": sorted(lo.name for lo in caps.loras if lo.kind == pb.LORA_KIND_CAMERA_TRAJECTORY),
    }


def camera_loras_for(mode: str, preset: str, trajectory: str, limits: dict) -> tuple[str, str]:
    """(preset_lora, trajectory_lora) for the shot manifest; ValueError saying what to pick.

    "preset" needs a camera preset LoRA name; "trajectory" a trajectory LoRA name, or the
    server's only one when it reported exactly one. With limits known (Test connection), a
    name the server does not have is refused here, before a long export. Other modes send none.
    """
    presets, trajectories = limits.get("camera_presets"), limits.get("camera_trajectories")
    if mode == "preset":
        if not preset:
            raise ValueError("camera mode 'Named preset' needs a camera LoRA name; pick one of: "
                             + (", ".join(presets) if presets else "the server's camera presets "
                                "(press Test connection to list them)"))
        if presets is not None and preset not in presets:
            raise ValueError(f"camera preset LoRA {preset!r} is not installed on the server; pick one of: "
                             + (", ".join(presets) or "none installed"))
        return preset, ""
    if mode == "trajectory":
        if not trajectory and trajectories and len(trajectories) == 1:
            trajectory = trajectories[0]
        if not trajectory:
            raise ValueError("camera mode 'Trajectory' needs a trajectory LoRA name; pick one of: "
                             + (", ".join(trajectories) if trajectories else "the server's trajectory LoRAs "
                                "(press Test connection to list them)"))
        if trajectories is not None and trajectory not in trajectories:
            raise ValueError(f"trajectory LoRA {trajectory!r} is not installed on the server; pick one of: "
                             + (", ".join(trajectories) or "none installed"))
        return "", trajectory
    return "", ""


def snap_size_for(width: int, height: int, limits: dict) -> tuple[int, int, str]:
    """planning.snap_size with the server's multiple and maxima (0 / missing = no maximum)."""
    return snap_size(width, height, int(limits.get("size_multiple") or 32),
                     int(limits.get("max_width") or 0) or None, int(limits.get("max_height") or 0) or None)


def control_factor_for(control_lora: str, limits: dict, fallback: int) -> int:
    """The control LoRA's reference downscale factor on this server, else the panel's value."""
    return int((limits.get("lora_factors") or {}).get(control_lora) or fallback)


def frames_problem(num_frames: int, limits: dict) -> str:
    """"" when one shot of num_frames fits the server, else what to do instead."""
    most = int(limits.get("max_frames") or 0)
    if most and num_frames > most:
        return (f"the server renders at most {most} frames per shot (got {num_frames}); shorten the preview "
                f"range or use Render Animation, which cuts the range into shots")
    return ""
