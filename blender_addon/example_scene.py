"""A small example shot built from code: a rigged character walking across a set while the
camera does a dolly zoom (it pulls back as the focal length grows, so the walker keeps his size
on screen while the background stretches behind him).

Used by `./dev demo`, the tests, and the add-on's "Add example shot" operator. Bone names follow
Rigify's deform bones (DEF-upper_arm.L, ...) so the OpenPose mapping recognises the rig.
"""

from __future__ import annotations

import math

import bpy
from mathutils import Vector

# (name, head, tail, parent) in the armature's rest space, metres, Z up, facing -Y.
_BONES = [
    ("DEF-spine", (0, 0, 0.95), (0, 0, 1.15), None),
    ("DEF-spine.003", (0, 0, 1.15), (0, 0, 1.45), "DEF-spine"),
    ("DEF-spine.004", (0, 0, 1.45), (0, 0, 1.55), "DEF-spine.003"),  # neck
    ("DEF-spine.006", (0, 0, 1.55), (0, 0, 1.80), "DEF-spine.004"),  # head
    ("DEF-upper_arm.L", (0.20, 0, 1.42), (0.22, 0, 1.14), "DEF-spine.003"),
    ("DEF-forearm.L", (0.22, 0, 1.14), (0.23, 0, 0.90), "DEF-upper_arm.L"),
    ("DEF-hand.L", (0.23, 0, 0.90), (0.23, 0, 0.80), "DEF-forearm.L"),
    ("DEF-upper_arm.R", (-0.20, 0, 1.42), (-0.22, 0, 1.14), "DEF-spine.003"),
    ("DEF-forearm.R", (-0.22, 0, 1.14), (-0.23, 0, 0.90), "DEF-upper_arm.R"),
    ("DEF-hand.R", (-0.23, 0, 0.90), (-0.23, 0, 0.80), "DEF-forearm.R"),
    ("DEF-thigh.L", (0.10, 0, 0.95), (0.10, 0, 0.52), "DEF-spine"),
    ("DEF-shin.L", (0.10, 0, 0.52), (0.10, 0, 0.08), "DEF-thigh.L"),
    ("DEF-foot.L", (0.10, 0, 0.08), (0.10, -0.15, 0.02), "DEF-shin.L"),
    ("DEF-thigh.R", (-0.10, 0, 0.95), (-0.10, 0, 0.52), "DEF-spine"),
    ("DEF-shin.R", (-0.10, 0, 0.52), (-0.10, 0, 0.08), "DEF-thigh.R"),
    ("DEF-foot.R", (-0.10, 0, 0.08), (-0.10, -0.15, 0.02), "DEF-shin.R"),
]
# Limb thickness (radius, metres) of the body part hung on each bone.
_RADIUS = {"DEF-spine.006": 0.11, "DEF-spine": 0.15, "DEF-spine.003": 0.17, "DEF-spine.004": 0.05}


def build_example_scene(frames: int = 25, width: int = 512, height: int = 320, fps: int = 24) -> bpy.types.Scene:
    """Replace the open file with the example shot and return its scene.

    The walker is in the collection "Actors" (the demo's target), the set in "Set".
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.name = "WalkDollyZoom"
    scene.frame_start, scene.frame_end = 1, frames
    scene.render.fps, scene.render.fps_base = fps, 1.0
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100

    actors = bpy.data.collections.new("Actors")
    set_coll = bpy.data.collections.new("Set")
    scene.collection.children.link(actors)
    scene.collection.children.link(set_coll)

    _build_set(set_coll)
    _build_walker(actors, frames)
    _build_dolly_zoom_camera(scene, frames)
    scene.frame_set(1)
    return scene


def _box(coll, name, size, location):
    mesh = bpy.data.meshes.new(name)
    sx, sy, sz = (s / 2 for s in size)
    verts = [(x, y, z) for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh.from_pydata(verts, [], faces)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    coll.objects.link(obj)
    return obj


def _build_set(coll):
    _box(coll, "Floor", (12, 16, 0.02), (0, 2, -0.01))
    _box(coll, "BackWall", (12, 0.2, 4), (0, 7, 2))
    for i, x in enumerate((-3.0, -1.2, 1.5, 3.2)):
        _box(coll, f"Pillar.{i}", (0.4, 0.4, 3.0), (x, 4.5, 1.5))
    _box(coll, "Crate", (0.8, 0.8, 0.8), (1.6, 1.5, 0.4))
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.data.energy = 4.0
    sun.rotation_euler = (0.6, 0.3, 0.5)
    coll.objects.link(sun)


def _build_walker(coll, frames):
    arm_data = bpy.data.armatures.new("WalkerRig")
    rig = bpy.data.objects.new("Walker", arm_data)
    coll.objects.link(rig)
    # Edit bones need edit mode, which needs the object active in the view layer.
    view_layer = bpy.context.view_layer
    view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    for name, head, tail, parent in _BONES:
        eb = arm_data.edit_bones.new(name)
        eb.head, eb.tail = head, tail
        if parent:
            eb.parent = arm_data.edit_bones[parent]
            eb.use_connect = Vector(arm_data.edit_bones[parent].tail) == Vector(head)
    bpy.ops.object.mode_set(mode="OBJECT")

    # A body part per bone: a box along the bone, parented to it (rigid skinning is enough
    # for depth and masks).
    for name, head, tail, _parent in _BONES:
        length = (Vector(tail) - Vector(head)).length
        r = _RADIUS.get(name, 0.06)
        part = _box(coll, f"Body.{name}", (2 * r, 2 * r, length), (0, 0, 0))
        part.parent = rig
        part.parent_type = "BONE"
        part.parent_bone = name
        # Bone-parented children sit at the bone's tail; move back to the middle, along the bone's Y.
        part.location = (0, -length / 2, 0)
        part.rotation_euler = (math.pi / 2, 0, 0)

    # Walk: the rig moves along +X while the legs and arms swing (one stride every 12 frames).
    rig.location = (-1.2, 0.5, 0)
    rig.rotation_euler = (0, 0, -math.pi / 2)  # face +X
    for f in range(1, frames + 1):
        t = (f - 1) / 24.0
        rig.location.x = -1.2 + 1.1 * t
        rig.keyframe_insert("location", frame=f)
        phase = 2 * math.pi * (f - 1) / 12.0
        swing = 0.5 * math.sin(phase)
        for side, sign in (("L", 1), ("R", -1)):
            pose = rig.pose.bones
            for bone, angle in ((f"DEF-thigh.{side}", sign * swing), (f"DEF-upper_arm.{side}", -sign * swing * 0.8),
                                (f"DEF-shin.{side}", max(0.0, -sign * math.cos(phase)) * 0.7)):
                pb = pose[bone]
                pb.rotation_mode = "XYZ"
                pb.rotation_euler = (angle, 0, 0)
                pb.keyframe_insert("rotation_euler", frame=f)
    return rig


def _build_dolly_zoom_camera(scene, frames):
    cam_data = bpy.data.cameras.new("ShotCam")
    cam = bpy.data.objects.new("ShotCam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam_data.sensor_width = 36.0
    cam_data.clip_start, cam_data.clip_end = 0.1, 100.0
    # Looking along +Y at the walker; distance d and lens f grow together: f/d stays constant,
    # so the walker keeps his on-screen size while the set behind him appears to stretch away.
    d0, f0 = 4.0, 28.0
    for f in range(1, frames + 1):
        u = (f - 1) / max(1, frames - 1)
        d = d0 + 3.0 * u
        cam.location = (-0.65, 0.5 - d, 1.2)  # centred on the walker's path
        cam.rotation_euler = (math.radians(90), 0, 0)
        cam_data.lens = f0 * d / d0
        cam.keyframe_insert("location", frame=f)
        cam.keyframe_insert("rotation_euler", frame=f)
        cam_data.keyframe_insert("lens", frame=f)
