"""The trained LoRA as a file, in the format Lightricks' trainer writes and ComfyUI, ltx-pipelines,
diffusers and our server (engine/loras.py) read:

- keys `diffusion_model.<module>.lora_A.weight` (rank, in) and `.lora_B.weight` (out, rank), module
  paths as in LTX-2's transformer (for the video attention and feed-forward layers the diffusers and
  ltx-core names are the same; `ltx_keys` checks each key survives diffusers' conversion unchanged);
- alpha folded into B (B x alpha / rank), because every loader applies B @ A with scale 1: no .alpha
  keys, no adapter_config.json (notes/training.md section 4);
- safetensors metadata (strings): reference_downscale_factor, ltx_blender_kind (control or
  camera_trajectory), ltx_blender_canvas (the canvas kind, or the trajectory canvas spec),
  ltx_blender_base (model generation), ltx_blender_steps, ltx_blender_dataset_sha256, rank and alpha.

Written to a temp file in the destination folder, flushed to disk, then renamed: a full disk or a
crash leaves the previous file (or none), never a truncated file under the final name.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..engine.request import LoraMismatch

PREFIX = "diffusion_model."
SAVE_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class LoraWriteError(OSError):
    """The LoRA (or a checkpoint) could not be written; nothing was left under its name."""


def model_generation(transformer_config) -> str:
    """'ltx-2', 'ltx-2.3' or 'ltx-2.5' from the transformer's config (never from a path): LTX-2.5 has no
    feed-forward bias and a keyframe position embedding, LTX-2.3 gated attention (FACTS.md)."""
    get = transformer_config.get
    if get("use_keyframes_abs_pos_embedding", False) or not get("ff_bias", True):
        return "ltx-2.5"
    return "ltx-2.3" if get("gated_attn", False) else "ltx-2"


def ltx_keys(peft_state: dict[str, torch.Tensor], rank: int, alpha: float, dtype: torch.dtype
             ) -> dict[str, torch.Tensor]:
    """peft's adapter state (`<module>.lora_A.weight` ...) -> the file's tensors, alpha folded into B."""
    from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_ltx2_lora_to_diffusers

    scale = float(alpha) / float(rank)
    out = {}
    for key, tensor in peft_state.items():
        if not (key.endswith(".lora_A.weight") or key.endswith(".lora_B.weight")):
            raise ValueError(f"unexpected adapter tensor {key!r}: only lora_A / lora_B weights are saved")
        t = tensor.detach().float()
        out[PREFIX + key] = (t * scale if key.endswith(".lora_B.weight") else t).to(dtype).contiguous().cpu()
    converted = _convert_non_diffusers_ltx2_lora_to_diffusers(dict.fromkeys(out, None))
    renamed = sorted(k for k in converted if k.removeprefix("transformer.") not in peft_state)
    if renamed:
        raise ValueError(f"diffusers would rename {renamed[0]!r}: its module is not one a LoRA file can name the "
                         "same in diffusers and ltx-core; train the video attention and feed-forward layers")
    return out


def unfold(tensors: dict[str, torch.Tensor], rank: int, alpha: float) -> dict[str, torch.Tensor]:
    """The file's tensors -> peft's adapter state (prefix off, alpha taken back out of B), for --resume."""
    scale = float(alpha) / float(rank)
    return {k.removeprefix(PREFIX): (t.float() / scale if k.endswith(".lora_B.weight") else t.float())
            for k, t in tensors.items()}


def write_lora(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, object]) -> Path:
    """Write the file atomically (temp + fsync + rename). Raises LoraWriteError saying what to free."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = save(tensors, metadata={k: str(v) for k, v in metadata.items()})
    write_atomic(path, data)
    return path


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[_write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        free = shutil.disk_usage(path.parent).free
        why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else e.strerror or str(e)
        raise LoraWriteError(e.errno, f"could not write {path} ({len(data) / 2**20:.1f} MiB): {why}; "
                             f"{free / 2**20:.0f} MiB free in {path.parent}. Free some space or write elsewhere; "
                             "nothing was left under that name") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write(fd: int, view: memoryview) -> int:
    """One write() call (tests replace it to fill the disk part-way through)."""
    return os.write(fd, view)


def read_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def check_generation(name: str, metadata: dict[str, str], generation: str) -> None:
    """Refuse a LoRA of another model generation, naming both (LoRAs only work on their base model)."""
    from ..engine.loras import infer_base

    base = infer_base(name, metadata)
    if base is not None and base != generation:
        raise LoraMismatch(f"LoRA {name!r} was trained for {base}, but this model is {generation}: a LoRA only "
                           f"works on the generation it was trained on; use a {base} model, or train a new LoRA "
                           f"for {generation} (without --resume)")
