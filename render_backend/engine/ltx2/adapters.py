"""LoRA adapters in the diffusers pipeline: loaded once at start, switched per request and per stage.

Every installed LoRA (engine/loras.py registry) is loaded as a named peft adapter, plus, for a dev
model, Lightricks' distilled LoRA under DISTILLED_LORA_ADAPTER (stage 2 only; no request can pick
it). All adapters are off between requests; `activate` turns on exactly the ones a stage uses.
"""

from __future__ import annotations

import warnings

from ..loras import LoraInfo, check_lora_shapes, inspect_lora
from ..request import LoraMismatch
from .stages import DISTILLED_LORA_ADAPTER


def load_adapters(pipe, lora_paths: dict[str, str], model: str, distilled_lora: str | None,
                  canvases: dict[str, str] | None = None) -> dict[str, LoraInfo]:
    """Load every LoRA (and the distilled LoRA, when given) into `pipe`; returns the registry.
    canvases: what the server was told a LoRA reads (--lora-canvas) when its file does not say.
    Raises LoraMismatch for a file that does not fit the base model, naming both shapes."""
    canvases = dict(canvases or {})
    unknown = sorted(set(canvases) - set(lora_paths))
    if unknown:
        raise LoraMismatch(f"--lora-canvas names LoRA(s) {', '.join(unknown)} that are not installed; installed: "
                           f"{', '.join(sorted(lora_paths)) or 'none'}")
    registry = {name: inspect_lora(name, path, canvases.get(name)) for name, path in sorted(lora_paths.items())}
    for info in registry.values():
        check_lora_shapes(info, pipe.transformer, model)
        _load(pipe, info.path, info.name, model)
    if distilled_lora:
        _load(pipe, distilled_lora, DISTILLED_LORA_ADAPTER, model)
    if registry or distilled_lora:
        pipe.disable_lora()
    return registry


def _load(pipe, path: str, name: str, model: str) -> None:
    try:
        with warnings.catch_warnings():
            # peft warns on every adapter after the first; several adapters is the point here.
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            pipe.load_lora_weights(path, adapter_name=name)
    except (ValueError, KeyError, RuntimeError) as e:
        raise LoraMismatch(f"LoRA {name!r} ({path}) could not be loaded into {model}: {e}") from None


def activate(pipe, adapters: list[tuple[str, float]]) -> None:
    """Only these adapters are active, with these weights (none: LoRAs off)."""
    if not getattr(pipe.transformer, "peft_config", None):
        return  # no adapter was ever loaded
    if not adapters:
        pipe.disable_lora()
        return
    pipe.enable_lora()
    pipe.set_adapters([n for n, _ in adapters], adapter_weights=[w for _, w in adapters])
