"""Which video decoder turns latents into pixels: the video VAE's convolutional decoder, or LTX-2.5's
diffusion VAE decoder (`diffusion_decoder/`, diffusers' LTX2VideoDiffusionDecoderModel).

Lightricks ships both for LTX-2.5 and decodes with the diffusion decoder by default; the latent space
is the same, so either decodes any LTX-2.5 latent. "auto" follows Lightricks: the diffusion decoder
when the checkpoint has one, else the conv decoder.

The diffusion decoder denoises pixels itself (one x0 step from noise in the shipped config), so its
noise is seeded from the request's seed.

Offline by construction: diffusers offers two attention processors for it. NATTEN's fetches its
kernel from the Hugging Face Hub (through the `kernels` package) when it is created; FlexAttention's
runs from torch alone. The engine pins the FlexAttention processor on every attention module at load,
so a render server never downloads anything, with or without network. The price: uncompiled
FlexAttention computes each attention's full score matrix, quadratic in the tokens it attends over.
So the last two stages (the large ones) decode in small tiles (decoder_tiles: 64 px and 16 frames, or
the least the kernels allow; diffusers' defaults, 768 px and 80 frames, assume NATTEN). The first three
stages always see the whole latent (diffusers tiles only the last two): at real resolutions they need
far more memory than NATTEN would (see the README); `--video-decoder conv` is the way out.
"""

from __future__ import annotations

from .generation import DIFFUSION_DECODER_DIR, Generation

VIDEO_DECODERS = ("auto", "conv", "diffusion")


def check_video_decoder(requested: str) -> str:
    if requested not in VIDEO_DECODERS:
        raise ValueError(f"--video-decoder must be one of {', '.join(VIDEO_DECODERS)} (got {requested!r})")
    return requested


def choose_video_decoder(requested: str, generation: Generation, model: str) -> str:
    """"conv" or "diffusion" for `requested` ("auto", "conv", "diffusion"); ValueError saying what to change."""
    if check_video_decoder(requested) == "auto":
        return "diffusion" if generation.diffusion_decoder else "conv"
    if requested == "diffusion" and not generation.diffusion_decoder:
        raise ValueError(f"--video-decoder diffusion: {model} has no {DIFFUSION_DECODER_DIR}/ folder (only LTX-2.5 "
                         "checkpoints ship a diffusion VAE decoder); use --video-decoder auto or conv")
    return requested


def load_diffusion_decoder(model: str, dtype):
    """The diffusion decoder of `model` (folder or hub id), attention pinned to FlexAttention, tiling on."""
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoDiffusionDecoderModel

    decoder = LTX2VideoDiffusionDecoderModel.from_pretrained(model, subfolder=DIFFUSION_DECODER_DIR, dtype=dtype)
    keep_attention_local(decoder)
    decoder.enable_tiling(**decoder_tiles(decoder.config))
    return decoder.eval()


def decoder_tiles(config, min_px: int = 64, min_frames: int = 16) -> dict[str, int]:
    """enable_tiling() sizes for the last two stages: tiles of min_px x min_px pixels and min_frames frames, or
    the smallest the neighbourhood kernels allow, overlapping by a quarter. Sizes are whole tiling cells (the
    last upsampling stride times the patch size: 8 px and 2 frames in the shipped config)."""
    stride, patch = config.decoder_upsample_strides[-1], config.patch_size
    cell = (stride[0], stride[1] * patch, stride[2] * patch)  # frames, px, px per cell
    # Every tile must hold the last stage's kernel, and the diffusion stage's kernel after the upsampling.
    least = [max(k4, -(-k5 // s)) for k4, k5, s in zip(config.decoder_stage_kernels[-1],
                                                         config.decoder_stage5_kernel, stride, strict=True)]
    wanted = (min_frames, min_px, min_px)
    cells = [max(lo, -(-want // c)) for lo, want, c in zip(least, wanted, cell, strict=True)]
    tile = [n * c for n, c in zip(cells, cell, strict=True)]
    step = [max(1, n * 3 // 4) * c for n, c in zip(cells, cell, strict=True)]
    return {"tile_sample_min_num_frames": tile[0], "tile_sample_min_height": tile[1], "tile_sample_min_width": tile[2],
            "tile_sample_stride_num_frames": step[0], "tile_sample_stride_height": step[1],
            "tile_sample_stride_width": step[2]}


def keep_attention_local(decoder) -> None:
    """FlexAttention (torch only) on every neighbourhood attention of `decoder`, never NATTEN (Hub download)."""
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoVaeNeighborhoodAttnProcessor

    decoder.set_attn_processor(LTX2VideoVaeNeighborhoodAttnProcessor())


def describe(decoder: str) -> str:
    """The decoder in words, for Capabilities' sidecar and a render's info."""
    if decoder == "diffusion":
        return (f"diffusion VAE decoder ({DIFFUSION_DECODER_DIR}/, FlexAttention, tiled; noise seeded from the "
                "request's seed)")
    return "convolutional VAE decoder (vae/)"
