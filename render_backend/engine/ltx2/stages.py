"""What two-stage rendering needs (Lightricks' two-stage pipelines), and where the engine finds it.

Stage 2 upsamples the half-size stage-1 latents 2x with the latent upsampler and refines them on
the stage-2 distilled sigmas without guidance. A distilled model refines as it is; a dev model
refines with Lightricks' distilled LoRA (ltx-pipelines' TI2VidTwoStagesPipeline requires
`--distilled-lora`). Both files are found beside the model when not given: `<model>/latent_upsampler/`
(as the tiny test model and diffusers' conversion lay it out) and the one
`*distilled*lora*.safetensors` file in the model folder (as Lightricks' LTX-2.5-Diffusers ships it).
"""

from __future__ import annotations

from pathlib import Path

UPSAMPLER_DIR = "latent_upsampler"
DISTILLED_LORA_GLOB = "*distilled*lora*.safetensors"
DISTILLED_LORA_ADAPTER = "stage2-distilled-lora"  # adapter name; not a LoRA a request can pick


def find_beside(model: str, given: str | None, what: str) -> str | None:
    """The upsampler folder or distilled LoRA file to use. given: a path, "auto" (look beside the
    model), or None / "none" (do not use one). Raises ValueError for a given path that is not one."""
    if given is None or given == "none":
        return None
    folder = Path(model)
    if what == "upsampler":
        if given == "auto":
            found = folder / UPSAMPLER_DIR
            return str(found) if (found / "config.json").is_file() else None
        if not (Path(given) / "config.json").is_file():
            raise ValueError(f"--upsampler {given}: no config.json there; pass a diffusers LTX2LatentUpsamplerModel "
                             "folder, or 'none' for one stage only")
        return str(given)
    if given == "auto":
        found = sorted(folder.glob(DISTILLED_LORA_GLOB)) if folder.is_dir() else []
        if len(found) > 1:
            raise ValueError(f"{model} holds several distilled LoRAs ({', '.join(p.name for p in found)}); "
                             "say which one with --distilled-lora PATH")
        return str(found[0]) if found else None
    if not Path(given).is_file():
        raise ValueError(f"--distilled-lora {given}: file not found; pass Lightricks' distilled LoRA "
                         "(e.g. ltx-2-19b-distilled-lora-384.safetensors)")
    return str(given)


def stage_2_unavailable(upsampler: str | None, variant: str, distilled_lora: str | None) -> str:
    """Why this engine cannot render two stages, in words that say what to change ("" when it can)."""
    if not upsampler:
        return ("no latent upsampler (start the server with --upsampler PATH, or put one in "
                f"<model>/{UPSAMPLER_DIR})")
    if variant == "dev" and not distilled_lora:
        return ("a dev checkpoint refines stage 2 with Lightricks' distilled LoRA, and none is installed (start the "
                "server with --distilled-lora PATH, e.g. ltx-2-19b-distilled-lora-384.safetensors)")
    return ""
