"""Tiny LoRAs for the tiny random LTX-2: the project's test LoRAs, and stand-ins for Lightricks'
published LoRAs of each generation (file names, metadata and key format as published, tiny shapes).

Test LoRAs (every generation; the tests rely on their names):
    control.safetensors, control_peft.safetensors   IC-LoRAs (Lightricks / peft keys), reference factor 1
    camera_<move>.safetensors                       camera preset (prompt) LoRAs, one per move
    camera_trajectory.safetensors                   IC-LoRA for the trajectory canvas, reference factor 4
Published stand-ins (PUBLISHED; the engine infers canvas kind, factor and base generation from them as
from the real files, see engine/loras.py):
    LTX-2.0  ltx-2-19b-ic-lora-{depth,pose,canny}-control (factor 1), ltx-2-19b-ic-lora-union-ref0.5
             (factor 2), ltx-2-19b-lora-camera-control-{dolly-in,...,static} (prompt LoRAs)
    LTX-2.3  ltx-2.3-22b-ic-lora-union-control-ref0.5 (factor 2)
    LTX-2.5  ltx-2.5-22b-ic-lora-layout-to-render (factor 1: its real factor is unpublished)
Their keys are Lightricks' (`diffusion_model.<module>.lora_A/B.weight`, no alpha). Real ranks are
32-128; these are rank 4, like the test LoRAs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..camera_moves import PRESETS as CAMERA_PRESET_MOVES

SEED = 1234
LORA_RANK = 4
# Modules of each transformer block the test LoRAs adapt.
LORA_TARGET_MODULES = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "ff.net.2")
# The published stand-ins adapt a subset of what Lightricks' trainer targets (to_q/k/v/out.0 of every
# attention, plus the feed-forward for IC-LoRAs): the video self- and text cross-attention. Every peft
# module costs load time in every test; LoRAs on every layer are pinned by the parity test.
PROMPT_LORA_MODULES = tuple(f"{a}.{p}" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "to_out.0"))
IC_LORA_MODULES = LORA_TARGET_MODULES

_CAMERA_FILES = {"dolly_in": "dolly-in", "dolly_out": "dolly-out", "dolly_left": "dolly-left",
                 "dolly_right": "dolly-right", "jib_up": "jib-up", "jib_down": "jib-down", "static": "static"}
# version -> (file stem, metadata, target modules) of each published stand-in.
PUBLISHED = {
    "2.0": [(f"ltx-2-19b-ic-lora-{what}-control", {"reference_downscale_factor": 1}, IC_LORA_MODULES)
            for what in ("depth", "pose", "canny")]
    + [("ltx-2-19b-ic-lora-union-ref0.5", {"reference_downscale_factor": 2}, IC_LORA_MODULES)]
    + [(f"ltx-2-19b-lora-camera-control-{_CAMERA_FILES[m]}", {}, PROMPT_LORA_MODULES) for m in CAMERA_PRESET_MOVES],
    # model_version as third-party reads of the real files' headers report it.
    "2.3": [("ltx-2.3-22b-ic-lora-union-control-ref0.5", {"reference_downscale_factor": 2, "model_version": "2.3.0"},
             IC_LORA_MODULES)],
    "2.5": [("ltx-2.5-22b-ic-lora-layout-to-render", {"reference_downscale_factor": 1, "model_version": "2.5.0"},
             IC_LORA_MODULES)],
}
# The test LoRAs read any canvas kind; said in their metadata so that a client picking "the server's control
# LoRA" on a tiny model keeps picking them (a declared canvas ranks before an undeclared one).
TEST_CONTROL_CANVAS = "depth+pose,depth,pose,edges,playblast"


def _write(lora_dir: Path, name: str, tensors: dict, meta: dict) -> None:
    from safetensors.torch import save_file

    tmp = lora_dir / f".{name}.tmp"
    save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    os.replace(tmp, lora_dir / f"{name}.safetensors")


def _lora_tensors(transformer, modules, prefix: str, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random non-zero A and B for `modules` of every block (they visibly change the output)."""
    named = dict(transformer.named_modules())
    out = {}
    for b in range(len(transformer.transformer_blocks)):
        for name in modules:
            path = f"transformer_blocks.{b}.{name}"
            linear = named[path]
            a = torch.randn(LORA_RANK, linear.in_features, generator=gen) * 0.3
            bm = torch.randn(linear.out_features, LORA_RANK, generator=gen) * 0.3
            out[f"{prefix}{path}.lora_A.weight"] = a.contiguous()
            out[f"{prefix}{path}.lora_B.weight"] = bm.contiguous()
    return out


def write_test_loras(lora_dir: Path, transformer) -> None:
    """Write the test LoRA files for `transformer` (one generator, in this order: their weights never move)."""
    lora_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED + 10)
    control = {"reference_downscale_factor": 1, "ltx_blender_kind": "control",
               "ltx_blender_canvas": TEST_CONTROL_CANVAS}
    _write(lora_dir, "control", _lora_tensors(transformer, LORA_TARGET_MODULES, "diffusion_model.", gen), control)
    _write(lora_dir, "control_peft", _lora_tensors(transformer, LORA_TARGET_MODULES, "transformer.", gen), control)
    for move in CAMERA_PRESET_MOVES:
        _write(lora_dir, f"camera_{move}", _lora_tensors(transformer, LORA_TARGET_MODULES, "diffusion_model.", gen),
               {"ltx_blender_kind": "camera_preset", "camera_move": move})
    _write(lora_dir, "camera_trajectory", _lora_tensors(transformer, LORA_TARGET_MODULES, "diffusion_model.", gen),
           {"reference_downscale_factor": 4, "ltx_blender_kind": "camera_trajectory"})
    (lora_dir / "README.json").write_text(json.dumps({"rank": LORA_RANK, "seed": SEED + 10}) + "\n")


def write_published_loras(lora_dir: Path, transformer, version: str) -> list[str]:
    """Write the stand-ins for `version`'s published LoRAs; returns their file stems. Each file has its own
    generator, so adding one never changes another."""
    lora_dir.mkdir(parents=True, exist_ok=True)
    stems = []
    for i, (stem, meta, modules) in enumerate(PUBLISHED[version]):
        gen = torch.Generator().manual_seed(SEED + 30 + i)
        _write(lora_dir, stem, _lora_tensors(transformer, modules, "diffusion_model.", gen), meta)
        stems.append(stem)
    return stems


def write_distilled_lora(path: Path, transformer) -> None:
    """A stand-in for Lightricks' distilled LoRA (stage 2 of a dev model): a plain LoRA, Lightricks keys."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(SEED + 20)
    save_file(_lora_tensors(transformer, LORA_TARGET_MODULES, "diffusion_model.", gen), str(path))
