"""Pose export options on a real scene: occlusion on/off (a wall in front of one wrist), manual
bone maps for a custom rig (in process and through `export --bone-map`), and the warning for a
rig nobody can read."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from bpy_extras.object_utils import world_to_camera_view  # noqa: E402

from blender_addon.core.bundle import read_bundle  # noqa: E402
from blender_addon.core.openpose import COCO18_NAMES  # noqa: E402
from blender_addon.gather.export import export_shot  # noqa: E402

from . import scenes  # noqa: E402

pytestmark = pytest.mark.blender

W, H = 192, 128
REPO = Path(__file__).resolve().parents[2]
J = {n: i for i, n in enumerate(COCO18_NAMES)}
CUSTOM_NAMES = {part: f"c_{part}" for part in scenes.RIGIFY_NAMES}  # matches no known rig
CUSTOM_MAP = {joint: CUSTOM_NAMES[part] for part, joint in scenes.COCO_OF_PART.items()}


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    root = tmp_path_factory.mktemp("pose_options")
    sc = scenes.empty_scene(W, H)
    actors = scenes.collection(sc, "Actors")
    scenes.armature(actors, "Hero", scenes.biped_bones(scenes.RIGIFY_NAMES))
    scenes.armature(actors, "Custom", scenes.biped_bones(CUSTOM_NAMES), location=(1.2, 0, 0))
    cam = scenes.looking_along_y(sc, distance=4.0, lens=30)
    # An 8 cm wall halfway between the camera and Hero's left wrist (0.23, 0, 0.90): it hides
    # that wrist only (the nearest other joint, the left hip, is 2 px clear of its edge).
    wrist = np.array([0.23, 0.0, 0.90])
    centre = (np.array(cam.location) + wrist) / 2
    wall = scenes.plane(scenes.collection(sc, "Set"), "Wall", 0.08, 0.08, location=tuple(centre),
                        rotation=(math.pi / 2, 0, 0))
    assert wall.location.y == pytest.approx(-2.0)
    blend = root / "pose.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return sc, blend, root


def _projected(scene, rig_name: str, names: dict) -> dict[str, tuple[float, float]]:
    """COCO joint -> (u, v) pixels from Blender's own projection of the bone heads."""
    scene.frame_set(1)
    rig = bpy.data.objects[rig_name].evaluated_get(bpy.context.evaluated_depsgraph_get())
    out = {}
    for part, joint in scenes.COCO_OF_PART.items():
        ndc = world_to_camera_view(scene, scene.camera, rig.matrix_world @ rig.pose.bones[names[part]].head)
        out[joint] = (ndc.x * W, (1.0 - ndc.y) * H)
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "blender_addon.cli", "export", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)


def test_occluded_wrist_is_hidden_and_an_unknown_rig_warns(shot):
    scene, _, root = shot
    warnings: list[str] = []
    b = read_bundle(export_shot(scene, root / "occluded", frame_start=1, frame_end=9, targets=[],
                                armatures=["Hero", "Custom"], width=W, height=H, engine="cycles",
                                warn=warnings.append))
    hero, custom = b.pose(0)
    assert hero[J["l_wrist"], 2] == 0.0  # behind the wall
    for joint in ("r_wrist", "l_elbow", "l_hip", "l_shoulder"):
        assert hero[J[joint], 2] == 1.0, joint
    # The custom rig: no keypoints, and one warning that names it and says what to do.
    assert not custom[:, 2].any()
    assert len(warnings) == 1
    assert "armature 'Custom'" in warnings[0] and "no known rig" in warnings[0] and "--bone-map" in warnings[0]


def test_cli_no_occlusion_and_bone_map(shot, tmp_path):
    scene, blend, _ = shot
    bone_map = tmp_path / "bones.json"
    bone_map.write_text(json.dumps({"Custom": CUSTOM_MAP}))
    run = _cli(str(blend), "--out", str(tmp_path / "b"), "--armatures", "Hero,Custom", "--no-occlusion",
               "--bone-map", str(bone_map), "--engine", "cycles", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr
    hero, custom = read_bundle(tmp_path / "b").pose(0)
    wrist = _projected(scene, "Hero", scenes.RIGIFY_NAMES)["l_wrist"]
    assert hero[J["l_wrist"], 2] == 1.0 and tuple(hero[J["l_wrist"], :2]) == pytest.approx(wrist, abs=0.01)
    for joint, (u, v) in _projected(scene, "Custom", CUSTOM_NAMES).items():
        assert tuple(custom[J[joint]]) == pytest.approx((u, v, 1.0), abs=0.01), joint
    shoulders = custom[[J["l_shoulder"], J["r_shoulder"]], :2].mean(axis=0)
    assert tuple(custom[J["neck"], :2]) == pytest.approx(tuple(shoulders), abs=0.01)


@pytest.mark.parametrize("doc, message", [
    ({"Custom": {"left_wrist": "c_l_hand"}}, "'left_wrist' not COCO-18 joint name(s); use: nose, neck, r_shoulder"),
    ({"Custom": {"l_wrist": "c_l_paw"}}, "bone map for armature 'Custom': no bone for l_wrist='c_l_paw'"),
    (["l_wrist"], "must be a JSON object"),
])
def test_cli_bad_bone_map_says_what_to_fix(shot, tmp_path, doc, message):
    _, blend, _ = shot
    bone_map = tmp_path / "bones.json"
    bone_map.write_text(json.dumps(doc))
    run = _cli(str(blend), "--out", str(tmp_path / "b"), "--armatures", "Custom", "--bone-map", str(bone_map))
    assert run.returncode == 2
    assert message in run.stderr
    assert not (tmp_path / "b" / "shot.json").exists()
