"""Preview or Final: what a render of the shot will actually use, in one pure function.

Final is the panel's settings as the server takes them (size snapped to its rules, its default
steps and stages). Preview trades detail for time, and only where the result stays honest:

- half the width and height, snapped to what one stage accepts (multiples of 32, or of the
  control LoRA's reference rule), never below the model's smallest side: ~1/4 of the tokens;
- one stage: no latent upsampler and no full-size refine (two-stage servers);
- fewer steps only where the model allows it: a dev model follows Lightricks' dev schedule at any
  step count, so a preview takes half of its default (at least DEV_PREVIEW_MIN_STEPS); a distilled
  model keeps its 8 steps, because 8 fixed sigmas are what it was distilled on (fewer would leave
  that schedule, and Lightricks' pipelines offer no shorter one);
- every frame at the scene's fps: dropping frames (every 2nd at half fps) would need 16k+1 ranges,
  a scene fps change when the strip is imported, and a model generating audio for another frame
  rate. So the preview strip covers exactly the frames, and the sound, of the final take.

No bpy; limits is client.limits.server_limits() of the profile ({} before a Test connection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from .planning import snap_size

PREVIEW, FINAL = "preview", "final"
QUALITIES = (PREVIEW, FINAL)
DEV_PREVIEW_MIN_STEPS = 12
LATENT_CELL = 32
MIN_SIDE = 2 * LATENT_CELL  # LTX-2's VAE decoder needs two latent cells a side

# snap(width, height, limits) -> (width, height, message): the server's and the LoRAs' size rule
SnapFn = Callable[[int, int, dict], tuple[int, int, str]]


@dataclass(frozen=True)
class RenderSettings:
    """What a render sends. steps / stages None = the server's default. limits: the limits the
    export must snap and size canvases with (one stage's for a preview). estimate_steps /
    estimate_stages: the values the server will use (for the estimate; 0 when unknown)."""

    quality: str
    width: int
    height: int
    num_frames: int
    steps: Optional[int]
    stages: Optional[int]
    limits: dict
    reason: str
    estimate_steps: int = 0
    estimate_stages: int = 0
    final_size: tuple[int, int] = (0, 0)  # (width, height) the Final render of these settings uses

    def summary(self) -> str:
        """One line for the panel: "Preview: 384 x 256, 121 frames, 1 stage, 8 steps"."""
        steps = self.steps or self.estimate_steps
        stages = self.stages or self.estimate_stages
        parts = [f"{self.width} x {self.height}", f"{self.num_frames} frames"]
        if stages:
            parts.append(f"{stages} stage{'s' if stages > 1 else ''}")
        if steps:
            parts.append(f"{steps} steps")
        return f"{self.quality.capitalize()}: {', '.join(parts)}"


def one_stage_limits(limits: dict) -> dict:
    """The limits a one-stage render follows: sizes multiples of the latent cell (not 64), and
    reference canvases read at 1/factor of the output (not 1/(2 factor))."""
    cell = int(limits.get("latent_cell") or LATENT_CELL)
    return {**limits, "two_stage": False, "size_multiple": cell}


def _default_snap(width: int, height: int, limits: dict) -> tuple[int, int, str]:
    return snap_size(width, height, int(limits.get("size_multiple") or LATENT_CELL),
                     int(limits.get("max_width") or 0) or None, int(limits.get("max_height") or 0) or None)


def server_steps(limits: dict) -> int:
    return int(limits.get("default_steps") or 0)


def server_stages(limits: dict) -> int:
    stages = int(limits.get("default_stages") or 0)
    return stages or ((2 if limits.get("two_stage") else 1) if "two_stage" in limits else 0)


def preview_steps(limits: dict) -> tuple[Optional[int], str]:
    """(steps to send, why): None keeps the server's default."""
    variant, default = limits.get("model_variant") or "", server_steps(limits)
    if variant == "dev" and default:
        steps = min(default, max(DEV_PREVIEW_MIN_STEPS, default // 2))
        return steps, f"{steps} of the dev model's {default} steps"
    if variant == "distilled":
        return None, f"the distilled model's {default or 8} steps (its schedule has no shorter form)"
    return None, "the server's default steps (Test connection tells the model)"


def render_settings(quality: str, width: int, height: int, num_frames: int, limits: dict,
                    snap: SnapFn = _default_snap) -> RenderSettings:
    """The effective size, frames, steps and stages of a render at `quality` ("preview" or "final")
    of a width x height x num_frames shot (num_frames already 8k+1). snap applies the size rule of
    the server and the shot's LoRAs (client.limits.snap_size_for with the shot's LoRA names);
    ValueError from it propagates."""
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)} (got {quality!r})")
    if quality == FINAL:
        w, h, message = snap(width, height, limits)
        return RenderSettings(FINAL, w, h, num_frames, None, None, limits, message or "the panel's settings",
                              estimate_steps=server_steps(limits), estimate_stages=server_stages(limits),
                              final_size=(w, h))
    final_w, final_h, _ = snap(width, height, limits)
    one = one_stage_limits(limits)
    least = max(int(limits.get("min_width") or 0), MIN_SIDE), max(int(limits.get("min_height") or 0), MIN_SIDE)
    w, h, _ = snap(max(final_w // 2, least[0]), max(final_h // 2, least[1]), one)
    steps, steps_why = preview_steps(limits)
    stage_why = ("one stage (no upsampler, no full-size refine)" if server_stages(limits) != 1
                 else "one stage, as the server always renders")
    reason = (f"half size {w} x {h} (final {final_w} x {final_h}), {stage_why}, {steps_why}; every frame at "
              "the scene's fps, so the strip and its sound cover the final take's frames")
    return RenderSettings(PREVIEW, w, h, num_frames, steps, 1, one, reason,
                          estimate_steps=steps or server_steps(limits), estimate_stages=1,
                          final_size=(final_w, final_h))


def estimate_line(settings: RenderSettings, limits: dict, where: str = "",
                  reference_factors: tuple[int, ...] = (), reference_temporal_scales: tuple[int, ...] = ()) -> str:
    """"≈ 14 s, 9.2 GiB on gpu-box (measured)" from the cost model the server reported at the last
    Test connection (limits["cost_model"]); "" when it reported none (older server, not asked yet)."""
    from ..shot_cost import CostModel, estimate_shot

    cost = CostModel.from_dict(limits.get("cost_model"))
    if cost is None or not settings.estimate_steps:
        return ""
    stages = settings.estimate_stages or 1
    est = estimate_shot(cost, settings.width, settings.height, settings.num_frames, settings.estimate_steps,
                        stages, reference_factors, reference_temporal_scales)
    return est.text(where)
