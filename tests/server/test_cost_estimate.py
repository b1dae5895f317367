"""The estimate before sending: Capabilities.cost_model over real gRPC, a priori then measured on a real
tiny-model job, and shot_cost.estimate_shot (the add-on's panel calls the same function) against the
wall time of a job."""

from __future__ import annotations

import time

import pytest

from render_backend.demo import synthetic_shot
from render_backend.proto import render_pb2 as pb
from render_backend.shot_cost import CostModel, cost_from_proto, estimate_shot, format_seconds, shot_tokens

from .conftest import running_server

COST = CostModel(transformer_parameters=19_000_000_000, attention_tokens=35_000, seconds_per_token_step=7e-5,
                 reference_tokens=6144, passes_per_step=1, fixed_seconds=2.0, seconds_per_pixel_frame=5e-8,
                 weights_bytes=40 * 1024 ** 3, bytes_per_token=131_072, bytes_per_pixel_frame=768, measured=True)


def test_estimate_grows_with_tokens_steps_and_stages():
    base = estimate_shot(COST, 768, 512, 121, 8, 1)
    assert base.tokens.stage_1 == 16 * 16 * 24  # (121 - 1) / 8 + 1 latent frames of 16 x 24 cells
    bigger = [estimate_shot(COST, 1536, 1024, 121, 8, 1), estimate_shot(COST, 768, 512, 241, 8, 1),
              estimate_shot(COST, 768, 512, 121, 16, 1)]
    assert all(b.seconds > base.seconds for b in bigger)
    assert all(b.peak_bytes >= base.peak_bytes for b in bigger[:2])
    # Attention: twice the tokens cost more than twice the transformer time.
    t1, t2 = COST.pass_seconds(6144), COST.pass_seconds(12288)
    assert t1 == pytest.approx(COST.seconds_per_token_step * 6144) and t2 > 2 * t1
    # Two stages = the half-size stage 1 plus a 3-step full-size refine: dearer than a one-stage preview at
    # half size, cheaper than one stage at full size with 8 steps.
    preview = estimate_shot(COST, 384, 256, 121, 8, 1)
    two = estimate_shot(COST, 768, 512, 121, 8, 2)
    assert preview.seconds < two.seconds < base.seconds
    assert shot_tokens(768, 512, 121, 2).stage_1 == preview.tokens.stage_1
    with_reference = estimate_shot(COST, 768, 512, 121, 8, 1, reference_factors=(2,))
    assert with_reference.tokens.stage_1 == base.tokens.stage_1 + 16 * 8 * 12
    assert with_reference.seconds > base.seconds
    assert base.text("gpu-box").endswith("GiB on gpu-box (measured)") and base.text().startswith("≈ ")
    assert [format_seconds(s) for s in (4.25, 14.2, 125, 3800)] == ["4.2 s", "14 s", "2 min 5 s", "1 h 3 min"]


def test_reference_tokens_agree_with_the_engines_latent_grid_at_every_factor_and_temporal_scale():
    from render_backend.engine.ltx2.references import latent_grid

    w, h = 768, 512
    for frames in (9, 17, 57, 121):
        for factor in (1, 2, 4):
            for scale in (1, 2, 3):
                f, r, c = latent_grid(frames, w, h, factor, scale)
                tokens = shot_tokens(w, h, frames, 1, (factor,), (scale,))
                assert tokens.stage_1 - shot_tokens(w, h, frames, 1).stage_1 == f * r * c, (frames, factor, scale)
    # A LoRA read at temporal scale 2 costs fewer reference tokens, so less time, than every frame.
    every = estimate_shot(COST, w, h, 121, 8, 1, (1,))
    halved = estimate_shot(COST, w, h, 121, 8, 1, (1,), (2,))
    assert halved.tokens.stage_1 == every.tokens.stage_1 - (16 - 8) * 16 * 24 and halved.seconds < every.seconds
    # The scales line up with the factors; a missing one is 1.
    assert shot_tokens(w, h, 121, 1, (1, 4), (2,)) == shot_tokens(w, h, 121, 1, (1, 4), (2, 1))


def test_cost_model_round_trips_through_get_capabilities_and_a_job_measures_it(engine, tmp_path):
    with running_server(engine, tmp_path / "data") as (server, client):
        before = client.capabilities()
        assert before.protocol_version == "2.1" and before.HasField("cost_model")
        a_priori = cost_from_proto(before.cost_model)
        assert a_priori == engine.capabilities().cost_model  # every field survives the wire
        assert not a_priori.measured and a_priori.jobs == 0 and "a priori" in a_priori.source
        assert a_priori.transformer_parameters == sum(p.numel() for p in engine.pipe.transformer.parameters())
        assert a_priori.weights_bytes > a_priori.transformer_parameters * 4  # fp32 transformer + the rest

        shot = dict(num_frames=17, width=64, height=64, steps=4)
        m, controls, masks = synthetic_shot(shot["num_frames"], shot["width"], shot["height"], steps=shot["steps"])
        m.stages = 1
        times = []
        for seed in (1, 2):
            m.seed, m.request_id = seed, f"cost-{seed}"
            t0 = time.monotonic()
            job = client.submit(m, controls, masks)
            final = client.wait(job.job_id, timeout=120)
            times.append(time.monotonic() - t0)
            assert final.state == pb.JOB_STATE_DONE, final.message
        after = cost_from_proto(client.capabilities().cost_model)

    assert after.measured and after.jobs == 2 and "measured over 2 jobs" in after.source
    assert after.seconds_per_token_step != a_priori.seconds_per_token_step
    assert after.weights_bytes == a_priori.weights_bytes  # CPU: memory stays a priori
    before_est = estimate_shot(a_priori, shot["width"], shot["height"], shot["num_frames"], shot["steps"], 1, (1,))
    est = estimate_shot(after, shot["width"], shot["height"], shot["num_frames"], shot["steps"], 1, (1,))
    assert est.seconds != before_est.seconds and est.measured
    # The measured estimate covers the engine's work, not the upload and the download around it:
    # within a sane factor of the wall time a client sees.
    wall = min(times)
    print(f"tiny job: wall {wall:.3f} s, estimate {est.seconds:.3f} s (a priori {before_est.seconds:.3f} s)")
    assert wall / 5 < est.seconds < wall * 3


def test_meter_reads_two_stage_jobs_and_cuda_peaks_and_averages_later_jobs():
    from render_backend.server.cost import CostMeter

    a_priori = CostModel(**{**COST.to_dict(), "measured": False, "seconds_per_token_step": 1e-4})
    meter = CostMeter()
    assert meter.current(a_priori) is a_priori
    info = {"width": 768, "height": 512, "num_frames": 121, "num_inference_steps": 8, "stages": 2,
            "passes_per_step": 1, "references": [{"tokens": 1536}], "two_stage": {"stage1_size": [384, 256]},
            "timings": {"text_s": 1.0, "reference_encode_s": 0.2, "denoise_s": 4.0, "stage2_s": 2.0, "decode_s": 1.5},
            "peak_memory_bytes": a_priori.weights_bytes + 2 * 1024 ** 3}
    first = meter.record(info, encode_seconds=0.5, a_priori=a_priori)
    assert first.measured and first.memory_measured and first.jobs == 1
    assert first.fixed_seconds == pytest.approx(1.2)
    assert first.seconds_per_pixel_frame == pytest.approx(2.0 / (768 * 512 * 121))
    assert first.bytes_per_token == pytest.approx(2 * 1024 ** 3 / 6144)  # the full-size stage is the larger
    # The estimate of the very job it measured gives back its time (text + denoise + refine + decode + encode).
    again = estimate_shot(first, 768, 512, 121, 8, 2, (1,))
    assert again.seconds == pytest.approx(1.2 + 4.0 + 2.0 + 1.5 + 0.5, rel=1e-6)
    assert again.peak_bytes == pytest.approx(a_priori.weights_bytes + 2 * 1024 ** 3, rel=1e-6)
    slower = meter.record({**info, "timings": {**info["timings"], "denoise_s": 8.0, "stage2_s": 4.0}}, 0.5, a_priori)
    assert slower.jobs == 2 and slower.seconds_per_token_step == pytest.approx(1.5 * first.seconds_per_token_step)
    assert meter.record({"timings": {}}, 0.0, a_priori) is None  # an assembly or a fake engine: nothing to learn


def test_two_stage_job_is_measured_and_its_preview_is_estimated_cheaper(tiny_model, tmp_path):
    from render_backend.engine.ltx2.engine import LTX2Engine

    two_stage = LTX2Engine(str(tiny_model))  # finds <model>/latent_upsampler: two stages by default
    two_stage.load()
    with running_server(two_stage, tmp_path / "data") as (_, client):
        a_priori = cost_from_proto(client.capabilities().cost_model)
        assert a_priori.weights_bytes > sum(p.numel() * 4 for p in two_stage.latent_upsampler.parameters())
        m, controls, masks = synthetic_shot(17, 128, 128, steps=2)
        t0 = time.monotonic()
        final = client.wait(client.submit(m, controls, masks).job_id, timeout=120)
        wall = time.monotonic() - t0
        assert final.state == pb.JOB_STATE_DONE, final.message
        measured = cost_from_proto(client.capabilities().cost_model)
    assert measured.measured and measured.jobs == 1 and "2 stages" in measured.source
    est = estimate_shot(measured, 128, 128, 17, 2, 2, (1,))
    preview = estimate_shot(measured, 64, 64, 17, 2, 1, (1,))
    print(f"tiny two-stage job: wall {wall:.3f} s, estimate {est.seconds:.3f} s, preview {preview.seconds:.3f} s")
    assert wall / 5 < est.seconds < wall * 3
    assert preview.seconds < est.seconds
