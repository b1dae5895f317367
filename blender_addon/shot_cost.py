# Copied by scripts/gen_protos.py from protos/shot_cost.py. Do not edit this copy.
"""What one shot costs on a render server: seconds and peak device memory, before it is sent.

The one estimating function both sides use (scripts/gen_protos.py copies this file into the add-on
and the backend, like shot_bundle.py). The server reports a `CostModel` in Capabilities (a priori
from the model's size until it has run a job, then measured on its own jobs); the panel calls
`estimate_shot` with it. Pure Python: no numpy, no bpy, no torch.

Tokens (LTX-2): one per latent cell of 32 x 32 pixels x 8 frames (the first frame alone), so a
shot of W x H x F has (F - 1) / 8 + 1 latent frames of (W / 32) x (H / 32) cells. Two stages: stage
1 at half size with the reference canvases, a 3-step refine at full size without them. A reference
canvas of downscale factor f adds the tokens of a (W1 / f) x (H1 / f) clip (W1: stage 1's width);
one with a temporal scale S (the LoRA's reference_temporal_scale_factor) reads frame 0 and every
S-th frame after it: (F - 1) / (8 S) + 1 latent frames.

Seconds of one transformer pass over N tokens grow as N (the linear layers) plus N^2 (attention):
    pass_seconds(N) = c * N * (1 + N / attention_tokens)
where attention_tokens is the token count at which attention costs as much as the linear layers
(parameters / (2 x model width x layers): 2 P FLOPs per token in the linear layers against 4 N d
per layer in attention). c is reported as seconds_per_token_step at reference_tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

LATENT_CELL = 32  # output pixels per latent cell
FRAME_STEP = 8  # output frames per latent frame (the first alone)
GIB = 1024 ** 3


@dataclass(frozen=True)
class CostModel:
    """A server's cost of a shot, per unit of work. Seconds are wall seconds on its device.

    seconds_per_token_step: one transformer pass per token, at reference_tokens tokens.
    passes_per_step: transformer passes per stage-1 step (1 distilled; dev: one per guidance term);
    stage 2 always takes one. refine_steps: the refine stage's steps (two-stage shots).
    fixed_seconds: per job whatever the size (text encoding, set-up). seconds_per_pixel_frame: VAE
    decode + mp4/wav encode per output pixel x frame. weights_bytes: resident on the device.
    bytes_per_token: transformer activations per token of one pass. bytes_per_pixel_frame: the VAE
    decode's peak per output pixel x frame. measured: the seconds come from jobs this server ran
    (`jobs` of them), else a priori from the model size (`source` says which, in words).
    """

    transformer_parameters: int = 0
    dtype: str = ""
    attention_tokens: float = 0.0
    seconds_per_token_step: float = 0.0
    reference_tokens: int = 0
    passes_per_step: int = 1
    refine_steps: int = 3
    fixed_seconds: float = 0.0
    seconds_per_pixel_frame: float = 0.0
    weights_bytes: int = 0
    bytes_per_token: float = 0.0
    bytes_per_pixel_frame: float = 0.0
    measured: bool = False
    memory_measured: bool = False
    jobs: int = 0
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional[CostModel]:
        """The model from to_dict() (or a JSON copy of it); None for None / {} / no seconds."""
        if not d or not d.get("seconds_per_token_step"):
            return None
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def pass_seconds(self, tokens: int) -> float:
        """Seconds of one transformer pass over `tokens` tokens."""
        c = self.seconds_per_token_step / _attention_factor(self.reference_tokens, self.attention_tokens)
        return c * tokens * _attention_factor(tokens, self.attention_tokens)


def _attention_factor(tokens: float, attention_tokens: float) -> float:
    return 1.0 + (tokens / attention_tokens if attention_tokens > 0 else 0.0)


def latent_tokens(width: int, height: int, num_frames: int, cell: int = LATENT_CELL,
                  frame_step: int = FRAME_STEP, temporal_scale: int = 1) -> int:
    """Tokens of a W x H x F clip: latent frames x latent rows x latent columns (a reference read at
    temporal_scale S has (F - 1) / (8 S) + 1 latent frames, as the engine's references.latent_grid)."""
    frames = (max(int(num_frames), 1) - 1) // (frame_step * max(int(temporal_scale), 1)) + 1
    return frames * (int(height) // cell) * (int(width) // cell)


@dataclass(frozen=True)
class ShotTokens:
    stage_1: int  # target + reference tokens of stage 1 (the whole shot when one stage)
    stage_2: int  # target tokens of the full-size refine; 0 for one stage
    target: int  # tokens of the output at full size


def shot_tokens(width: int, height: int, num_frames: int, stages: int = 1,
                reference_factors: tuple[int, ...] = (),
                reference_temporal_scales: tuple[int, ...] = ()) -> ShotTokens:
    """Token counts of a shot of width x height x num_frames rendered in `stages` (1 or 2), with one
    reference canvas per factor in reference_factors, read at the temporal scale of the same place
    in reference_temporal_scales (1 where it is shorter)."""
    w1, h1 = (width // 2, height // 2) if stages == 2 else (width, height)
    scales = tuple(reference_temporal_scales) + (1,) * len(reference_factors)
    refs = sum(latent_tokens(w1 // f, h1 // f, num_frames, temporal_scale=scales[i] or 1)
               for i, f in enumerate(reference_factors) if f)
    full = latent_tokens(width, height, num_frames)
    return ShotTokens(stage_1=latent_tokens(w1, h1, num_frames) + refs, stage_2=full if stages == 2 else 0,
                      target=full)


@dataclass(frozen=True)
class Estimate:
    seconds: float
    peak_bytes: int
    tokens: ShotTokens
    measured: bool

    def text(self, where: str = "") -> str:
        """"≈ 14 s, 9.2 GiB on gpu-box (measured)"."""
        on = f" on {where}" if where else ""
        how = "measured" if self.measured else "a priori"
        return f"≈ {format_seconds(self.seconds)}, {format_bytes(self.peak_bytes)}{on} ({how})"


def estimate_shot(cost: CostModel, width: int, height: int, num_frames: int, steps: int, stages: int = 1,
                  reference_factors: tuple[int, ...] = (),
                  reference_temporal_scales: tuple[int, ...] = ()) -> Estimate:
    """Seconds and peak device bytes of one shot on the server that reported `cost`.

    steps: stage-1 denoising steps; stages: 1 (one stage at full size) or 2 (half-size stage 1 +
    upsampler + cost.refine_steps at full size); reference_factors: the reference_downscale_factor
    of each control canvas (its tokens ride in stage 1); reference_temporal_scales: the
    reference_temporal_scale_factor of each, in the same order (1 where missing). Guidance passes
    run one after another: seconds grow with passes_per_step, the peak does not.
    """
    tokens = shot_tokens(width, height, num_frames, stages, reference_factors, reference_temporal_scales)
    seconds = cost.fixed_seconds + steps * cost.passes_per_step * cost.pass_seconds(tokens.stage_1)
    if stages == 2:
        seconds += cost.refine_steps * cost.pass_seconds(tokens.stage_2)
    pixel_frames = int(width) * int(height) * int(num_frames)
    seconds += cost.seconds_per_pixel_frame * pixel_frames
    working = max(cost.bytes_per_token * max(tokens.stage_1, tokens.stage_2),
                  cost.bytes_per_pixel_frame * pixel_frames)
    return Estimate(seconds=seconds, peak_bytes=int(cost.weights_bytes + working), tokens=tokens,
                    measured=cost.measured)


def format_bytes(n: int) -> str:
    """9.2 GiB, or 310 MiB below one GiB (a small model must not read "0.0 GiB")."""
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 2**20:.0f} MiB"


def format_seconds(s: float) -> str:
    """14 s, 2 min 5 s, 1 h 3 min: what an artist reads at a glance."""
    s = max(0.0, float(s))
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m = int(round(s)) // 60
    if m < 60:
        return f"{m} min {int(round(s)) % 60} s"
    return f"{m // 60} h {m % 60} min"


# ---------------------------------------------------------------- protobuf
def cost_to_proto(cost: CostModel, message: Any) -> None:
    """Fill a ltxrender.v1.CostModel message."""
    for f in fields(CostModel):
        setattr(message, f.name, getattr(cost, f.name))


def cost_from_proto(message: Any) -> Optional[CostModel]:
    """The CostModel of a Capabilities.cost_model message; None when the server reported none."""
    return CostModel.from_dict({f.name: getattr(message, f.name) for f in fields(CostModel)})
