"""Reference strength as an attention bias, exactly as Lightricks' ltx-core 1.0.0 builds it.

A strength m in [0, 1] per reference token becomes an additive bias log(m) on the video
self-attention logits between generated (target) tokens and that reference token, so m
multiplies the token's unnormalised attention weight: m = 0.5 halves it, m = 0 removes it
(bias = dtype minimum: exp underflows to 0). diffusers' `(1 - m) * -10000` is nearly on/off.

The mask follows ltx-core's `ConditioningItemAttentionStrengthWrapper` / `build_attention_mask`.
A reference "has a strength map" when ltx-pipelines would wrap it: a mask, a per-frame curve or a
strength below 1 (our `strength.needs_strength_map`). No reference has one -> no bias at all:
every token attends to every token, two references included. Otherwise, blocks of the bias
(rows = queries, cols = keys; N target tokens, then one group per reference, in sequence order):
    target  <-> target:   0
    target  <-> group g:  log(m) per reference token (symmetric), 0 for a group without a map
    group g <-> group g:  0, strength-0 tokens included (ltx-core keeps that block at 1)
    group g <-> group h:  0 when both come before the first group with a map (ltx-core's first
                          mask starts as all ones over the tokens so far), else blocked
Only the video self-attention is biased: the audio-video cross-attention reads reference tokens
unweighted in ltx-core, so a reference at strength 0 still reaches the audio (and through it the
video) there; the engine does the same, on purpose.

The processor also does spatio-temporal guidance (STG): a perturbed batch element skips the
attention and passes the values through, as ltx-core's Attention and diffusers' perturbed processor.

Two kernels compute that same bias (the engine's `attention` option, `render-backend serve --attention`):
    dense: the (1, 1, T, T) bias tensor above, handed to SDPA (T = N + R tokens). Simple, but 288 MiB in
           bf16 for 121 frames at 768x512 with a factor-1 canvas, and the flash kernel cannot take a bias.
    flex:  PyTorch FlexAttention with a `score_mod` that reads O(T) per-token tensors (`TokenBias`: each
           token's log(m) and block id) and adds, per score, the very value the dense tensor holds. No
           (T, T) tensor exists when it is compiled (CUDA); uncompiled (CPU) it materialises the scores.
           With two or more reference blocks a BlockMask also skips the blocked reference<->reference tiles.
    auto:  flex, compiled, on CUDA; dense on CPU. tests/engine/test_attention_fast_path.py pins flex = dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_ltx2 import (
    LTX2PerturbedAttnProcessor,
    apply_interleaved_rotary_emb,
    apply_split_rotary_emb,
)

ATTENTION_KERNELS = ("auto", "dense", "flex")


def resolve_attention(requested: str, device: torch.device) -> str:
    """"auto" -> "flex" on CUDA, "dense" elsewhere (uncompiled flex materialises the scores anyway)."""
    if requested not in ATTENTION_KERNELS:
        raise ValueError(f"attention must be auto, dense or flex (got {requested!r})")
    if requested == "auto":
        return "flex" if device.type == "cuda" else "dense"
    return requested


@dataclass
class TokenBias:
    """The video self-attention bias as per-token tensors (T = target + reference tokens):

    log_m: (T,) float32, log(m) of each token of a group with a strength map (dtype min where m = 0),
        0 for target tokens and for groups without a map.
    block: (T,) int32, 0 for target tokens; reference tokens of one block see each other, other
        blocks are blocked: 1 = every group before the first group with a map (ltx-core's first
        all-ones mask), 2 + i = group i from the first group with a map on.
    blocked: the bias of a blocked pair, the dtype's minimum (as the dense bias).

    bias(q, k) = 0 if block[q] == block[k] > 0, blocked if both > 0 and differ, else log_m[q] + log_m[k]
    (one of the two is a target token, whose log_m is 0: exactly the dense bias's value).
    """

    log_m: torch.Tensor
    block: torch.Tensor
    blocked: float
    blocked_pairs: bool = False  # two or more reference blocks: some reference<->reference pairs are blocked
    block_mask: object = None  # optional FlexAttention BlockMask skipping those tiles (attach_block_mask)

    def dense(self) -> torch.Tensor:
        """(1, 1, T, T) float32: the same bias as a tensor (tests; a transformer attention_mask on top)."""
        bq, bk = self.block[:, None], self.block[None, :]
        both_ref = (bq > 0) & (bk > 0)
        blocked = torch.tensor(self.blocked, dtype=torch.float32, device=self.log_m.device)
        bias = torch.where(both_ref, torch.where(bq == bk, torch.zeros_like(blocked), blocked),
                           self.log_m[:, None] + self.log_m[None, :])
        return bias[None, None]


class ReferenceBias:
    """The bias of the current generation, shared by all patched attention layers.

    kernel: "dense" or "flex" (resolve_attention); compiled: flex runs through torch.compile.
    video_self: (1, 1, N_video, N_video) additive bias (dense), or None.
    tokens: the same bias as per-token tensors (flex), or None. Both None: plain attention.
    """

    def __init__(self, kernel: str = "dense", compiled: bool = False) -> None:
        if kernel not in ("dense", "flex"):
            raise ValueError(f"attention kernel must be dense or flex (got {kernel!r})")
        self.kernel, self.compiled = kernel, compiled
        self.video_self: torch.Tensor | None = None
        self.tokens: TokenBias | None = None

    def set(self, num_target: int, group_strengths: list[torch.Tensor], has_map: list[bool],
            dtype: torch.dtype, device: torch.device) -> None:
        """This generation's bias, in the form the kernel reads (None for both without a strength map)."""
        self.clear()
        if self.kernel == "flex":
            self.tokens = build_video_self_tokens(num_target, group_strengths, has_map, dtype, device)
            if self.tokens is not None:
                attach_block_mask(self.tokens, self.compiled)
        else:
            self.video_self = build_video_self_bias(num_target, group_strengths, has_map, dtype, device)

    def clear(self) -> None:
        self.video_self = None
        self.tokens = None


def log_strength(strength: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """log(m) with m <= 0 mapped to the dtype's most negative finite value (never NaN). Computed in
    `dtype`, as ltx-core does (its mask is in the latents' dtype): bf16 runs round m first."""
    finfo = torch.finfo(dtype)
    m = strength.to(dtype)
    out = torch.full_like(m, finfo.min)
    positive = m > 0
    out[positive] = torch.log(m[positive].clamp(min=finfo.tiny))
    return out


def build_video_self_bias(num_target: int, group_strengths: list[torch.Tensor], has_map: list[bool],
                          dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """(1, 1, N, N) bias for target tokens followed by reference groups; None when no group has a map.

    group_strengths: one (n_g,) float tensor of strengths per reference canvas, in sequence order.
    has_map: per group, whether it has a strength map (ltx-pipelines wraps it); a group without
    one reads at strength 1. No group with a map means plain attention (None), which also lets
    the fastest attention kernel run.
    """
    if len(group_strengths) != len(has_map):
        raise ValueError(f"{len(group_strengths)} strength groups but {len(has_map)} has_map flags")
    mapped = [i for i, flag in enumerate(has_map) if flag]
    if not mapped:
        return None
    sizes = [int(g.numel()) for g in group_strengths]
    starts = [num_target + sum(sizes[:i]) for i in range(len(sizes))]
    total = num_target + sum(sizes)
    blocked = torch.finfo(dtype).min
    # Rows padded to a multiple of 8 elements and sliced back: CUDA's memory-efficient attention
    # only takes a bias whose row stride is 8-aligned (otherwise SDPA falls back to the slow path).
    padded = -(-total // 8) * 8
    bias = torch.zeros((total, padded), dtype=dtype, device=device)[:, :total]
    # Reference <-> reference: blocked, except inside each group and among the groups that come
    # before the first one with a map (ltx-core starts its first mask as all ones over those).
    bias[num_target:, num_target:] = blocked
    open_end = starts[mapped[0]]
    bias[num_target:open_end, num_target:open_end] = 0.0
    for i, (start, n) in enumerate(zip(starts, sizes, strict=True)):
        bias[start:start + n, start:start + n] = 0.0
        if has_map[i]:
            log_m = log_strength(group_strengths[i].to(device), dtype)  # (n,)
            bias[:num_target, start:start + n] = log_m.unsqueeze(0)
            bias[start:start + n, :num_target] = log_m.unsqueeze(1)
    return bias[None, None]


def build_video_self_tokens(num_target: int, group_strengths: list[torch.Tensor], has_map: list[bool],
                            dtype: torch.dtype, device: torch.device) -> TokenBias | None:
    """build_video_self_bias's bias as per-token tensors (TokenBias); None when no group has a map."""
    if len(group_strengths) != len(has_map):
        raise ValueError(f"{len(group_strengths)} strength groups but {len(has_map)} has_map flags")
    mapped = [i for i, flag in enumerate(has_map) if flag]
    if not mapped:
        return None
    log_m = [torch.zeros(num_target, dtype=torch.float32, device=device)]
    block = [torch.zeros(num_target, dtype=torch.int32, device=device)]
    for i, (strength, flag) in enumerate(zip(group_strengths, has_map, strict=True)):
        n = int(strength.numel())
        # Same values as the dense bias: log(m) computed in the model's dtype, then exact in float32.
        log_m.append(log_strength(strength.to(device), dtype).float() if flag
                     else torch.zeros(n, dtype=torch.float32, device=device))
        block.append(torch.full((n,), 1 if i < mapped[0] else 2 + i, dtype=torch.int32, device=device))
    blocks = len(has_map) - mapped[0] + (mapped[0] > 0)  # the open block (if any) + one per later group
    return TokenBias(torch.cat(log_m), torch.cat(block), float(torch.finfo(dtype).min), blocked_pairs=blocks > 1)


def _flex_reference_attention(query, key, value, log_m, block, blocked: float, block_mask=None):
    """FlexAttention with the reference bias in score_mod. query/key/value: (B, H, T, D)."""
    from torch.nn.attention.flex_attention import flex_attention

    def score_mod(score, b, h, q_idx, kv_idx):
        bq, bk = block[q_idx], block[kv_idx]
        within = torch.where(bq == bk, 0.0, blocked)  # both reference tokens: same block or blocked
        # score + dtype min: exp() of it (or of the -inf a kernel's log2 scaling makes of it) is 0. No row
        # is all blocked (every token sees its own block), so the softmax never divides 0 by 0: no NaN.
        return score + torch.where((bq > 0) & (bk > 0), within, log_m[q_idx] + log_m[kv_idx])

    return flex_attention(query, key, value, score_mod=score_mod, block_mask=block_mask,
                          enable_gqa=query.shape[1] != key.shape[1])


def attach_block_mask(tokens: TokenBias, compiled: bool) -> None:
    """Give `tokens` a BlockMask that drops the blocked reference<->reference pairs, so whole blocked tiles
    are skipped (the score_mod gives them dtype min, whose weight is 0 as well: same numbers). Nothing to
    drop without blocked pairs. Made once per generation, outside any compiled region."""
    if not tokens.blocked_pairs or tokens.block_mask is not None:
        return
    from torch.nn.attention.flex_attention import create_block_mask

    block = tokens.block

    def visible(b, h, q_idx, kv_idx):
        bq, bk = block[q_idx], block[kv_idx]
        return (bq == 0) | (bk == 0) | (bq == bk)

    total = int(block.numel())
    tokens.block_mask = create_block_mask(visible, None, None, total, total, device=block.device, _compile=compiled)


_compiled_flex = None


def flex_reference_attention(query, key, value, tokens: TokenBias, compiled: bool) -> torch.Tensor:
    """(B, H, T, D) attention with `tokens`' bias. compiled: through torch.compile (one compiled function for
    the process; torch recompiles it for new shapes, dynamically after the first change)."""
    global _compiled_flex
    fn = _flex_reference_attention
    if compiled:
        if _compiled_flex is None:
            _compiled_flex = torch.compile(_flex_reference_attention)
        fn = _compiled_flex
    # Uncompiled, PyTorch warns once that it materialises the scores: true, it is the CPU/test path.
    return fn(query, key, value, tokens.log_m, tokens.block, tokens.blocked, tokens.block_mask)


class ReferenceBiasAttnProcessor:
    """LTX-2 video self-attention (diffusers' LTX2AudioVideoAttnProcessor math) plus the reference
    bias and spatio-temporal guidance.

    perturbation_mask: (B, 1, 1), 0 for a batch element whose attention is skipped (STG: the
    values pass through), 1 otherwise; all_perturbed: every element is. The transformer's own
    attention_mask is added too, if any (the engine never passes one).
    """

    _attention_backend = None
    _parallel_config = None

    def __init__(self, shared: ReferenceBias) -> None:
        self.shared = shared

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 query_rotary_emb=None, key_rotary_emb=None, perturbation_mask=None, all_perturbed=None):
        batch_size = hidden_states.shape[0]
        kv_states = hidden_states if encoder_hidden_states is None else encoder_hidden_states

        gate_logits = attn.to_gate_logits(hidden_states) if attn.to_gate_logits is not None else None
        value = attn.to_v(kv_states)  # (B, N_k, H*D)
        if all_perturbed is None:
            all_perturbed = perturbation_mask is not None and bool(torch.all(perturbation_mask == 0))
        if all_perturbed:
            out = value  # STG: skip the attention, keep the values
        else:
            query = attn.norm_q(attn.to_q(hidden_states))  # (B, N_q, H*D)
            key = attn.norm_k(attn.to_k(kv_states))  # (B, N_k, H*D)
            if query_rotary_emb is not None:
                apply = apply_interleaved_rotary_emb if attn.rope_type == "interleaved" else apply_split_rotary_emb
                query = apply(query, query_rotary_emb)
                key = apply(key, key_rotary_emb if key_rotary_emb is not None else query_rotary_emb)

            tokens = self.shared.tokens
            # diffusers' layout is (B, N, H, D); FlexAttention's (B, H, N, D).
            q, k, v = (x.unflatten(2, (attn.heads, -1)) for x in (query, key, value))
            if tokens is not None and attention_mask is None:
                out = flex_reference_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), tokens,
                                               self.shared.compiled).transpose(1, 2)  # (B, N_q, H, D)
            else:
                bias = self.shared.video_self if tokens is None else tokens.dense()
                if bias is not None:
                    bias = bias.to(dtype=query.dtype, device=query.device)
                if attention_mask is not None:
                    extra = attn.prepare_attention_mask(attention_mask, kv_states.shape[1], batch_size)
                    extra = extra.view(batch_size, attn.heads, -1, extra.shape[-1])
                    bias = extra if bias is None else bias + extra
                out = dispatch_attention_fn(q, k, v, attn_mask=bias, dropout_p=0.0, is_causal=False,
                                            backend=self._attention_backend, parallel_config=self._parallel_config)
            out = out.flatten(2, 3).to(query.dtype)  # (B, N_q, H*D)
            if perturbation_mask is not None:
                out = torch.lerp(value, out, perturbation_mask)  # perturbed elements: values only
        if gate_logits is not None:
            gates = 2.0 * torch.sigmoid(gate_logits)  # (B, N_q, H); zero logits -> gate 1
            out = (out.unflatten(2, (attn.heads, -1)) * gates.unsqueeze(-1)).flatten(2, 3)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def install_reference_bias(transformer, kernel: str = "dense", compiled: bool = False) -> ReferenceBias:
    """Patch every block's video self-attention (reference bias + STG) and audio self-attention (STG);
    returns the shared state. kernel, compiled: see ReferenceBias.

    diffusers hands STG masks to the self-attention processors only for models built with
    `perturbed_attn` (LTX-2.3 and later); ltx-core's STG works for every generation, so the
    blocks are told to pass them (LTX2PerturbedAttnProcessor computes the same as the default
    processor when nothing is perturbed).
    """
    shared = ReferenceBias(kernel, compiled)
    for block in transformer.transformer_blocks:
        block.attn1.set_processor(ReferenceBiasAttnProcessor(shared))
        if not isinstance(block.audio_attn1.processor, LTX2PerturbedAttnProcessor):
            block.audio_attn1.set_processor(LTX2PerturbedAttnProcessor())
        block.perturbed_attn = True
    return shared
