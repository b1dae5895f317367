"""Distilled or dev is read from the checkpoint, never from its folder name, and each variant gets
Lightricks' defaults: distilled 8 steps, no guidance, the published sigmas; dev (LTX-2.0) 40 steps,
LTX2Scheduler's sigmas, CFG 3 (audio 7) + STG + modality guidance + rescale, 4 transformer passes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from ltx_core.components.schedulers import LTX2Scheduler  # Lightricks' dev schedule, the oracle

from render_backend.cli import main as cli_main
from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.schedules import DISTILLED_SIGMAS
from render_backend.engine.ltx2.test_model import make_test_model
from render_backend.engine.ltx2.variant import ModelVariantUnknown
from render_backend.engine.request import RenderRequest

MARKER = "scheduler/scheduler_config.json"


def request(**kw) -> RenderRequest:
    base = dict(prompt="a dog runs in the forest", width=64, height=64, num_frames=9, seed=4)
    base.update(kw)
    return RenderRequest(**base)


def transformer_calls(engine: LTX2Engine, req: RenderRequest) -> tuple[list[float], dict]:
    """(target-token sigma of every transformer call, result info)."""
    seen = []
    hook = engine.pipe.transformer.register_forward_pre_hook(
        lambda m, a, k: seen.append(round(float(k["timestep"][0, 0]) / 1000.0, 6)), with_kwargs=True)
    try:
        info = engine.render(req).info
    finally:
        hook.remove()
    return seen, info


@pytest.fixture(scope="module")
def misnamed(tmp_path_factory):
    """Each variant in a folder named after the other one: the name must not matter."""
    root = tmp_path_factory.mktemp("names")
    return {"distilled": make_test_model(root / "ltx-2-19b-dev", "distilled"),
            "dev": make_test_model(root / "ltx-2-19b-distilled-fp8", "dev")}


def test_a_distilled_checkpoint_in_a_folder_with_any_name_gets_8_steps_guidance_1_and_the_published_sigmas(misnamed):
    engine = LTX2Engine(str(misnamed["distilled"]), upsampler=None)
    engine.load()
    caps = engine.capabilities()
    assert (caps.model_variant, caps.default_steps, caps.default_guidance_scale) == ("distilled", 8, 1.0)
    assert caps.variant_source == f"{MARKER}: use_dynamic_shifting=false, shift_terminal=null"
    seen, info = transformer_calls(engine, request())
    assert seen == DISTILLED_SIGMAS  # 8 steps, one pass each (no guidance), unshifted
    assert (info["variant"], info["num_inference_steps"], info["guidance_scale"]) == ("distilled", 8, 1.0)
    assert info["guidance"]["transformer_passes_per_step"] == 1


def test_a_dev_checkpoint_in_a_folder_with_any_name_gets_lightricks_dev_defaults(misnamed):
    engine = LTX2Engine(str(misnamed["dev"]), upsampler=None)
    engine.load()
    caps = engine.capabilities()
    assert (caps.model_variant, caps.default_steps, caps.default_guidance_scale) == ("dev", 40, 3.0)
    assert caps.variant_source == f"{MARKER}: use_dynamic_shifting=true, shift_terminal=0.1"
    assert "video CFG 3, audio CFG 7, STG 1" in caps.guidance
    seen, info = transformer_calls(engine, request())
    expected = [round(float(s), 6) for s in LTX2Scheduler().execute(steps=40)[:-1]]  # ltx-core's own schedule
    assert seen == [s for s in expected for _ in range(4)]  # cond, uncond, perturbed, isolated per step
    assert info["sigmas"][-2:] == [0.1, 0.0] and len(info["sigmas"]) == 41
    assert info["guidance"] == {"video": {"cfg": 3.0, "stg": 1.0, "modality": 3.0, "rescale": 0.7},
                                "audio": {"cfg": 7.0, "stg": 1.0, "modality": 3.0, "rescale": 0.7},
                                "stg_blocks": [1], "transformer_passes_per_step": 4}


def test_the_variant_flag_wins_over_the_checkpoint(misnamed):
    engine = LTX2Engine(str(misnamed["dev"]), upsampler=None, variant="distilled")
    engine.load()
    caps = engine.capabilities()
    assert (caps.model_variant, caps.variant_source, caps.default_steps) == ("distilled", "--variant flag", 8)


def test_a_checkpoint_that_does_not_say_is_refused_naming_the_flag(misnamed, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(misnamed["distilled"], odd)
    config = json.loads((odd / MARKER).read_text())
    config.update(use_dynamic_shifting=True, shift_terminal=None)  # neither conversion writes this
    (odd / MARKER).write_text(json.dumps(config))
    with pytest.raises(ModelVariantUnknown, match=r"cannot tell whether .*odd is a distilled or a dev LTX-2 "
                                                  r"checkpoint: .*use_dynamic_shifting=true, shift_terminal=null.*"
                                                  r"--variant distilled or --variant dev"):
        LTX2Engine(str(odd)).load()
    engine = LTX2Engine(str(odd), variant="dev", upsampler=None)
    engine.load()
    assert engine.capabilities().model_variant == "dev"


def test_make_test_model_writes_the_marker_the_engine_reads(tmp_path, capsys):
    assert cli_main(["make-test-model", str(tmp_path / "m"), "--variant", "dev"]) == 0
    config = json.loads((tmp_path / "m" / MARKER).read_text())
    assert (config["use_dynamic_shifting"], config["shift_terminal"]) == (True, 0.1)
    assert "(dev)" in capsys.readouterr().out
    assert (tmp_path / "m" / "tiny-distilled-lora.safetensors").is_file()  # stage 2 of a dev model


def test_guidance_scale_sets_both_cfg_scales_and_keeps_the_other_terms(misnamed):
    engine = LTX2Engine(str(misnamed["dev"]), upsampler=None)
    engine.load()
    seen, info = transformer_calls(engine, request(num_inference_steps=2, guidance_scale=1.0))
    assert len(seen) == 2 * 3  # no uncond pass; STG and modality passes stay
    assert (info["guidance"]["video"]["cfg"], info["guidance"]["audio"]["cfg"]) == (1.0, 1.0)
    assert torch.isfinite(engine.last_latents).all()
