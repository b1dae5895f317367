"""One LTX-2 transformer pass over the parallel canvas: the prompt embeddings, the token layout and
the call itself, shared by the engine's denoising loop and the LoRA trainer (render_backend/training),
so a LoRA is trained on exactly the sequence it is later rendered with.

Video stream of one pass (B = 1):
    tokens     [ target (1, N, C) at timestep t | reference groups (1, R, C) at timestep 0 ]
    positions  [ the target's latent grid        | each reference's own grid, H and W x its factor ]
Audio rides along at the same timestep. The references' outputs are dropped: only the target's
velocities (and the audio's) come back.
"""

from __future__ import annotations

import torch


def encode_text(pipe, prompt: str, negative_prompt: str, negative: bool, device) -> tuple:
    """((video embeds, audio embeds, mask) of the prompt, the same of the negative prompt or None):
    Gemma hidden states through the (frozen) connectors."""
    embeds, mask, neg_embeds, neg_mask = pipe.encode_prompt(
        prompt=prompt, negative_prompt=negative_prompt, do_classifier_free_guidance=negative,
        max_sequence_length=min(1024, int(pipe.tokenizer.model_max_length)), device=device)
    connect = lambda e, m: pipe.connectors(e, m, padding_side=pipe.tokenizer_padding_side)  # noqa: E731
    return connect(embeds, mask), connect(neg_embeds, neg_mask) if negative else None


def audio_latent_shape(pipe, num_frames: int, fps: float) -> tuple[int, int]:
    """(L, C*M) of the audio latents that go with num_frames video frames at fps."""
    audio_len = round(num_frames / fps * pipe.audio_sampling_rate / pipe.audio_hop_length
                      / pipe.audio_vae_temporal_compression_ratio)
    mel_bins = pipe.audio_mel_bins // pipe.audio_vae_mel_compression_ratio
    return audio_len, pipe.audio_latent_channels * mel_bins


def video_positions(pipe, grid: tuple[int, int, int], refs, fps: float, device) -> torch.Tensor:
    """(1, 3, N+R, 2) RoPE bounds: the target's latent grid (lf, lh, lw), then each encoded
    reference's own positions (references.encode_reference: already scaled by its factors)."""
    lf, lh, lw = grid
    coords = pipe.transformer.rope.prepare_video_coords(1, lf, lh, lw, device, fps=fps)
    return torch.cat([coords] + [r.coords for r in refs], dim=2)


def audio_positions(pipe, audio_len: int, device) -> torch.Tensor:
    """(1, 1, L, 2) RoPE bounds of the audio latents."""
    return pipe.transformer.audio_rope.prepare_audio_coords(1, audio_len, device)


def velocities(pipe, dtype: torch.dtype, t: torch.Tensor, latents: torch.Tensor, ref_tokens: torch.Tensor,
               audio_latents: torch.Tensor, text: tuple, grid: tuple[int, int, int], fps: float,
               video_coords: torch.Tensor, audio_coords: torch.Tensor, *, stg_blocks=None,
               isolated: bool = False, target_timesteps: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass: velocities of the target tokens (1, N, C) and of the audio (1, L, C*M), float32.

    t: the timestep, sigma x the scheduler's num_train_timesteps (the scheduler's own timesteps).
    latents: (1, N, C) target tokens at t; ref_tokens: (1, R, C) clean reference tokens, read at
    timestep 0. stg_blocks: the blocks whose self-attention STG skips (None: no perturbation);
    isolated: no audio <-> video cross-attention. target_timesteps: (1, N) per-token timesteps of the
    target (frame conditions hold some tokens lower), None = t for every target token. Runs with or
    without gradients (training).
    """
    lf, lh, lw = grid
    num_target, num_ref = latents.shape[1], ref_tokens.shape[1]
    device = latents.device
    video_in = torch.cat([latents, ref_tokens], dim=1)  # (1, N+R, C)
    t_b = t.reshape(1).expand(1).to(device=device, dtype=torch.float32)  # (1,)
    target_t = t_b[:, None].expand(1, num_target) if target_timesteps is None else target_timesteps
    video_t = torch.cat([target_t, torch.zeros(1, num_ref, device=device)], dim=1)  # (1, N+R): references at t=0
    video_text, audio_text, text_mask = text
    perturbed = stg_blocks is not None
    pred_video, pred_audio = pipe.transformer(
        hidden_states=video_in.to(dtype), audio_hidden_states=audio_latents.to(dtype),
        encoder_hidden_states=video_text, audio_encoder_hidden_states=audio_text,
        timestep=video_t, audio_timestep=t_b, sigma=t_b, audio_sigma=t_b,
        encoder_attention_mask=text_mask, audio_encoder_attention_mask=text_mask,
        num_frames=lf, height=lh, width=lw, fps=fps, audio_num_frames=audio_latents.shape[1],
        video_coords=video_coords, audio_coords=audio_coords, use_cross_timestep=True,
        isolate_modalities=isolated, spatio_temporal_guidance_blocks=list(stg_blocks) if perturbed else None,
        perturbation_mask=torch.zeros(1, device=device) if perturbed else None, return_dict=False)
    return pred_video[:, :num_target].float(), pred_audio.float()  # the references' outputs dropped
