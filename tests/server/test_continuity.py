"""Long shots in windows, on a real server: a window hands its last frames (and their audio) on as a
tail artifact, the next window is held to them, and an assembly job joins the windows into one take
whose shared frames are the cross-fade of both windows."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from render_backend import media
from render_backend.demo import synthetic_shot
from render_backend.proto import render_pb2 as pb
from render_backend.takes import crossfade_weights

MP4, WAV, TAIL = pb.ARTIFACT_KIND_VIDEO_MP4, pb.ARTIFACT_KIND_AUDIO_WAV, pb.ARTIFACT_KIND_TAIL_ZIP


def _frames(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _coarse(video) -> np.ndarray:
    """Luma in 8x8 blocks: what survives H.264 of the tiny model's noisy output (its fine detail does not)."""
    v = np.asarray(video, dtype=np.float64)
    luma = v[..., 0] * 0.299 + v[..., 1] * 0.587 + v[..., 2] * 0.114
    f, h, w = luma.shape
    return luma.reshape(f, h // 8, 8, w // 8, 8).mean(axis=(2, 4))


def _window(client, frames, seed, tail, condition=None, strength=1.0):
    m, _, _ = synthetic_shot(frames, 64, 64, steps=2, control_lora="", camera=False, seed=seed, tail_frames=tail)
    conditions = []
    if condition is not None:
        m.conditions.add(num_frames=len(condition), width=64, height=64, strength=strength)
        conditions = [condition]
    job = client.submit_controls(m, [], conditions=conditions)
    final = client.wait(job.job_id, timeout=120)
    assert final.state == pb.JOB_STATE_DONE, final.message
    return job.job_id, final


def test_three_windows_hand_on_their_tails_and_assemble_into_one_take(served, tmp_path):
    _, client = served
    # Frames 1..57 in three windows of 25 with 9 shared frames: 1-25, 17-41, 33-57; the last keeps 25.
    first, final = _window(client, 25, seed=1, tail=9)
    tail = client.fetch(first, TAIL, tmp_path / "tail1.zip")
    with zipfile.ZipFile(tail) as z:
        names = sorted(z.namelist())
        pngs = [z.read(n) for n in names if n.endswith(".png")]
        wav = z.read("audio.wav")
    assert names == [f"{i:06d}.png" for i in range(9)] + ["audio.wav"]
    video1 = _frames(client.fetch(first, MP4, tmp_path / "w1.mp4"))
    from PIL import Image

    tail_frames = np.stack([np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs])
    # Lossless PNGs of the window's own last 9 frames: the mp4 of this noise is lossy (H.264 4:2:0), so
    # the tail is compared with what else it could be: it is those frames, not the first ones.
    dist = lambda a, b: float(np.abs(_coarse(a) - _coarse(b)).mean())  # noqa: E731
    assert tail_frames.shape == (9, 64, 64, 3) and dist(tail_frames, video1[-9:]) < 0.7 * dist(tail_frames, video1[:9])
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() == round(9 / 24 * w.getframerate())

    second, _ = _window(client, 25, seed=2, tail=9, condition=pngs)
    pngs2 = [z.read(n) for z in [zipfile.ZipFile(client.fetch(second, TAIL, tmp_path / "tail2.zip"))]
             for n in sorted(z.namelist()) if n.endswith(".png")]
    third, _ = _window(client, 25, seed=3, tail=0, condition=pngs2)
    videos = [_frames(client.fetch(j, MP4, tmp_path / f"v{i}.mp4")) for i, j in enumerate((first, second, third))]

    m = pb.ShotManifest(request_id="asm-1", shot_name="walk_take", fps=24.0, frame_start=101,
                        assembly=pb.Assembly(windows=[pb.AssemblyWindow(job_id=first, keep_frames=25),
                                                      pb.AssemblyWindow(job_id=second, overlap_frames=9, keep_frames=25),
                                                      pb.AssemblyWindow(job_id=third, overlap_frames=9, keep_frames=25)],
                                            image_sequence=True))
    job = client.submit_controls(m, [])
    done = client.wait(job.job_id, timeout=120)
    assert done.state == pb.JOB_STATE_DONE, done.message
    take = client.fetch(job.job_id, MP4, tmp_path / "take.mp4")
    info = media.probe_mp4(take)
    assert (info.frames, info.fps, info.audio_seconds) == (57, 24, pytest.approx(57 / 24, abs=0.05))
    with zipfile.ZipFile(client.fetch(job.job_id, pb.ARTIFACT_KIND_FRAMES_ZIP, tmp_path / "frames.zip")) as z:
        assert z.namelist() == [f"{f:06d}.png" for f in range(101, 158)]  # Blender frame numbers of the take
    rate, _, _, seconds = media.probe_wav(client.fetch(job.job_id, WAV, tmp_path / "take.wav"))
    assert seconds == pytest.approx(57 / 24, abs=1 / rate)
    got = _frames(take).astype(float)
    w = crossfade_weights(9)[:, None, None, None]
    # Shared frames 17..25 are the blend of window 1's last and window 2's first 9 frames (not a cut, not
    # duplicated): closer to the blend than to either window alone (H.264 twice: compare with tolerance).
    blend = (1 - w) * videos[0][-9:] + w * videos[1][:9]
    err = lambda a: dist(got[16:25], a)  # noqa: E731
    assert err(blend) < err(videos[0][-9:]) and err(blend) < err(videos[1][:9]), (err(blend), err(videos[0][-9:]))
    # Before the first overlap the take is window 1 as it is; after the last overlap, window 3.
    assert dist(got[:16], videos[0][:16]) < 0.7 * dist(got[:16], videos[1][:16])
    assert dist(got[-16:], videos[2][-16:]) < 0.7 * dist(got[-16:], videos[1][-16:])


def test_assembly_names_the_window_to_render_again(served):
    _, client = served
    import grpc

    m = pb.ShotManifest(request_id="asm-bad", shot_name="x", fps=24.0,
                        assembly=pb.Assembly(windows=[pb.AssemblyWindow(job_id="20000101-000000-deadbeef",
                                                                        keep_frames=9)]))
    with pytest.raises(grpc.RpcError) as err:
        client.submit_controls(m, [])
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "window 0 (job '20000101-000000-deadbeef') is not on this server" in err.value.details()
