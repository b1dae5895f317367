"""GPU speed and memory options of the LTX-2 engine, all off by default except `attention auto`.

    attention  auto | dense | flex: the kernel of the reference-strength bias (attention.py). auto = flex,
               compiled, on CUDA; dense on CPU. flex on CPU runs uncompiled (slow: it is for tests).
    compile    torch.compile each transformer block's forward (the blocks' call wrappers stay eager, so
               the per-render cancel hooks of interrupt.py add no recompiles). CUDA only: on CPU it is
               refused unless LTX_RENDER_ALLOW_CPU_COMPILE=1 (inductor then needs a C++ compiler and
               compiles for minutes). The first render of a new size compiles (slow; a new LoRA weight
               set may too). Checked on CPU: tiny model 86 s, then 0.2 s a render, same numbers.
    fp8        transformer weights stored as float8_e4m3fn, each layer cast to the engine's dtype
               (bf16 on CUDA) for its forward: diffusers' enable_layerwise_casting. Norms, embeddings
               and LoRA (peft) layers stay in the engine's dtype. About half the weight memory of
               bf16; outputs move slightly (weights rounded to fp8).

All three are reported in every result's info (`performance`), so a sidecar says what ran.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .attention import resolve_attention

ALLOW_CPU_COMPILE_ENV = "LTX_RENDER_ALLOW_CPU_COMPILE"


@dataclass(frozen=True)
class PerformanceOptions:
    attention: str = "auto"  # as requested
    kernel: str = "dense"  # as resolved for the device: dense or flex
    flex_compiled: bool = False  # flex runs through torch.compile (CUDA)
    compile: bool = False
    fp8: bool = False

    def describe(self, dtype: torch.dtype) -> dict:
        kernel = "dense bias + SDPA" if self.kernel == "dense" else (
            "FlexAttention, compiled" if self.flex_compiled else
            "FlexAttention, compiled with the blocks" if self.compile else
            "FlexAttention, uncompiled (materialises scores)")
        name = str(dtype).replace("torch.", "")
        return {"attention": self.attention, "attention_kernel": kernel, "compile": self.compile,
                "fp8": f"float8_e4m3fn weights, {name} compute" if self.fp8 else False}


def performance_options(attention: str, compile: bool, fp8: bool, device: torch.device,
                        cpu_offload: bool) -> PerformanceOptions:
    """Checked options; ValueError with what to change for a value or combination that cannot run."""
    kernel = resolve_attention(attention, device)
    if kernel == "flex":
        try:
            from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
        except ImportError:
            raise ValueError(f"--attention flex needs PyTorch 2.5 or newer (this is {torch.__version__}); "
                             "use --attention dense") from None
    if compile and device.type != "cuda" and os.environ.get(ALLOW_CPU_COMPILE_ENV) != "1":
        raise ValueError(f"--compile needs a CUDA device (this engine runs on {device}): drop --compile, or set "
                         f"{ALLOW_CPU_COMPILE_ENV}=1 to compile for the CPU anyway (minutes, needs a C++ compiler)")
    if compile and cpu_offload:
        raise ValueError("--compile and --cpu-offload do not go together (offloading moves the weights on every "
                         "call, which defeats the compiled blocks): drop one of them")
    if fp8 and not hasattr(torch, "float8_e4m3fn"):
        raise ValueError(f"--fp8 needs PyTorch with float8_e4m3fn (this is {torch.__version__}); drop --fp8")
    return PerformanceOptions(attention=attention, kernel=kernel, flex_compiled=kernel == "flex" and
                              device.type == "cuda", compile=compile, fp8=fp8)


def store_fp8(transformer, compute_dtype: torch.dtype) -> None:
    """FP8 weight storage, compute in `compute_dtype`. Call after the LoRAs are loaded: diffusers then skips
    the peft layers (lora_A/lora_B stay in compute_dtype) and casts their base layers."""
    transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)


def compile_blocks(transformer) -> None:
    """torch.compile every transformer block's forward, in place."""
    for block in transformer.transformer_blocks:
        block.forward = torch.compile(block.forward)
