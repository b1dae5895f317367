"""The LTX-2 engine: one generation from a RenderRequest to video frames + audio.

Built from the components of diffusers' `LTX2InContextPipeline` (text encoder, connectors,
transformer, VAEs, vocoder, scheduler) with our own denoising loop, so that each reference
canvas has its own downscale factor and its strength is a log(m) attention bias (AVControl).
Read `LTX2Engine._generate` then `LTX2Engine._denoise` to follow one generation.

Token sequence of the video stream, per step:
    [ target tokens (noisy, timestep t) | control canvas tokens (clean, t=0) | camera canvas tokens (t=0) ]
Reference tokens are never updated by the scheduler (re-pinned to their clean values every step)
and are dropped before decoding.

Two-stage mode (an `upsampler` is configured): stage 1 at half size with LoRAs and references,
latent 2x upsampler, stage 2 = a short refine at full size from sigma 0.909 without LoRAs.
"""

from __future__ import annotations

import gc
import time
import warnings
from pathlib import Path

import torch

from ..checks import check_request
from ..contract import EngineCapabilities
from ..loras import LoraInfo, check_lora_shapes, find_loras, inspect_lora
from ..request import (
    CancelFn,
    Cancelled,
    EngineError,
    LoraMismatch,
    NotLoaded,
    OutOfMemory,
    PlanFn,
    ProgressFn,
    RenderRequest,
    RenderResult,
)
from .attention import build_audio_over_video_bias, build_video_self_bias, install_reference_bias
from .conditioning import plan_conditioning
from .interrupt import cancel_points, long_running_blocks
from .latents import decode_video_audio, upsample_tokens
from .references import encode_reference
from .schedules import (
    FRAME_STEP,
    MAX_FRAMES,
    MAX_SIDE,
    SIZE_MULTIPLE,
    STAGE_2_SIGMAS,
    TWO_STAGE_SIZE_MULTIPLE,
    make_scheduler,
    resolve_dtype,
    sigma_schedule,
)

MIN_FRAMES = FRAME_STEP + 1  # 9: the shortest clip a shot may be
MIN_SIDE = 2 * SIZE_MULTIPLE  # 64: the VAE decoder pads by reflection, which needs 2 latent cells a side


class LTX2Engine:
    """Owns one LTX-2 pipeline on one device. Not thread-safe: the server runs one job at a time.

    model: local folder (diffusers layout) or hub id. loras: name -> .safetensors path; None =
    every file in `<model>/loras/` when the model is a local folder. dtype: "auto" (bf16 on CUDA,
    fp32 on CPU), "bf16", "fp16" or "fp32". upsampler: folder of an LTX-2 latent upsampler
    (diffusers layout): enables two-stage mode.
    """

    def __init__(self, model: str, device: str | None = None, dtype: str = "auto",
                 loras: dict[str, str] | None = None, cpu_offload: bool = False, vae_tiling: bool = False,
                 upsampler: str | None = None) -> None:
        self.model = str(model)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = resolve_dtype(dtype, self.device)
        self.lora_paths = dict(loras) if loras is not None else find_loras(Path(self.model) / "loras")
        self.cpu_offload = cpu_offload
        self.vae_tiling = vae_tiling
        self.upsampler = str(upsampler) if upsampler else None
        self.pipe = None
        self.latent_upsampler = None
        self.loras: dict[str, LoraInfo] = {}
        self._bias = None
        self.loaded = False
        self._at = ""  # where the generation is ("denoising step 3/8"), for cancel messages
        # Final target latents of the last render, (1, N, C) float32 on CPU: for tests and benchmarks
        # that compare generations more finely than 8-bit video.
        self.last_latents: torch.Tensor | None = None

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        """Load weights and every registered LoRA (slow). Raises LoraMismatch for a LoRA that does not fit."""
        from diffusers import LTX2InContextPipeline

        t0 = time.perf_counter()
        pipe = LTX2InContextPipeline.from_pretrained(self.model, dtype=self.dtype)
        pipe.set_progress_bar_config(disable=True)
        registry = {name: inspect_lora(name, path) for name, path in sorted(self.lora_paths.items())}
        for info in registry.values():
            check_lora_shapes(info, pipe.transformer, self.model)
            try:
                with warnings.catch_warnings():
                    # peft warns on every adapter after the first; several adapters is the point here.
                    warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                    pipe.load_lora_weights(info.path, adapter_name=info.name)
            except (ValueError, KeyError, RuntimeError) as e:
                raise LoraMismatch(f"LoRA {info.name!r} ({info.path}) could not be loaded into {self.model}: "
                                   f"{e}") from None
        if registry:
            pipe.disable_lora()
        self._bias = install_reference_bias(pipe.transformer)
        if self.upsampler:
            from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

            if not (Path(self.upsampler) / "config.json").is_file() and Path(self.upsampler).exists():
                raise ValueError(f"--upsampler {self.upsampler}: no config.json; pass a diffusers "
                                 "LTX2LatentUpsamplerModel folder")
            self.latent_upsampler = LTX2LatentUpsamplerModel.from_pretrained(self.upsampler, dtype=self.dtype)
            # With --cpu-offload it waits on the CPU like the other components (moved in for its one call).
            offload = self.cpu_offload and self.device.type == "cuda"
            self.latent_upsampler.to("cpu" if offload else self.device).eval()
        if self.cpu_offload and self.device.type == "cuda":
            pipe.enable_model_cpu_offload(device=self.device)  # each component on the GPU only while it runs
        else:
            pipe.to(self.device)
        if self.vae_tiling:
            pipe.vae.enable_tiling()
        self.pipe, self.loras = pipe, registry
        self.load_seconds = time.perf_counter() - t0
        self.loaded = True

    # ------------------------------------------------------------------ capabilities
    @property
    def variant(self) -> str:
        if (Path(self.model) / "COMPLETE").is_file():
            return "tiny-test"
        return "distilled" if "distill" in self.model.lower() else "dev"

    def default_steps(self) -> int:
        return 30 if self.variant == "dev" else 8

    def default_guidance_scale(self) -> float:
        return 3.0 if self.variant == "dev" else 1.0

    def capabilities(self) -> EngineCapabilities:
        free = torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else 0
        rate = int(self.pipe.vocoder.config.output_sampling_rate) if self.pipe is not None else 0
        return EngineCapabilities(
            engine="ltx2", model_id=self.model, model_variant=self.variant, device=str(self.device),
            dtype=str(self.dtype).replace("torch.", ""), frame_step=FRAME_STEP, min_frames=MIN_FRAMES,
            max_frames=MAX_FRAMES, size_multiple=TWO_STAGE_SIZE_MULTIPLE if self.upsampler else SIZE_MULTIPLE,
            max_width=MAX_SIDE, max_height=MAX_SIDE, default_steps=self.default_steps(),
            default_guidance_scale=self.default_guidance_scale(), default_fps=24.0, audio_sample_rate=rate,
            two_stage=bool(self.upsampler), gpu_memory_free_bytes=int(free), latent_cell=SIZE_MULTIPLE,
            min_width=MIN_SIDE, min_height=MIN_SIDE, loras=tuple(info.capability() for info in self.loras.values()))

    def check_request(self, req: RenderRequest) -> list[str]:
        """engine/checks.py against this engine's capabilities (before any pixel or GPU work)."""
        return check_request(req, self.capabilities())

    # ------------------------------------------------------------------ rendering
    def render(self, req: RenderRequest, progress: ProgressFn | None = None,
               should_cancel: CancelFn | None = None, on_plan: PlanFn | None = None) -> RenderResult:
        """One generation. Raises InvalidRequest, UnknownLora, Cancelled or OutOfMemory (engine stays usable).

        on_plan({"control": ..., "camera": ...}) is called once the conditioning is planned (camera
        move classified, LoRAs chosen), before any model work.
        """
        if not self.loaded:
            raise NotLoaded("the model is still loading; try again when the server reports SERVING")
        self.check_request(req)
        oom = None
        should_cancel = should_cancel or (lambda: False)
        try:
            with cancel_points(long_running_blocks(self.pipe), should_cancel, lambda: self._at):
                return self._generate(req, progress or (lambda *a: None), should_cancel, on_plan or (lambda plan: None))
        except RuntimeError as e:  # torch.OutOfMemoryError, or a CUDA "out of memory" error
            if not (isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()):
                raise
            oom = str(e).splitlines()[0] if str(e) else "CUDA out of memory"
        except EngineError:
            self._release()
            raise
        finally:
            if self._bias is not None:
                self._bias.clear()
        # Out of the except block: the traceback, whose frames hold the generation's tensors, is gone.
        self._release()
        raise OutOfMemory(
            f"GPU out of memory for {req.num_frames} frames at {req.width}x{req.height}: try fewer frames "
            f"or a smaller size, or start the server with --cpu-offload and/or --vae-tiling ({oom})")

    def _release(self) -> None:
        """Drop what a failed generation left behind, then hand cached GPU blocks back."""
        if self._bias is not None:
            self._bias.clear()  # (N, N) attention biases: the largest tensors we keep between calls
        self.last_latents = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @torch.no_grad()
    def _generate(self, req: RenderRequest, progress: ProgressFn, should_cancel: CancelFn,
                  on_plan: PlanFn) -> RenderResult:
        pipe, device = self.pipe, self._execution_device()
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        steps = req.num_inference_steps or self.default_steps()
        guidance = self.default_guidance_scale() if req.guidance_scale is None else float(req.guidance_scale)
        two_stage = self.latent_upsampler is not None
        width, height = (req.width // 2, req.height // 2) if two_stage else (req.width, req.height)
        plan = plan_conditioning(req, self.loras, width, height)
        on_plan({"controls": plan.controls, "camera": plan.camera})
        total_steps = steps + (len(STAGE_2_SIGMAS) if two_stage else 0)

        # 1. Text: Gemma hidden states -> connectors -> video and audio prompt embeddings.
        progress("text encoding", 0, 1)
        text = self._encode_text(req, guidance > 1.0, device)
        timings["text_s"] = time.perf_counter() - t_start
        progress("text encoding", 1, 1)

        # 2. Noise, seeded. Target first, then audio: adding a reference never changes the noise.
        generator = torch.Generator(device="cpu").manual_seed(int(req.seed))
        lf = (req.num_frames - 1) // pipe.vae_temporal_compression_ratio + 1
        lh, lw = height // pipe.vae_spatial_compression_ratio, width // pipe.vae_spatial_compression_ratio
        channels = pipe.transformer.config.in_channels
        latents = torch.randn((1, lf * lh * lw, channels), generator=generator).to(device)  # (B, N, C)
        audio_len = round(req.num_frames / req.fps * pipe.audio_sampling_rate / pipe.audio_hop_length
                          / pipe.audio_vae_temporal_compression_ratio)
        mel_bins = pipe.audio_mel_bins // pipe.audio_vae_mel_compression_ratio
        audio_latents = torch.randn((1, audio_len, pipe.audio_latent_channels * mel_bins),
                                    generator=generator).to(device)  # (B, L, C*M)

        # 3. Reference canvases -> clean tokens, positions (scaled by each factor), strengths.
        t0 = time.perf_counter()
        refs = [encode_reference(pipe, r, width, height, req.fps, device, torch.float32) for r in plan.references]
        timings["reference_encode_s"] = time.perf_counter() - t0

        # 4. Denoise with this request's LoRAs and references.
        self._activate_adapters(plan.adapters)
        sigmas, shift = sigma_schedule(steps, self.variant)
        t0 = time.perf_counter()
        latents, audio_latents, sigmas = self._denoise(
            latents, audio_latents, (lf, lh, lw), refs, text, (sigmas, shift), guidance, req.fps,
            progress, should_cancel, step_offset=0, total_steps=total_steps)
        timings["denoise_s"] = time.perf_counter() - t0

        # 5. Two-stage: upsample the latents 2x, then refine at full size without LoRAs or references.
        if two_stage:
            t0 = time.perf_counter()
            latents, (lh, lw) = self._upsample(latents, (lf, lh, lw), device)
            noise = torch.randn(latents.shape, generator=generator).to(device)
            audio_noise = torch.randn(audio_latents.shape, generator=generator).to(device)
            s0 = STAGE_2_SIGMAS[0]
            latents = (1 - s0) * latents + s0 * noise  # back to the stage-2 start noise level
            audio_latents = (1 - s0) * audio_latents + s0 * audio_noise
            self._activate_adapters([])
            latents, audio_latents, stage2_sigmas = self._denoise(
                latents, audio_latents, (lf, lh, lw), [], text, (STAGE_2_SIGMAS, False), guidance, req.fps,
                progress, should_cancel, step_offset=steps, total_steps=total_steps)
            timings["stage2_s"] = time.perf_counter() - t0
        self.last_latents = latents.detach().float().cpu()

        # 6. Decode the target tokens only (the references were dropped in _denoise).
        if should_cancel():
            raise Cancelled(f"cancelled after denoising step {total_steps}/{total_steps}")
        progress("decoding", 0, 1)
        self._at = "decoding"
        t0 = time.perf_counter()
        video, audio = decode_video_audio(pipe, latents, audio_latents, (lf, lh, lw), audio_len, mel_bins, device)
        timings["decode_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        progress("decoding", 1, 1)

        info = self._info(req, plan, refs, steps, guidance, lf * lh * lw, sigmas, shift, timings)
        if two_stage:
            info["two_stage"] = {"stage1_size": [width, height], "stage1_target_tokens": lf * (lh // 2) * (lw // 2),
                                 "upsampler": self.upsampler,
                                 "stage2_sigmas": stage2_sigmas, "stage2_loras": []}
        return RenderResult(video=video, audio=audio if req.audio else None,
                            audio_sample_rate=int(pipe.vocoder.config.output_sampling_rate),
                            fps=float(req.fps), info=info)

    def _upsample(self, latents, grid, device):
        """The 2x latent upsampler, on `device` only for this call when --cpu-offload is on."""
        offload = self.cpu_offload and self.device.type == "cuda"
        if offload:
            self.latent_upsampler.to(device)
        try:
            return upsample_tokens(self.pipe, self.latent_upsampler, latents, grid)
        finally:
            if offload:
                self.latent_upsampler.to("cpu")

    def _encode_text(self, req: RenderRequest, do_cfg: bool, device) -> tuple:
        """(video prompt embeds, audio prompt embeds, mask); batch 2 (uncond, cond) with guidance."""
        pipe = self.pipe
        embeds, mask, neg_embeds, neg_mask = pipe.encode_prompt(
            prompt=req.prompt, negative_prompt=req.negative_prompt, do_classifier_free_guidance=do_cfg,
            max_sequence_length=min(1024, int(pipe.tokenizer.model_max_length)), device=device)
        if do_cfg:
            embeds, mask = torch.cat([neg_embeds, embeds]), torch.cat([neg_mask, mask])  # (2B, L, D)
        return pipe.connectors(embeds, mask, padding_side=pipe.tokenizer_padding_side)

    def _denoise(self, latents, audio_latents, grid, refs, text, schedule, guidance, fps, progress,
                 should_cancel, step_offset: int, total_steps: int):
        """The denoising loop over schedule = (sigmas, shift); reference tokens ride along at t=0 and are
        never updated. Returns (latents, audio latents, the sigmas the scheduler stepped through + final 0)."""
        pipe, device = self.pipe, latents.device
        lf, lh, lw = grid
        num_target = latents.shape[1]
        video_text, audio_text, text_mask = text
        batch = video_text.shape[0]  # 2 with classifier-free guidance
        ref_tokens = torch.cat([r.tokens for r in refs], dim=1) if refs else latents[:, :0]  # (1, R, C)
        num_ref = ref_tokens.shape[1]
        audio_len = audio_latents.shape[1]

        video_coords = pipe.transformer.rope.prepare_video_coords(1, lf, lh, lw, device, fps=fps)
        video_coords = torch.cat([video_coords] + [r.coords for r in refs], dim=2)  # (1, 3, N+R, 2)
        audio_coords = pipe.transformer.audio_rope.prepare_audio_coords(1, audio_len, device)
        strengths = [r.strength for r in refs]
        self._bias.video_self = build_video_self_bias(num_target, strengths, self.dtype, device)
        self._bias.audio_over_video = build_audio_over_video_bias(num_target, strengths, self.dtype, device)

        # Video and audio step together; the resolution shift (if any) depends on the target size only.
        sigmas, shift = schedule
        scheduler = make_scheduler(pipe.scheduler, sigmas, shift, num_target, device)
        audio_scheduler = make_scheduler(pipe.scheduler, sigmas, shift, num_target, device)

        for i, t in enumerate(scheduler.timesteps):
            step = step_offset + i + 1
            if should_cancel():
                raise Cancelled(f"cancelled before denoising step {step}/{total_steps}")
            self._at = f"denoising step {step}/{total_steps}"
            video_in = torch.cat([latents, ref_tokens], dim=1).expand(batch, -1, -1)  # (b, N+R, C)
            t_b = t.expand(batch).to(torch.float32)  # (b,)
            video_t = torch.cat([t_b[:, None].expand(batch, num_target),
                                 torch.zeros(batch, num_ref, device=device)], dim=1)  # (b, N+R): refs at t=0
            pred_video, pred_audio = pipe.transformer(
                hidden_states=video_in.to(self.dtype),
                audio_hidden_states=audio_latents.expand(batch, -1, -1).to(self.dtype),  # (b, L, C*M)
                encoder_hidden_states=video_text, audio_encoder_hidden_states=audio_text,
                timestep=video_t, audio_timestep=t_b, sigma=t_b, audio_sigma=t_b,
                encoder_attention_mask=text_mask, audio_encoder_attention_mask=text_mask,
                num_frames=lf, height=lh, width=lw, fps=fps, audio_num_frames=audio_len,
                video_coords=video_coords.expand(batch, -1, -1, -1),
                audio_coords=audio_coords.expand(batch, -1, -1, -1), use_cross_timestep=True, return_dict=False)
            pred_video = pred_video[:, :num_target].float()  # drop the reference outputs: (b, N, C)
            pred_audio = pred_audio.float()
            if batch == 2:  # classifier-free guidance: uncond first
                uncond, cond = pred_video.chunk(2)
                pred_video = uncond + guidance * (cond - uncond)
                uncond, cond = pred_audio.chunk(2)
                pred_audio = uncond + guidance * (cond - uncond)
            latents = scheduler.step(pred_video, t, latents, return_dict=False)[0]
            audio_latents = audio_scheduler.step(pred_audio, t, audio_latents, return_dict=False)[0]
            progress("denoising", step, total_steps)
        self._bias.clear()
        return latents, audio_latents, [round(float(s), 6) for s in scheduler.sigmas]

    def _activate_adapters(self, adapters: list[tuple[str, float]]) -> None:
        """Only these adapters are active, with these weights."""
        if not self.loras:
            return
        if not adapters:
            self.pipe.disable_lora()
            return
        self.pipe.enable_lora()
        self.pipe.set_adapters([n for n, _ in adapters], adapter_weights=[w for _, w in adapters])

    def _execution_device(self) -> torch.device:
        return self.pipe._execution_device if self.cpu_offload else self.device

    def _info(self, req, plan, refs, steps, guidance, num_target, sigmas, shift, timings) -> dict:
        return {
            "model_id": self.model,
            "variant": self.variant,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "seed": int(req.seed),
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "width": req.width, "height": req.height, "num_frames": req.num_frames, "fps": float(req.fps),
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "sigmas": sigmas,  # as the scheduler stepped through them, final 0 included
            "sigma_shift": "resolution-dependent (diffusers)" if shift else "none (published schedule as is)",
            "loras": [{"name": n, "weight": w, "kind": self.loras[n].kind, "sha256": self.loras[n].sha256}
                      for n, w in plan.adapters],
            "controls": plan.controls,
            "camera": plan.camera,
            "references": [{"name": r.name, "reference_downscale_factor": r.factor, "tokens": int(r.tokens.shape[1]),
                            "latent_grid": list(r.latent_shape)} for r in refs],
            "target_tokens": num_target,
            "attention_bias": "log(strength) on target<->reference attention",
            "cpu_offload": self.cpu_offload, "vae_tiling": self.vae_tiling,
            "timings": {k: round(v, 4) for k, v in timings.items()},
        }
