"""What a training run needs: GPU memory and time per step, estimated from the model's size and the
options, printed before any weight is loaded (docs/training.md has the table for 24/48/80 GB).

An estimate, not a measurement (bench/train_step.py measures on a GPU). Model:
- weights: the transformer's parameters x bytes of the dtype (bf16 on a GPU). The text encoder
  (Gemma 3 12B, ~24 GB in bf16) is used once, to cache the captions, and then leaves the GPU;
- the LoRA: rank x (in + out) per adapted layer, fp32 parameters + gradients + AdamW's two moments
  (8-bit AdamW: 2 bytes per parameter for both moments instead of 8);
- activations: with gradient checkpointing, each block's input is kept (tokens x width x 2 bytes
  x 2 streams) plus one block's working set while it is recomputed (~ 16 x tokens x width x 2 bytes:
  norms, q/k/v, attention output, the 4x feed-forward); without it every block keeps its working set;
- time: ~6 x parameters x tokens FLOPs for the linear layers (forward, recompute, backward) plus
  ~12 x layers x tokens^2 x width for attention, at 40% of the GPU's bf16 peak (H100: 989 TFLOPS).
Tokens = target (frames/8+1 x H/32 x W/32) + reference tokens (the same / factor^2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

GIB = 2**30
# Published sizes (Lightricks' model cards; FACTS.md). Width and layers of the video stream.
MODEL_SIZES = {"19B": {"params": 19e9, "layers": 48, "width": 4096, "ff_mult": 4},
               "22B": {"params": 22e9, "layers": 48, "width": 4096, "ff_mult": 4}}
TEXT_ENCODER_PARAMS = 12e9  # Gemma 3 12B, only while the captions are cached
PEAK_TFLOPS = {"H100": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}
MFU = 0.4  # fraction of the peak a well-fed LoRA step reaches (assumed)
# Adapted layers of one block, as (in, out) in units of the width (attention + feed-forward, the default).
LAYERS_ATTENTION = [(1, 1)] * 8  # attn1 and attn2: to_q, to_k, to_v, to_out.0 (text is projected to width)
LAYERS_FF = [(1, 4), (4, 1)]  # ff.net.0.proj, ff.net.2


@dataclass(frozen=True)
class Estimate:
    tokens: int
    weights_gib: float
    lora_params: int
    lora_gib: float  # parameters + gradients + optimizer state
    activations_gib: float
    peak_gib: float
    caching_peak_gib: float  # while the text encoder encodes the captions
    seconds_per_step: dict[str, float]

    def lines(self) -> list[str]:
        times = ", ".join(f"{gpu} ~{_seconds(s)}" for gpu, s in self.seconds_per_step.items())
        return [f"estimate: {self.tokens} video tokens per step; GPU memory ~{_size(self.peak_gib)} while training "
                f"(weights {_size(self.weights_gib)}, LoRA + optimizer {_size(self.lora_gib)} for "
                f"{self.lora_params / 1e6:.3g}M parameters, activations {_size(self.activations_gib)}), "
                f"~{_size(self.caching_peak_gib)} while caching the captions",
                f"estimate: time per step {times} (assumes {MFU:.0%} of bf16 peak; measure with bench/train_step.py)"]


def _size(gib: float) -> str:
    return f"{gib:.1f} GiB" if gib >= 1 else f"{gib * 1024:.1f} MiB"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 0.1 else f"{s * 1000:.2g} ms"


def video_tokens(width: int, height: int, num_frames: int, factor: int | None) -> int:
    target = ((num_frames - 1) // 8 + 1) * (height // 32) * (width // 32)
    ref = 0 if factor is None else ((num_frames - 1) // 8 + 1) * (height // factor // 32) * (width // factor // 32)
    return target + ref


def estimate(size: str | dict, width: int, height: int, num_frames: int, factor: int | None, rank: int,
             feed_forward: bool = True, optimizer: str = "adamw", checkpointing: bool = True,
             weight_bytes: int = 2) -> Estimate:
    """size: "19B" / "22B", or a dict like MODEL_SIZES' values (params, layers, width, ff_mult, and
    optionally text_encoder_params)."""
    m = MODEL_SIZES[size] if isinstance(size, str) else size
    layers, width_ = int(m["layers"]), int(m["width"])
    tokens = video_tokens(width, height, num_frames, factor)
    per_block = LAYERS_ATTENTION + (LAYERS_FF if feed_forward else [])
    lora_params = layers * sum(rank * (a + b) * width_ for a, b in per_block)
    state_bytes = 2 if optimizer == "adamw8bit" else 8
    lora_gib = lora_params * (4 + 4 + state_bytes) / GIB
    weights_gib = m["params"] * weight_bytes / GIB
    block_input = tokens * width_ * 2 * 2  # video stream + (smaller) audio stream, bf16
    working = 16 * tokens * width_ * 2
    activations = (layers * block_input + working) if checkpointing else layers * (block_input + working)
    activations_gib = activations / GIB * 1.2  # allocator slack
    peak = weights_gib + lora_gib + activations_gib + min(1.5, weights_gib)  # + VAE, CUDA context
    caching = weights_gib + m.get("text_encoder_params", TEXT_ENCODER_PARAMS) * weight_bytes / GIB + min(3.0, weights_gib)
    flops = 6 * m["params"] * tokens + 12 * layers * tokens**2 * width_
    seconds = {gpu: flops / (tf * 1e12 * MFU) for gpu, tf in PEAK_TFLOPS.items()}
    return Estimate(tokens, weights_gib, lora_params, lora_gib, activations_gib, peak, caching, seconds)


def params_on_disk(folder: str | Path) -> int:
    """Parameters in the *.safetensors files of a folder, from their headers (no tensor is read)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                total += math.prod(f.get_slice(key).get_shape())
    return total


def size_of_model(model: str | Path) -> dict | None:
    """A MODEL_SIZES-like entry for a diffusers model folder (counts from its files), None for a hub id."""
    config = Path(model) / "transformer" / "config.json"
    if not config.is_file():
        return None
    c = json.loads(config.read_text())
    return {"params": params_on_disk(Path(model) / "transformer"), "layers": int(c.get("num_layers", 48)),
            "width": int(c.get("num_attention_heads", 32)) * int(c.get("attention_head_dim", 128)), "ff_mult": 4,
            "text_encoder_params": params_on_disk(Path(model) / "text_encoder")}
