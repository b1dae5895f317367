"""What the connected server accepts, as reported by GetCapabilities and remembered per profile
(at the last "Test connection"), and the snapping that follows from it. No bpy, no network.

With no limits known ({}), the model's fixed rules apply: sizes /32, any maximum.
"""

from __future__ import annotations

import math

from ..core.planning import snap_size
from ..proto import render_pb2 as pb
from ..shot_bundle import reference_canvas_size
from ..shot_cost import cost_from_proto

BASE_MULTIPLE = 32  # the model's latent cell in pixels: a reference canvas side must be a multiple too


def server_limits(caps: pb.Capabilities) -> dict:
    """Size rule and maxima, frames per shot, the reference_downscale_factor of each LoRA that
    reads a canvas (so the canvas is exported at the size the engine reads, never bigger, and
    sizes snap to what it can read), whether references ride in a half-size first stage, and the
    names of the installed control, camera preset and camera trajectory LoRAs."""
    reads_canvas = (pb.LORA_KIND_CONTROL, pb.LORA_KIND_CAMERA_TRAJECTORY)
    return {
        "size_multiple": caps.size_multiple or BASE_MULTIPLE,
        "latent_cell": caps.latent_cell or BASE_MULTIPLE,
        "two_stage": bool(caps.two_stage),
        "max_width": caps.max_width,
        "max_height": caps.max_height,
        "max_frames": caps.max_frames,
        "reference_factors": {lo.name: lo.reference_downscale_factor or 1 for lo in caps.loras
                              if lo.kind in reads_canvas},
        "reference_temporal_scales": {lo.name: lo.reference_temporal_scale_factor for lo in caps.loras
                                      if lo.kind in reads_canvas and lo.reference_temporal_scale_factor > 1},
        "canvases": {lo.name: lo.canvas for lo in caps.loras if lo.kind == pb.LORA_KIND_CONTROL and lo.canvas},
        "bases": {lo.name: lo.base_model for lo in caps.loras if lo.base_model},
        "model_generation": caps.model_generation,
        "controls": sorted(lo.name for lo in caps.loras if lo.kind == pb.LORA_KIND_CONTROL),
        "camera_presets": sorted(lo.name for lo in caps.loras if lo.kind == pb.LORA_KIND_CAMERA_PRESET),
        "camera_trajectories": sorted(lo.name for lo in caps.loras if lo.kind == pb.LORA_KIND_CAMERA_TRAJECTORY),
        # For Preview vs Final (core/preview.py) and the estimate shown beside the Render button.
        "model_variant": caps.model_variant,
        "default_steps": caps.default_steps,
        "default_stages": caps.default_stages or (2 if caps.two_stage else 1),
        "min_width": caps.min_width,
        "min_height": caps.min_height,
        "cost_model": _cost_dict(caps),
    }


def _cost_dict(caps: pb.Capabilities) -> dict:
    """Capabilities.cost_model as a JSON-able dict ({} from a server that reports none: protocol 2.0)."""
    if not caps.HasField("cost_model"):
        return {}
    cost = cost_from_proto(caps.cost_model)
    return cost.to_dict() if cost is not None else {}


def reference_size_for(lora: str, limits: dict) -> tuple[int, int]:
    """(divisor, multiple) of the named LoRA on this server: its canvas is (W / divisor) x
    (H / divisor) and W, H must be multiples of `multiple`. divisor = reference_downscale_factor,
    x2 when the server renders two stages. (0, 0) when the LoRA is unknown (no Test connection yet)."""
    factor = int((limits.get("reference_factors") or {}).get(lora) or 0) if lora else 0
    if not factor:
        return 0, 0
    divisor = factor * (2 if limits.get("two_stage") else 1)
    return divisor, int(limits.get("latent_cell") or BASE_MULTIPLE) * divisor


def camera_loras_for(mode: str, preset: str, trajectory: str, limits: dict) -> tuple[str, str]:
    """(preset_lora, trajectory_lora) for the shot manifest; ValueError saying what to pick.

    "preset" needs a camera preset LoRA name; "trajectory" a trajectory LoRA name, or the
    server's only one when it reported exactly one. With limits known (Test connection), a
    name the server does not have is refused here, before a long export. Other modes send none.
    """
    if mode == "preset":
        return _installed(preset, limits.get("camera_presets"), "Named preset", "camera LoRA",
                          "camera presets", "camera preset LoRA"), ""
    if mode == "trajectory":
        trajectory = _trajectory_or_only_one(trajectory, limits)
        return "", _installed(trajectory, limits.get("camera_trajectories"), "Trajectory", "trajectory LoRA",
                              "trajectory LoRAs", "trajectory LoRA")
    return "", ""


def _installed(name: str, installed: list[str] | None, mode_label: str, needs: str, pool: str,
               kind: str) -> str:
    """`name` if the server has it (or its list is unknown yet), else a ValueError naming the choices."""
    if not name:
        raise ValueError(f"camera mode '{mode_label}' needs a {needs} name; pick one of: "
                         + (", ".join(installed) if installed else f"the server's {pool} "
                            "(press Test connection to list them)"))
    if installed is not None and name not in installed:
        raise ValueError(f"{kind} {name!r} is not installed on the server; pick one of: "
                         + (", ".join(installed) or "none installed"))
    return name


def _trajectory_or_only_one(trajectory: str, limits: dict) -> str:
    trajectories = limits.get("camera_trajectories")
    return trajectory or (trajectories[0] if trajectories and len(trajectories) == 1 else "")


def size_rule(limits: dict, control_lora: str = "", camera_mode: str = "", trajectory_lora: str = "",
              ) -> tuple[int, str]:
    """(multiple, why): what width and height must be multiples of on this server for this shot,
    and the reason in the user's words. The server's size_multiple, and the reference_size_multiple
    of the control LoRA and, in camera mode "trajectory", of the trajectory LoRA ('' = the
    server's only one): each reads a canvas of 1/divisor the size, whose sides must be whole
    latent cells."""
    base = int(limits.get("size_multiple") or BASE_MULTIPLE)
    rules = [(base, "")]  # first: on a tie the plain server rule is the one named
    for kind, name in (("control", control_lora),
                       ("trajectory", _trajectory_or_only_one(trajectory_lora, limits)
                        if camera_mode == "trajectory" else "")):
        divisor, multiple = reference_size_for(name, limits)
        if multiple:
            rules.append((multiple, f"the {kind} LoRA {name!r} reads a 1/{divisor}-size canvas"))
    multiple = math.lcm(*(m for m, _ in rules))
    named, covered = [], 1
    for m, why in sorted(rules, key=lambda r: -r[0]):  # stable: the larger rules first
        if covered == multiple:
            break
        covered = math.lcm(covered, m)
        if why:
            named.append(why)
    rule = f"sizes must be multiples of {multiple}"
    return multiple, (f"{' and '.join(named)}, so {rule}" if named else rule)


def snap_size_for(width: int, height: int, limits: dict, control_lora: str = "", camera_mode: str = "",
                  trajectory_lora: str = "") -> tuple[int, int, str]:
    """(width, height, message): the size a render will use, snapped to size_rule() and fitted
    to the server's maxima (0 / missing = no maximum). message is "" when the size is used as
    it is, else e.g. "width 250 -> 256: the control LoRA 'depth' reads a 1/4-size canvas, so
    sizes must be multiples of 128"."""
    multiple, why = size_rule(limits, control_lora, camera_mode, trajectory_lora)
    max_w, max_h = int(limits.get("max_width") or 0) or None, int(limits.get("max_height") or 0) or None
    if any(most and most < multiple for most in (max_w, max_h)):
        raise ValueError(f"{why}, but the server's maximum is {max_w or '-'}x{max_h or '-'}; "
                         "pick a LoRA trained at a smaller reference factor")
    new_w, new_h, _ = snap_size(width, height, multiple, max_w, max_h)
    if (new_w, new_h) == (width, height):
        return width, height, ""
    changes = [f"{side} {old} -> {new}" for side, old, new in (("width", width, new_w), ("height", height, new_h))
               if old != new]
    reasons = []
    if (max_w and width > max_w) or (max_h and height > max_h):
        reasons.append(f"the server's maximum is {max_w or '-'}x{max_h or '-'}")
    if width % multiple or height % multiple:
        reasons.append(why)
    return new_w, new_h, f"{', '.join(changes)}: {'; '.join(reasons)}"


def reference_canvases(limits: dict, control_lora: str, has_control: bool, camera_mode: str = "",
                        trajectory_lora: str = "", fallback_factor: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(reference_downscale_factor, reference_temporal_scale_factor) of each canvas a shot sends, for
    the estimate: the control canvas (when there is a control: a LoRA, or targets for the server's
    default one) and the camera trajectory canvas (Trajectory mode). A LoRA the server has not
    reported counts at fallback_factor (control) and is left out (trajectory)."""
    factors, scales = [], []
    known = limits.get("reference_factors") or {}
    temporal = limits.get("reference_temporal_scales") or {}
    if has_control:
        factors.append(int(known.get(control_lora) or 0) or int(fallback_factor) or 1)
        scales.append(int(temporal.get(control_lora) or 1))
    if camera_mode == "trajectory":
        name = _trajectory_or_only_one(trajectory_lora, limits)
        if known.get(name):
            factors.append(int(known[name]))
            scales.append(int(temporal.get(name) or 1))
    return tuple(factors), tuple(scales)


def canvas_size_for(control_lora: str, limits: dict, width: int, height: int, fallback_factor: int = 1
                    ) -> tuple[int, int]:
    """(w, h) of the control canvas to export for an output of width x height: what the control
    LoRA reads on this server, else 1/fallback_factor (the panel's Reference downscale, used
    before the server was asked)."""
    factor = int((limits.get("reference_factors") or {}).get(control_lora) or 0) if control_lora else 0
    if not factor:
        return reference_canvas_size(width, height, int(fallback_factor))
    return reference_canvas_size(width, height, factor, bool(limits.get("two_stage")))


def frames_problem(num_frames: int, limits: dict) -> str:
    """"" when one shot of num_frames fits the server, else what to do instead."""
    most = int(limits.get("max_frames") or 0)
    if most and num_frames > most:
        return (f"the server renders at most {most} frames per shot (got {num_frames}); shorten the preview "
                f"range or use Render Animation, which cuts the range into shots")
    return ""


DEFAULT_CANVAS = "depth+pose"  # AVControl's composite: what this project's own LoRAs read


def lora_canvases(lora: str, limits: dict) -> list[str]:
    """The canvas kinds a control LoRA was trained on, as the server reported ([] = unknown)."""
    raw = (limits.get("canvases") or {}).get(lora) or ""
    return [k for k in raw.split(",") if k]


def canvas_kind_for(lora: str, limits: dict, chosen: str = "auto") -> str:
    """The canvas kind to export for `lora`: the artist's choice when the LoRA reads it, else (auto)
    the first kind it reads; DEFAULT_CANVAS when nothing is known. ValueError naming what it reads."""
    reads = lora_canvases(lora, limits)
    if chosen in ("", "auto"):
        return reads[0] if reads else DEFAULT_CANVAS
    if reads and chosen not in reads:
        raise ValueError(f"the control LoRA {lora!r} was trained on {' or '.join(reads)} canvases, not {chosen}; "
                         f"set Canvas to Auto or to one of {', '.join(reads)}, or pick another LoRA")
    return chosen


def choose_control_lora(limits: dict, chosen_kind: str = "auto") -> tuple[str, str]:
    """(LoRA name, why) for a scene that names none: the server's control LoRA that reads the chosen
    canvas kind and fits its model generation; a known canvas beats an unknown one, then by name.
    ValueError when the server has none that fits."""
    controls = list(limits.get("controls") or [])
    generation = limits.get("model_generation") or ""
    bases = limits.get("bases") or {}
    fitting = [n for n in controls if not generation or bases.get(n) in (None, "", generation)]
    if chosen_kind not in ("", "auto"):
        fitting = [n for n in fitting if not lora_canvases(n, limits) or chosen_kind in lora_canvases(n, limits)]
    if not fitting:
        what = f" for {chosen_kind} canvases" if chosen_kind not in ("", "auto") else ""
        gen = f" on {generation}" if generation else ""
        raise ValueError(f"the server has no control LoRA{what}{gen}; installed control LoRAs: "
                         f"{', '.join(controls) or 'none'} (install one with render-backend serve --lora NAME=PATH)")
    best = sorted(fitting, key=lambda n: (not lora_canvases(n, limits), n))[0]
    reads = lora_canvases(best, limits)
    return best, (f"control LoRA {best!r} (reads {' or '.join(reads)})" if reads else
                  f"control LoRA {best!r} (its canvas is not declared: sending {canvas_kind_for(best, limits, chosen_kind)})")
