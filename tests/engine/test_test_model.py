"""The tiny LTX-2 on disk: complete, reproducible, loadable, with LoRAs of every kind."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from render_backend.engine.loras import inspect_lora
from render_backend.engine.ltx2.test_model import COMPLETE_MARKER, is_complete, make_test_model


def test_layout_has_every_pipeline_folder_and_lora(tiny_model):
    index = json.loads((tiny_model / "model_index.json").read_text())
    assert index["_class_name"] == "LTX2InContextPipeline"
    for folder in ("transformer", "vae", "audio_vae", "vocoder", "connectors", "text_encoder", "tokenizer",
                   "scheduler"):
        assert (tiny_model / folder).is_dir(), folder
    # (the shared fixture adds control_x2 beside what make-test-model writes: tests/conftest.py)
    names = sorted(p.stem for p in (tiny_model / "loras").glob("*.safetensors") if p.stem != "control_x2")
    moves = ("dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static")
    published = [f"ltx-2-19b-ic-lora-{c}-control" for c in ("depth", "pose", "canny")] + [
        "ltx-2-19b-ic-lora-union-ref0.5"] + [f"ltx-2-19b-lora-camera-control-{m.replace('_', '-')}" for m in moves]
    assert names == sorted(["control", "control_peft", "camera_trajectory"] + [f"camera_{m}" for m in moves]
                           + published)
    assert is_complete(tiny_model) and is_complete(tiny_model, "distilled", "2.0")
    assert not is_complete(tiny_model, version="2.3")


def test_lora_key_formats_metadata_and_nonzero_b(tiny_model):
    with safe_open(str(tiny_model / "loras" / "control.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        assert all(k.startswith("diffusion_model.") for k in keys)
        assert f.metadata()["reference_downscale_factor"] == "1"
        b = [f.get_tensor(k) for k in keys if k.endswith("lora_B.weight")]
        assert min(float(t.abs().max()) for t in b) > 0.01  # a LoRA that visibly changes output
    with safe_open(str(tiny_model / "loras" / "control_peft.safetensors"), framework="pt") as f:
        assert all(k.startswith("transformer.") for k in f.keys())
    traj = inspect_lora("camera_trajectory", tiny_model / "loras" / "camera_trajectory.safetensors")
    assert (traj.kind, traj.reference_downscale_factor, traj.rank) == ("camera_trajectory", 4, 4)
    dolly = inspect_lora("camera_dolly_in", tiny_model / "loras" / "camera_dolly_in.safetensors")
    assert (dolly.kind, dolly.camera_move, dolly.reference_downscale_factor) == ("camera_preset", "dolly_in", None)


def test_second_call_is_a_no_op_and_weights_are_reproducible(tiny_model, tmp_path):
    before = (tiny_model / "transformer" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    assert make_test_model(tiny_model) == tiny_model
    assert (tiny_model / "transformer" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns == before
    again = make_test_model(tmp_path / "again")
    for part in ("transformer/diffusion_pytorch_model.safetensors", "loras/control.safetensors"):
        with safe_open(str(tiny_model / part), framework="pt") as a, safe_open(str(again / part), framework="pt") as b:
            for key in list(a.keys())[:5]:
                assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key


def test_unfinished_folder_is_not_complete_and_is_not_overwritten(tmp_path):
    half = tmp_path / "half"
    (half / "transformer").mkdir(parents=True)
    assert not is_complete(half)
    with pytest.raises(FileExistsError, match="not a complete test model"):
        make_test_model(half)
    (half / COMPLETE_MARKER).write_text("some-other-version\n")
    assert not is_complete(half)


def test_asking_for_the_other_variant_rebuilds_it_with_the_other_marker(tmp_path):
    model = make_test_model(tmp_path / "m", variant="distilled")
    assert is_complete(model, "distilled") and not is_complete(model, "dev")
    assert make_test_model(model, variant="dev") == model
    config = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
    assert is_complete(model, "dev") and (config["use_dynamic_shifting"], config["shift_terminal"]) == (True, 0.1)
    with pytest.raises(ValueError, match="variant must be one of distilled, dev"):
        make_test_model(tmp_path / "x", variant="turbo")
