"""What one generation needs and what it returns: the contract between the server
(or the offline `render` command) and the engine.

Conventions: images are uint8 RGB arrays (H, W, 3); masks are bool (H, W), True inside
the artist's chosen targets; camera is OpenCV (x right, y down, z forward), metres,
intrinsics in pixels of the output width x height.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..shot_bundle import CANVAS_KINDS  # noqa: F401  (one list of canvas kinds: the bundle schema's)


class EngineError(Exception):
    """A generation failed for a reason the user can act on. `code` is a grpc status name."""

    code = "INTERNAL"


class InvalidRequest(EngineError):
    code = "INVALID_ARGUMENT"


class UnknownLora(EngineError):
    code = "FAILED_PRECONDITION"


class LoraMismatch(EngineError):
    """A LoRA file that cannot be used: wrong shapes for the base model, bad metadata, not a LoRA."""

    code = "FAILED_PRECONDITION"


class NotLoaded(EngineError):
    """render() before load() finished."""

    code = "UNAVAILABLE"


class OutOfMemory(EngineError):
    """GPU out of memory; the message carries a suggestion (fewer frames, smaller size)."""

    code = "RESOURCE_EXHAUSTED"


class Cancelled(EngineError):
    code = "CANCELLED"


@dataclass
class CameraFrame:
    fx: float
    fy: float
    cx: float
    cy: float
    world_to_camera: np.ndarray  # (4, 4) float64, OpenCV axes, metres
    lens_mm: float = 0.0


@dataclass
class CameraRequest:
    mode: str = "auto"  # "auto" | "preset" | "trajectory" | "off"
    preset_lora: str = ""
    trajectory_lora: str = ""
    weight: float = 1.0
    frames: list[CameraFrame] = field(default_factory=list)
    reference_downscale_factor: Optional[int] = None  # trajectory canvas; None = from the LoRA file


# CANVAS_KINDS (imported above from the bundle schema): what a control canvas shows
# (docs/canvas-kinds.md); a control LoRA reads one kind (a union LoRA any one of several). The
# camera-trajectory canvas is not uploaded: the engine draws it.


@dataclass
class FrameCondition:
    """Frames the generation continues from: a previous window's last frames (continuity across
    windows of a long shot). They are VAE-encoded and appended as clean tokens (timestep 0) at the
    positions of this shot's frames start_frame .. start_frame + F - 1, and read with `strength`
    (a log(m) attention bias, as a reference's). frames: (F, H, W, 3) uint8 at the output size,
    F = 8m + 1; None while still uploading (then num_frames, width, height say what will arrive).
    """

    frames: Optional[np.ndarray] = None
    num_frames: int = 0
    width: int = 0
    height: int = 0
    start_frame: int = 0
    strength: float = 1.0

    def __post_init__(self) -> None:
        if self.frames is not None:
            self.attach(self.frames)

    def attach(self, frames) -> None:
        frames = frames if isinstance(frames, np.ndarray) else np.asarray(frames)
        self.frames = frames
        if frames.ndim == 4:
            self.num_frames, self.height, self.width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])


@dataclass
class ControlInput:
    """One control canvas (a parallel-canvas reference) and how strongly the shot follows it.

    frames: (F, h, w, 3) uint8, one image per output frame, or None while the pixels are still
    on their way (the server checks a shot before its upload): then width, height and
    num_frames say what will arrive. masks: bool (h, w) per frame, True on the artist's targets
    (regional strength); has_mask says they will arrive.
    """

    kind: str = "depth+pose"
    lora: str = ""  # the control LoRA that reads this canvas
    lora_weight: float = 1.0
    frames: Optional[np.ndarray] = None
    width: int = 0
    height: int = 0
    num_frames: int = 0
    strength: float = 1.0
    frame_strength: Optional[list[float]] = None  # per output frame, multiplies strength
    masks: Optional[list[np.ndarray]] = None
    has_mask: bool = False
    background_strength: Optional[float] = None  # strength outside the mask
    reference_downscale_factor: Optional[int] = None  # None = the LoRA file's

    def __post_init__(self) -> None:
        if self.frames is not None:
            self.attach(self.frames, self.masks)

    def attach(self, frames, masks=None) -> None:
        """Set the pixels (and masks) once they arrived; width, height and count follow them."""
        frames = frames if isinstance(frames, np.ndarray) else np.asarray(frames)
        self.frames = frames
        if frames.ndim == 4:
            self.num_frames, self.height, self.width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
        if masks is not None:
            self.masks, self.has_mask = list(masks), True


@dataclass
class RenderRequest:
    prompt: str
    width: int
    height: int
    num_frames: int
    fps: float = 24.0
    seed: int = 0
    negative_prompt: str = ""
    num_inference_steps: Optional[int] = None  # None = engine default
    guidance_scale: Optional[float] = None
    controls: list[ControlInput] = field(default_factory=list)
    conditions: list[FrameCondition] = field(default_factory=list)
    camera: CameraRequest = field(default_factory=CameraRequest)
    extra_loras: list[tuple[str, float]] = field(default_factory=list)
    audio: bool = True
    # None = the engine's default (2 with a latent upsampler, else 1); 1 = one stage at full size
    # (fast preview); 2 = half-size stage with the references, latent upsampler, full-size refine.
    stages: Optional[int] = None


@dataclass
class RenderResult:
    video: np.ndarray  # (F, H, W, 3) uint8
    audio: Optional[np.ndarray]  # (channels, samples) float32 in [-1, 1]
    audio_sample_rate: int
    fps: float
    info: dict  # every setting actually used: seed, steps, LoRAs + sha256, camera move...


# progress(stage, step, total_steps): stage in "text encoding", "denoising", "decoding".
ProgressFn = Callable[[str, int, int], None]
# on_plan({"control": {...}, "camera": {...}}): the conditioning plan, as RenderResult.info reports it.
PlanFn = Callable[[dict], None]
CancelFn = Callable[[], bool]
