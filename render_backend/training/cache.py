"""Everything the training loop reads, encoded once per dataset and kept on disk.

Per clip (DATASET/.cache/<key>/<clip>.pt, each written to a temp name and renamed):
- target: the finished render as the engine's tokens, (1, N, C) normalised packed VAE latents (the
  VAE's mean), encoded by references.encode_reference at factor 1, the very function that encodes a
  reference, so the target and its canvas go through identical pixel -> token steps;
- refs: the clip's reference canvases as the engine plans and encodes them for the LoRA being trained
  (conditioning.plan_conditioning + encode_reference: tokens, RoPE positions scaled by the factor);
- text: the caption's video / audio embeddings and mask after the (frozen) connectors.

The key folder names what the tokens depend on (dataset content, the model's VAE / text encoder /
connectors files, factor, kind, size), so a changed dataset or model never reads a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..engine.loras import LoraInfo
from ..engine.ltx2.conditioning import plan_conditioning
from ..engine.ltx2.forward import encode_text
from ..engine.ltx2.references import EncodedReference, ReferenceCanvas, encode_reference
from .dataset import TrainingClip, TrainingDataset, clip_request

CACHE_VERSION = 1
CACHE_FOLDER = ".cache"
# The components whose weights the cached tokens come from.
ENCODER_COMPONENTS = ("vae", "text_encoder", "connectors", "tokenizer")


@dataclass
class CachedClip:
    name: str
    caption: str
    target: torch.Tensor  # (1, N, C) clean target tokens
    grid: tuple[int, int, int]  # (latent frames, rows, cols) of the target
    refs: list[EncodedReference]
    text: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # video embeds, audio embeds, mask
    fps: float
    num_frames: int


def model_fingerprint(model: str) -> str:
    """The model as far as the cache cares: its path, and name, size and mtime of every file of the
    encoder components (hashing the weights of a 12B text encoder would take minutes)."""
    root = Path(model)
    h = hashlib.sha256(str(root.resolve() if root.exists() else model).encode())
    for component in ENCODER_COMPONENTS:
        for path in sorted((root / component).rglob("*")) if (root / component).is_dir() else []:
            if path.is_file():
                st = path.stat()
                h.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    config = root / "transformer" / "config.json"
    if config.is_file():
        h.update(config.read_bytes())  # RoPE settings shape the cached positions
    return h.hexdigest()


def cache_dir(dataset: TrainingDataset, dataset_sha256: str, model: str, factor: int) -> Path:
    key = hashlib.sha256(json.dumps([CACHE_VERSION, dataset_sha256, model_fingerprint(model), factor, dataset.kind,
                                     dataset.width, dataset.height, dataset.num_frames]).encode()).hexdigest()[:16]
    return dataset.root / CACHE_FOLDER / key


def training_lora_info(name: str, dataset: TrainingDataset, factor: int, rank: int) -> LoraInfo:
    """The registry entry of the LoRA being trained, so the engine plans and renders it like any other."""
    return LoraInfo(name=name, path="", kind=dataset.lora_kind, reference_downscale_factor=factor, camera_move=None,
                    sha256="", rank=rank, canvas=None if dataset.trajectory else dataset.kind)


def encode_clip(pipe, dataset: TrainingDataset, clip: TrainingClip, info: LoraInfo, device) -> CachedClip:
    """One clip through the engine's own planning and encoders (no gradients)."""
    req = clip_request(dataset, clip, info.name)
    plan = plan_conditioning(req, {info.name: info}, req.width, req.height)
    with torch.no_grad():
        refs = [encode_reference(pipe, r, req.width, req.height, req.fps, device, torch.float32)
                for r in plan.references]
        target = encode_reference(pipe, ReferenceCanvas("target", clip.target_frames(), 1), req.width, req.height,
                                  req.fps, device, torch.float32)
        text, _ = encode_text(pipe, clip.caption, "", False, device)
    return CachedClip(clip.name, clip.caption, target.tokens, target.latent_shape, refs, text, req.fps,
                      req.num_frames)


def _to_file(c: CachedClip) -> dict:
    cpu = lambda t: t.detach().to("cpu").contiguous()  # noqa: E731
    return {"version": CACHE_VERSION, "name": c.name, "caption": c.caption, "target": cpu(c.target),
            "grid": list(c.grid), "fps": c.fps, "num_frames": c.num_frames,
            "text": [cpu(t) for t in c.text],
            "refs": [{"name": r.name, "factor": r.factor, "tokens": cpu(r.tokens), "coords": cpu(r.coords),
                      "strength": cpu(r.strength), "has_map": r.has_map, "latent_shape": list(r.latent_shape),
                      "temporal_scale": r.temporal_scale} for r in c.refs]}


def _from_file(d: dict, device) -> CachedClip:
    dev = lambda t: t.to(device)  # noqa: E731
    refs = [EncodedReference(r["name"], int(r["factor"]), dev(r["tokens"]), dev(r["coords"]), r["strength"],
                             bool(r["has_map"]), tuple(r["latent_shape"]), int(r["temporal_scale"]))
            for r in d["refs"]]
    return CachedClip(d["name"], d["caption"], dev(d["target"]), tuple(d["grid"]), refs,
                      tuple(dev(t) for t in d["text"]), float(d["fps"]), int(d["num_frames"]))


def load_or_encode(pipe, dataset: TrainingDataset, dataset_sha256: str, model: str, info: LoraInfo, device,
                   say=print) -> dict[str, CachedClip]:
    """name -> CachedClip for every clip: read from the cache, or encoded now and written there."""
    folder = cache_dir(dataset, dataset_sha256, model, int(info.reference_downscale_factor or 1))
    folder.mkdir(parents=True, exist_ok=True)
    out, encoded = {}, 0
    for clip in dataset.clips:
        path = folder / f"{clip.name}.pt"
        if path.is_file():
            try:
                out[clip.name] = _from_file(torch.load(path, map_location="cpu", weights_only=True), device)
                continue
            except Exception as e:  # noqa: BLE001 - a damaged cache file is re-encoded, never trusted
                say(f"cache: {path.name} unreadable ({type(e).__name__}); encoding it again")
        cached = encode_clip(pipe, dataset, clip, info, device)
        _save(path, _to_file(cached))
        out[clip.name] = cached
        encoded += 1
    say(f"latents: {encoded} clip(s) encoded, {len(out) - encoded} from the cache ({folder})")
    return out


def _save(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
