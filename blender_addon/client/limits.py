"""What the connected server accepts, as reported by GetCapabilities and remembered per profile
(at the last "Test connection"), and the snapping that follows from it. No bpy, no network.

With no limits known ({}), the model's fixed rules apply: sizes /32, any maximum.
"""

from __future__ import annotations

from ..core.planning import snap_size
from ..proto import render_pb2 as pb


def server_limits(caps: pb.Capabilities) -> dict:
    """Size rule and maxima, frames per shot, and each control LoRA's reference downscale factor
    (so the canvas is exported at the size the engine reads, never bigger)."""
    return {
        "size_multiple": caps.size_multiple or 32,
        "max_width": caps.max_width,
        "max_height": caps.max_height,
        "max_frames": caps.max_frames,
        "lora_factors": {lo.name: lo.reference_downscale_factor for lo in caps.loras
                         if lo.kind == pb.LORA_KIND_CONTROL and lo.reference_downscale_factor},
    }


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
