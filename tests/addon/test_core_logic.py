"""Pure logic of the add-on: take folders, job records, progress text, strength sampling,
profiles and protocol versions. No bpy, no network."""

from __future__ import annotations

import json

import pytest

from blender_addon.client.profiles import ServerProfile, parse_address, profile_problems, resolve_token
from blender_addon.core import jobs, takes


def test_takes_are_numbered_past_the_highest_and_never_reused(tmp_path):
    first = takes.next_take_dir(tmp_path, "Walk / Dolly", "shot_0001-0121")
    second = takes.next_take_dir(tmp_path, "Walk / Dolly", "shot_0001-0121")
    assert first == tmp_path / "Walk_Dolly" / "shot_0001-0121" / "take_001"
    assert second.name == "take_002"
    (first.parent / "take_007").mkdir()
    (first.parent / "notes").mkdir()
    assert takes.next_take_dir(tmp_path, "Walk / Dolly", "shot_0001-0121").name == "take_008"
    assert [p.name for p in takes.existing_takes(first.parent)] == ["take_001", "take_002", "take_007", "take_008"]


def test_names_and_their_errors():
    assert takes.shot_name(1, 121) == "shot_0001-0121"
    assert takes.take_name(12) == "take_012"
    assert takes.take_number("take_012") == 12 and takes.take_number("take_x") is None
    assert takes.safe_name("  ../..  ") == "untitled"
    with pytest.raises(ValueError, match="frame_end must be >= frame_start"):
        takes.shot_name(10, 5)
    with pytest.raises(ValueError, match="start at 1"):
        takes.take_name(0)


def test_take_record_round_trip_keeps_only_redo_settings(tmp_path):
    settings = {"prompt": "a dancer", "seed": 42, "frame_start": 1, "frame_end": 9, "control_strength": 0.5,
                "camera_mode": "preset", "unrelated": "dropped"}
    path = takes.write_take_record(tmp_path, settings=settings, job_id="j1", server="local", shot="s", fps=24,
                                   frames=9)
    assert path.name == "take.json" and not list(tmp_path.glob("*.tmp"))
    record = takes.read_take_record(tmp_path)
    assert record["job_id"] == "j1" and record["fps"] == 24.0
    redo = takes.redo_settings(record)
    assert redo == {k: v for k, v in settings.items() if k != "unrelated"}
    with pytest.raises(ValueError, match="lack seed"):
        takes.write_take_record(tmp_path, settings={"prompt": "", "frame_start": 1, "frame_end": 2}, job_id="",
                                server="", shot="", fps=24, frames=2)
    with pytest.raises(FileNotFoundError, match="pick a take folder"):
        takes.read_take_record(tmp_path / "nope")
    (tmp_path / "take.json").write_text(json.dumps({"schema": "ltx-take/9"}))
    with pytest.raises(ValueError, match="reads ltx-take/1"):
        takes.read_take_record(tmp_path)


def test_job_record_round_trips_and_knows_when_to_reattach():
    rec = jobs.JobRecord(request_id="r1", shot="s", take_dir="//renders/x", profile="gpu", job_id="j1",
                         state=jobs.RUNNING, frame_start=1, frame_end=121, created_s=5.0)
    back = jobs.JobRecord.from_json(rec.to_json())
    assert back == rec and back.unfinished
    assert not jobs.JobRecord(request_id="r", shot="s", take_dir="t", state=jobs.RUNNING).unfinished  # no job id
    assert not jobs.JobRecord(request_id="r", shot="s", take_dir="t", job_id="j", state=jobs.DONE).unfinished
    older = jobs.JobRecord(request_id="r0", shot="s", take_dir="t", job_id="j0", state=jobs.QUEUED, created_s=1.0)
    assert [r.request_id for r in jobs.unfinished([rec, older])] == ["r0", "r1"]
    assert jobs.JobRecord.from_dict({**rec.to_dict(), "future_field": 1}) == rec
    with pytest.raises(ValueError, match="unknown job state 'paused'"):
        jobs.JobRecord(request_id="r", shot="s", take_dir="t", state="paused")
    with pytest.raises(ValueError, match="lacks take_dir"):
        jobs.JobRecord.from_dict({"request_id": "r", "shot": "s"})
    assert len(jobs.new_request_id()) == 32 and jobs.new_request_id() != jobs.new_request_id()


@pytest.mark.parametrize("state, kw, text", [
    (jobs.QUEUED, {"queue_position": 2}, "Queued, position 2"),
    (jobs.QUEUED, {}, "Queued"),
    (jobs.RUNNING, {"stage": "denoising", "step": 3, "total_steps": 8, "eta_seconds": 12.4},
     "Denoising 3/8 · ETA 12 s"),
    (jobs.RUNNING, {"stage": "decoding", "eta_seconds": -1}, "Decoding"),
    (jobs.RUNNING, {"stage": "denoising", "step": 1, "total_steps": 8, "eta_seconds": 3725},
     "Denoising 1/8 · ETA 1 h 02 min"),
    (jobs.ENCODING, {"eta_seconds": 65}, "Encoding · ETA 1 min 05 s"),
    (jobs.EXPORTING, {"step": 4, "total_steps": 20}, "Exporting 4/20"),
    (jobs.SUBMITTING, {"step": 512, "total_steps": 2048}, "Sending shot to server 25%"),
    (jobs.FAILED, {"message": "out of GPU memory"}, "Failed: out of GPU memory"),
    (jobs.CANCELLED, {}, "Cancelled"),
])
def test_progress_text(state, kw, text):
    assert jobs.progress_text(state, **kw) == text


def test_protocol_major_mismatch_is_explained():
    assert jobs.protocol_problem("2.0") is None
    assert jobs.protocol_problem("2.7") is None
    msg = jobs.protocol_problem("3.0")
    assert "server speaks 3.0" in msg and "update the add-on" in msg
    assert "update the render server" in jobs.protocol_problem("1.1")
    assert "no valid protocol version" in jobs.protocol_problem("")


def test_addresses_are_validated_with_a_fix():
    assert parse_address("gpu-box:50051") == ("gpu-box", 50051)
    assert parse_address("[::1]:7000") == ("::1", 7000)
    for bad, hint in [("", "empty"), ("gpu-box", "host:port"), ("https://gpu:443", "turn on TLS"),
                      ("gpu:0", "1 to 65535"), ("gpu:http", "1 to 65535"), ("::1:80", "need brackets")]:
        with pytest.raises(ValueError, match=hint):
            parse_address(bad)


def test_profile_problems_and_token_sources(tmp_path):
    ok = ServerProfile("local", "localhost:50051")
    assert profile_problems(ok) == []
    bad = ServerProfile("", "nohost", use_tls=False, ca_cert_path=str(tmp_path / "ca.pem"),
                        token_file=str(tmp_path / "missing"))
    problems = profile_problems(bad)
    assert len(problems) == 4
    assert any("TLS is off" in p for p in problems) and any("token file" in p for p in problems)
    tls_missing_ca = ServerProfile("cloud", "x:1", use_tls=True, ca_cert_path=str(tmp_path / "ca.pem"))
    assert profile_problems(tls_missing_ca) == [f"CA certificate {tmp_path / 'ca.pem'} not found; pick the "
                                                f"server's PEM file"]
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    assert resolve_token(ServerProfile("a", "x:1", token=" inline "), {}) == "inline"
    assert resolve_token(ServerProfile("a", "x:1", token_file=str(token_file)), {}) == "s3cret"
    assert resolve_token(ServerProfile("a", "x:1"), {"LTX_RENDER_TOKEN": "fromenv"}) == "fromenv"
    assert resolve_token(ServerProfile("a", "x:1"), {}) == ""
    token_file.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        resolve_token(ServerProfile("a", "x:1", token_file=str(token_file)), {})
