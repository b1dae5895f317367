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
], ids=["port", "heartbeat", "lora-format", "lora-missing", "tls-half", "token-missing"])
def test_bad_serve_flags_are_refused_with_the_fix(tiny_model, tmp_path, argv, words):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--model", str(tiny_model), "--data-dir", str(tmp_path), *argv])
    assert words in str(exc.value)


def test_a_missing_model_folder_names_the_ways_to_get_one(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--model", str(tmp_path / "nope"), "--data-dir", str(tmp_path)])
    assert "folder not found" in str(exc.value) and "make-test-model" in str(exc.value)
