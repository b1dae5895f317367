"""Property tests over real gRPC: whatever a client sends (absurd manifests, broken frame streams, odd ids),
every reply is a deliberate status with a short message free of Python text, and the server stays healthy.

Budget: the "ci" profile runs a fixed, derandomised set (100 examples per test, ~10 s here); set
RB_FUZZ_EXAMPLES=2000 for a longer random run on demand.
"""

from __future__ import annotations

import math
import os

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from render_backend.client import submit_messages
from render_backend.demo import png_bytes, synthetic_shot
from render_backend.proto import render_pb2 as pb

from .conftest import running_server
from .hostile import PYTHON_TEXT, assert_deliberate, bomb_png, header_only_png

LONG = int(os.environ.get("RB_FUZZ_EXAMPLES", "0"))
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=LONG or 2000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = "long" if LONG else "ci"


@pytest.fixture(scope="module")
def fuzz_server(engine, tmp_path_factory):
    with running_server(engine, tmp_path_factory.mktemp("fuzz"), cancel_wait_s=0.2) as pair:
        yield pair


ODD_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, -1.0, 1e-300, 1e-4, 1e300, 24.0, 0.5, 1.0, 240.0, 241.0]))
UINT32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 8, 9, 17, 32, 64, 96, 257, 2**31, 2**32 - 1]))
ODD_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(
    ["", " ", "../../etc/passwd", "/abs", "x" * 300, "\x00", "control", "camera_static", "depth+pose", "é" * 130]))

FIELDS = {  # path -> strategy for its new value
    "width": UINT32, "height": UINT32, "num_frames": UINT32, "fps": ODD_FLOATS, "seed": st.integers(0, 2**64 - 1),
    "num_inference_steps": UINT32, "guidance_scale": ODD_FLOATS, "prompt": ODD_TEXT, "negative_prompt": ODD_TEXT,
    "shot_name": ODD_TEXT, "request_id": ODD_TEXT, "client_info": ODD_TEXT, "audio": st.booleans(),
    "frame_start": st.integers(-2**31, 2**31 - 1),
    "camera.mode": st.integers(-3, 9), "camera.weight": ODD_FLOATS, "camera.preset_lora": ODD_TEXT,
    "camera.trajectory_lora": ODD_TEXT, "camera.reference_downscale_factor": UINT32,
    "camera.frames.0.fx": ODD_FLOATS, "camera.frames.0.cy": ODD_FLOATS,
    "controls.0.kind": ODD_TEXT, "controls.0.lora": ODD_TEXT, "controls.0.lora_weight": ODD_FLOATS,
    "controls.0.strength": ODD_FLOATS, "controls.0.background_strength": ODD_FLOATS,
    "controls.0.reference_downscale_factor": UINT32, "controls.0.width": UINT32, "controls.0.height": UINT32,
    "controls.0.num_frames": UINT32, "controls.0.has_mask": st.booleans(),
}
LISTS = {
    "controls.0.frame_strength": st.lists(ODD_FLOATS, max_size=12),
    "camera.frames.1.world_to_camera": st.lists(ODD_FLOATS, max_size=20),
}


def _target(m, path):
    *parents, leaf = path.split(".")
    obj = m
    for p in parents:
        obj = obj[int(p)] if p.isdigit() else getattr(obj, p)
    return obj, leaf


def _mutate(m, changes, lists, extra_loras, more_controls):
    for path, value in changes.items():
        obj, leaf = _target(m, path)
        setattr(obj, leaf, value)
    for path, values in lists.items():
        obj, leaf = _target(m, path)
        del getattr(obj, leaf)[:]
        getattr(obj, leaf).extend(values)
    for name, weight in extra_loras:
        m.extra_loras.add(name=name, weight=weight)
    for _ in range(more_controls):
        m.controls.add().CopyFrom(m.controls[0])


SMALL = 128 * 128 * 17  # pixels x frames: a shot this small renders in well under a second here


def _submit(client, messages, m=None):
    """Send; a refusal must be deliberate. An accepted small shot must render (or fail deliberately, never
    INTERNAL); a bigger one is cancelled to keep the run short."""
    try:
        reply = client.stub.SubmitShot(iter(messages), timeout=30)
    except grpc.RpcError as e:
        assert_deliberate(e)
        return None
    if m is not None and m.width * m.height * m.num_frames <= SMALL and (m.num_inference_steps or 8) <= 8:
        final = client.wait(reply.job_id, timeout=60)
        assert final.error_code != "INTERNAL" and not PYTHON_TEXT.search(final.message), final.message
    else:
        client.cancel(reply.job_id)
    return reply


SHAPES = st.tuples(st.sampled_from([32, 64, 96]), st.sampled_from([32, 64, 96]), st.sampled_from([9, 17]))


@settings(settings.get_profile(PROFILE))
@given(shape=SHAPES, control=st.booleans(), mask=st.booleans(), camera=st.booleans(),
       changes=st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none(), max_size=3).flatmap(
           lambda keys: st.fixed_dictionaries({k: FIELDS[k] for k in keys})),
       lists=st.dictionaries(st.sampled_from(sorted(LISTS)), st.none(), max_size=1).flatmap(
           lambda keys: st.fixed_dictionaries({k: LISTS[k] for k in keys})),
       extra_loras=st.lists(st.tuples(ODD_TEXT, ODD_FLOATS), max_size=2),
       more_controls=st.integers(0, 5))
def test_any_manifest_gets_a_deliberate_answer(fuzz_server, shape, control, mask, camera, changes, lists,
                                               extra_loras, more_controls):
    _, client = fuzz_server
    w, h, n = shape
    m, controls, masks = synthetic_shot(n, w, h, steps=1, control_lora="control" if control else "",
                                        with_mask=mask, camera=camera)
    changes = {k: v for k, v in changes.items() if control or not k.startswith("controls.")}
    changes = {k: v for k, v in changes.items() if camera or not k.startswith("camera.frames")}
    lists = {k: v for k, v in lists.items() if (control or not k.startswith("controls.")) and
             (camera or not k.startswith("camera.frames"))}
    _mutate(m, changes, lists, extra_loras, more_controls if control else 0)
    frames = [(controls, masks)] * len(m.controls)
    _submit(client, list(submit_messages(m, frames, 1 << 20)), m)
    assert client.health() == "SERVING"


PAYLOADS = [png_bytes(np.zeros((64, 64, 3), "uint8")), png_bytes(np.zeros((64, 64), "uint8")),
            png_bytes(np.zeros((32, 32, 3), "uint8")), header_only_png(65535, 65535), header_only_png(64, 64),
            bomb_png(2000, 2000), b"", b"\x89PNG\r\n\x1a\n", b"GIF89a" * 10]
# One mutation of a valid upload: (what, which message, a number for it)
MUTATIONS = st.tuples(st.sampled_from(["data", "data", "data", "kind", "control", "index", "offset", "end", "drop",
                                       "repeat", "swap", "cut", "manifest"]),
                      st.integers(0, 40), st.integers(-1, 12))


def _mutate_stream(messages, mutations):
    messages = list(messages)
    for what, at, number in mutations:
        i = at % len(messages)
        msg = pb.SubmitShotRequest()
        msg.CopyFrom(messages[i])
        frame = msg.frame if msg.HasField("frame") else None
        if what == "drop":
            del messages[i]
        elif what == "repeat":
            messages.insert(i, msg)
        elif what == "swap":
            j = (i + 1 + abs(number)) % len(messages)
            messages[i], messages[j] = messages[j], messages[i]
        elif what == "cut":
            del messages[i + 1:]
        elif what == "manifest":
            messages.insert(i, messages[0])
        elif frame is not None:
            if what == "data":  # this chunk becomes a whole other frame
                frame.data, frame.end_of_frame = PAYLOADS[number % len(PAYLOADS)], True
            elif what == "kind":
                frame.kind = number
            elif what == "control":
                frame.control = max(number, 0)
            elif what == "index":
                frame.index = max(number, 0)
            elif what == "offset":
                frame.offset = [0, 8, 50, 2**40][number % 4]
            else:
                frame.end_of_frame = not frame.end_of_frame
            messages[i] = msg
        if not messages:
            break
    return messages


@settings(settings.get_profile(PROFILE))
@given(mask=st.booleans(), chunk=st.sampled_from([40, 500, 1 << 20]), mutations=st.lists(MUTATIONS, max_size=3))
def test_any_frame_stream_gets_a_deliberate_answer(fuzz_server, mask, chunk, mutations):
    _, client = fuzz_server
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1, with_mask=mask)
    _submit(client, _mutate_stream(submit_messages(m, [(controls, masks)], chunk), mutations), m)
    assert client.health() == "SERVING"


@pytest.fixture(scope="module")
def done_job(fuzz_server):
    _, client = fuzz_server
    return client.wait(client.submit(*synthetic_shot(9, 64, 64, steps=1)).job_id, timeout=60).job_id


@settings(settings.get_profile(PROFILE))
@given(job_id=st.one_of(st.none(), ODD_TEXT), artifact=st.one_of(st.integers(-1, 5), st.integers(-2**31, 2**31 - 1)),
       offset=st.one_of(st.integers(0, 5000), st.integers(0, 2**64 - 1)), limit=UINT32,
       states=st.lists(st.integers(-2**31, 2**31 - 1), max_size=4))
def test_any_job_query_gets_a_deliberate_answer(fuzz_server, done_job, job_id, artifact, offset, limit, states):
    _, client = fuzz_server
    job_id = done_job if job_id is None else job_id  # often a real, finished job
    calls = [lambda: list(client.watch(job_id, timeout=5)), lambda: client.cancel(job_id),
             lambda: list(client.fetch_chunks(job_id, artifact, offset)),
             lambda: client.stub.ListJobs(pb.ListJobsRequest(limit=limit, states=states), timeout=10)]
    for call in calls:
        try:
            call()
        except grpc.RpcError as e:
            assert_deliberate(e)


def test_after_the_fuzzing_the_server_still_renders_and_kept_nothing_half_done(fuzz_server):
    server, client = fuzz_server
    final = client.wait(client.submit(*synthetic_shot(9, 64, 64, steps=1)).job_id, timeout=60)
    assert final.state == pb.JOB_STATE_DONE and client.health() == "SERVING"
    assert list(server.server.store.incoming_dir.iterdir()) == []
    assert not math.isnan(final.progress)
