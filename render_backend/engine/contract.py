"""The engine contract: what the server (and the offline `render` command) may rely on.

An engine loads a model, says what it can do (`EngineCapabilities`, typed; converted to
protobuf in exactly one place, server/convert.py), checks a request before any pixels arrive
(`check_request`) and renders it. The server never looks inside an engine beyond this.
`serve --engine NAME` picks one from `ENGINES` (render_backend/engine/__init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, runtime_checkable

from ..shot_cost import CostModel
from .request import CancelFn, PlanFn, ProgressFn, RenderRequest, RenderResult


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on what one request may ask, beyond the model's frame and size rules: they keep a
    request from costing unbounded memory or time before the model starts."""

    max_steps: int = 200
    max_guidance_scale: float = 30.0
    min_fps: float = 1.0
    max_fps: float = 240.0
    max_prompt_chars: int = 4000
    max_lora_weight: float = 4.0
    max_name_chars: int = 128  # LoRA names and canvas kinds: names of installed things, never long
    max_camera_distance_m: float = 1e5  # camera centre from the world origin; beyond it math overflows
    max_intrinsics_px: float = 1e6  # fx, fy, |cx|, |cy|


@dataclass(frozen=True)
class LoraCapability:
    """One installed LoRA as clients see it (no path, no raw metadata).

    kind: "control" (reads a control canvas), "camera_preset" (a plain LoRA for one camera
    move), "camera_trajectory" (reads the camera trajectory canvas), "style" (any other).
    reference_downscale_factor: the canvas is read at 1/factor of the size of the generation
    that carries it (None for plain LoRAs).
    """

    name: str
    kind: str
    reference_downscale_factor: Optional[int]
    camera_move: Optional[str]
    sha256: str
    rank: int
    canvas: Optional[str] = None  # control LoRAs: the canvas kind(s) it reads, "a,b" = any one; None = unknown
    base: Optional[str] = None  # the generation it was trained for ("ltx-2", "ltx-2.3"...), when known
    # An IC-LoRA that reads every S-th canvas frame (metadata, ltx-core 1.2+): frames must be 8*S*k+1.
    reference_temporal_scale_factor: int = 1

    def reads(self, kind: str) -> bool:
        """True when this control LoRA was trained on `kind` canvases (or nothing says what it reads)."""
        return self.canvas is None or kind in self.canvas.split(",")


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine can render. Frames are frame_step * k + 1; width and height are multiples of
    size_multiple (for the default number of stages; size_multiple_for(stages) for a request's).

    model_variant: "distilled" or "dev"; variant_source: how it was decided (the checkpoint's
    marker file, or the --variant flag). model_generation: "ltx-2", "ltx-2.3" or "ltx-2.5", read from
    the checkpoint's files ("" for engines without generations); model_generation_source: what the
    files said. default_stages: 2 = two-stage (references ride in a
    half-size first stage, latent upsampler, full-size refine), 1 = one stage at full size; a
    request may ask for fewer (stages=1: fast preview), never more. single_stage_reason: why two
    stages are not available ("" when they are). two_stage: default_stages == 2.
    guidance: what the engine's default guidance is, in words (see ltx2/guidance.py).
    """

    engine: str
    model_id: str
    model_variant: str
    device: str
    dtype: str
    frame_step: int
    min_frames: int
    max_frames: int
    size_multiple: int
    max_width: int
    max_height: int
    default_steps: int
    default_guidance_scale: float
    default_fps: float
    audio_sample_rate: int
    two_stage: bool
    loras: tuple[LoraCapability, ...] = ()
    gpu_memory_free_bytes: int = 0
    latent_cell: int = 32  # output pixels per latent cell: a reference canvas side must be a multiple
    limits: RequestLimits = field(default_factory=RequestLimits)
    variant_source: str = ""
    default_stages: int = 0  # 0: from two_stage (engines that predate stages)
    single_stage_reason: str = ""
    guidance: str = ""
    min_width: int = 0  # smallest output that renders; 0 = size_multiple
    min_height: int = 0
    model_generation: str = ""
    model_generation_source: str = ""
    # What a shot costs, a priori from the model's size (the server replaces the seconds with measured
    # ones: server/cost.py); None for engines that cannot say.
    cost_model: Optional[CostModel] = None

    def lora(self, name: str) -> Optional[LoraCapability]:
        return next((lo for lo in self.loras if lo.name == name), None)

    def lora_names(self, *kinds: str) -> list[str]:
        return sorted(lo.name for lo in self.loras if not kinds or lo.kind in kinds)

    @property
    def stages(self) -> int:
        """The default number of stages."""
        return self.default_stages or (2 if self.two_stage else 1)

    def size_multiple_for(self, stages: Optional[int] = None) -> int:
        """Width and height multiple for `stages` (None = the default): two-stage halves the size once more."""
        return self.latent_cell * (2 if (stages or self.stages) == 2 else 1)

    def reference_divisor(self, factor: int, stages: Optional[int] = None) -> int:
        """Output pixels per reference-canvas pixel: the factor, x2 in two-stage mode."""
        return int(factor) * (2 if (stages or self.stages) == 2 else 1)

    def reference_size(self, width: int, height: int, factor: int,
                       stages: Optional[int] = None) -> tuple[int, int]:
        """(w, h) of the reference canvas the engine reads at `factor` for an output of width x height."""
        d = self.reference_divisor(factor, stages)
        return width // d, height // d


@runtime_checkable
class RenderEngine(Protocol):
    """One model on one device. Not thread-safe: the server runs one job at a time."""

    loaded: bool

    def load(self) -> None:
        """Load weights and LoRAs (slow). Raises EngineError subclasses for what the user can fix."""

    def capabilities(self) -> EngineCapabilities:
        """What this engine renders; valid after load()."""

    def check_request(self, req: RenderRequest) -> list[str]:
        """Every check a request must pass, with or without its pixels; raises InvalidRequest /
        UnknownLora saying what to change, returns warnings for what works but is odd."""

    def render(self, req: RenderRequest, progress: Optional[ProgressFn] = None,
               should_cancel: Optional[CancelFn] = None, on_plan: Optional[PlanFn] = None) -> RenderResult:
        """One generation (checks the request again first)."""
