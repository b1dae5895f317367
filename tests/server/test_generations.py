"""Each LTX generation's tiny model end to end: a real server on loopback, a shot with the generation's
published control LoRA (its stand-in), and the mp4 and wav decoded back at that generation's audio rate."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from render_backend import media
from render_backend.demo import synthetic_shot
from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.test_model import make_test_model
from render_backend.proto import render_pb2 as pb

from .conftest import running_server

MP4, WAV, SIDECAR = pb.ARTIFACT_KIND_VIDEO_MP4, pb.ARTIFACT_KIND_AUDIO_WAV, pb.ARTIFACT_KIND_SIDECAR_JSON

# version -> (generation, vocoder rate, published control LoRA stand-in, the canvas kind it reads, video decoder)
CASES = {
    # The tiny LTX-2.0 vocoder makes 8 kHz (the real one 24 kHz); 2.3 and 2.5 are configured like the real
    # ones: 16 kHz then bandwidth extension to 48 kHz.
    "2.0": ("ltx-2", 8000, "ltx-2-19b-ic-lora-depth-control", "depth", "convolutional"),
    "2.3": ("ltx-2.3", 48000, "ltx-2.3-22b-ic-lora-union-control-ref0.5", "pose", "convolutional"),
    "2.5": ("ltx-2.5", 48000, "ltx-2.5-22b-ic-lora-layout-to-render", "playblast", "diffusion"),
}


@pytest.mark.parametrize("version", CASES)
def test_each_generation_renders_a_shot_that_decodes(version, tiny_model, tmp_path_factory, tmp_path):
    generation, rate, lora, kind, decoder = CASES[version]
    model = tiny_model if version == "2.0" else make_test_model(
        tmp_path_factory.mktemp(f"gen{version}") / "model", version=version)
    engine = LTX2Engine(str(model), upsampler=None)
    engine.load()
    with running_server(engine, tmp_path / "data") as (_, client):
        caps = client.capabilities()
        assert (caps.model_generation, caps.audio_sample_rate) == (generation, rate)
        info = {lo.name: lo for lo in caps.loras}[lora]
        assert (info.base_model, info.kind) == (generation, pb.LORA_KIND_CONTROL) and kind in info.canvas.split(",")
        m, controls, masks = synthetic_shot(9, 64, 64, steps=2, control_lora=lora)
        m.controls[0].kind = kind
        final = client.wait(client.submit(m, controls, masks).job_id, timeout=120)
        assert final.state == pb.JOB_STATE_DONE, final.message
        paths = {a.kind: client.fetch(final.job_id, a.kind, tmp_path / a.filename) for a in final.artifacts}

    video = media.probe_mp4(paths[MP4])
    assert (video.frames, video.width, video.height, video.fps) == (9, 64, 64, Fraction(24))
    assert (video.audio_codec, video.audio_sample_rate, video.audio_channels) == ("aac", rate, 2)
    assert video.audio_seconds == pytest.approx(9 / 24, abs=1e-3)
    wav_rate, channels, width, seconds = media.probe_wav(paths[WAV])
    assert (wav_rate, channels, width) == (rate, 2, 2) and seconds == pytest.approx(9 / 24, abs=1 / rate)
    sidecar = json.loads(paths[SIDECAR].read_text())
    assert (sidecar["model"]["model_generation"], sidecar["engine"]["model_generation"]) == (generation, generation)
    assert sidecar["model"]["generation_source"].startswith("transformer/config.json: gated_attn=")
    assert sidecar["engine"]["video_decoder"].startswith(decoder)
    assert sidecar["engine"]["controls"][0]["lora"] == lora
    assert sidecar["engine"]["sampler"]["stage1"] == "euler"  # a control canvas: Lightricks' IC-LoRA pipeline
