"""mp4/wav/sidecar writing, checked by decoding the files back."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from render_backend import media


def _clip(frames=17, h=32, w=64, seconds=None, rate=24000):
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (frames, h, w, 3), dtype=np.uint8)
    audio = (rng.random((2, int((seconds or 1.0) * rate)), dtype=np.float32) - 0.5) * 0.5
    return video, audio


@pytest.mark.parametrize("fps, exact", [(24, Fraction(24)), (25, Fraction(25)), (30, Fraction(30)),
                                        (23.976, Fraction(24000, 1001)), (29.97, Fraction(30000, 1001))])
def test_mp4_has_exact_frame_count_fps_and_audio_duration(tmp_path, fps, exact):
    video, audio = _clip(seconds=0.3)  # shorter than the video: must be padded
    path = media.write_mp4(tmp_path / "take.mp4", video, fps, audio, 24000)
    info = media.probe_mp4(path)
    assert (info.frames, info.width, info.height) == (17, 64, 32)
    assert info.fps == exact
    assert (info.video_codec, info.audio_codec, info.audio_channels) == ("h264", "aac", 2)
    assert info.audio_seconds == pytest.approx(17 / float(exact), abs=1e-3)
    assert list(tmp_path.iterdir()) == [path]  # no temp files left


def test_wav_is_16_bit_pcm_trimmed_to_the_video_duration(tmp_path):
    _, audio = _clip(seconds=2.0, rate=8000)
    fitted = media.fit_audio(audio, 8000, num_frames=25, fps=24)
    assert fitted.shape == (2, round(25 / 24 * 8000))
    rate, channels, width, seconds = media.probe_wav(media.write_wav(tmp_path / "a.wav", fitted, 8000))
    assert (rate, channels, width) == (8000, 2, 2)
    assert seconds == pytest.approx(25 / 24, abs=1 / 8000)


def test_ntsc_rates_are_exact_rationals():
    assert media.fps_fraction(23.976) == Fraction(24000, 1001)
    assert media.fps_fraction(29.97) == Fraction(30000, 1001)
    assert media.fps_fraction(12.5) == Fraction(25, 2)
    with pytest.raises(ValueError, match="fps must be a positive number"):
        media.fps_fraction(0)


def test_odd_size_is_refused_and_leaves_no_file(tmp_path):
    video = np.zeros((9, 33, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="even width and height"):
        media.write_mp4(tmp_path / "odd.mp4", video, 24)
    assert list(tmp_path.iterdir()) == []


def test_write_result_sidecar_lists_files_with_sha256(tmp_path):
    video, audio = _clip(frames=9, seconds=0.5, rate=8000)
    files = media.write_result(tmp_path, media.file_stem("Shot 010 / take 2"), video, 24.0, audio, 8000,
                               {"seed": 7, "timings": {"render_s": 1.5}})
    assert [f["filename"] for f in files] == ["Shot_010_take_2.mp4", "Shot_010_take_2.wav", "Shot_010_take_2.json"]
    sidecar = json.loads((tmp_path / "Shot_010_take_2.json").read_text())
    assert sidecar["seed"] == 7 and sidecar["timings"]["render_s"] == 1.5 and sidecar["timings"]["encode_s"] > 0
    for f, listed in zip(files[:2], sidecar["files"], strict=True):
        assert listed["sha256"] == media.sha256_of(tmp_path / f["filename"]) == f["sha256"]
    assert media.probe_wav(tmp_path / "Shot_010_take_2.wav")[3] == pytest.approx(9 / 24, abs=1e-3)


def _x264_options(path) -> dict[str, str]:
    """The encoder settings x264 writes into the stream (its SEI text: "... options: cabac=1 ref=1 ...")."""
    data = path.read_bytes()
    text = data[data.index(b"options: ") + 9:].split(b"\0", 1)[0].decode()
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def test_results_are_encoded_at_the_fast_preset_and_crf_18(tmp_path):
    yy, xx = np.mgrid[0:64, 0:96]
    video = np.stack([np.stack([(xx * 2 + i * 3) % 256, (yy * 3) % 256, (xx + yy + i) % 256], -1)
                      for i in range(9)]).astype(np.uint8)  # smooth moving gradients
    media.write_result(tmp_path, "take", video, 24.0, None, 0, {})
    options = _x264_options(tmp_path / "take.mp4")
    # veryfast: one reference frame, subpixel refinement 2, hex motion search (medium: 3, 7, hex)
    assert (options["ref"], options["subme"], options["me"]) == ("1", "2", "hex"), options
    assert float(options["crf"]) == media.RESULT_CRF == 18
    import av

    with av.open(str(tmp_path / "take.mp4")) as c:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert decoded.shape == video.shape
    assert np.abs(decoded.astype(int) - video).mean() < 4  # a preview-grade copy of the pixels


def test_lossless_canvas_mp4_keeps_the_default_preset(tmp_path):
    video = np.random.default_rng(1).integers(0, 256, (3, 32, 64, 3), dtype=np.uint8)
    path = media.write_mp4(tmp_path / "canvas.mp4", video, 24.0, crf=0, pix_fmt="yuv444p")
    assert (_x264_options(path)["ref"], _x264_options(path)["subme"]) == ("3", "7")  # medium
