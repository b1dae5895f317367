"""LoRA adapters in the diffusers pipeline: loaded once at start, switched per request and per stage.

Every installed LoRA (engine/loras.py registry) is loaded as a named peft adapter, plus, for a dev
model, Lightricks' distilled LoRA under DISTILLED_LORA_ADAPTER (stage 2 only; no request can pick
it). All adapters are off between requests; `activate` turns on exactly the ones a stage uses.
A LoRA's adapter name is its name with "." replaced (peft refuses dots, and Lightricks' published
names have them: "ltx-2.3-22b-ic-lora-union-control-ref0.5").
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..loras import LoraInfo, check_lora_base, check_lora_shapes, infer_base, inspect_lora
from ..request import LoraMismatch
from .stages import DISTILLED_LORA_ADAPTER


def load_adapters(pipe, lora_paths: dict[str, str], model: str, distilled_lora: str | None,
                  canvases: dict[str, str] | None = None, generation: str | None = None) -> dict[str, LoraInfo]:
    """Load every LoRA (and the distilled LoRA, when given) into `pipe`; returns the registry.
    canvases: what the server was told a LoRA reads (--lora-canvas) when its file does not say.
    generation: the checkpoint's ("ltx-2", "ltx-2.3", "ltx-2.5"). Raises LoraMismatch for a file made
    for another generation (naming both) or that does not fit the base model (naming both shapes)."""
    canvases = dict(canvases or {})
    unknown = sorted(set(canvases) - set(lora_paths))
    if unknown:
        raise LoraMismatch(f"--lora-canvas names LoRA(s) {', '.join(unknown)} that are not installed; installed: "
                           f"{', '.join(sorted(lora_paths)) or 'none'}")
    clashes = sorted(n for n in lora_paths if n != adapter_name(n) and adapter_name(n) in map(adapter_name, set(
        lora_paths) - {n}))
    if clashes:
        raise LoraMismatch(f"LoRA names {', '.join(clashes)} differ only in '.' versus '_'; rename one of them")
    registry = {name: inspect_lora(name, path, canvases.get(name)) for name, path in sorted(lora_paths.items())}
    for info in registry.values():
        if generation:
            check_lora_base(info, generation, model)
        check_lora_shapes(info, pipe.transformer, model)
        _load(pipe, info.path, adapter_name(info.name), model)
    if distilled_lora:
        base = _declared_base(distilled_lora)
        if generation and base not in (None, generation):
            raise LoraMismatch(f"--distilled-lora {Path(distilled_lora).name} was made for {base} but {model} is an "
                               f"{generation} checkpoint; pass the distilled LoRA of {generation}")
        _load(pipe, distilled_lora, DISTILLED_LORA_ADAPTER, model)
    if registry or distilled_lora:
        pipe.disable_lora()
    return registry


def adapter_name(lora: str) -> str:
    """The peft adapter name of an installed LoRA."""
    return lora.replace(".", "_")


def _declared_base(path: str) -> str | None:
    """The generation a LoRA file declares (metadata, else its published file name), or None."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        metadata = dict(f.metadata() or {})
    return infer_base(Path(path).stem, metadata)


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
    pipe.set_adapters([adapter_name(n) for n, _ in adapters], adapter_weights=[w for _, w in adapters])
