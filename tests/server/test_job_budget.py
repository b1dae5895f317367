"""A job's wall-clock budget: CancelJob and `serve --job-timeout` reach a job inside one long denoising step
(checked between transformer blocks), and the queue moves on to the next job.

The engine here is a random LTX-2 with 16 wider blocks, so that one step of a 257-frame shot takes seconds on
one CPU thread (~6 s here) while each block takes a fraction of that.
"""

from __future__ import annotations

import time

import pytest
import torch

from render_backend.demo import synthetic_shot
from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.test_model import build_tiny_pipeline, save_model
from render_backend.proto import render_pb2 as pb

from .conftest import running_server

torch.set_num_threads(1)
DEEP = {"num_layers": 16, "num_attention_heads": 8, "attention_head_dim": 64}


@pytest.fixture(scope="module")
def deep_engine(tmp_path_factory):
    model = save_model(build_tiny_pipeline(transformer=DEEP), tmp_path_factory.mktemp("deep") / "model")
    engine = LTX2Engine(str(model), upsampler="none")  # one long step, not a second stage
    engine.load()
    return engine


def _one_long_step():
    return synthetic_shot(257, 256, 256, steps=1, control_lora="", camera=False)


def _short():
    return synthetic_shot(9, 64, 64, steps=1, control_lora="", camera=False)


def _wait_inside_the_step(client, job_id) -> float:
    """Block until the job finished text encoding (its one denoising step has begun); returns that time."""
    call = client.watch(job_id, timeout=60)
    try:
        for ev in call:
            if ev.state == pb.JOB_STATE_RUNNING and ev.stage == "text encoding" and ev.step == 1:
                return time.monotonic()
    finally:
        call.cancel()
    raise AssertionError("the job never started denoising")


def test_cancel_reaches_a_job_inside_one_long_step_and_the_queue_moves_on(deep_engine, tmp_path):
    with running_server(deep_engine, tmp_path, cancel_wait_s=5.0) as (_, client):
        long = client.submit(*_one_long_step())
        behind = client.submit(*_short())
        _wait_inside_the_step(client, long.job_id)
        time.sleep(1.0)  # well inside the step (one step takes several seconds)
        t0 = time.monotonic()
        state = client.cancel(long.job_id)
        took = time.monotonic() - t0
        print(f"\ncancel inside a step answered {pb.JobState.Name(state)} after {took:.2f} s")
        assert state == pb.JOB_STATE_CANCELLED and took < 2.5, (pb.JobState.Name(state), took)
        final = list(client.watch(long.job_id, timeout=10))[-1]
        assert final.state == pb.JOB_STATE_CANCELLED
        assert "inside denoising step 1/1" in final.message, final.message
        assert client.wait(behind.job_id, timeout=60).state == pb.JOB_STATE_DONE


def test_job_timeout_fails_a_job_inside_its_step_and_the_next_job_runs(deep_engine, tmp_path):
    with running_server(deep_engine, tmp_path, job_timeout_s=2.0) as (_, client):
        long = client.submit(*_one_long_step())
        behind = client.submit(*_short())
        t0 = time.monotonic()
        final = client.wait(long.job_id, timeout=60)
        took = time.monotonic() - t0
        print(f"\n--job-timeout 2: the job ended {pb.JobState.Name(final.state)} {took:.2f} s after its submit")
        assert (final.state, final.error_code) == (pb.JOB_STATE_FAILED, "DEADLINE_EXCEEDED"), final.message
        assert "ran longer than this server's limit of 2 s (--job-timeout)" in final.message
        assert took < 2.0 + 3.0, took  # the limit plus one block and the job's start, not a whole step
        assert client.wait(behind.job_id, timeout=60).state == pb.JOB_STATE_DONE
