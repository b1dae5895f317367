"""The parts of the tiny random LTX-2 pipeline, per model generation (test_model.py assembles them).

Each generation's tiny twin has that generation's real layout, only small: the same diffusers classes
and the config switches that tell the generations apart (ltx2/generation.py reads them back):

    part               LTX-2.0                      LTX-2.3                          LTX-2.5
    text encoder       Gemma3ForConditionalGen.     Gemma3ForConditionalGen.         Gemma4UnifiedForConditionalGen.
    transformer        plain attention, FF bias     gated attention, cross-attention as 2.3, no video FF bias,
                       caption projection inside    modulation + prompt AdaLN          keyframe position embedding
    connectors         at caption width             per-modality projections, gated  as 2.3
    video VAE decoder  3 up blocks                  4 up blocks (temporal, spatial)  as 2.3, plus diffusion_decoder/
    vocoder            LTX2Vocoder (8 kHz here)     LTX2VocoderWithBWE, 16 -> 48 kHz as 2.3

The real 32x spatial / 8x temporal compression is kept everywhere. The LTX-2.0 parts are built
exactly as before generations existed (same seeds, same order), so its weights never moved.
"""

from __future__ import annotations

import torch

VERSIONS = ("2.0", "2.3", "2.5")
SEED = 1234
# The tiny transformer; benchmarks pass bigger values (width = heads * head_dim, layers).
TINY_TRANSFORMER = {"num_attention_heads": 2, "attention_head_dim": 16, "num_layers": 2}
# Learnable registers replace the prompt's padding, as in the real connectors (128 there); the
# token count (the tokenizer's 64) must be a multiple of it.
CONNECTOR_REGISTERS = 16
MEL_BINS, AUDIO_LATENT_CHANNELS = 16, 2
TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": 256, "sliding_window": 64}


def check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)} (got {version!r})")
    return version


def text_encoder(version: str, tokenizer):
    """Gemma 3 (2.0, 2.3) or Gemma 4 "unified" (2.5), two layers of width 32, no vision weights to speak of."""
    torch.manual_seed(SEED)
    text_config = {**TEXT, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if version == "2.5":
        from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration

        # global_head_dim defaults to 512 for full-attention layers; layer_types as the real model alternates.
        text_config.update(global_head_dim=TEXT["head_dim"], layer_types=["sliding_attention", "full_attention"])
        return Gemma4UnifiedForConditionalGeneration(Gemma4UnifiedConfig(text_config=text_config)).eval()
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    vision_config = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "image_size": 28, "patch_size": 14}
    return Gemma3ForConditionalGeneration(
        Gemma3Config(text_config=text_config, vision_config=vision_config, mm_tokens_per_image=4)).eval()


def transformer(version: str, size: dict | None = None):
    from diffusers import LTX2VideoTransformer3DModel

    torch.manual_seed(SEED + 1)
    size = {**TINY_TRANSFORMER, **(size or {})}
    width = size["num_attention_heads"] * size["attention_head_dim"]
    extra = {}
    if version != "2.0":  # LTX-2.3: gated attention, cross-attention modulation + prompt AdaLN, STG processors
        extra = dict(gated_attn=True, cross_attn_mod=True, audio_gated_attn=True, audio_cross_attn_mod=True,
                     use_prompt_embeddings=False, perturbed_attn=True)
    if version == "2.5":
        extra.update(ff_bias=False, use_keyframes_abs_pos_embedding=True)
    return LTX2VideoTransformer3DModel(
        in_channels=8, out_channels=8, num_attention_heads=size["num_attention_heads"],
        attention_head_dim=size["attention_head_dim"], cross_attention_dim=width, audio_in_channels=8,
        audio_out_channels=8, audio_num_attention_heads=2, audio_attention_head_dim=8, audio_cross_attention_dim=16,
        num_layers=size["num_layers"], caption_channels=TEXT["hidden_size"], rope_double_precision=False,
        rope_type="split", **extra)


def connectors(version: str, size: dict | None = None):
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    torch.manual_seed(SEED + 2)
    size = {**TINY_TRANSFORMER, **(size or {})}
    common = dict(caption_channels=TEXT["hidden_size"], text_proj_in_factor=TEXT["num_hidden_layers"] + 1,
                  video_connector_num_layers=1, video_connector_num_learnable_registers=CONNECTOR_REGISTERS,
                  audio_connector_num_attention_heads=2, audio_connector_num_layers=1,
                  audio_connector_num_learnable_registers=CONNECTOR_REGISTERS, connector_rope_base_seq_len=32,
                  rope_double_precision=False, rope_type="split")
    if version == "2.0":  # both connectors at caption width; the transformer projects
        return LTX2TextConnectors(video_connector_num_attention_heads=2, video_connector_attention_head_dim=16,
                                  audio_connector_attention_head_dim=16, **common)
    # 2.3+: the connectors project per modality, straight to the transformer's video and audio widths.
    return LTX2TextConnectors(
        video_connector_num_attention_heads=size["num_attention_heads"],
        video_connector_attention_head_dim=size["attention_head_dim"], audio_connector_attention_head_dim=8,
        per_modality_projections=True, video_hidden_dim=size["num_attention_heads"] * size["attention_head_dim"],
        audio_hidden_dim=16, proj_bias=True, video_gated_attn=True, audio_gated_attn=True, **common)


def video_vae(version: str):
    from diffusers import AutoencoderKLLTX2Video

    torch.manual_seed(SEED + 3)
    # Real compression: patch 4 x (2 spatial, 2 temporal, 2x2 spatiotemporal) = 32x spatial, 8x temporal.
    # The ratios are stated explicitly: the derived ones are wrong for non-default block counts.
    common = dict(latent_channels=8, block_out_channels=(8, 16, 32, 64), layers_per_block=(1, 1, 1, 1, 1),
                  patch_size=4, timestep_conditioning=False, spatial_compression_ratio=32,
                  temporal_compression_ratio=8)
    if version == "2.0":
        return AutoencoderKLLTX2Video(decoder_block_out_channels=(8, 16, 32), decoder_layers_per_block=(1, 1, 1, 1),
                                      **common)
    # LTX-2.3 decoder: 4 up blocks, the last two temporal-only then spatial-only, no residual, zero padding.
    return AutoencoderKLLTX2Video(
        decoder_block_out_channels=(8, 16, 16, 32), decoder_layers_per_block=(1, 1, 1, 1, 1),
        decoder_spatio_temporal_scaling=(True, True, True, True), decoder_inject_noise=(False,) * 5,
        upsample_type=("spatiotemporal", "spatiotemporal", "temporal", "spatial"), upsample_residual=(False,) * 4,
        upsample_factor=(2, 2, 1, 2), decoder_causal=False, decoder_spatial_padding_mode="zeros", **common)


def audio_vae():
    from diffusers import AutoencoderKLLTX2Audio

    torch.manual_seed(SEED + 4)
    # The audio VAE only builds when base_channels == latent_channels * mel_bins / 4. Same in every generation.
    return AutoencoderKLLTX2Audio(base_channels=AUDIO_LATENT_CHANNELS * MEL_BINS // 4, output_channels=2,
                                  ch_mult=(1, 2, 4), num_res_blocks=1, in_channels=2, resolution=32,
                                  latent_channels=AUDIO_LATENT_CHANNELS, sample_rate=16000, mel_hop_length=160,
                                  mel_bins=MEL_BINS)


def vocoder(version: str):
    torch.manual_seed(SEED + 5)
    mel_channels = 2 * MEL_BINS  # the audio VAE's 2 output channels x mel bins
    if version == "2.0":
        from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

        # 80x upsampling of 100 mel frames/s (16 kHz, hop 160) = 8 kHz audio of the right length. (The real
        # LTX-2.0 vocoder makes 24 kHz; 8 kHz keeps this one tiny and its files small.)
        return LTX2Vocoder(in_channels=mel_channels, hidden_channels=16, out_channels=2,
                           upsample_kernel_sizes=[10, 8, 8], upsample_factors=[5, 4, 4], resnet_kernel_sizes=[3],
                           resnet_dilations=[[1, 3, 5]], output_sampling_rate=8000)
    from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE

    # Configured like the real one, rates included: stage 1 makes 16 kHz (x160 of 100 mel frames/s), the
    # bandwidth extension re-analyses it (mel hop 80) and resamples x3 to 48 kHz (x240 of 200 frames/s).
    return LTX2VocoderWithBWE(
        in_channels=mel_channels, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[10, 8, 8, 4],
        upsample_factors=[5, 4, 4, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        bwe_in_channels=mel_channels, bwe_hidden_channels=32, bwe_out_channels=2,
        bwe_upsample_kernel_sizes=[12, 11, 4, 4, 4], bwe_upsample_factors=[6, 5, 2, 2, 2],
        bwe_resnet_kernel_sizes=[3], bwe_resnet_dilations=[[1, 3, 5]], filter_length=128, hop_length=80,
        window_length=128, num_mel_channels=MEL_BINS, input_sampling_rate=16000, output_sampling_rate=48000)


def diffusion_decoder():
    """LTX-2.5's diffusion VAE decoder (saved as <model>/diffusion_decoder), real 32x / 8x compression:
    strides (1,2,2), (2,1,1), (2,2,2), (2,2,2) times patch 4. Spatial kernels of 1 in stages 1-2 let a
    64x64 video (a 2x2 latent) decode; every stage's grid must be at least its kernel."""
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoDiffusionDecoderModel

    torch.manual_seed(SEED + 7)
    return LTX2VideoDiffusionDecoderModel(
        out_channels=3, latent_channels=8, patch_size=4, decoder_head_dim=8,
        decoder_stage_channels=(64, 32, 16, 16, 8), decoder_stage_depths=(1, 1, 1, 1, 1),
        decoder_stage_kernels=((3, 1, 1), (3, 1, 1), (3, 3, 3), (3, 3, 3)),
        decoder_upsample_strides=((1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 2, 2)),
        decoder_upsample_channel_reductions=(2, 2, 1, 2), decoder_stage5_kernel=(3, 3, 3), decoder_t_emb_dim=32,
        spatial_compression_ratio=32, temporal_compression_ratio=8)


def tokenizer():
    """A Gemma tokenizer over a small in-memory word vocabulary (no download), for every generation."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GemmaTokenizerFast

    words = (
        "<pad> <eos> <bos> <unk> a an the of and in on with at to man woman dog cat robot car tree "
        "house street forest river city night day light dark walks runs dances camera moves slowly "
        "red blue green shot film cinematic close wide"
    ).split()
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return GemmaTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                              unk_token="<unk>", padding_side="left", model_max_length=64)
