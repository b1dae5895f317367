"""AVControl fidelity on the tiny LTX-2: log(m) strength, per-token curves, small-to-large grid, camera."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from render_backend.engine.ltx2.references import ReferenceCanvas, encode_reference
from render_backend.engine.request import CameraFrame, CameraRequest, ControlInput, RenderRequest


def request(**kw) -> RenderRequest:
    base = dict(prompt="a man walks on the street", width=64, height=64, num_frames=9, seed=11,
                num_inference_steps=2)
    base.update(kw)
    return RenderRequest(**base)


def gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def dolly_track(frames: int, width: int, height: int, forward_m: float = 1.0) -> list[CameraFrame]:
    """Camera looking down +z, moving forward `forward_m` metres over the shot (OpenCV, w2c)."""
    track = []
    for i in range(frames):
        w2c = np.eye(4)
        w2c[2, 3] = -forward_m * i / (frames - 1)  # centre at z = +s -> translation -R c
        track.append(CameraFrame(fx=80.0, fy=80.0, cx=width / 2, cy=height / 2, world_to_camera=w2c))
    return track


def test_strength_zero_removes_the_reference_from_video_self_attention_only(engine, canvas, monkeypatch):
    # ltx-core biases the video self-attention only: at m = 0 the target never reads the reference
    # there, but audio queries still read reference tokens in the audio<->video cross-attention and the
    # video reads the audio back. So m = 0 equals "no reference" exactly once that path is switched off.
    def renders():
        engine.render(request(extra_loras=[("control", 1.0)]))  # same adapters, no reference
        without = engine.last_latents
        result = engine.render(request(controls=[ControlInput(frames=canvas(), lora="control", strength=0.0)]))
        assert result.info["references"][0]["tokens"] == 8  # the reference was in the sequence
        return gap(engine.last_latents, without)

    assert renders() > 1e-2  # as ltx-core: through the audio (0.14 on the tiny model)
    forward = engine.pipe.transformer.forward
    monkeypatch.setattr(engine.pipe.transformer, "forward",
                        lambda *a, **k: forward(*a, **{**k, "isolate_modalities": True}))
    assert renders() < 1e-5


def test_outputs_move_monotonically_away_with_strength(engine, canvas):
    engine.render(request(controls=[ControlInput(frames=canvas(), lora="control", strength=0.0)]))
    base = engine.last_latents
    distances = []
    for m in (0.25, 0.5, 0.75, 1.0):
        engine.render(request(controls=[ControlInput(frames=canvas(), lora="control", strength=m)]))
        distances.append(gap(engine.last_latents, base))
    assert distances[0] > 1e-3
    assert all(b > a for a, b in zip(distances, distances[1:], strict=False)), distances
    # Smooth, not on/off: diffusers' (1-m)*-10000 bias would leave m=0.25 at ~0 and jump at m=1;
    # log(m) gives a quarter strength a real share of the full effect and no single jump.
    steps = np.diff([0.0, *distances])
    assert 0.2 < distances[0] / distances[-1] < 0.8, distances
    assert steps.max() < 0.6 * distances[-1], distances


def test_zero_strength_frames_are_cut_from_the_target_not_from_their_own_canvas(engine, canvas):
    # 17 frames = 3 latent frames; frames 9..16 are latent frame 2. Zero them in the curve: the target
    # no longer reads those tokens, but (as ltx-core) the canvas' other tokens still do, so changing
    # the zeroed frames still moves the output, less than changing frames at full strength.
    curve = [1.0] * 9 + [0.0] * 8
    ctrl = canvas(frames=17)
    engine.render(request(num_frames=17, controls=[ControlInput(frames=ctrl, lora="control", frame_strength=curve)]))
    base = engine.last_latents
    changed_late = ctrl.copy()
    changed_late[9:] = 255 - changed_late[9:]
    result = engine.render(request(num_frames=17, controls=[ControlInput(frames=changed_late, lora="control",
                                                                          frame_strength=curve)]))
    late = gap(engine.last_latents, base)
    assert result.info["controls"][0]["token_strength_min"] == 0.0
    changed_early = ctrl.copy()
    changed_early[1:9] = 255 - changed_early[1:9]
    engine.render(request(num_frames=17, controls=[ControlInput(frames=changed_early, lora="control",
                                                                 frame_strength=curve)]))
    early = gap(engine.last_latents, base)
    assert 1e-4 < late < early, (late, early)


@pytest.mark.parametrize("factor, grid", [(1, (2, 4, 4)), (2, (2, 2, 2)), (4, (2, 1, 1))])
def test_reference_token_count_and_positions_per_factor(engine, canvas, factor, grid):
    ref = ReferenceCanvas("control", canvas(height=128, width=128), factor, 1.0)
    enc = encode_reference(engine.pipe, ref, 128, 128, 24.0, torch.device("cpu"), torch.float32)
    assert enc.latent_shape == grid and enc.tokens.shape[1] == grid[0] * grid[1] * grid[2]
    # Positions in target pixel space: the canvas spans the whole 128x128 frame at any factor.
    assert float(enc.coords[0, 1, :, 1].max()) == 128.0 and float(enc.coords[0, 2, :, 1].max()) == 128.0
    assert float(enc.coords[0, 1, :, 0].min()) == 0.0
    result = engine.render(request(width=128, height=128, controls=[ControlInput(
        frames=canvas(height=128, width=128), lora="control", reference_downscale_factor=factor)]))
    assert result.info["references"] == [{"name": "control:depth+pose", "reference_downscale_factor": factor,
                                          "tokens": enc.tokens.shape[1], "latent_grid": list(grid)}]
    assert result.info["controls"][0]["factor_source"] == "request"


def test_mixed_factors_in_one_generation(engine, canvas):
    track = dolly_track(9, 128, 128)
    ctrl = canvas(height=128, width=128)
    control_only = engine.render(request(width=128, height=128, controls=[ControlInput(frames=ctrl, lora="control")],
                                         camera=CameraRequest(mode="off")))
    latents_control_only = engine.last_latents
    both = engine.render(request(width=128, height=128, controls=[ControlInput(frames=ctrl, lora="control")],
                                 camera=CameraRequest(mode="trajectory", trajectory_lora="camera_trajectory",
                                                      frames=track)))
    refs = {r["name"]: (r["reference_downscale_factor"], r["tokens"]) for r in both.info["references"]}
    assert refs == {"control:depth+pose": (1, 32), "camera_trajectory": (4, 2)}
    assert [lo["name"] for lo in both.info["loras"]] == ["control", "camera_trajectory"]
    assert both.info["camera"]["canvas_size"] == [32, 32]
    assert gap(engine.last_latents, latents_control_only) > 1e-3
    assert control_only.info["camera"] == {"mode": "off"}


def test_request_overrides_the_trajectory_factor(engine):
    camera = CameraRequest(mode="trajectory", trajectory_lora="camera_trajectory", frames=dolly_track(9, 128, 128),
                           reference_downscale_factor=2)
    result = engine.render(request(width=128, height=128, camera=camera))
    cam = result.info["camera"]
    assert (cam["reference_downscale_factor"], cam["factor_source"], cam["canvas_size"]) == (2, "request", [64, 64])
    assert result.info["references"] == [{"name": "camera_trajectory", "reference_downscale_factor": 2,
                                          "tokens": 2 * 2 * 2, "latent_grid": [2, 2, 2]}]


def test_two_adapters_with_weights_in_one_generation(engine, canvas):
    track = dolly_track(9, 64, 64)
    results = {}
    for w in (0.3, 0.9):
        req = request(controls=[ControlInput(frames=canvas(), lora="control", lora_weight=0.8)],
                      camera=CameraRequest(mode="preset", preset_lora="camera_dolly_in", weight=w, frames=track))
        results[w] = engine.render(req)
        assert sorted(engine.pipe.get_active_adapters()) == ["camera_dolly_in", "control"]
        results[w, "latents"] = engine.last_latents
    assert [(lo["name"], lo["weight"]) for lo in results[0.9].info["loras"]] == [("control", 0.8),
                                                                                ("camera_dolly_in", 0.9)]
    assert gap(results[0.3, "latents"], results[0.9, "latents"]) > 1e-3


def test_auto_camera_applies_the_matching_preset(engine):
    result = engine.render(request(camera=CameraRequest(mode="auto", weight=0.5, frames=dolly_track(9, 64, 64))))
    cam = result.info["camera"]
    assert (cam["move"], cam["preset"], cam["lora"]) == ("dolly_in", "dolly_in", "camera_dolly_in")
    assert result.info["loras"] == [{"name": "camera_dolly_in", "weight": 0.5, "kind": "camera_preset",
                                     "sha256": engine.loras["camera_dolly_in"].sha256}]


def test_auto_camera_without_a_matching_preset_says_so(tiny_model, canvas):
    from render_backend.engine.loras import find_loras
    from render_backend.engine.ltx2.engine import LTX2Engine

    loras = {k: v for k, v in find_loras(tiny_model / "loras").items() if k != "camera_dolly_in"}
    e = LTX2Engine(str(tiny_model), loras=loras)
    e.load()
    result = e.render(request(camera=CameraRequest(mode="auto", frames=dolly_track(9, 64, 64))))
    assert result.info["camera"]["lora"] is None and result.info["loras"] == []
    assert "no camera preset LoRA for 'dolly_in' is installed" in result.info["camera"]["note"]


def test_a_frame_condition_holds_the_shots_first_frames_and_reaches_the_rest(engine, canvas):
    """Continuity across windows: the previous window's last 9 frames are this window's first 2 latent
    frames, exactly (in place, timestep 0), and the frames after them are generated knowing them."""
    from render_backend.engine.ltx2.references import ReferenceCanvas, encode_reference
    from render_backend.engine.request import FrameCondition

    previous = engine.render(request(num_frames=17, seed=1)).video
    condition = previous[-9:]
    held = encode_reference(engine.pipe, ReferenceCanvas("c", condition, 1, 1.0), 64, 64, 24.0,
                            torch.device("cpu"), torch.float32).tokens[0]  # (8, C): 2 latent frames of 2x2
    n = held.shape[0]
    engine.render(request(num_frames=17, seed=2))
    free = engine.last_latents[0]
    result = engine.render(request(num_frames=17, seed=2, conditions=[FrameCondition(frames=condition)]))
    pinned = engine.last_latents[0]
    assert float((pinned[:n] - held).abs().max()) < 1e-6  # window 2 starts where window 1 ended
    assert float((free[:n] - held).norm() / held.norm()) > 0.5  # without it, it does not
    assert gap(pinned[n:], free[n:]) > 1e-3  # the condition reaches the frames after it
    assert result.info["conditions"] == [{"start_frame": 0, "frames": 9, "strength": 1.0,
                                          "held": "in place: the shot's first latent frames"}]
    weaker = engine.render(request(num_frames=17, seed=2, conditions=[FrameCondition(frames=condition, strength=0.5)]))
    assert gap(engine.last_latents[0][n:], pinned[n:]) > 1e-4 and weaker.video.shape == (17, 64, 64, 3)
