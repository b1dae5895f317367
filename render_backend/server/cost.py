"""The cost model this server reports in Capabilities: the engine's a-priori one until a job has
run, then measured on its own jobs (shot_cost.CostModel; the estimate itself is shot_cost.estimate_shot,
the same function the add-on's panel calls).

After each finished render job the queue hands over the engine's timings (result.info["timings"]:
text, reference encode, denoise, stage 2, decode) and the time the server spent writing the mp4 and
wav. From them: seconds per token of one transformer pass (normalised for attention's N^2 share, as
shot_cost.CostModel.pass_seconds scales it), the fixed per-job seconds, and decode + encode seconds per
output pixel x frame; on CUDA the job's peak memory above the weights gives bytes per token and per
pixel x frame (the estimate takes the larger: whichever grows faster for another shape). Each new job moves the
numbers half way towards its own (an exponential average: the first, cold job counts, later ones
correct it).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Optional

from ..shot_cost import CostModel, latent_tokens

SMOOTHING = 0.5  # weight of the newest job


class CostMeter:
    """Thread-safe: the queue's worker thread records, the gRPC handlers read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._measured: Optional[CostModel] = None

    def current(self, a_priori: Optional[CostModel]) -> Optional[CostModel]:
        """The measured model once a job ran (weights and memory terms from a_priori where not measured),
        else a_priori."""
        with self._lock:
            measured = self._measured
        if measured is None:
            return a_priori
        if a_priori is not None and not measured.memory_measured:
            measured = replace(measured, weights_bytes=a_priori.weights_bytes, bytes_per_token=a_priori.bytes_per_token,
                               bytes_per_pixel_frame=a_priori.bytes_per_pixel_frame)
        return measured

    def record(self, info: dict, encode_seconds: float, a_priori: Optional[CostModel]) -> Optional[CostModel]:
        """Fold one finished job (the engine's result.info) into the model; returns the new model, or
        None when the job says too little (no timings, no denoising)."""
        base = self.current(a_priori)
        timings = info.get("timings") or {}
        steps, stages = int(info.get("num_inference_steps") or 0), int(info.get("stages") or 1)
        width, height, frames = int(info.get("width") or 0), int(info.get("height") or 0), int(info.get("num_frames") or 0)
        if base is None or not steps or not timings.get("denoise_s") or not (width and height and frames):
            return None
        passes = int(info.get("passes_per_step") or base.passes_per_step or 1)
        refs = sum(int(r.get("tokens") or 0) for r in info.get("references") or [])
        if stages == 2:
            w1, h1 = (info.get("two_stage") or {}).get("stage1_size") or (width // 2, height // 2)
            tokens_1 = latent_tokens(w1, h1, frames) + refs
        else:
            tokens_1 = latent_tokens(width, height, frames) + refs
        unit = CostModel(seconds_per_token_step=1.0, reference_tokens=base.reference_tokens,
                         attention_tokens=base.attention_tokens)  # pass_seconds(N) / c for the same N scaling
        work = steps * passes * unit.pass_seconds(tokens_1)
        denoise = float(timings["denoise_s"])
        if stages == 2 and timings.get("stage2_s"):
            work += base.refine_steps * unit.pass_seconds(latent_tokens(width, height, frames))
            denoise += float(timings["stage2_s"])  # includes the upsampler: counted as transformer time
        per_token = denoise / work  # seconds per token-pass at reference_tokens
        fixed = float(timings.get("text_s", 0.0)) + float(timings.get("reference_encode_s", 0.0))
        per_pixel_frame = (float(timings.get("decode_s", 0.0)) + max(0.0, encode_seconds)) / (width * height * frames)
        peak = info.get("peak_memory_bytes")
        with self._lock:
            jobs = (self._measured.jobs if self._measured else 0) + 1
            first = self._measured is None
            old = self._measured or base

            def mix(old_value: float, new_value: float) -> float:
                return new_value if first else (1 - SMOOTHING) * old_value + SMOOTHING * new_value

            memory = {}
            if peak:  # the working memory above the weights, as if all of it grew with tokens or with pixels
                tokens_max = max(tokens_1, latent_tokens(width, height, frames) if stages == 2 else 0)
                working = max(0.0, float(int(peak) - base.weights_bytes))
                again = old.memory_measured
                memory = {"bytes_per_token": mix(old.bytes_per_token, working / tokens_max) if again
                          else working / tokens_max,
                          "bytes_per_pixel_frame": mix(old.bytes_per_pixel_frame, working / (width * height * frames))
                          if again else working / (width * height * frames), "memory_measured": True}
            self._measured = replace(
                old, seconds_per_token_step=mix(old.seconds_per_token_step, per_token),
                fixed_seconds=mix(old.fixed_seconds, fixed),
                seconds_per_pixel_frame=mix(old.seconds_per_pixel_frame, per_pixel_frame),
                passes_per_step=base.passes_per_step, measured=True, jobs=jobs,
                source=f"measured over {jobs} job{'s' if jobs > 1 else ''} on this server "
                       f"(last: {width}x{height}x{frames}, {steps} steps, {stages} stage{'s' if stages > 1 else ''})",
                **memory)
            return self._measured
