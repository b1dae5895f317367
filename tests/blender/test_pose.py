"""OpenPose keypoints of Rigify- and Mixamo-named armatures land on Blender's projection of their joints."""

from __future__ import annotations

import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from bpy_extras.object_utils import world_to_camera_view  # noqa: E402

from blender_addon.core.bundle import read_bundle  # noqa: E402
from blender_addon.core.openpose import COCO18_NAMES  # noqa: E402
from blender_addon.gather.export import export_shot  # noqa: E402
from blender_addon.gather.pose import hide_occluded  # noqa: E402

from . import scenes  # noqa: E402

pytestmark = pytest.mark.blender

W, H, FACTOR = 320, 192, 2  # control canvas 160x96


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    sc = scenes.empty_scene(W, H)
    actors = scenes.collection(sc, "Actors")
    stage = scenes.collection(sc, "Stage")
    scenes.plane(stage, "Backdrop", 6, 3, location=(0, 3, 1.2), rotation=(math.pi / 2, 0, 0))
    hero = scenes.armature(actors, "Hero", scenes.biped_bones(scenes.RIGIFY_NAMES), location=(-0.6, 0, 0))
    mixer = scenes.armature(actors, "Mixer", scenes.biped_bones(scenes.MIXAMO_NAMES, unit=100, prefix="mixamorig:"),
                            location=(0.6, 0, 0), scale=0.01)
    # Ghost reaches back: its left hand (wrist joint) is 1.5 m behind the camera.
    ghost_bones = [(n, (0.23, -5.5, 1.0), (0.23, -5.6, 1.0), p) if n == "DEF-hand.L" else (n, h, t, p)
                   for n, h, t, p in scenes.biped_bones(scenes.RIGIFY_NAMES)]
    scenes.armature(actors, "Ghost", ghost_bones, location=(0, 1.0, 0))
    scenes.looking_along_y(sc, distance=4.0, lens=30)
    # Animate poses so the evaluated pose (not the rest pose) must be read.
    for rig, bone in ((hero, "DEF-upper_arm.L"), (mixer, "mixamorig:RightArm")):
        pb = rig.pose.bones[bone]
        pb.rotation_mode = "XYZ"
        for frame, angle in ((1, 0.0), (9, 1.2)):
            pb.rotation_euler = (0, 0, angle)  # about the bone's Z: swings sideways
            pb.keyframe_insert("rotation_euler", frame=frame)
    sc.frame_set(1)
    out = export_shot(sc, tmp_path_factory.mktemp("pose") / "bundle", frame_start=1, frame_end=9,
                      targets=["Stage"], armatures=["Hero", "Mixer", "Ghost"], width=W, height=H,
                      canvas_size=(W // FACTOR, H // FACTOR), prompt="two dancers", engine="cycles")
    return sc, read_bundle(out)


def _expected_pixels(scene, rig_name: str, frame: int) -> dict[str, tuple[float, float]]:
    """COCO joint -> (u, v) in control-canvas pixels, from Blender's own projection of bone heads."""
    scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    rig = bpy.data.objects[rig_name].evaluated_get(depsgraph)
    names = scenes.MIXAMO_NAMES if rig_name == "Mixer" else scenes.RIGIFY_NAMES
    prefix = "mixamorig:" if rig_name == "Mixer" else ""
    cw, ch = W // FACTOR, H // FACTOR
    out = {}
    for part, joint in scenes.COCO_OF_PART.items():
        world = rig.matrix_world @ rig.pose.bones[prefix + names[part]].head
        ndc = world_to_camera_view(scene, scene.camera, world)
        out[joint] = (ndc.x * cw, (1.0 - ndc.y) * ch)
    return out


@pytest.mark.parametrize("rig_index, rig_name", [(0, "Hero"), (1, "Mixer")])
@pytest.mark.parametrize("frame", [1, 5, 9])
def test_keypoints_land_on_projected_joints(bundle, rig_index, rig_name, frame):
    scene, b = bundle
    people = b.pose(frame - 1)
    assert len(people) == 3
    keypoints = people[rig_index]
    for joint, (u, v) in _expected_pixels(scene, rig_name, frame).items():
        x, y, c = keypoints[COCO18_NAMES.index(joint)]
        assert c == 1.0, joint
        assert (x, y) == pytest.approx((u, v), abs=0.01), f"{rig_name} {joint} frame {frame}"
    neck = keypoints[COCO18_NAMES.index("neck")]
    shoulders = keypoints[[COCO18_NAMES.index("l_shoulder"), COCO18_NAMES.index("r_shoulder")], :2]
    assert neck[:2] == pytest.approx(shoulders.mean(axis=0), abs=0.01)  # shoulders' midpoint


def test_the_raised_arm_moves_between_frames(bundle):
    _, b = bundle
    elbow = COCO18_NAMES.index("l_elbow")
    first, last = b.pose(0)[0][elbow], b.pose(8)[0][elbow]
    assert np.hypot(*(last[:2] - first[:2])) > 3.0  # pixels on the 160x96 canvas


def test_a_joint_behind_the_camera_is_invisible(bundle):
    _, b = bundle
    ghost = b.pose(0)[2]
    assert tuple(ghost[COCO18_NAMES.index("l_wrist")]) == (0.0, 0.0, 0.0)
    assert ghost[COCO18_NAMES.index("r_wrist"), 2] == 1.0


def test_manifest_names_armatures_and_control_size(bundle):
    _, b = bundle
    shot = b.shot
    assert (shot.width, shot.height, shot.controls[0].width, shot.controls[0].height) == (W, H, W // FACTOR, H // FACTOR)
    assert shot.armatures == ["Hero", "Mixer", "Ghost"]
    assert shot.prompt == "two dancers"
    # The skeleton is drawn: coloured (non-grey) pixels exist on the canvas.
    canvas = b.canvas(0, 4).astype(int)
    assert np.count_nonzero(np.ptp(canvas, axis=2) > 40) > 100


def test_occluded_joints_are_hidden_but_joints_on_their_own_surface_stay():
    depth = np.full((10, 10), 1e10, dtype=np.float32)
    depth[:, :5] = 2.0  # a wall 2 m away over the left half
    keypoints = np.zeros((18, 3))
    keypoints[0] = (2.5, 4.5, 1.0)  # behind the wall (joint at 4 m)
    keypoints[1] = (7.5, 4.5, 1.0)  # open background
    keypoints[2] = (3.5, 1.5, 1.0)  # on the wall's surface, joint 10 cm inside it
    z = np.full(18, 4.0)
    z[2] = 2.1
    hide_occluded(keypoints, z, depth)
    assert keypoints[0, 2] == 0 and keypoints[1, 2] == 1 and keypoints[2, 2] == 1
