"""Every canvas kind on a real rendered scene: a tilted cube (the target) walking toward the camera
in front of a wall, and a Rigify armature with finger bones. Checked against Blender's own numbers
(projection, a ray-cast of the same cube, Workbench's Solid render) and the user's settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from bpy_extras.object_utils import world_to_camera_view  # noqa: E402

from blender_addon.core.canvas_kinds import CanvasOptions, clip_canvases  # noqa: E402
from blender_addon.core.edges import edge_lines  # noqa: E402
from blender_addon.core.pose_drawing import FACE_DOT_COLOR, HAND_DOT_COLOR, HAND_EDGE_COLORS  # noqa: E402
from blender_addon.gather.camera_track import sample_camera  # noqa: E402
from blender_addon.gather.canvas_samples import iter_clip_samples, scene_canvas_options  # noqa: E402
from blender_addon.gather.gl_probe import workbench_available  # noqa: E402
from tests.core.raycast import cast_boxes  # noqa: E402

from . import scenes  # noqa: E402
from .test_depth_mask import _settings  # noqa: E402

pytestmark = pytest.mark.blender

W, H = 96, 64
FRAMES = (1, 2, 3)
WALL_Y = 3.0
CUBE_ROTATION = (0.4, 0.3, 0.6)


@pytest.fixture(scope="module")
def scene():
    sc = scenes.empty_scene(W, H)
    targets = scenes.collection(sc, "Targets")
    cube = scenes.box(targets, "Cube", 1.0, location=(0, 0, 1.0), rotation=CUBE_ROTATION)
    cube.color = (0.8, 0.1, 0.05, 1.0)
    scenes.plane(scenes.collection(sc, "Set"), "Wall", 40, 40, location=(0, WALL_Y, 1.0), rotation=(math.pi / 2, 0, 0))
    for frame, y in zip(FRAMES, (0.0, -0.5, -1.0), strict=True):  # walks toward the camera
        cube.location.y = y
        cube.keyframe_insert("location", frame=frame)
    actors = scenes.collection(sc, "Actors")
    bones = scenes.biped_bones(scenes.RIGIFY_NAMES) + scenes.rigify_hand_bones("L") + scenes.rigify_hand_bones("R")
    scenes.armature(actors, "Hero", bones, location=(-1.3, 0, 0))
    scenes.looking_along_y(sc, distance=4.0, lens=35.0)
    sc.world = bpy.data.worlds.new("World")
    sc.frame_set(1)
    return sc


def _clip(scene, kind, **kw):
    return list(iter_clip_samples(scene, FRAMES, kind=kind, width=W, height=H, targets=["Targets"],
                                  engine=kw.pop("engine", "cycles"), **kw))


def test_depth_is_normalised_over_the_clip_and_masks_to_the_targets(scene):
    clip = _clip(scene, "depth")
    assert clip[0].normals is None and clip[0].object_ids is None  # nothing extra rendered
    canvases = clip_canvases(clip, "depth", CanvasOptions(depth_scope="everything"))
    wall = ~clip[0].mask
    z_wall = clip[0].depth[wall]
    np.testing.assert_allclose(z_wall, 7.0, rtol=1e-4)  # the face-on wall: planar Z = 4 + 3 m
    z_near = min(float(s.depth[s.mask].min()) for s in clip)
    assert canvases[2].max() == 255 and canvases[0].max() < 255  # nearest pixel of the CLIP is white
    assert (canvases[0][wall] == 0).all()  # the wall is the farthest thing the camera sees
    inv = (1 / clip[0].depth[clip[0].mask] - 1 / 7.0) / (1 / z_near - 1 / 7.0)
    np.testing.assert_array_equal(canvases[0][clip[0].mask][:, 0], np.round(inv * 255).astype(np.uint8))
    targets_only = clip_canvases(clip, "depth", CanvasOptions(depth_scope="targets"))
    assert all((c[~s.mask] == 0).all() and c[s.mask].min() > 0 for c, s in zip(targets_only, clip, strict=True))


def test_edges_match_a_ray_cast_of_the_same_cube(scene):
    clip = _clip(scene, "edges")
    sample = clip[0]
    # the Object Index pass now also numbers objects: the target mask decoded from it is unchanged
    assert np.array_equal(sample.mask, _clip(scene, "depth")[0].mask) and sample.mask.sum() > 100
    scene.frame_set(1)
    cam = sample_camera(scene, W, H)
    w2c = cam.world_to_camera
    rot = w2c[:3, :3] @ np.array(bpy.data.objects["Cube"].matrix_world)[:3, :3]
    centre = w2c[:3, :3] @ np.array([0.0, 0.0, 1.0]) + w2c[:3, 3]
    wall = (w2c[:3, :3] @ np.array([0.0, WALL_Y, 1.0]) + w2c[:3, 3], np.array([20.0, 20.0, 1e-4]), np.eye(3))
    depth, normals, ids = cast_boxes(sample.intrinsics, [(centre, np.full(3, 0.5), rot), wall])
    cube = ids == 1
    assert (sample.object_ids[cube] != sample.object_ids[ids == 2][0]).mean() > 0.98
    np.testing.assert_allclose(sample.depth[cube & (sample.object_ids == sample.object_ids[H // 2, W // 2])],
                               depth[cube & (sample.object_ids == sample.object_ids[H // 2, W // 2])], rtol=1e-3)
    expected = edge_lines(depth, normals, sample.intrinsics, ids)
    got = clip_canvases(clip, "edges")[0][..., 0] > 0
    assert expected.sum() > 80
    assert (got != expected).sum() <= 0.05 * expected.sum()  # only pixels whose centre sits on an edge
    inner_wall = (ids == 2) & ~np.any([np.roll(cube, s, a) for s in (-2, -1, 1, 2) for a in (0, 1)], axis=0)
    assert not got[inner_wall].any()


def _playblasts(scene, colour: str, engine: str) -> np.ndarray:
    options = scene_canvas_options(scene, playblast_colour=colour)
    return clip_canvases(_clip(scene, "playblast", options=options, engine=engine)[:1], "playblast", options)[0]


@pytest.mark.parametrize("colour", ["grey", "object"])
def test_playblast_shaded_in_numpy_matches_workbench_solid_mode(scene, colour):
    cycles = _playblasts(scene, colour, "cycles")
    sample = _clip(scene, "edges")[0]
    cube = sample.mask
    faces = [cycles[cube & (np.abs(sample.normals - n).max(axis=2) < 1e-3)] for n in
             np.unique(np.round(sample.normals[cube], 3), axis=0)]
    assert len(faces) == 3 and len({int(f[:, 0].mean()) for f in faces}) == 3  # each face its own shade
    if colour == "grey":
        # grey under Blender's "Default" studio light, whose key light is a touch cool (0.521, 0.538, 0.538)
        assert np.ptp(cycles.astype(int), axis=2).max() <= 5
    else:
        assert (cycles[cube][:, 0] > 2 * cycles[cube][:, 2]).all()  # the cube's red viewport colour
    if not workbench_available():
        pytest.skip("Workbench needs OpenGL/EGL, not available on this machine")
    workbench = _playblasts(scene, colour, "workbench")
    diff = np.abs(workbench.astype(int) - cycles.astype(int)).max(axis=2)
    lines = edge_lines(sample.depth, sample.normals, sample.intrinsics, sample.object_ids)
    assert np.percentile(diff[~lines], 99) <= 2 and diff[~lines].mean() < 0.5


def test_pose_has_hands_from_finger_bones_and_warns_about_the_face(scene):
    warnings: list[str] = []
    # 768 x 512 so that a 3 cm finger bone 4 m away is 11 px long; no depth render (occlusion off)
    clip = list(iter_clip_samples(scene, (1,), kind="pose", width=W * 8, height=H * 8, armatures=["Hero"],
                                  engine="cycles", warn=warnings.append, occlusion=False))
    person = clip[0].people[0]
    assert person.face is None and person.hands.shape == (2, 21, 3)
    assert len(warnings) == 1 and "armature 'Hero' has no face landmark bones" in warnings[0]
    rig = bpy.data.objects["Hero"]
    for k, bone in enumerate(("DEF-f_index.01.L", "DEF-f_index.02.L", "DEF-f_index.03.L")):
        ndc = world_to_camera_view(scene, scene.camera, rig.matrix_world @ rig.pose.bones[bone].head)
        assert tuple(person.hands[0, 5 + k]) == pytest.approx((ndc.x * W * 8, (1 - ndc.y) * H * 8, 1.0), abs=0.01)
    canvas = clip_canvases(clip, "pose")[0]
    no_hands = clip_canvases(clip, "pose", CanvasOptions(hands=False))[0]
    blue = (canvas == HAND_DOT_COLOR).all(axis=2).sum()
    assert blue > (no_hands == HAND_DOT_COLOR).all(axis=2).sum() + 20  # (the l_knee joint is that blue too)
    thumb_edge = (canvas == HAND_EDGE_COLORS[1]).all(axis=2)  # a colour only hands use
    assert thumb_edge.any() and not (no_hands == HAND_EDGE_COLORS[1]).all(axis=2).any()


def test_face_landmark_bones_give_a_face(scene):
    rig = bpy.data.objects["Hero"]
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    for i in range(68):
        bone = rig.data.edit_bones.new(f"face_{i:02d}")
        bone.head = (-0.06 + 0.12 * (i % 17) / 16, -0.12, 1.62 + 0.03 * (i // 17))
        bone.tail = (bone.head[0], -0.14, bone.head[2])
    bpy.ops.object.mode_set(mode="OBJECT")
    try:
        warnings: list[str] = []
        clip = list(iter_clip_samples(scene, (1,), kind="pose", width=W * 4, height=H * 4, armatures=["Hero"],
                                      engine="cycles", warn=warnings.append, occlusion=False))
        face = clip[0].people[0].face
        assert warnings == [] and face.shape == (68, 3) and (face[:, 2] == 1).all()
        assert (clip_canvases(clip, "pose")[0] == FACE_DOT_COLOR).all(axis=2).sum() > 68
    finally:
        bpy.ops.object.mode_set(mode="EDIT")
        for i in range(68):
            rig.data.edit_bones.remove(rig.data.edit_bones[f"face_{i:02d}"])
        bpy.ops.object.mode_set(mode="OBJECT")


def test_settings_come_back_after_every_kind(scene):
    before = _settings(scene)
    for kind in ("edges", "playblast", "pose", "depth+pose"):
        _clip(scene, kind, armatures=["Hero"], warn=[].append)
    if workbench_available():  # Workbench's Solid-mode render swaps display and shading settings
        _clip(scene, "playblast", options=scene_canvas_options(scene, playblast_colour="object"), engine="workbench")
    assert _settings(scene) == before  # includes the view layer's passes, pass indices and object colours
