"""The trained LoRA file: Lightricks/ComfyUI keys, alpha folded in (loaders apply scale 1), metadata the
server reads, and never a truncated file under the final name."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from render_backend.engine.ltx2.forward import audio_positions, velocities, video_positions
from render_backend.engine.request import LoraMismatch
from render_backend.training import lora_file
from render_backend.training.options import ADAPTER, TARGET_MODULES

META = {"reference_downscale_factor": 2, "ltx_blender_kind": "control", "ltx_blender_canvas": "depth",
        "ltx_blender_base": "ltx-2", "ltx_blender_steps": 30}


@pytest.fixture(scope="module")
def adapted(tiny_model):
    """The tiny engine with a rank-4, alpha-8 adapter whose A and B are random (B=0 would hide the scale)."""
    from render_backend.engine.ltx2.engine import LTX2Engine

    engine = LTX2Engine(str(tiny_model), device="cpu", loras={}, upsampler=None)
    engine.load()
    transformer = engine.pipe.transformer
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=TARGET_MODULES["attention+ff"]),
                            adapter_name=ADAPTER)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in transformer.named_parameters():
            if f".{ADAPTER}." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return engine


def _velocity(engine, seed: int = 1) -> torch.Tensor:
    pipe = engine.pipe
    g = torch.Generator().manual_seed(seed)
    latents, refs = torch.randn(1, 12, 8, generator=g), torch.randn(1, 12, 8, generator=g)
    audio = torch.randn(1, 9, pipe.transformer.config.audio_in_channels, generator=g)
    text = (torch.randn(1, 64, 32, generator=g), torch.randn(1, 64, 32, generator=g), torch.ones(1, 64))

    class Ref:
        coords = pipe.transformer.rope.prepare_video_coords(1, 3, 2, 2, "cpu", fps=24.0)

    with torch.no_grad():
        v, _ = velocities(pipe, torch.float32, torch.tensor(600.0), latents, refs, audio, text, (3, 2, 2), 24.0,
                          video_positions(pipe, (3, 2, 2), [Ref], 24.0, "cpu"), audio_positions(pipe, 9, "cpu"))
    return v


def test_keys_are_lightricks_format_with_alpha_folded_into_b(adapted):
    state = get_peft_model_state_dict(adapted.pipe.transformer, adapter_name=ADAPTER)
    tensors = lora_file.ltx_keys(state, rank=4, alpha=8, dtype=torch.float32)
    assert len(tensors) == 2 * 2 * 10  # 2 blocks x (attn1, attn2: 4 each + ff: 2) x (A, B)
    a = "diffusion_model.transformer_blocks.1.attn2.to_v.lora_A.weight"
    b = "diffusion_model.transformer_blocks.1.ff.net.2.lora_B.weight"
    assert set(tensors) == {"diffusion_model." + k for k in state}
    torch.testing.assert_close(tensors[a], state[a.removeprefix("diffusion_model.")])
    torch.testing.assert_close(tensors[b], 2.0 * state[b.removeprefix("diffusion_model.")])
    back = lora_file.unfold(tensors, rank=4, alpha=8)
    torch.testing.assert_close(back[b.removeprefix("diffusion_model.")], state[b.removeprefix("diffusion_model.")])


def test_the_file_loaded_by_the_server_engine_acts_as_the_trained_adapter(adapted, tiny_model, tmp_path):
    """peft scales B by alpha / rank = 2 in training; the file folds it in, the server applies scale 1:
    one transformer pass gives the same velocities through both."""
    from render_backend.engine.ltx2.adapters import activate
    from render_backend.engine.ltx2.engine import LTX2Engine

    trained = _velocity(adapted)
    state = get_peft_model_state_dict(adapted.pipe.transformer, adapter_name=ADAPTER)
    path = lora_file.write_lora(tmp_path / "mine.safetensors",
                                lora_file.ltx_keys(state, 4, 8, torch.float32), META)
    server = LTX2Engine(str(tiny_model), device="cpu", loras={"mine": str(path)}, upsampler=None)
    server.load()
    (lora,) = server.capabilities().loras
    assert (lora.name, lora.kind, lora.reference_downscale_factor, lora.canvas, lora.base, lora.rank) == \
        ("mine", "control", 2, "depth", "ltx-2", 4)
    base = _velocity(server)
    activate(server.pipe, [("mine", 1.0)])
    loaded = _velocity(server)
    torch.testing.assert_close(loaded, trained, rtol=1e-4, atol=1e-5)
    assert float((loaded - base).abs().mean()) > 0.05  # and the LoRA does change the pass


def test_a_full_disk_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "lora.safetensors"
    first = {"diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.ones(4, 32)}
    lora_file.write_lora(path, first, META)
    before = path.read_bytes()

    def fill_disk(fd, view):  # half the bytes go out, then the disk is full
        written = os.write(fd, view[: max(1, len(view) // 2)])
        monkeypatch.setattr(lora_file, "_write", lambda fd, view: (_ for _ in ()).throw(
            OSError(errno.ENOSPC, "No space left on device")))
        return written

    monkeypatch.setattr(lora_file, "_write", fill_disk)
    with pytest.raises(lora_file.LoraWriteError, match="the disk is full.*MiB free.*nothing was left"):
        lora_file.write_lora(path, {k: torch.full((4, 32), 2.0) for k in first}, META)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora.safetensors"]


def test_a_lora_of_another_generation_is_refused_naming_both():
    with pytest.raises(LoraMismatch, match="trained for ltx-2.3, but this model is ltx-2.*use a ltx-2.3 model"):
        lora_file.check_generation("depth", {"ltx_blender_base": "ltx-2.3"}, "ltx-2")
    lora_file.check_generation("depth", {"ltx_blender_base": "ltx-2"}, "ltx-2")
    lora_file.check_generation("depth", {}, "ltx-2")  # unknown base: nothing to compare


def test_generation_comes_from_the_config():
    assert lora_file.model_generation({"gated_attn": False}) == "ltx-2"
    assert lora_file.model_generation({"gated_attn": True}) == "ltx-2.3"
    assert lora_file.model_generation({"gated_attn": True, "ff_bias": False}) == "ltx-2.5"
