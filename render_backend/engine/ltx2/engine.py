"""The LTX-2 engine: one generation from a RenderRequest to video frames + audio.

Built from the components of diffusers' `LTX2InContextPipeline` (text encoder, connectors,
transformer, VAEs, vocoder, scheduler) with our own denoising loop, so that each reference canvas
has its own downscale factor and its strength is ltx-core's log(m) attention bias. What it does
follows Lightricks' own pipelines (ltx-pipelines), pinned by tests/engine/test_parity_ltx_core.py.
Read `LTX2Engine._generate` then `LTX2Engine._denoise` to follow one generation.

Token sequence of the video stream, per step:
    [ target tokens (noisy, timestep t) | control canvas tokens (clean, t=0) | camera canvas tokens (t=0) ]
Reference tokens are never updated by the scheduler (re-pinned to their clean values every step)
and are dropped before decoding.

Stages (a request's `stages`, default 2 when a latent upsampler is available): stage 1 at half
size with every LoRA and the references, latent 2x upsampler, stage 2 = a short refine at full
size from sigma 0.909 with the plain LoRAs only (camera presets, styles: Lightricks' IC-LoRA
pipeline drops the IC-LoRA there; its other pipelines keep plain LoRAs in both stages), no
guidance, plus Lightricks' distilled LoRA for a dev model. stages=1: one stage at full size.

Generations: LTX-2, 2.3 and 2.5 (generation.py, read from the checkpoint's files) share this loop;
diffusers' configs carry their architectures. Chosen per generation here: dev steps and STG block
(guidance.py), the stage-1 sampler (schedules.py) and the video decoder (video_decoders.py).
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import torch

from ..checks import check_request
from ..contract import EngineCapabilities
from ..loras import LoraInfo, find_loras
from ..request import (
    CancelFn,
    Cancelled,
    EngineError,
    NotLoaded,
    OutOfMemory,
    PlanFn,
    ProgressFn,
    RenderRequest,
    RenderResult,
)
from .adapters import activate, load_adapters
from .attention import install_reference_bias
from .conditioning import plan_conditioning
from .cost import a_priori_cost
from .forward import audio_latent_shape, audio_positions, encode_text, velocities, video_positions
from .frame_conditions import PinnedFrames
from .generation import Generation, read_generation
from .guidance import GuidancePlan, default_guidance, default_steps
from .interrupt import cancel_points, long_running_blocks
from .latents import decode_video_audio, upsample_tokens
from .performance import compile_blocks, performance_options, store_fp8
from .references import encode_reference
from .schedules import (
    ANCESTRAL_NOISE_SEED_OFFSET,
    FRAME_STEP,
    MAX_FRAMES,
    MAX_SIDE,
    SIZE_MULTIPLE,
    STAGE_2_SIGMAS,
    TWO_STAGE_SIZE_MULTIPLE,
    make_scheduler,
    resolve_dtype,
    sigma_schedule,
    stage_1_sampler,
)
from .stages import DISTILLED_LORA_ADAPTER, find_beside, stage_2_unavailable
from .variant import resolve_variant
from .video_decoders import check_video_decoder, choose_video_decoder, describe, load_diffusion_decoder

MIN_FRAMES = FRAME_STEP + 1  # 9: the shortest clip a shot may be
MIN_SIDE = 2 * SIZE_MULTIPLE  # 64: the VAE decoder pads by reflection, which needs 2 latent cells a side


class LTX2Engine:
    """Owns one LTX-2 pipeline on one device. Not thread-safe: the server runs one job at a time.

    model: local folder (diffusers layout) or hub id. loras: name -> .safetensors path; None =
    every file in `<model>/loras/` when the model is a local folder. dtype: "auto" (bf16 on CUDA,
    fp32 on CPU), "bf16", "fp16" or "fp32". upsampler: folder of an LTX-2 latent upsampler
    (diffusers layout) for two-stage mode; "auto" = `<model>/latent_upsampler` when there is one,
    None = one stage only. variant: "distilled" or "dev"; None = read from the checkpoint
    (ltx2/variant.py). distilled_lora: Lightricks' distilled LoRA file, stage 2 of a dev model;
    "auto" = the one `*distilled*lora*.safetensors` file in the model folder, if any. video_decoder:
    "auto" (LTX-2.5's diffusion decoder when the checkpoint has one, else the conv decoder), "conv" or
    "diffusion" (video_decoders.py). attention ("auto", "dense", "flex"), compile, fp8: GPU speed and memory
    options (performance.py); ValueError for a combination that cannot run.
    """

    def __init__(self, model: str, device: str | None = None, dtype: str = "auto",
                 loras: dict[str, str] | None = None, cpu_offload: bool = False, vae_tiling: bool = False,
                 upsampler: str | None = "auto", variant: str | None = None,
                 distilled_lora: str | None = "auto", lora_canvases: dict[str, str] | None = None,
                 video_decoder: str = "auto", attention: str = "auto", compile: bool = False,
                 fp8: bool = False) -> None:
        self.model = str(model)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = resolve_dtype(dtype, self.device)
        self.lora_paths = dict(loras) if loras is not None else find_loras(Path(self.model) / "loras")
        self.lora_canvases = dict(lora_canvases or {})  # --lora-canvas: what a LoRA reads when its file does not say
        self.cpu_offload = cpu_offload
        self.performance = performance_options(attention, compile, fp8, self.device, cpu_offload)
        self.vae_tiling = vae_tiling
        self.upsampler = find_beside(self.model, upsampler, "upsampler")
        self.distilled_lora = find_beside(self.model, distilled_lora, "distilled_lora")
        self.variant_override = variant
        self.video_decoder_request = check_video_decoder(video_decoder)
        self.video_decoder, self.diffusion_decoder = "", None  # "conv" or "diffusion" (+ its model), once loaded
        self.generation: Generation | None = None
        self.variant, self.variant_source = "", ""
        self.guidance = GuidancePlan()
        self.pipe = None
        self.latent_upsampler = None
        self.loras: dict[str, LoraInfo] = {}
        self._bias = None
        self.loaded = False
        self._at = ""  # where the generation is ("denoising step 3/8"), for cancel messages
        # Final target latents of the last render, (1, N, C) float32 on CPU: for tests and benchmarks
        # that compare generations more finely than 8-bit video.
        self.last_latents: torch.Tensor | None = None
        self.last_audio_latents: torch.Tensor | None = None
        # (prompt, negative prompt, with negative) -> encode_text's result, supplied by a caller that has
        # them already (the trainer: computed once, then the text encoder leaves the GPU).
        self.prompt_embeddings: dict[tuple[str, str, bool], tuple] = {}

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        """Load weights and every registered LoRA (slow). Raises LoraMismatch for a LoRA that does not fit,
        ModelVariantUnknown when the checkpoint does not say distilled or dev and no variant was given,
        ModelGenerationUnknown when its files do not say one LTX generation."""
        from diffusers import LTX2InContextPipeline

        t0 = time.perf_counter()
        self.generation = generation = read_generation(self.model)  # before the weights: fail fast
        self.video_decoder = choose_video_decoder(self.video_decoder_request, generation, self.model)
        pipe = LTX2InContextPipeline.from_pretrained(self.model, dtype=self.dtype)
        pipe.set_progress_bar_config(disable=True)
        self.variant, self.variant_source = resolve_variant(self.model, pipe.scheduler.config, self.variant_override)
        self.guidance = default_guidance(self.variant, generation.name, pipe.transformer.config["num_layers"])
        registry = load_adapters(pipe, self.lora_paths, self.model,
                                 self.distilled_lora if self.variant == "dev" else None, self.lora_canvases,
                                 generation.name)
        if self.video_decoder == "diffusion":
            self.diffusion_decoder = load_diffusion_decoder(self.model, self.dtype).to(self.device)
        perf = self.performance
        if perf.fp8:  # after the LoRAs (their layers stay unscaled), before the move to the GPU
            store_fp8(pipe.transformer, self.dtype)
        self._bias = install_reference_bias(pipe.transformer, perf.kernel, compiled=perf.flex_compiled)
        if perf.compile:
            compile_blocks(pipe.transformer)
        if self.upsampler:
            from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

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
    def default_steps(self) -> int:
        return default_steps(self.variant, self.generation.name) if self.pipe is not None else 8

    def default_guidance_scale(self) -> float:
        return self.guidance.video.cfg

    def default_stages(self) -> int:
        return 1 if self._single_stage_reason() else 2

    def _single_stage_reason(self) -> str:
        return stage_2_unavailable(self.upsampler, self.variant, self.distilled_lora)

    def capabilities(self) -> EngineCapabilities:
        free = torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else 0
        rate = int(self.pipe.vocoder.config.output_sampling_rate) if self.pipe is not None else 0
        stages = self.default_stages()
        return EngineCapabilities(
            engine="ltx2", model_id=self.model, model_variant=self.variant, device=str(self.device),
            dtype=str(self.dtype).replace("torch.", ""), frame_step=FRAME_STEP, min_frames=MIN_FRAMES,
            max_frames=MAX_FRAMES, size_multiple=TWO_STAGE_SIZE_MULTIPLE if stages == 2 else SIZE_MULTIPLE,
            max_width=MAX_SIDE, max_height=MAX_SIDE, default_steps=self.default_steps(),
            default_guidance_scale=self.default_guidance_scale(), default_fps=24.0, audio_sample_rate=rate,
            two_stage=stages == 2, gpu_memory_free_bytes=int(free), latent_cell=SIZE_MULTIPLE,
            loras=tuple(info.capability() for info in self.loras.values()), variant_source=self.variant_source,
            default_stages=stages, single_stage_reason=self._single_stage_reason(),
            min_width=MIN_SIDE, min_height=MIN_SIDE,
            guidance=self.guidance.describe(self.variant),
            model_generation=self.generation.name if self.generation else "",
            model_generation_source=self.generation.source if self.generation else "",
            cost_model=self._a_priori_cost())

    def _a_priori_cost(self):
        """shot_cost.CostModel from the model's size (ltx2/cost.py), computed once per load."""
        if self.pipe is None:
            return None
        if getattr(self, "_cost", None) is None or self._cost[0] is not self.pipe:
            extra = [m for m in (self.latent_upsampler, self.diffusion_decoder) if m is not None]
            self._cost = (self.pipe, a_priori_cost(self.pipe, self.device, self.dtype, self.guidance.passes, extra,
                                                   offloaded=self.cpu_offload and self.device.type == "cuda"))
        return self._cost[1]

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
        conv = ", or --video-decoder conv" if self.video_decoder == "diffusion" else ""  # its attention is quadratic
        raise OutOfMemory(
            f"GPU out of memory for {req.num_frames} frames at {req.width}x{req.height}: try fewer frames "
            f"or a smaller size, or start the server with --cpu-offload and/or --vae-tiling{conv} ({oom})")

    def _release(self) -> None:
        """Drop what a failed generation left behind, then hand cached GPU blocks back."""
        if self._bias is not None:
            self._bias.clear()  # the (N, N) attention bias: the largest tensor we keep between calls
        self.last_latents = self.last_audio_latents = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @torch.no_grad()
    def _generate(self, req: RenderRequest, progress: ProgressFn, should_cancel: CancelFn,
                  on_plan: PlanFn) -> RenderResult:
        pipe, device = self.pipe, self._execution_device()
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        if device.type == "cuda":  # the peak of this job, for the server's cost model (server/cost.py)
            torch.cuda.reset_peak_memory_stats(device)
        steps = req.num_inference_steps or self.default_steps()
        guidance = self.guidance if req.guidance_scale is None else self.guidance.with_cfg(float(req.guidance_scale))
        two_stage = (req.stages or self.default_stages()) == 2
        width, height = (req.width // 2, req.height // 2) if two_stage else (req.width, req.height)
        plan = plan_conditioning(req, self.loras, width, height)
        on_plan({"controls": plan.controls, "camera": plan.camera})
        total_steps = steps + (len(STAGE_2_SIGMAS) if two_stage else 0)

        # 1. Text: Gemma hidden states -> connectors -> video and audio prompt embeddings (+ negative).
        progress("text encoding", 0, 1)
        text, negative = self._encode_text(req, guidance.uncond, device)
        timings["text_s"] = time.perf_counter() - t_start
        progress("text encoding", 1, 1)

        # 2. Noise, seeded. Target first, then audio: adding a reference never changes the noise.
        generator = torch.Generator(device="cpu").manual_seed(int(req.seed))
        lf = (req.num_frames - 1) // pipe.vae_temporal_compression_ratio + 1
        lh, lw = height // pipe.vae_spatial_compression_ratio, width // pipe.vae_spatial_compression_ratio
        channels = pipe.transformer.config.in_channels
        latents = torch.randn((1, lf * lh * lw, channels), generator=generator).to(device)  # (B, N, C)
        audio_len, audio_channels = audio_latent_shape(pipe, req.num_frames, req.fps)
        mel_bins = pipe.audio_mel_bins // pipe.audio_vae_mel_compression_ratio
        audio_latents = torch.randn((1, audio_len, audio_channels), generator=generator).to(device)  # (B, L, C*M)

        # 3. Reference canvases -> clean tokens, positions (scaled by each factor), strengths.
        t0 = time.perf_counter()
        refs = [encode_reference(pipe, r, width, height, req.fps, device, torch.float32) for r in plan.references]
        pinned = self._pinned(plan, width, height, req.fps, generator, device)
        timings["reference_encode_s"] = time.perf_counter() - t0

        # 4. Denoise with this request's LoRAs, references and guidance.
        activate(self.pipe, plan.adapters)
        sigmas, shift = sigma_schedule(steps, self.variant)
        sampler = stage_1_sampler(self.variant, self.generation.name, bool(refs))
        t0 = time.perf_counter()
        latents, audio_latents, sigmas = self._denoise(
            latents, audio_latents, (lf, lh, lw), refs, (text, negative), guidance, (sigmas, shift), req.fps,
            progress, should_cancel, step_offset=0, total_steps=total_steps, pinned=pinned,
            sampler=(sampler, int(req.seed) + ANCESTRAL_NOISE_SEED_OFFSET))
        timings["denoise_s"] = time.perf_counter() - t0

        # 5. Two stages: upsample the latents 2x, then refine at full size with the plain LoRAs only.
        stage2 = None
        if two_stage:
            t0 = time.perf_counter()
            latents, (lh, lw) = self._upsample(latents, (lf, lh, lw), device)
            noise = torch.randn(latents.shape, generator=generator).to(device)
            audio_noise = torch.randn(audio_latents.shape, generator=generator).to(device)
            s0 = STAGE_2_SIGMAS[0]
            latents = (1 - s0) * latents + s0 * noise  # back to the stage-2 start noise level
            audio_latents = (1 - s0) * audio_latents + s0 * audio_noise
            stage2 = self._stage_2_adapters(plan.stage2_adapters)
            activate(self.pipe, stage2)
            # Frame conditions hold stage 2's first frames too, at full size; IC references stay in stage 1.
            pinned = self._pinned(plan, req.width, req.height, req.fps, generator, device)
            latents, audio_latents, stage2_sigmas = self._denoise(
                latents, audio_latents, (lf, lh, lw), [], (text, None), GuidancePlan(), (STAGE_2_SIGMAS, False),
                req.fps, progress, should_cancel, step_offset=steps, total_steps=total_steps, pinned=pinned)
            timings["stage2_s"] = time.perf_counter() - t0
        self.last_latents = latents.detach().float().cpu()
        self.last_audio_latents = audio_latents.detach().float().cpu()

        # 6. Decode the target tokens only (the references were dropped in _denoise).
        if should_cancel():
            raise Cancelled(f"cancelled after denoising step {total_steps}/{total_steps}")
        progress("decoding", 0, 1)
        self._at = "decoding"
        t0 = time.perf_counter()
        video, audio = decode_video_audio(pipe, latents, audio_latents, (lf, lh, lw), audio_len, mel_bins, device,
                                          self.diffusion_decoder, torch.Generator("cpu").manual_seed(int(req.seed)))
        timings["decode_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        progress("decoding", 1, 1)

        info = self._info(req, plan, refs, steps, 2 if two_stage else 1, guidance, lf * lh * lw, sigmas, shift,
                          timings)
        info["sampler"] = {"stage1": sampler, "stage2": "euler" if two_stage else None}
        info["passes_per_step"] = guidance.passes
        if device.type == "cuda":
            info["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
        if two_stage:
            info["two_stage"] = {"stage1_size": [width, height], "stage1_target_tokens": lf * (lh // 2) * (lw // 2),
                                 "upsampler": self.upsampler, "stage2_sigmas": stage2_sigmas,
                                 "stage2_loras": [{"name": n, "weight": w} for n, w in stage2]}
        return RenderResult(video=video, audio=audio if req.audio else None,
                            audio_sample_rate=int(pipe.vocoder.config.output_sampling_rate),
                            fps=float(req.fps), info=info)

    def _stage_2_adapters(self, plain: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """Stage 2's LoRAs: the plain ones, plus Lightricks' distilled LoRA when the model is dev."""
        return plain + ([(DISTILLED_LORA_ADAPTER, 1.0)] if self.variant == "dev" else [])

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

    def _encode_text(self, req: RenderRequest, negative: bool, device) -> tuple:
        """((video embeds, audio embeds, mask) of the prompt, the same of the negative prompt or None)."""
        supplied = self.prompt_embeddings.get((req.prompt, req.negative_prompt, negative))
        if supplied is not None:
            return supplied
        return encode_text(self.pipe, req.prompt, req.negative_prompt, negative, device)

    def _pinned(self, plan, width: int, height: int, fps: float, generator, device) -> PinnedFrames | None:
        """The frame condition (frame_conditions.py) encoded at this stage's size, or None."""
        if not plan.conditions:
            return None
        (condition,) = plan.conditions  # checks.py allows one, at the shot's start
        encoded = encode_reference(self.pipe, condition, width, height, fps, device, torch.float32)
        noise = torch.randn(encoded.tokens.shape, generator=generator).to(device)
        return PinnedFrames(encoded.tokens.float(), float(condition.strength), noise)

    def _denoise(self, latents, audio_latents, grid, refs, texts, guidance: GuidancePlan, schedule, fps, progress,
                 should_cancel, step_offset: int, total_steps: int, pinned: PinnedFrames | None = None,
                 sampler: tuple[str, int] = ("euler", 0)):
        """The denoising loop over schedule = (sigmas, shift); reference tokens ride along at t=0 and are
        never updated; `pinned` holds the shot's first latent frames to a frame condition (re-applied after
        every step, ancestral noise included, as ltx-pipelines re-applies its mask). sampler = (name, noise
        seed): "euler", or "euler_ancestral" with fresh noise from its own generator (video then audio each
        step). Returns (latents, audio latents, the sigmas the scheduler stepped through + final 0)."""
        pipe, device = self.pipe, latents.device
        lf, lh, lw = grid
        num_target = latents.shape[1]
        ref_tokens = torch.cat([r.tokens for r in refs], dim=1) if refs else latents[:, :0]  # (1, R, C)
        audio_len = audio_latents.shape[1]

        video_coords = video_positions(pipe, grid, refs, fps, device)  # (1, 3, N+R, 2)
        audio_coords = audio_positions(pipe, audio_len, device)
        self._bias.set(num_target, [r.strength for r in refs], [r.has_map for r in refs], self.dtype, device)

        # Video and audio step together; the resolution shift (if any) depends on the target size only.
        sigmas, shift = schedule
        scheduler = make_scheduler(pipe.scheduler, sigmas, shift, num_target, device, sampler[0])
        audio_scheduler = make_scheduler(pipe.scheduler, sigmas, shift, num_target, device, sampler[0])
        step_noise = ({"generator": torch.Generator("cpu").manual_seed(sampler[1])}
                      if sampler[0] == "euler_ancestral" else {})

        def transformer(t, latents, audio_latents, text, perturbed: bool = False, isolated: bool = False):
            """One pass (forward.velocities): target velocities (1, N, C) and audio (1, L, C*M).
            perturbed: STG (the guidance's blocks skip their self-attention); isolated: no audio<->video."""
            target_t = pinned.timesteps(t.expand(1).to(torch.float32), num_target) if pinned else None
            return velocities(pipe, self.dtype, t, latents, ref_tokens, audio_latents, text, grid, fps,
                              video_coords, audio_coords, stg_blocks=guidance.stg_blocks if perturbed else None,
                              isolated=isolated, target_timesteps=target_t)

        text, negative = texts
        for i, t in enumerate(scheduler.timesteps):
            step = step_offset + i + 1
            if should_cancel():
                raise Cancelled(f"cancelled before denoising step {step}/{total_steps}")
            self._at = f"denoising step {step}/{total_steps}"
            if pinned is not None:
                latents = pinned.apply(latents, scheduler.sigmas[i])
            # One transformer pass per guidance term (guidance.py); distilled: the prompt's pass only.
            video_v, audio_v = transformer(t, latents, audio_latents, text)
            if guidance.passes > 1:
                passes = [(video_v, audio_v),
                          transformer(t, latents, audio_latents, negative) if guidance.uncond else (None, None),
                          transformer(t, latents, audio_latents, text, perturbed=True) if guidance.perturbed
                          else (None, None),
                          transformer(t, latents, audio_latents, text, isolated=True) if guidance.isolated
                          else (None, None)]
                video_v, audio_v = guidance.velocities(passes, latents, audio_latents, float(scheduler.sigmas[i]))
            latents = scheduler.step(video_v, t, latents, return_dict=False, **step_noise)[0]
            audio_latents = audio_scheduler.step(audio_v, t, audio_latents, return_dict=False, **step_noise)[0]
            if pinned is not None:
                latents = pinned.apply(latents, scheduler.sigmas[i + 1])  # the model's own value is not kept
            progress("denoising", step, total_steps)
        self._bias.clear()
        return latents, audio_latents, [round(float(s), 6) for s in scheduler.sigmas]

    def _execution_device(self) -> torch.device:
        return self.pipe._execution_device if self.cpu_offload else self.device

    def _info(self, req, plan, refs, steps, stages, guidance, num_target, sigmas, shift, timings) -> dict:
        return {
            "model_id": self.model,
            "model_generation": self.generation.name,
            "variant": self.variant,
            "variant_source": self.variant_source,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "seed": int(req.seed),
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "width": req.width, "height": req.height, "num_frames": req.num_frames, "fps": float(req.fps),
            "stages": stages,
            "num_inference_steps": steps,
            "guidance_scale": guidance.video.cfg,
            "guidance": guidance.report(),
            "sigmas": sigmas,  # as the scheduler stepped through them, final 0 included
            "sigma_shift": ("resolution-dependent (diffusers)" if shift and self.pipe.scheduler.config.get(
                "use_dynamic_shifting") else "none (schedule used as is)"),
            "loras": [{"name": n, "weight": w, "kind": self.loras[n].kind, "sha256": self.loras[n].sha256}
                      for n, w in plan.adapters],
            "controls": plan.controls,
            "camera": plan.camera,
            "references": [{"name": r.name, "reference_downscale_factor": r.factor, "tokens": int(r.tokens.shape[1]),
                            "latent_grid": list(r.latent_shape)} for r in refs],
            "conditions": [{"start_frame": c.start_frame, "frames": c.num_frames, "strength": c.strength,
                            "held": "in place: the shot's first latent frames"} for c in req.conditions],
            "target_tokens": num_target,
            "attention_bias": "ltx-core: log(strength) on target<->reference video self-attention",
            "cpu_offload": self.cpu_offload, "vae_tiling": self.vae_tiling,
            "performance": self.performance.describe(self.dtype),
            "video_decoder": describe(self.video_decoder),
            "timings": {k: round(v, 4) for k, v in timings.items()},
        }
