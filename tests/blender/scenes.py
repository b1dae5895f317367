"""Tiny Blender scenes built in code for the gather tests (bpy as a module)."""

from __future__ import annotations

import math

import bpy


def empty_scene(width: int = 160, height: int = 96) -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 9
    return scene


def collection(scene: bpy.types.Scene, name: str) -> bpy.types.Collection:
    coll = bpy.data.collections.new(name)
    scene.collection.children.link(coll)
    return coll


def plane(coll, name: str, width: float, height: float, location=(0, 0, 0), rotation=(0, 0, 0)):
    """A rectangle in its local XY plane (normal +Z), width along X, height along Y."""
    mesh = bpy.data.meshes.new(name)
    w, h = width / 2, height / 2
    mesh.from_pydata([(-w, -h, 0), (w, -h, 0), (w, h, 0), (-w, h, 0)], [], [(0, 1, 2, 3)])
    ob = bpy.data.objects.new(name, mesh)
    ob.location, ob.rotation_euler = location, rotation
    coll.objects.link(ob)
    return ob


def camera(scene, name: str = "Cam", location=(0, 0, 0), rotation=(0, 0, 0), lens: float = 50.0):
    data = bpy.data.cameras.new(name)
    data.lens = lens
    ob = bpy.data.objects.new(name, data)
    ob.location, ob.rotation_euler = location, rotation
    scene.collection.objects.link(ob)
    scene.camera = ob
    return ob


def looking_along_y(scene, distance: float, lens: float = 50.0, height: float = 1.0):
    """Camera at (0, -distance, height) looking along +Y (Blender camera rotated 90 deg about X)."""
    return camera(scene, location=(0, -distance, height), rotation=(math.pi / 2, 0, 0), lens=lens)


def armature(coll, name: str, bones, location=(0, 0, 0), scale: float = 1.0):
    """An armature object from [(bone, head, tail, parent)] in armature space."""
    data = bpy.data.armatures.new(name)
    rig = bpy.data.objects.new(name, data)
    rig.location = location
    rig.scale = (scale, scale, scale)
    coll.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    for bone, head, tail, parent in bones:
        eb = data.edit_bones.new(bone)
        eb.head, eb.tail = head, tail
        if parent:
            eb.parent = data.edit_bones[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    return rig


def biped_bones(names: dict[str, str], unit: float = 1.0, prefix: str = ""):
    """A standing biped (facing -Y, left = +X) with bone names from `names` ({part: bone name}),
    coordinates in `unit`s per metre (100 for a Mixamo rig in centimetres)."""
    u = unit
    spec = [
        ("hips", (0, 0, 0.95), (0, 0, 1.15), None),
        ("chest", (0, 0, 1.15), (0, 0, 1.45), "hips"),
        ("head", (0, 0, 1.55), (0, 0, 1.80), "chest"),
        ("l_upper_arm", (0.20, 0, 1.42), (0.22, 0, 1.14), "chest"),
        ("l_forearm", (0.22, 0, 1.14), (0.23, 0, 0.90), "l_upper_arm"),
        ("l_hand", (0.23, 0, 0.90), (0.23, 0, 0.80), "l_forearm"),
        ("r_upper_arm", (-0.20, 0, 1.42), (-0.22, 0, 1.14), "chest"),
        ("r_forearm", (-0.22, 0, 1.14), (-0.23, 0, 0.90), "r_upper_arm"),
        ("r_hand", (-0.23, 0, 0.90), (-0.23, 0, 0.80), "r_forearm"),
        ("l_thigh", (0.10, 0, 0.95), (0.10, 0, 0.52), "hips"),
        ("l_shin", (0.10, 0, 0.52), (0.10, 0, 0.08), "l_thigh"),
        ("l_foot", (0.10, 0, 0.08), (0.10, -0.15, 0.02), "l_shin"),
        ("r_thigh", (-0.10, 0, 0.95), (-0.10, 0, 0.52), "hips"),
        ("r_shin", (-0.10, 0, 0.52), (-0.10, 0, 0.08), "r_thigh"),
        ("r_foot", (-0.10, 0, 0.08), (-0.10, -0.15, 0.02), "r_shin"),
    ]
    out = []
    for part, head, tail, parent in spec:
        out.append((prefix + names[part], tuple(u * v for v in head), tuple(u * v for v in tail),
                    prefix + names[parent] if parent else None))
    return out


RIGIFY_NAMES = {
    "hips": "DEF-spine", "chest": "DEF-spine.003", "head": "DEF-spine.006",
    **{f"{s}_{p}": f"DEF-{b}.{s.upper()}" for s in "lr"
       for p, b in (("upper_arm", "upper_arm"), ("forearm", "forearm"), ("hand", "hand"),
                    ("thigh", "thigh"), ("shin", "shin"), ("foot", "foot"))},
}
MIXAMO_NAMES = {
    "hips": "Hips", "chest": "Spine", "head": "Head",
    **{f"{s[0].lower()}_{p}": f"{s}{b}" for s in ("Left", "Right")
       for p, b in (("upper_arm", "Arm"), ("forearm", "ForeArm"), ("hand", "Hand"),
                    ("thigh", "UpLeg"), ("shin", "Leg"), ("foot", "Foot"))},
}
# part -> COCO-18 joint (the bone's head)
COCO_OF_PART = {"l_upper_arm": "l_shoulder", "l_forearm": "l_elbow", "l_hand": "l_wrist",
                "r_upper_arm": "r_shoulder", "r_forearm": "r_elbow", "r_hand": "r_wrist",
                "l_thigh": "l_hip", "l_shin": "l_knee", "l_foot": "l_ankle",
                "r_thigh": "r_hip", "r_shin": "r_knee", "r_foot": "r_ankle"}


def box(coll, name: str, size: float, location=(0, 0, 0), rotation=(0, 0, 0)):
    """A cube of edge `size` (flat shaded, outward normals)."""
    mesh = bpy.data.meshes.new(name)
    h = size / 2
    verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh.from_pydata(verts, [], faces)
    mesh.update()
    ob = bpy.data.objects.new(name, mesh)
    ob.location, ob.rotation_euler = location, rotation
    coll.objects.link(ob)
    return ob


FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def rigify_hand_bones(side: str = "L"):
    """Rigify deform finger bones hanging from a biped_bones() hand (wrist at (+-0.23, 0, 0.90)):
    finger f 5 cm from the next along x, each of its 3 bones 6 cm long, pointing down (big
    cartoon hands: their lines stay visible between the dots on a small canvas)."""
    sign = 1 if side == "L" else -1
    out = []
    for f, finger in enumerate(FINGERS):
        base = "thumb" if finger == "thumb" else f"f_{finger}"
        x = sign * (0.13 + 0.05 * f)
        parent = f"DEF-hand.{side}"
        for k in range(3):
            name = f"DEF-{base}.0{k + 1}.{side}"
            out.append((name, (x, 0, 0.84 - 0.06 * k), (x, 0, 0.78 - 0.06 * k), parent))
            parent = name
    return out
