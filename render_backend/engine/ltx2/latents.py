"""Latent <-> pixels for the engine: decode target tokens to video + audio, 2x latent upsampling.

Tokens are LTX-2's packed, normalised latents (B, N, C) in frame-major, row, column order.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def upsample_tokens(pipe, upsampler, latents, grid):
    """(1, N, C) normalised tokens at (lf, lh, lw) -> tokens at (lf, 2 lh, 2 lw) and the new (lh, lw)."""
    lf, lh, lw = grid
    video = pipe._unpack_latents(latents, lf, lh, lw, pipe.transformer_spatial_patch_size,
                                 pipe.transformer_temporal_patch_size)  # (B, C, F, H, W)
    # The upsampler works on raw (denormalised) VAE latents.
    video = pipe._denormalize_latents(video, pipe.vae.latents_mean, pipe.vae.latents_std,
                                      pipe.vae.config.scaling_factor)
    up_device = next(upsampler.parameters()).device
    video = upsampler(video.to(up_device, upsampler.dtype)).float().to(latents.device)
    video = pipe._normalize_latents(video, pipe.vae.latents_mean, pipe.vae.latents_std,
                                    pipe.vae.config.scaling_factor)
    _, _, _, uh, uw = video.shape
    tokens = pipe._pack_latents(video, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)
    return tokens, (uh, uw)


@torch.no_grad()
def decode_video_audio(pipe, latents, audio_latents, grid, audio_len, mel_bins, device, diffusion_decoder=None,
                       generator: torch.Generator | None = None):
    """Target tokens (1, N, C) -> video (F, H, W, 3) uint8; audio tokens (1, L, C*M) -> (channels, samples)
    float32 in [-1, 1] at the vocoder's rate. diffusion_decoder: LTX-2.5's (video_decoders.py) instead of
    the VAE's conv decoder; it draws its noise from `generator`."""
    lf, lh, lw = grid
    latents = pipe._unpack_latents(latents, lf, lh, lw, pipe.transformer_spatial_patch_size,
                                   pipe.transformer_temporal_patch_size)  # (B, C, F, H, W)
    latents = pipe._denormalize_latents(latents, pipe.vae.latents_mean, pipe.vae.latents_std,
                                        pipe.vae.config.scaling_factor)
    if diffusion_decoder is not None:
        frames = diffusion_decoder.decode(latents.to(diffusion_decoder.dtype), generator=generator,
                                          return_dict=False)[0]  # (B, 3, F, H, W)
    else:
        timestep = None
        if pipe.vae.config.timestep_conditioning:
            timestep = torch.zeros(latents.shape[0], device=device, dtype=pipe.vae.dtype)  # decode_timestep 0
        frames = pipe.vae.decode(latents.to(pipe.vae.dtype), timestep, return_dict=False)[0]  # (B, 3, F, H, W)
    frames = pipe.video_processor.postprocess_video(frames.float(), output_type="np")[0]  # (F, H, W, 3)
    video = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    audio_latents = pipe._denormalize_audio_latents(audio_latents, pipe.audio_vae.latents_mean,
                                                    pipe.audio_vae.latents_std)
    audio_latents = pipe._unpack_audio_latents(audio_latents, audio_len, num_mel_bins=mel_bins)  # (B, C, L, M)
    mel = pipe.audio_vae.decode(audio_latents.to(pipe.audio_vae.dtype), return_dict=False)[0]
    audio = pipe.vocoder(mel.to(next(pipe.vocoder.parameters()).dtype))  # (B, channels, samples)
    audio = audio[0].float().clamp(-1.0, 1.0).cpu().numpy().astype(np.float32)
    return video, audio
