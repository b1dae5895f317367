"""Reference strength as an attention bias (AVControl / Lightricks ltx-core), not diffusers' mask.

A strength m in [0, 1] per reference token becomes an additive bias log(m) on the attention
logits between generated (target) tokens and that reference token, so m multiplies the
token's unnormalised attention weight: m = 0.5 halves it, m = 0 removes the token exactly
(bias = dtype minimum: exp underflows to 0; a row always keeps its own target keys, so no
row is fully masked). diffusers' `(1 - m) * -10000` is nearly on/off instead.

Blocks of the video self-attention bias, rows = queries, cols = keys (N = target tokens,
then one group of reference tokens per reference canvas):
    target  -> target:   0
    target  -> group g:  log(m_key)          (per reference token)
    group g -> target:   log(m_query)        (symmetric, as ltx-core's mask)
    group g -> group g:  0, except keys of strength 0: -inf (a zeroed token is fully inert)
    group g -> group h:  -inf                (two canvases never see each other)
Audio queries attend to video keys in the video-to-audio cross-attention; audio is generated
content, so its bias on reference keys is log(m) too. Without that, m = 0 would still leak the
reference into the audio and, through it, back into the video.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_ltx2 import (
    apply_interleaved_rotary_emb,
    apply_split_rotary_emb,
)


class ReferenceBias:
    """The biases of the current generation, shared by all patched attention layers.

    video_self: (1, 1, N_video, N_video) additive bias, or None (plain attention).
    audio_over_video: (1, 1, 1, N_video) additive bias on video keys for audio queries, or None.
    """

    def __init__(self) -> None:
        self.video_self: torch.Tensor | None = None
        self.audio_over_video: torch.Tensor | None = None

    def clear(self) -> None:
        self.video_self = None
        self.audio_over_video = None


def log_strength(strength: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """log(m) with m = 0 mapped to the dtype's most negative finite value (never NaN)."""
    finfo = torch.finfo(dtype)
    m = strength.to(torch.float32)
    out = torch.full_like(m, finfo.min)
    positive = m > 0
    out[positive] = torch.log(m[positive]).clamp(min=finfo.min)
    return out.to(dtype)


def build_video_self_bias(num_target: int, group_strengths: list[torch.Tensor], dtype: torch.dtype,
                          device: torch.device) -> torch.Tensor | None:
    """(1, 1, N, N) bias for target tokens followed by reference groups; None when not needed.

    group_strengths: one (n_g,) float tensor of strengths per reference canvas, in sequence order.
    Not needed (None) with at most one group whose strengths are all 1: plain attention is the
    same and lets the fastest attention kernel run.
    """
    if not group_strengths:
        return None
    if len(group_strengths) == 1 and bool((group_strengths[0] >= 1).all()):
        return None
    sizes = [int(g.numel()) for g in group_strengths]
    total = num_target + sum(sizes)
    blocked = torch.finfo(dtype).min
    # Rows padded to a multiple of 8 elements and sliced back: CUDA's memory-efficient attention
    # only takes a bias whose row stride is 8-aligned (otherwise SDPA falls back to the slow path).
    padded = -(-total // 8) * 8
    bias = torch.zeros((total, padded), dtype=dtype, device=device)[:, :total]
    offset = num_target
    for g, n in zip(group_strengths, sizes, strict=True):
        log_m = log_strength(g.to(device), dtype)  # (n,)
        bias[:num_target, offset:offset + n] = log_m.unsqueeze(0)
        bias[offset:offset + n, :num_target] = log_m.unsqueeze(1)
        bias[offset:offset + n, num_target:offset] = blocked
        bias[offset:offset + n, offset + n:] = blocked
        # A strength-0 token is inert: its group's other tokens cannot read it either, or it
        # would reach the target second-hand (e.g. a zeroed frame through the next frame's tokens).
        inert = torch.where(g.to(device) <= 0, blocked, 0.0).to(dtype)  # (n,)
        within = inert.unsqueeze(0).expand(n, n).clone()
        within.diagonal().zero_()  # every token still sees itself: no fully masked row
        bias[offset:offset + n, offset:offset + n] = within
        offset += n
    return bias[None, None]


def build_audio_over_video_bias(num_target: int, group_strengths: list[torch.Tensor], dtype: torch.dtype,
                                device: torch.device) -> torch.Tensor | None:
    """(1, 1, 1, N_video) bias for audio queries over video keys; None when all strengths are 1."""
    if not group_strengths or all(bool((g >= 1).all()) for g in group_strengths):
        return None
    log_m = log_strength(torch.cat([g.to(device) for g in group_strengths]), dtype)
    bias = torch.cat([torch.zeros(num_target, dtype=dtype, device=device), log_m])
    return bias[None, None, None]


class ReferenceBiasAttnProcessor:
    """LTX-2 attention (same math as diffusers' LTX2AudioVideoAttnProcessor) plus a reference bias.

    role: "video_self" (attn1 of each block) or "audio_over_video" (video_to_audio_attn).
    The transformer's own attention_mask is added too, if any (we never pass one).
    """

    _attention_backend = None
    _parallel_config = None

    def __init__(self, shared: ReferenceBias, role: str) -> None:
        if role not in ("video_self", "audio_over_video"):
            raise ValueError(f"unknown role {role!r}")
        self.shared = shared
        self.role = role

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 query_rotary_emb=None, key_rotary_emb=None, perturbation_mask=None, all_perturbed=None):
        # perturbation_* only matter for spatio-temporal guidance, which the engine never runs.
        batch_size = hidden_states.shape[0]
        kv_states = hidden_states if encoder_hidden_states is None else encoder_hidden_states

        gate_logits = attn.to_gate_logits(hidden_states) if attn.to_gate_logits is not None else None
        query = attn.norm_q(attn.to_q(hidden_states))  # (B, N_q, H*D)
        key = attn.norm_k(attn.to_k(kv_states))  # (B, N_k, H*D)
        value = attn.to_v(kv_states)

        if query_rotary_emb is not None:
            apply = apply_interleaved_rotary_emb if attn.rope_type == "interleaved" else apply_split_rotary_emb
            query = apply(query, query_rotary_emb)
            key = apply(key, key_rotary_emb if key_rotary_emb is not None else query_rotary_emb)

        query = query.unflatten(2, (attn.heads, -1))  # (B, N_q, H, D)
        key = key.unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))

        bias = getattr(self.shared, self.role)
        if bias is not None:
            bias = bias.to(dtype=query.dtype, device=query.device)
        if attention_mask is not None:
            extra = attn.prepare_attention_mask(attention_mask, kv_states.shape[1], batch_size)
            extra = extra.view(batch_size, attn.heads, -1, extra.shape[-1])
            bias = extra if bias is None else bias + extra

        out = dispatch_attention_fn(query, key, value, attn_mask=bias, dropout_p=0.0, is_causal=False,
                                    backend=self._attention_backend, parallel_config=self._parallel_config)
        out = out.flatten(2, 3).to(query.dtype)  # (B, N_q, H*D)
        if gate_logits is not None:
            gates = 2.0 * torch.sigmoid(gate_logits)  # (B, N_q, H); zero logits -> gate 1
            out = (out.unflatten(2, (attn.heads, -1)) * gates.unsqueeze(-1)).flatten(2, 3)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def install_reference_bias(transformer) -> ReferenceBias:
    """Patch every block's video self-attention and video-to-audio attention; returns the shared state."""
    shared = ReferenceBias()
    for block in transformer.transformer_blocks:
        block.attn1.set_processor(ReferenceBiasAttnProcessor(shared, "video_self"))
        block.video_to_audio_attn.set_processor(ReferenceBiasAttnProcessor(shared, "audio_over_video"))
    return shared
