"""What the add-on makes of a server's Capabilities (protocol 2.0): each LoRA's
reference_downscale_factor and the two-stage switch give the canvas size, the size rule they imply
and the panel's size note. No bpy, no network."""

from __future__ import annotations

import json

import pytest

from blender_addon.client.limits import (
    canvas_size_for,
    reference_canvases,
    reference_size_for,
    server_limits,
    size_rule,
    snap_size_for,
)
from blender_addon.proto import render_pb2 as pb

CONTROL, TRAJECTORY = pb.LORA_KIND_CONTROL, pb.LORA_KIND_CAMERA_TRAJECTORY


def _caps(*loras, size_multiple=32, max_side=1920, two_stage=False) -> pb.Capabilities:
    return pb.Capabilities(protocol_version="2.0", size_multiple=size_multiple, max_width=max_side,
                           max_height=max_side, max_frames=121, loras=list(loras), two_stage=two_stage,
                           latent_cell=32)


def test_server_limits_give_each_canvas_loras_factor_and_the_stage_rule():
    caps = _caps(pb.LoraInfo(name="depth", kind=CONTROL, reference_downscale_factor=2, canvas="depth"),
                 pb.LoraInfo(name="old_depth", kind=CONTROL, reference_downscale_factor=1),
                 pb.LoraInfo(name="traj", kind=TRAJECTORY, reference_downscale_factor=4),
                 pb.LoraInfo(name="cam_in", kind=pb.LORA_KIND_CAMERA_PRESET, camera_move="dolly_in"),
                 size_multiple=64, two_stage=True)
    limits = json.loads(json.dumps(server_limits(caps)))  # as stored in the preferences
    assert limits["reference_factors"] == {"depth": 2, "old_depth": 1, "traj": 4}
    assert limits["canvases"] == {"depth": "depth"} and limits["controls"] == ["depth", "old_depth"]
    assert limits["size_multiple"] == 64 and limits["camera_trajectories"] == ["traj"] and limits["two_stage"]
    # Two-stage: references ride in the half-size first stage, so a factor-2 canvas is 1/4 of the video.
    assert reference_size_for("depth", limits) == (4, 128) and reference_size_for("nope", limits) == (0, 0)
    assert canvas_size_for("depth", limits, 768, 512) == (192, 128)
    assert canvas_size_for("", limits, 768, 512, fallback_factor=2) == (384, 256)  # no LoRA: the panel's factor
    assert canvas_size_for("unknown", {}, 768, 512, fallback_factor=1) == (768, 512)  # never tested the connection


def test_the_estimate_counts_each_canvas_the_shot_sends_at_its_factor_and_temporal_scale():
    limits = json.loads(json.dumps(server_limits(_caps(
        pb.LoraInfo(name="pose_x2", kind=CONTROL, reference_downscale_factor=2, reference_temporal_scale_factor=2),
        pb.LoraInfo(name="traj", kind=TRAJECTORY, reference_downscale_factor=4)))))
    assert limits["reference_temporal_scales"] == {"pose_x2": 2}  # 1 (every frame) is left out
    assert reference_canvases(limits, "pose_x2", True, "auto") == ((2,), (2,))
    # Trajectory mode adds the trajectory canvas ('' = the server's only one); no control, no control canvas.
    assert reference_canvases(limits, "pose_x2", True, "trajectory", "") == ((2, 4), (2, 1))
    assert reference_canvases(limits, "", False, "trajectory", "traj") == ((4,), (1,))
    # Before a Test connection: the panel's factor for the control, nothing for an unknown trajectory LoRA.
    assert reference_canvases({}, "depth", True, "trajectory", "mine", fallback_factor=3) == ((3,), (1,))
    assert reference_canvases(limits, "", False, "auto") == ((), ())


def test_size_note_names_the_control_loras_canvas():
    limits = server_limits(_caps(pb.LoraInfo(name="depth", kind=CONTROL, reference_downscale_factor=4)))
    assert snap_size_for(250, 128, limits, "depth") == (
        256, 128, "width 250 -> 256: the control LoRA 'depth' reads a 1/4-size canvas, so sizes must be "
        "multiples of 128")
    assert snap_size_for(768, 512, limits, "depth") == (768, 512, "")
    # 160 = 1.25 x 128 -> 128; without the LoRA, 160 is a fine multiple of 32
    assert snap_size_for(256, 160, limits, "depth")[:2] == (256, 128)
    assert snap_size_for(256, 160, limits) == (256, 160, "")
    assert snap_size_for(250, 160, limits) == (256, 160, "width 250 -> 256: sizes must be multiples of 32")


def test_trajectory_lora_counts_only_in_trajectory_mode():
    limits = server_limits(_caps(
        pb.LoraInfo(name="x2", kind=CONTROL, reference_downscale_factor=2),
        pb.LoraInfo(name="traj", kind=TRAJECTORY, reference_downscale_factor=4)))
    assert size_rule(limits, "x2", "auto") == (64, "the control LoRA 'x2' reads a 1/2-size canvas, so sizes "
                                                    "must be multiples of 64")
    # '' = the server's only trajectory LoRA; the larger rule is the one that binds and is named
    assert size_rule(limits, "x2", "trajectory", "") == (
        128, "the trajectory LoRA 'traj' reads a 1/4-size canvas, so sizes must be multiples of 128")
    assert snap_size_for(250, 160, limits, "x2", "trajectory") == (
        256, 128, "width 250 -> 256, height 160 -> 128: the trajectory LoRA 'traj' reads a 1/4-size canvas, "
        "so sizes must be multiples of 128")
    assert snap_size_for(250, 160, limits, "x2", "preset")[:2] == (256, 192)  # 160 / 64 = 2.5 rounds up


def test_rules_that_do_not_divide_each_other_are_all_named():
    limits = {"size_multiple": 32, "reference_factors": {"a": 3, "t": 4}}
    assert size_rule(limits, "a", "trajectory", "t") == (
        384, "the trajectory LoRA 't' reads a 1/4-size canvas and the control LoRA 'a' reads a 1/3-size "
        "canvas, so sizes must be multiples of 384")


def test_size_note_keeps_the_servers_maximum_first():
    limits = server_limits(_caps(pb.LoraInfo(name="depth", kind=CONTROL, reference_downscale_factor=2), max_side=1280))
    w, h, note = snap_size_for(2000, 1000, limits, "depth")
    assert (w, h) == (1280, 640) and w % 64 == 0 and h % 64 == 0
    assert note == ("width 2000 -> 1280, height 1000 -> 640: the server's maximum is 1280x1280; the control LoRA "
                    "'depth' reads a 1/2-size canvas, so sizes must be multiples of 64")
    with pytest.raises(ValueError, match=r"multiples of 2048, but the server's maximum is 1920x-; pick a LoRA"):
        snap_size_for(300, 300, {"max_width": 1920, "reference_factors": {"huge": 64}}, "huge")


def _kinds_caps():
    return server_limits(_caps(
        pb.LoraInfo(name="union", kind=CONTROL, reference_downscale_factor=2, canvas="depth,pose,edges",
                    base_model="ltx-2.3"),
        pb.LoraInfo(name="blender", kind=CONTROL, reference_downscale_factor=1, canvas="depth+pose"),
        pb.LoraInfo(name="mystery", kind=CONTROL, reference_downscale_factor=1),
        pb.LoraInfo(name="old_depth", kind=CONTROL, reference_downscale_factor=1, canvas="depth", base_model="ltx-2")))


def test_the_canvas_follows_the_loras_training():
    from blender_addon.client.limits import canvas_kind_for

    limits = _kinds_caps()
    assert canvas_kind_for("union", limits) == "depth"  # a union LoRA: its first kind unless the artist picks
    assert canvas_kind_for("union", limits, "pose") == "pose"
    assert canvas_kind_for("blender", limits) == "depth+pose" and canvas_kind_for("mystery", limits) == "depth+pose"
    assert canvas_kind_for("mystery", limits, "edges") == "edges"  # nothing says otherwise
    with pytest.raises(ValueError, match="'union' was trained on depth or pose or edges canvases, not playblast"):
        canvas_kind_for("union", limits, "playblast")


def test_a_scene_without_a_control_lora_gets_the_servers_that_fits():
    from blender_addon.client.limits import choose_control_lora

    limits = _kinds_caps()
    assert choose_control_lora(limits)[0] == "blender"  # known canvases first, then by name
    assert choose_control_lora(limits, "pose") == ("union", "control LoRA 'union' (reads depth or pose or edges)")
    assert choose_control_lora(dict(limits, model_generation="ltx-2"), "depth")[0] == "old_depth"
    assert choose_control_lora(limits, "playblast")[0] == "mystery"  # undeclared: may read anything
    with pytest.raises(ValueError, match="no control LoRA for pose canvases on ltx-2; installed control LoRAs: "
                                         "blender, mystery, old_depth, union"):
        choose_control_lora(dict(limits, model_generation="ltx-2", canvases={"blender": "depth+pose",
                                                                             "mystery": "edges",
                                                                             "old_depth": "depth"}), "pose")


def test_server_limits_keep_the_model_generation_so_the_pick_fits_it():
    from blender_addon.client.limits import choose_control_lora

    caps = _caps(pb.LoraInfo(name="ltx-2-19b-ic-lora-depth-control", kind=CONTROL, reference_downscale_factor=1,
                             canvas="depth", base_model="ltx-2"),
                 pb.LoraInfo(name="ltx-2.3-22b-ic-lora-union-control-ref0.5", kind=CONTROL,
                             reference_downscale_factor=2, canvas="depth,pose,edges", base_model="ltx-2.3"))
    caps.model_generation = "ltx-2.3"
    limits = json.loads(json.dumps(server_limits(caps)))  # as stored in the preferences
    assert limits["model_generation"] == "ltx-2.3"
    assert choose_control_lora(limits, "depth")[0] == "ltx-2.3-22b-ic-lora-union-control-ref0.5"  # not the 2.0 one
    caps.model_generation = ""  # an older server: every LoRA is a candidate, by name
    assert choose_control_lora(server_limits(caps), "depth")[0] == "ltx-2-19b-ic-lora-depth-control"
