"""`render-backend serve` refuses bad flags before loading anything, saying what to change."""

from __future__ import annotations

import pytest

from render_backend.cli import main


@pytest.mark.parametrize("argv, words", [
    (["--port", "99999"], "--port must be 0..65535"),
    (["--heartbeat", "20"], "--heartbeat must be in (0, 15]"),
    (["--lora", "control"], "--lora needs NAME=PATH"),
    (["--lora", "control=/nonexistent.safetensors"], "does not exist"),
    (["--tls-cert", "cert.pem"], "TLS needs both --tls-cert and --tls-key"),
    (["--token-file", "/nonexistent-token"], "does not exist; write the token into it"),
    (["--upsampler", "/nonexistent-upsampler"], "no config.json there; pass a diffusers LTX2LatentUpsamplerModel"),
    (["--distilled-lora", "/nonexistent.safetensors"], "--distilled-lora /nonexistent.safetensors: file not found"),
], ids=["port", "heartbeat", "lora-format", "lora-missing", "tls-half", "token-missing", "upsampler-missing",
        "distilled-lora-missing"])
def test_bad_serve_flags_are_refused_with_the_fix(tiny_model, tmp_path, argv, words):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--model", str(tiny_model), "--data-dir", str(tmp_path), *argv])
    assert words in str(exc.value)


def test_a_missing_model_folder_names_the_ways_to_get_one(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--model", str(tmp_path / "nope"), "--data-dir", str(tmp_path)])
    assert "folder not found" in str(exc.value) and "make-test-model" in str(exc.value)


def test_an_unknown_variant_is_refused_naming_both(tiny_model, capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--model", str(tiny_model), "--variant", "turbo"])
    assert "--variant: invalid choice: 'turbo' (choose from 'distilled', 'dev')" in capsys.readouterr().err


def test_engine_flags_reach_the_engine(tiny_model):
    from render_backend.cli import _engine, build_parser

    args = build_parser().parse_args(["serve", "--model", str(tiny_model), "--variant", "dev", "--upsampler", "none",
                                      "--video-decoder", "conv"])
    engine = _engine(args)
    assert (engine.variant_override, engine.upsampler, engine.video_decoder_request) == ("dev", None, "conv")
    default = _engine(build_parser().parse_args(["serve", "--model", str(tiny_model)]))
    assert (default.variant_override, default.upsampler) == (None, str(tiny_model / "latent_upsampler"))
    assert default.video_decoder_request == "auto"


def test_make_test_model_writes_the_asked_generation(tmp_path, capsys):
    from render_backend.engine.ltx2.generation import read_generation

    assert main(["make-test-model", str(tmp_path / "m"), "--version", "2.3"]) == 0
    assert read_generation(str(tmp_path / "m")).name == "ltx-2.3"
    assert "tiny random LTX-2.3 (distilled)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["make-test-model", str(tmp_path / "x"), "--version", "3.0"])
    assert "--version: invalid choice: '3.0' (choose from '2.0', '2.3', '2.5')" in capsys.readouterr().err
