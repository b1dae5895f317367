"""`render-backend train DATASET --model PATH --out LORA.safetensors`: a peft LoRA on LTX-2's
transformer, trained on the parallel canvas exactly as the engine renders it.

Read `Trainer.run`, then `Trainer.step`. The model is the real engine (LTX2Engine: same loading,
attention processors, dtype), with one extra adapter. Each step:
    x0 = a clip's target tokens (cache.py), noise ~ N(0, 1), sigma ~ ltx-trainer's sampler (objective.py)
    video tokens = [ (1 - sigma) x0 + sigma noise  at timestep sigma | reference tokens at timestep 0 ]
    positions    = [ target grid | reference grid, H and W x the factor ]     (forward.velocities)
    loss = MSE(predicted velocity of the target tokens, noise - x0)
Audio rides along at the same sigma (the engine always generates it) around silence (the normalised
latent 0); it has no loss and no adapter: the default adapts the video attention and feed-forward
layers only, as Lightricks' IC-LoRA recipe does. Every K steps: a checkpoint, the held-out loss
(fixed sigmas and noise) and a validation render of the held-out clip through engine.render.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .. import __version__
from ..engine.ltx2.adapters import activate
from ..engine.ltx2.forward import (
    audio_latent_shape,
    audio_positions,
    encode_text,
    velocities,
    video_positions,
)
from . import objective
from .cache import CachedClip, load_or_encode, training_lora_info
from .checkpoints import Workspace, complete_steps, load_checkpoint, save_checkpoint, truncate_log
from .dataset import TrainingDataset, clip_request, dataset_hash, read_dataset
from .lora_file import SAVE_DTYPES, LoraWriteError, check_generation, ltx_keys, model_generation, write_lora
from .memory import estimate, size_of_model
from .options import ADAPTER, TARGET_MODULES, TrainingError, TrainOptions


class Trainer:
    def __init__(self, options: TrainOptions, say=print) -> None:
        options.check()
        self.o, self.say = options, say
        self.ws = Workspace.beside(options.out)
        self.alpha = float(options.alpha if options.alpha is not None else options.rank)

    # ------------------------------------------------------------------ the run
    def run(self) -> dict:
        self._check_output()
        self._check_optimizer()
        self.dataset = read_dataset(self.o.dataset)
        self.factor = self._factor(self.dataset)
        self.train_clips, self.heldout_clips = self._split(self.dataset)
        self._print_estimate()
        self._load_model()
        if self.o.prepare_only:
            return {"prepared": len(self.cache)}
        self._add_adapter()
        start = self._resume() if self.o.resume else 0
        if start == 0:  # a fresh run (--overwrite included): nothing of an earlier one stays to be resumed
            for folder in (self.ws.checkpoints, self.ws.validation):
                shutil.rmtree(folder, ignore_errors=True)
            self.ws.root.mkdir(parents=True, exist_ok=True)
            self.ws.loss_log.write_text("")
            self._log({"step": 0, "heldout_loss": self.heldout_loss()})
        self.say(f"training {self.o.steps} steps from step {start}: rank {self.o.rank}, {self.o.modules}, "
                 f"{len(self.params)} adapter tensors ({sum(p.numel() for p in self.params):,} parameters), "
                 f"lr {self.o.learning_rate:g}, factor {self.factor}, {len(self.train_clips)} training clip(s), "
                 f"{len(self.heldout_clips)} held out")
        durations: list[float] = []
        for step in range(start + 1, self.o.steps + 1):
            t0 = time.perf_counter()
            loss, sigma, grad_norm = self.step(self._next_clip(step))
            durations.append(time.perf_counter() - t0)
            self._log({"step": step, "loss": loss, "sigma": sigma, "grad_norm": grad_norm,
                       "lr": self.scheduler.get_last_lr()[0], "seconds": durations[-1]})
            if step % self.o.log_every == 0 or step == self.o.steps:
                self._progress(step, durations)
            if step % self.o.checkpoint_every == 0 or step == self.o.steps:
                self._checkpoint(step)  # the last step too: --resume --steps MORE continues from there
            if step % self.o.validate_every == 0 or step == self.o.steps:
                self._validate(step)
        return self._finish()

    def step(self, name: str) -> tuple[float, float, float]:
        """One optimisation step on clip `name`: (loss, sigma, gradient norm before clipping)."""
        clip, g = self.cache[name], self.generator
        x0 = clip.target  # (1, N, C)
        noise = torch.randn(x0.shape, generator=g).to(x0)
        sigma = objective.sample_sigmas(1, x0.shape[1], g)
        audio_noise = torch.randn((1, *self.audio_shape[name]), generator=g)
        predicted = self.predict(clip, objective.noisy_latents(x0, noise, sigma),
                                 objective.noisy_latents(torch.zeros_like(audio_noise), audio_noise, sigma), sigma)
        loss = objective.velocity_loss(predicted, objective.velocity_target(x0, noise))
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.o.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()), float(sigma), float(grad_norm)

    def predict(self, clip: CachedClip, noisy: torch.Tensor, audio: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The target tokens' velocity (1, N, C), the references read at timestep 0 (forward.velocities)."""
        pipe, device = self.engine.pipe, self.device
        ref_tokens, video_coords, audio_coords = self.layout[clip.name]
        t = sigma.to(device) * float(pipe.scheduler.config.num_train_timesteps)
        video, _ = velocities(pipe, self.engine.dtype, t, noisy.to(device), ref_tokens, audio.to(device),
                              clip.text, clip.grid, clip.fps, video_coords, audio_coords)
        return video

    @torch.no_grad()
    def heldout_loss(self) -> float | None:
        """Mean loss over the held-out clips at EVAL_SIGMAS with fixed noise (None without held-out clips)."""
        if not self.heldout_clips:
            return None
        losses = []
        for name in self.heldout_clips:
            clip = self.cache[name]
            for k, s in enumerate(objective.EVAL_SIGMAS):
                g = torch.Generator().manual_seed(10_000 + k)
                noise = torch.randn(clip.target.shape, generator=g).to(clip.target)
                audio_noise = torch.randn((1, *self.audio_shape[name]), generator=g)
                sigma = torch.tensor([s])
                pred = self.predict(clip, objective.noisy_latents(clip.target, noise, sigma),
                                    objective.noisy_latents(torch.zeros_like(audio_noise), audio_noise, sigma), sigma)
                losses.append(float(objective.velocity_loss(pred, objective.velocity_target(clip.target, noise))))
        return sum(losses) / len(losses)

    # ------------------------------------------------------------------ setup
    def _check_output(self) -> None:
        out = self.o.out
        if self.o.resume or self.o.prepare_only:
            return
        if out.exists() and not self.o.overwrite:
            raise TrainingError(f"{out} exists: choose another --out, pass --resume to continue its training, or "
                                "--overwrite to train it again from scratch")
        if self.ws.root.exists() and complete_steps(self.ws) and not self.o.overwrite:
            raise TrainingError(f"{self.ws.root} holds checkpoints of an earlier run: pass --resume to continue it, "
                                "or --overwrite to start again")

    def _factor(self, dataset: TrainingDataset) -> int:
        f = self.o.reference_downscale_factor or dataset.reference_downscale_factor
        w, h = dataset.width, dataset.height
        if f < 1 or w % f or h % f or (w // f) % 32 or (h // f) % 32:
            raise TrainingError(f"--reference-downscale-factor {f}: {w}x{h} / {f} is not a multiple of 32 on both "
                                "sides; choose a factor that is, e.g. 1 or 2")
        cw, ch = dataset.clips[0].canvas_size
        if not dataset.trajectory and (cw, ch) != (w // f, h // f):
            self.say(f"note: the dataset's canvases are {cw}x{ch}; at factor {f} the engine resizes them to "
                     f"{w // f}x{h // f}, as it does a canvas sent at that size (export at the LoRA's factor to "
                     "avoid it: make-dataset --reference-downscale-factor)")
        return f

    def _split(self, dataset: TrainingDataset) -> tuple[list[str], list[str]]:
        names = [c.name for c in dataset.clips]
        hold = min(self.o.holdout, len(names) - 1)
        if hold < self.o.holdout:
            self.say(f"note: {len(names)} clip(s): holding out {hold} (at least one must train); no held-out loss"
                     if hold == 0 else f"note: holding out {hold} clip(s)")
        return names[:len(names) - hold], names[len(names) - hold:]

    def _print_estimate(self) -> None:
        size = size_of_model(self.o.model)
        if size is None:
            return
        e = estimate(size, self.dataset.width, self.dataset.height, self.dataset.num_frames, self.factor,
                     self.o.rank, self.o.modules == "attention+ff", self.o.optimizer, self.o.gradient_checkpointing,
                     weight_bytes=2 if self.o.dtype in ("bf16", "fp16") or (self.o.dtype == "auto" and _cuda(self.o.device))
                     else 4)
        for line in e.lines():
            self.say(line)
        self.say("19B / 22B at full size: render-backend train --estimate-only; docs/training.md")

    def _load_model(self) -> None:
        from ..engine.ltx2.engine import LTX2Engine

        t0 = time.perf_counter()
        self.engine = LTX2Engine(self.o.model, device=self.o.device, dtype=self.o.dtype, loras={}, upsampler=None)
        self.engine.load()
        self.device = self.engine.device
        self.generation = model_generation(self.engine.pipe.transformer.config)
        self.say(f"loaded {self.o.model} ({self.generation}, {self.engine.variant}) on {self.device} in "
                 f"{time.perf_counter() - t0:.1f} s")
        self.dataset_sha256 = dataset_hash(self.dataset)
        self.info = training_lora_info(ADAPTER, self.dataset, self.factor, self.o.rank)
        if self.dataset.trajectory:
            from .trajectory import write_trajectory_references

            write_trajectory_references(self.dataset, self.factor)
            self.say(f"drew {len(self.dataset.clips)} trajectory reference(s) and ltx-trainer's metadata.jsonl "
                     f"(ltx-trainer: --reference-downscale-factor {self.factor})")
        self.cache = load_or_encode(self.engine.pipe, self.dataset, self.dataset_sha256, self.o.model, self.info,
                                    self.device, self.say)
        pipe = self.engine.pipe
        self.layout, self.audio_shape = {}, {}
        for name, clip in self.cache.items():
            ref_tokens = torch.cat([r.tokens for r in clip.refs], dim=1)  # (1, R, C)
            audio_len, _ = self.audio_shape[name] = audio_latent_shape(pipe, clip.num_frames, clip.fps)
            self.layout[name] = (ref_tokens, video_positions(pipe, clip.grid, clip.refs, clip.fps, self.device),
                                 audio_positions(pipe, audio_len, self.device))
        # Validation renders read the prompt embeddings from here (with the negative prompt's for a dev model's
        # guidance) instead of running the text encoder again, so it can leave the GPU.
        uncond = self.engine.guidance.uncond
        for caption in {c.caption for c in self.cache.values()}:
            with torch.no_grad():
                self.engine.prompt_embeddings[(caption, "", uncond)] = encode_text(pipe, caption, "", uncond,
                                                                                   self.device)
        if self.device.type == "cuda":
            pipe.text_encoder.to("cpu")  # ~24 GB for Gemma 3 12B; every caption is cached now
            torch.cuda.empty_cache()

    def _add_adapter(self) -> None:
        from peft import LoraConfig

        transformer = self.engine.pipe.transformer
        transformer.requires_grad_(False)
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # lora_A's random init: from --seed, not from whatever ran before
            torch.manual_seed(self.o.seed)
            transformer.add_adapter(LoraConfig(r=self.o.rank, lora_alpha=self.alpha, init_lora_weights=True,
                                               target_modules=TARGET_MODULES[self.o.modules]), adapter_name=ADAPTER)
        self.params = [p for n, p in transformer.named_parameters() if f".{ADAPTER}." in n]
        for p in self.params:
            p.data = p.data.float()  # fp32 adapter on a bf16 base (peft casts its input to the adapter's dtype)
            p.requires_grad_(True)
        if self.o.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        transformer.train()
        self.engine.loras[ADAPTER] = self.info  # the engine plans and renders it like an installed LoRA
        activate(self.engine.pipe, [(ADAPTER, 1.0)])
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.LinearLR(self.optimizer, start_factor=1.0, end_factor=0.1,
                                                           total_iters=self.o.steps)  # ltx-trainer's "linear"
        self.generator = torch.Generator().manual_seed(self.o.seed)

    def _check_optimizer(self) -> None:
        """Before any weight is loaded: 8-bit AdamW needs CUDA and bitsandbytes."""
        if self.o.optimizer != "adamw8bit":
            return
        if not _cuda(self.o.device):
            raise TrainingError("--optimizer adamw8bit runs on CUDA only (bitsandbytes); use --optimizer adamw on "
                                "this device")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise TrainingError("--optimizer adamw8bit needs bitsandbytes: pip install bitsandbytes (CUDA only), or "
                                "use --optimizer adamw") from None

    def _optimizer(self):
        if self.o.optimizer == "adamw8bit":
            import bitsandbytes

            return bitsandbytes.optim.AdamW8bit(self.params, lr=self.o.learning_rate)
        return torch.optim.AdamW(self.params, lr=self.o.learning_rate)

    def _next_clip(self, step: int) -> str:
        """Clips in a fresh random order each epoch, drawn from the saved generator (resumable)."""
        n = len(self.train_clips)
        if (step - 1) % n == 0 or not getattr(self, "_order", None):
            self._order = torch.randperm(n, generator=self.generator).tolist()
        return self.train_clips[self._order[(step - 1) % n]]

    # ------------------------------------------------------------------ files
    def _metadata(self, step: int) -> dict:
        meta = {"reference_downscale_factor": self.factor, "ltx_blender_kind": self.dataset.lora_kind,
                "ltx_blender_base": self.generation, "ltx_blender_steps": step,
                "ltx_blender_dataset_sha256": self.dataset_sha256, "ltx_blender_rank": self.o.rank,
                "ltx_blender_alpha": f"{self.alpha:g} (folded into lora_B: apply with scale 1)",
                "ltx_blender_modules": self.o.modules, "ltx_blender_trainer": f"render-backend {__version__}"}
        if self.dataset.trajectory:
            from ..engine.camera_canvas import CANVAS_VERSION

            meta["ltx_blender_canvas_spec"] = CANVAS_VERSION
        else:
            meta["ltx_blender_canvas"] = self.dataset.kind
        return meta

    def _tensors(self) -> dict:
        from peft.utils import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.engine.pipe.transformer, adapter_name=ADAPTER)
        return ltx_keys(state, self.o.rank, self.alpha, SAVE_DTYPES[self.o.save_dtype])

    def _checkpoint(self, step: int) -> None:
        from peft.utils import get_peft_model_state_dict

        adapter = {k: v.detach().float().cpu() for k, v in
                   get_peft_model_state_dict(self.engine.pipe.transformer, adapter_name=ADAPTER).items()}
        state = {"adapter": adapter, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                 "order": list(getattr(self, "_order", [])), "options": self._resume_key()}
        try:
            save_checkpoint(self.ws, step, self._tensors(), self._metadata(step), state, self.o.keep_checkpoints)
        except LoraWriteError as e:
            last = complete_steps(self.ws)
            raise TrainingError(f"checkpoint at step {step} failed: {e.strerror}. Training stopped; "
                                + (f"the last complete checkpoint is step {last[-1]} ({self.ws.checkpoints}): "
                                   "free space, then run the same command with --resume" if last else
                                   "no checkpoint is complete yet: free space and start again")) from None
        self.say(f"checkpoint: {self.ws.lora_at(step)}")

    def _resume_key(self) -> dict:
        """What a resumed run must share with the checkpoint."""
        return {"rank": self.o.rank, "alpha": self.alpha, "modules": self.o.modules, "factor": self.factor,
                "kind": self.dataset.kind, "dataset_sha256": self.dataset_sha256, "steps": self.o.steps}

    def _resume(self) -> int:
        from peft.utils import set_peft_model_state_dict

        from ..engine.loras import check_lora_shapes, inspect_lora
        from ..engine.request import LoraMismatch

        steps = complete_steps(self.ws)
        if not steps:
            raise TrainingError(f"nothing to resume: no complete checkpoint in {self.ws.checkpoints}; start "
                                "without --resume")
        step = steps[-1]
        try:
            info = inspect_lora(self.o.out.stem, self.ws.lora_at(step))
            check_generation(self.o.out.stem, info.metadata, self.generation)
            check_lora_shapes(info, self.engine.pipe.transformer, self.o.model)
            state = load_checkpoint(self.ws, step)
        except (LoraMismatch, ValueError) as e:
            raise TrainingError(f"cannot resume from {self.ws.lora_at(step).name}: {e}") from None
        saved, now = state["options"], self._resume_key()
        changed = [f"{k} {saved.get(k)} -> {now[k]}" for k in now if k != "steps" and saved.get(k) != now[k]]
        if changed:
            raise TrainingError(f"cannot resume: the run changed since step {step} ({'; '.join(changed)}); resume "
                                "with the same dataset and options, or start again with --overwrite")
        set_peft_model_state_dict(self.engine.pipe.transformer, state["adapter"], adapter_name=ADAPTER)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self._order = list(state["order"])
        truncate_log(self.ws.loss_log, step)
        self.say(f"resumed from step {step} ({self.ws.lora_at(step).name})")
        return step

    def _log(self, entry: dict) -> None:
        with open(self.ws.loss_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def _progress(self, step: int, durations: list[float]) -> None:
        recent = durations[-20:]
        per_step = sum(recent) / len(recent)
        eta = per_step * (self.o.steps - step)
        losses = [json.loads(line)["loss"] for line in self.ws.loss_log.read_text().splitlines()[-self.o.log_every:]
                  if '"loss"' in line]
        mean = sum(losses) / len(losses) if losses else math.nan
        self.say(f"step {step}/{self.o.steps}  loss {mean:.4f} (mean of last {len(losses)})  "
                 f"lr {self.scheduler.get_last_lr()[0]:.2e}  {per_step:.2f} s/step  ETA {_clock(eta)}")

    # ------------------------------------------------------------------ validation and the end
    def _render_latents(self, name: str, weight: float, save: Path | None = None) -> float:
        """Render clip `name` through the real engine with the adapter at `weight`; the latent MSE of the
        result against the clip's target tokens (and the video written to `save`)."""
        from ..media import write_mp4

        clip = next(c for c in self.dataset.clips if c.name == name)
        req = clip_request(self.dataset, clip, ADAPTER)
        req.seed, req.num_inference_steps = self.o.seed, self.o.validation_steps
        if self.dataset.trajectory:
            req.camera.weight = weight
        else:
            req.controls[0].lora_weight = weight
        result = self.engine.render(req)
        distance = float(torch.mean((self.engine.last_latents - self.cache[name].target.float().cpu()) ** 2))
        if save is not None:
            write_mp4(save, result.video, result.fps)
        activate(self.engine.pipe, [(ADAPTER, 1.0)])  # back to training: the adapter on, scale 1
        for p in self.params:
            p.requires_grad_(True)
        self.engine.pipe.transformer.train()
        return distance

    def _validate(self, step: int) -> None:
        heldout = self.heldout_loss()
        entry = {"step": step, "heldout_loss": heldout}
        if self.heldout_clips:
            video = self.ws.validation / f"step_{step:06d}.mp4"
            entry["validation_latent_mse"] = self._render_latents(self.heldout_clips[0], 1.0, video)
            entry["validation_video"] = str(video)
        self._log(entry)
        if heldout is not None:
            self.say(f"held-out loss {heldout:.4f} at step {step}; validation render {entry['validation_video']}")

    def _finish(self) -> dict:
        from .plot import plot_losses

        try:
            write_lora(self.o.out, self._tensors(), self._metadata(self.o.steps))
        except LoraWriteError as e:
            raise TrainingError(f"the trained LoRA could not be written: {e.strerror}") from None
        entries = [json.loads(line) for line in self.ws.loss_log.read_text().splitlines() if line.strip()]
        train = [(e["step"], e["loss"]) for e in entries if "loss" in e]
        heldout = [(e["step"], e["heldout_loss"]) for e in entries if e.get("heldout_loss") is not None]
        plot_losses(self.ws.plot, train, heldout, title=f"{self.o.out.name}: {self.dataset.kind}, rank {self.o.rank}")
        overfit = self.train_clips[0]
        summary = {
            "lora": str(self.o.out), "steps": self.o.steps, "kind": self.dataset.kind,
            "reference_downscale_factor": self.factor, "base": self.generation, "dataset_sha256": self.dataset_sha256,
            "heldout_loss_first": heldout[0][1] if heldout else None,
            "heldout_loss_last": heldout[-1][1] if heldout else None,
            "train_loss_first10": _mean([v for _, v in train[:10]]), "train_loss_last10": _mean([v for _, v in train[-10:]]),
            # After training, on a training clip: how far the rendered latents are from its target, with the
            # LoRA and without it (adapter weight 0), same seed and reference.
            "overfit_clip": overfit,
            "overfit_lora_latent_mse": self._render_latents(overfit, 1.0),
            "overfit_base_latent_mse": self._render_latents(overfit, 0.0),
            "options": {k: str(v) for k, v in asdict(self.o).items()},
        }
        from ..media import write_json_atomic

        write_json_atomic(self.ws.summary, summary)
        self.say(f"wrote {self.o.out} ({self.dataset.lora_kind}, canvas {self.dataset.kind}, factor {self.factor}, "
                 f"base {self.generation}); loss log {self.ws.loss_log}, plot {self.ws.plot}")
        self.say(f"held-out loss {summary['heldout_loss_first']} at step 0 -> {summary['heldout_loss_last']}; on "
                 f"training clip {overfit}: latent MSE to its target {summary['overfit_lora_latent_mse']:.4f} with the "
                 f"LoRA vs {summary['overfit_base_latent_mse']:.4f} without")
        return summary


def _cuda(device: str | None) -> bool:
    return (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
