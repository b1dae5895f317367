"""Lightricks' ltx-core 1.0.0 as a test oracle for the engine (used by test_parity_ltx_core.py).

The tiny model's transformer weights are loaded, strictly, into ltx-core's own `LTXModel` by
inverting diffusers' LTX-2 renames; one denoising step is then built with ltx-core's and
ltx-pipelines' own pieces (latent tools, `VideoConditionByReferenceLatent`,
`ConditioningItemAttentionStrengthWrapper`, the IC-LoRA mask downsampling, `resize_and_center_crop`,
`modality_from_latent_state`, the multimodal guider) and compared with the engine's step.
Nothing of Lightricks' code is copied here: this file only calls it.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import numpy as np
import torch
import transformers  # noqa: F401  (imported first: it asks whether torchaudio exists when imported)

# ltx_pipelines imports ltx-core's audio VAE when it is imported, and that imports torchaudio, whose
# wheels pin another torch (not installed here). Only its audio preprocessing calls torchaudio; the
# transformer path never does. A placeholder stands in during the import and is removed after.
_placeholder = "torchaudio" not in sys.modules
if _placeholder:
    sys.modules["torchaudio"] = types.ModuleType("torchaudio")
try:
    from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
    from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
    from ltx_core.conditioning import (
        ConditioningItemAttentionStrengthWrapper,
        VideoConditionByReferenceLatent,
    )
    from ltx_core.model.transformer.model import LTXModel, LTXModelType, X0Model
    from ltx_core.model.transformer.rope import LTXRopeType
    from ltx_core.model.transformer.text_projection import create_caption_projection
    from ltx_core.tools import AudioLatentTools, VideoLatentTools
    from ltx_core.types import AudioLatentShape, VideoLatentShape
    from ltx_pipelines.ic_lora import ICLoraPipeline
    from ltx_pipelines.utils.helpers import modality_from_latent_state, multi_modal_guider_denoising_func
    from ltx_pipelines.utils.media_io import resize_and_center_crop
finally:
    if _placeholder:
        del sys.modules["torchaudio"]

# diffusers name -> ltx-core name: the inverse of diffusers' scripts/convert_ltx2_to_diffusers.py
# (LTX_2_0_TRANSFORMER_KEYS_RENAME_DICT and its adaln_single special case, plus LTX_2_3's
# prompt_adaln_single renames), longest first.
_TO_LTX = [
    ("av_cross_attn_video_scale_shift.", "av_ca_video_scale_shift_adaln_single."),
    ("av_cross_attn_audio_scale_shift.", "av_ca_audio_scale_shift_adaln_single."),
    ("av_cross_attn_video_a2v_gate.", "av_ca_a2v_gate_adaln_single."),
    ("av_cross_attn_audio_v2a_gate.", "av_ca_v2a_gate_adaln_single."),
    ("video_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_video"),
    ("audio_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_audio"),
    (".norm_q.", ".q_norm."),
    (".norm_k.", ".k_norm."),
]
_PREFIXES = [("audio_proj_in.", "audio_patchify_proj."), ("proj_in.", "patchify_proj."),
             ("audio_time_embed.", "audio_adaln_single."), ("time_embed.", "adaln_single."),
             ("audio_prompt_adaln.", "audio_prompt_adaln_single."), ("prompt_adaln.", "prompt_adaln_single.")]


def ltx_key(key: str) -> str:
    for old, new in _PREFIXES:
        if key.startswith(old):
            key = new + key[len(old):]
            break
    for old, new in _TO_LTX:
        key = key.replace(old, new)
    return key


def ltx_model(model_dir) -> LTXModel:
    """ltx-core's LTXModel (fp32) holding the weights of `<model_dir>/transformer` (diffusers layout), strictly.

    LTX-2.0 and LTX-2.3 layouts (ltx-core 1.0.0's `apply_gated_attention` and `cross_attention_adaln`;
    an LTX-2.3 model has no caption projection: its connectors project). LTX-2.5 (ff_bias false) is
    newer than ltx-core 1.0.0: NotImplementedError."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(model_dir) / "transformer"
    cfg = types.SimpleNamespace(**json.loads((folder / "config.json").read_text()))
    weights = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    if not getattr(cfg, "ff_bias", True):
        raise NotImplementedError("ltx-core 1.0.0 has no LTX-2.5 transformer (bias-free feed-forward, keyframe "
                                  "position embedding); it maps LTX-2.0 and LTX-2.3 layouts")
    projections = getattr(cfg, "use_prompt_embeddings", True)  # LTX-2.0: the caption projection is in the DiT
    sizes = {"caption_channels": cfg.caption_channels, "num_attention_heads": cfg.num_attention_heads,
             "attention_head_dim": cfg.attention_head_dim, "audio_num_attention_heads": cfg.audio_num_attention_heads,
             "audio_attention_head_dim": cfg.audio_attention_head_dim}
    model = LTXModel(
        model_type=LTXModelType.AudioVideo, num_attention_heads=cfg.num_attention_heads,
        attention_head_dim=cfg.attention_head_dim, in_channels=cfg.in_channels, out_channels=cfg.out_channels,
        num_layers=cfg.num_layers, cross_attention_dim=cfg.cross_attention_dim, norm_eps=cfg.norm_eps,
        positional_embedding_theta=cfg.rope_theta,
        positional_embedding_max_pos=[cfg.pos_embed_max_pos, cfg.base_height, cfg.base_width],
        timestep_scale_multiplier=cfg.timestep_scale_multiplier,
        audio_num_attention_heads=cfg.audio_num_attention_heads, audio_attention_head_dim=cfg.audio_attention_head_dim,
        audio_in_channels=cfg.audio_in_channels, audio_out_channels=cfg.audio_out_channels,
        audio_cross_attention_dim=cfg.audio_cross_attention_dim,
        audio_positional_embedding_max_pos=[cfg.audio_pos_embed_max_pos],
        av_ca_timestep_scale_multiplier=cfg.cross_attn_timestep_scale_multiplier,
        rope_type=LTXRopeType(cfg.rope_type), double_precision_rope=cfg.rope_double_precision,
        caption_projection=create_caption_projection(sizes) if projections else None,
        audio_caption_projection=create_caption_projection(sizes, audio=True) if projections else None,
        apply_gated_attention=cfg.gated_attn, cross_attention_adaln=cfg.cross_attn_mod)
    state = {ltx_key(k): v.float() for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def fuse_lora(model: LTXModel, lora: dict[str, torch.Tensor], strength: float = 1.0) -> None:
    """Add a Lightricks-format LoRA (`diffusion_model.<ltx name>.lora_A/B.weight`) into the weights:
    W += strength * B @ A, as ltx-core's loader fuses LoRAs (its fuser takes bf16/fp8 weights only)."""
    params = dict(model.named_parameters())
    for key, a in lora.items():
        if not key.endswith(".lora_A.weight"):
            continue
        name = key[len("diffusion_model."):-len(".lora_A.weight")]
        b = lora[key.replace("lora_A", "lora_B")]
        with torch.no_grad():
            params[f"{name}.weight"] += (b * strength) @ a


@dataclass
class Reference:
    """One IC-LoRA reference as ltx-pipelines would add it."""

    latent: torch.Tensor  # (1, C, F, h, w) normalised VAE latent
    factor: int = 1
    attention_mask: float | torch.Tensor | None = None  # None: no wrapper (strength 1, no mask)
    temporal_scale: int = 1  # emulates ltx-core 1.2+ (HEAD) positions; 1.0.0 has no such parameter


def reference_pixels(frames: np.ndarray, width: int, height: int, temporal_scale: int = 1) -> torch.Tensor:
    """Canvas frames (F, H, W, 3) uint8 -> (1, 3, F', height, width) in [-1, 1], as ltx-pipelines loads a
    reference video (bilinear aspect fill + centre crop, then /127.5 - 1). temporal_scale: the frames
    ltx-pipelines 1.2+ keeps (`temporal_subsample`: frame 0, then every S-th from frame 1)."""
    keep = [0, *range(1, len(frames), temporal_scale)]
    video = resize_and_center_crop(torch.from_numpy(frames[keep]).float(), height, width)  # (1, 3, F', h, w)
    return video / 127.5 - 1.0


def mask_to_latent(mask: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """A pixel mask video (1, 1, F, H, W) in [0, 1] -> token weights (1, M), ltx-pipelines' IC-LoRA rule."""
    return ICLoraPipeline._downsample_mask_to_latent(mask, VideoLatentShape.from_torch_shape(latent.shape))


def _head_time_positions(positions: torch.Tensor, new: int, fps: float, scale: int) -> torch.Tensor:
    """ltx-core 1.2+ (GitHub HEAD, conditioning/types/reference_video_cond.py) places a reference read every
    S-th frame at time p * S / fps - (S - 1) / fps, clamped at 0 (p: the 1.0.0 position x fps). Applied to
    the `new` tokens just appended by the 1.0.0 item, whose times are p / fps."""
    if scale == 1:
        return positions
    positions = positions.clone()
    times = positions[:, 0, -new:]
    frame = positions[:, 0, 0:1, 1:2]  # the first target patch ends at 1 / fps
    positions[:, 0, -new:] = torch.clamp(times * scale - (scale - 1) * frame, min=0)
    return positions


def ltx_velocity(model: LTXModel, *, noise: torch.Tensor, audio_noise: torch.Tensor, grid: tuple[int, int, int],
                 fps: float, sigma: float, video_context: torch.Tensor, audio_context: torch.Tensor,
                 references: list[Reference] = (), audio_mel_bins: int = 4, audio_channels: int = 2,
                 perturbations=None) -> tuple[torch.Tensor, torch.Tensor]:
    """ltx-core's velocities for one step: target tokens (1, N, C) and audio (1, L, C*M)."""
    video_state, audio_state = ltx_states(noise=noise, audio_noise=audio_noise, grid=grid, fps=fps,
                                          references=references, audio_mel_bins=audio_mel_bins,
                                          audio_channels=audio_channels)
    s = torch.tensor([sigma], dtype=torch.float32)
    with torch.no_grad():
        v, a = model(video=modality_from_latent_state(video_state, video_context, s),
                     audio=modality_from_latent_state(audio_state, audio_context, s), perturbations=perturbations)
    return v[:, :noise.shape[1]], a


def ltx_guided_velocity(model: LTXModel, *, noise, audio_noise, grid, fps: float, sigma: float, text, negative,
                        video: dict, audio: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocities of one guided step as ltx-pipelines' dev pipelines take it: their multimodal guider
    denoising function over X0Model (x0 predictions), turned into velocities (x - x0) / sigma.
    video, audio: MultiModalGuiderParams fields (cfg_scale, stg_scale, stg_blocks, rescale_scale, modality_scale)."""
    video_state, audio_state = ltx_states(noise=noise, audio_noise=audio_noise, grid=grid, fps=fps)
    step = multi_modal_guider_denoising_func(
        MultiModalGuider(MultiModalGuiderParams(**video), negative_context=negative[0]),
        MultiModalGuider(MultiModalGuiderParams(**audio), negative_context=negative[1]),
        text[0], text[1], X0Model(model))
    with torch.no_grad():
        x0_video, x0_audio = step(video_state, audio_state, torch.tensor([sigma, 0.0]), 0)
    return (noise - x0_video) / sigma, (audio_noise - x0_audio) / sigma


def ltx_states(*, noise, audio_noise, grid, fps, references=(), audio_mel_bins=4, audio_channels=2):
    """(video LatentState with the references appended by ltx-core's items, audio LatentState)."""
    lf, lh, lw = grid
    tools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), VideoLatentShape(1, noise.shape[2], lf, lh, lw), fps)
    state = tools.create_initial_state("cpu", torch.float32)
    state = type(state)(latent=noise.clone(), denoise_mask=state.denoise_mask, positions=state.positions,
                        clean_latent=state.clean_latent, attention_mask=None)
    for ref in references:
        item = VideoConditionByReferenceLatent(ref.latent, downscale_factor=ref.factor, strength=1.0)
        if ref.attention_mask is not None:
            item = ConditioningItemAttentionStrengthWrapper(item, attention_mask=ref.attention_mask)
        before = state.latent.shape[1]
        state = item.apply_to(state, tools)
        new = state.latent.shape[1] - before
        state = type(state)(latent=state.latent, denoise_mask=state.denoise_mask, clean_latent=state.clean_latent,
                            attention_mask=state.attention_mask,
                            positions=_head_time_positions(state.positions, new, fps, ref.temporal_scale))
    audio_tools = AudioLatentTools(AudioPatchifier(patch_size=1),
                                   AudioLatentShape(1, audio_channels, audio_noise.shape[1], audio_mel_bins))
    audio_state = audio_tools.create_initial_state("cpu", torch.float32)
    audio_state = type(audio_state)(latent=audio_noise.clone(), denoise_mask=audio_state.denoise_mask,
                                    positions=audio_state.positions, clean_latent=audio_state.clean_latent)
    return state, audio_state
