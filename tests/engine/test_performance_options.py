"""GPU speed and memory options (engine/ltx2/performance.py): FP8 weight storage on the tiny model, the
refusals that tell the user what to change, and what a result reports."""

from __future__ import annotations

import pytest
import torch

from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.performance import ALLOW_CPU_COMPILE_ENV, performance_options
from render_backend.engine.request import RenderRequest


def param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def bf16_engines(tiny_model):
    """The tiny model in bf16, with and without FP8 weight storage (both on CPU)."""
    engines = {}
    for name, fp8 in (("bf16", False), ("fp8", True)):
        engines[name] = LTX2Engine(str(tiny_model), device="cpu", dtype="bf16", upsampler=None, fp8=fp8)
        engines[name].load()
    return engines


def request(**kw) -> RenderRequest:
    return RenderRequest(**{**dict(prompt="a man walks on the street", width=64, height=64, num_frames=9, seed=3,
                                   num_inference_steps=2), **kw})


def test_fp8_render_stays_close_to_bf16_and_the_lora_still_acts(bf16_engines):
    out = {}
    for name, e in bf16_engines.items():
        plain = e.render(request())
        out[name, "plain"] = e.last_latents
        with_lora = e.render(request(extra_loras=[("control", 1.0)]))
        out[name, "lora"] = e.last_latents
        assert plain.info["performance"]["fp8"] == (
            "float8_e4m3fn weights, bfloat16 compute" if name == "fp8" else False)
        assert with_lora.info["loras"][0]["name"] == "control"
    assert rel(out["fp8", "plain"], out["bf16", "plain"]) < 0.1  # 0.018 measured: weights rounded to fp8
    # The LoRA (peft layers, kept in bf16 over fp8 base layers) moves the output as much as without fp8.
    lora_bf16 = float((out["bf16", "lora"] - out["bf16", "plain"]).abs().max())
    lora_fp8 = float((out["fp8", "lora"] - out["fp8", "plain"]).abs().max())
    assert lora_bf16 > 1e-2 and lora_fp8 == pytest.approx(lora_bf16, rel=0.2)


def test_fp8_stores_the_base_weights_in_half_the_bytes_and_keeps_lora_layers(bf16_engines):
    bf16, fp8 = (bf16_engines[n].pipe.transformer for n in ("bf16", "fp8"))
    to_q_bf16, to_q_fp8 = bf16.transformer_blocks[0].attn1.to_q, fp8.transformer_blocks[0].attn1.to_q
    assert to_q_fp8.base_layer.weight.dtype == torch.float8_e4m3fn
    assert {p.dtype for n, p in to_q_fp8.named_parameters() if "lora_" in n} == {torch.bfloat16}
    assert param_bytes(to_q_bf16.base_layer) == 2 * param_bytes(to_q_fp8.base_layer)
    # The tiny model's norms, embeddings and LoRAs are a large share (kept in bf16): 0.74 of bf16 here.
    assert param_bytes(fp8) < 0.8 * param_bytes(bf16)


def test_fp8_halves_the_full_size_ltx2_transformer():
    # The real LTX-2 (19B) block config on the meta device: no memory is allocated.
    from diffusers import LTX2VideoTransformer3DModel

    with torch.device("meta"):
        model = LTX2VideoTransformer3DModel(num_layers=4).to(torch.bfloat16)
    bf16 = param_bytes(model)
    model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
    assert 1.95 < bf16 / param_bytes(model) <= 2.0  # 48 layers: 35.2 GiB -> 17.6 GiB


def test_auto_attention_is_flex_on_cuda_and_dense_on_cpu():
    assert performance_options("auto", False, False, torch.device("cuda"), False).flex_compiled
    cpu = performance_options("auto", False, False, torch.device("cpu"), False)
    assert (cpu.kernel, cpu.flex_compiled) == ("dense", False)
    flex_cpu = performance_options("flex", False, False, torch.device("cpu"), False)
    assert (flex_cpu.kernel, flex_cpu.flex_compiled) == ("flex", False)  # uncompiled on CPU


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(attention="fast"), "attention must be auto, dense or flex (got 'fast')"),
    (dict(compile=True), f"--compile needs a CUDA device (this engine runs on cpu): drop --compile, or set "
                         f"{ALLOW_CPU_COMPILE_ENV}=1"),
])
def test_options_that_cannot_run_say_what_to_change(tiny_model, kwargs, message, monkeypatch):
    monkeypatch.delenv(ALLOW_CPU_COMPILE_ENV, raising=False)
    with pytest.raises(ValueError) as e:
        LTX2Engine(str(tiny_model), device="cpu", **kwargs)
    assert message in str(e.value)


def test_compile_with_cpu_offload_is_refused():
    with pytest.raises(ValueError, match="--compile and --cpu-offload do not go together.*drop one"):
        performance_options("auto", True, False, torch.device("cuda"), True)


def test_serve_flags_reach_the_engine_and_bad_ones_exit_with_the_message(tiny_model, monkeypatch):
    from render_backend.cli import _engine, build_parser

    args = build_parser().parse_args(["serve", "--model", str(tiny_model), "--device", "cpu", "--attention", "flex",
                                      "--fp8"])
    engine = _engine(args)
    assert (engine.performance.kernel, engine.performance.fp8, engine.performance.compile) == ("flex", True, False)
    monkeypatch.delenv(ALLOW_CPU_COMPILE_ENV, raising=False)
    args = build_parser().parse_args(["serve", "--model", str(tiny_model), "--device", "cpu", "--compile"])
    with pytest.raises(SystemExit, match="error: --compile needs a CUDA device"):
        _engine(args)


def test_compile_on_cpu_when_allowed_wraps_each_block(tiny_model, monkeypatch):
    # Wiring only: compiling for the CPU takes minutes; the compiled forward runs on first call.
    monkeypatch.setenv(ALLOW_CPU_COMPILE_ENV, "1")
    e = LTX2Engine(str(tiny_model), device="cpu", upsampler=None, compile=True)
    e.load()
    blocks = e.pipe.transformer.transformer_blocks
    assert all(hasattr(b.forward, "_torchdynamo_orig_callable") for b in blocks)
    assert e.performance.describe(e.dtype)["compile"] is True
    assert LTX2Engine(str(tiny_model), device="cpu", compile=True, attention="flex").performance.describe(
        torch.float32)["attention_kernel"] == "FlexAttention, compiled with the blocks"
