"""LoRA kinds from metadata and published file names."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from render_backend.engine.contract import LoraCapability
from render_backend.engine.loras import camera_move_from_name, find_loras, infer_kind, inspect_lora
from render_backend.engine.request import LoraMismatch


@pytest.mark.parametrize("name, metadata, expected", [
    ("ltx-2-19b-lora-camera-control-dolly-in", {}, ("camera_preset", None, "dolly_in")),
    ("ltx-2-19b-lora-camera-control-jib-down", {}, ("camera_preset", None, "jib_down")),
    ("LTX-2-19b-LoRA-Camera-Control-Static", {}, ("camera_preset", None, "static")),
    ("ltx-2.3-22b-ic-lora-union-control", {"reference_downscale_factor": "2"}, ("control", 2, None)),
    ("my-camera-trajectory-ic", {"reference_downscale_factor": "4"}, ("camera_trajectory", 4, None)),
    ("watercolour-style", {}, ("style", None, None)),
    ("anything", {"ltx_blender_kind": "control"}, ("control", 1, None)),  # an IC-LoRA without a factor: 1
    ("anything", {"ltx_blender_kind": "camera_preset", "camera_move": "jib_up"}, ("camera_preset", None, "jib_up")),
])
def test_kind_from_metadata_then_file_name(name, metadata, expected):
    assert infer_kind(name, metadata) == expected


def test_move_names_are_matched_as_whole_words():
    assert camera_move_from_name("camera_dolly_left_v2") == "dolly_left"
    assert camera_move_from_name("dollyinator") is None


@pytest.mark.parametrize("metadata, message", [
    ({"reference_downscale_factor": "1.5"}, "must be a positive integer"),
    ({"reference_downscale_factor": "two"}, "is not a number"),
    ({"ltx_blender_kind": "depth"}, "is not one of control, camera_preset"),
    ({"ltx_blender_kind": "camera_preset"}, "names no known move"),
])
def test_bad_metadata_is_refused_with_the_reason(metadata, message):
    with pytest.raises(LoraMismatch, match=message):
        infer_kind("file", metadata)


def test_inspect_reads_rank_and_refuses_non_lora_files(tmp_path):
    good = tmp_path / "style_a.safetensors"
    save_file({"transformer.x.lora_A.weight": torch.zeros(8, 3), "transformer.x.lora_B.weight": torch.zeros(3, 8)},
              str(good))
    info = inspect_lora("style_a", good)
    assert (info.kind, info.rank, len(info.sha256)) == ("style", 8, 64)
    assert info.capability() == LoraCapability(name="style_a", kind="style", reference_downscale_factor=None,
                                               camera_move=None, sha256=info.sha256, rank=8)
    full = tmp_path / "full_weights.safetensors"
    save_file({"transformer.x.weight": torch.zeros(3, 3)}, str(full))
    with pytest.raises(LoraMismatch, match="no lora_A/lora_down weights: not a LoRA file"):
        inspect_lora("full_weights", full)
    assert find_loras(tmp_path) == {"full_weights": str(full), "style_a": str(good)}


@pytest.mark.parametrize("stem, metadata, kind, canvas, base", [
    # Lightricks' published files, as downloaded: no kind keys, the name says it all.
    ("ltx-2-19b-ic-lora-depth-control", {}, "control", "depth", "ltx-2"),
    ("ltx-2-19b-ic-lora-pose-control", {}, "control", "pose", "ltx-2"),
    ("ltx-2-19b-ic-lora-canny-control", {}, "control", "edges", "ltx-2"),
    ("ltx-2-19b-ic-lora-union-ref0.5", {"reference_downscale_factor": "2"}, "control", "depth,pose,edges", "ltx-2"),
    ("ltx-2.3-22b-ic-lora-union-control-ref0.5", {"reference_downscale_factor": "2"}, "control",
     "depth,pose,edges", "ltx-2.3"),
    ("ltx-2.5-22b-ic-lora-layout-to-render", {}, "control", "playblast", "ltx-2.5"),
    ("ltx-2-19b-lora-camera-control-dolly-in", {}, "camera_preset", None, "ltx-2"),
    # Our own (trained by `render-backend train`): the metadata says it.
    ("my_dolly_zoom", {"ltx_blender_kind": "control", "ltx_blender_canvas": "depth+pose",
                       "ltx_blender_base": "ltx-2.3", "reference_downscale_factor": "1"},
     "control", "depth+pose", "ltx-2.3"),
    ("mystery_ic", {"reference_downscale_factor": "1"}, "control", None, None),
])
def test_published_and_own_loras_say_what_canvas_they_read(tmp_path, stem, metadata, kind, canvas, base):
    path = tmp_path / f"{stem}.safetensors"
    save_file({"transformer.x.lora_A.weight": torch.zeros(4, 3), "transformer.x.lora_B.weight": torch.zeros(3, 4)},
              str(path), metadata=metadata)
    info = inspect_lora("renamed_by_the_server", path)  # --lora NAME=PATH: the file's own name still counts
    assert (info.kind, info.canvas, info.base) == (kind, canvas, base)
    cap = info.capability()
    assert cap.canvas == canvas and cap.base == base
    if canvas:
        assert cap.reads(canvas.split(",")[0]) and not cap.reads("playblast" if canvas != "playblast" else "depth")


def test_a_declared_canvas_fills_in_only_what_the_file_does_not_say(tmp_path):
    path = tmp_path / "mystery_ic.safetensors"
    save_file({"transformer.x.lora_A.weight": torch.zeros(4, 3), "transformer.x.lora_B.weight": torch.zeros(3, 4)},
              str(path), metadata={"reference_downscale_factor": "1"})
    assert inspect_lora("mystery_ic", path, canvas="edges").canvas == "edges"
    with pytest.raises(LoraMismatch, match=r"--lora-canvas names canvas kind\(s\) 'normals'; use one or more of"):
        inspect_lora("mystery_ic", path, canvas="normals")
