"""Resolve the user's target and armature names to objects of one scene."""

from __future__ import annotations

from collections.abc import Iterable

import bpy


class TargetError(ValueError):
    """A target or armature name that the scene does not have; the message lists what it has."""


def _available(scene: bpy.types.Scene) -> str:
    collections = sorted(c.name for c in scene.collection.children_recursive)
    objects = sorted(o.name for o in scene.objects)
    return (f"collections: {', '.join(collections) or '(none)'}; "
            f"objects: {', '.join(objects[:40]) or '(none)'}{' ...' if len(objects) > 40 else ''}")


def _with_instances(objects: Iterable[bpy.types.Object]) -> set[bpy.types.Object]:
    """Objects plus everything their collection instances instance (recursively)."""
    out: set[bpy.types.Object] = set()
    todo = list(objects)
    while todo:
        ob = todo.pop()
        if ob in out:
            continue
        out.add(ob)
        if ob.instance_type == "COLLECTION" and ob.instance_collection is not None:
            todo.extend(ob.instance_collection.all_objects)
    return out


def resolve_targets(scene: bpy.types.Scene, names: Iterable[str]) -> set[bpy.types.Object]:
    """Objects covered by the target names: a collection (all its objects, recursively, and
    what its collection instances instance) and/or an object of that name.

    Raises TargetError naming the unknown names and listing the scene's collections and objects.
    """
    names = [n for n in names if n]
    scene_collections = {c.name: c for c in scene.collection.children_recursive}
    scene_collections[scene.collection.name] = scene.collection
    found: list[bpy.types.Object] = []
    missing = []
    for name in names:
        hit = False
        if name in scene_collections:
            found.extend(scene_collections[name].all_objects)
            hit = True
        ob = scene.objects.get(name)
        if ob is not None:
            found.append(ob)
            hit = True
        if not hit:
            missing.append(name)
    if missing:
        raise TargetError(f"unknown target(s) {', '.join(map(repr, missing))} in scene {scene.name!r}; "
                          f"use names of {_available(scene)}")
    return _with_instances(found)


def resolve_armatures(scene: bpy.types.Scene, names: Iterable[str]) -> list[bpy.types.Object]:
    """Armature objects by name (in the given order); a collection name means its armatures."""
    out: list[bpy.types.Object] = []
    scene_collections = {c.name: c for c in scene.collection.children_recursive}
    for name in (n for n in names if n):
        ob = scene.objects.get(name)
        if ob is not None:
            if ob.type != "ARMATURE":
                raise TargetError(f"{name!r} is a {ob.type.lower()}, not an armature; pick one of: "
                                  f"{', '.join(sorted(o.name for o in scene.objects if o.type == 'ARMATURE'))}")
            candidates = [ob]
        elif name in scene_collections:
            candidates = [o for o in scene_collections[name].all_objects if o.type == "ARMATURE"]
        else:
            armatures = sorted(o.name for o in scene.objects if o.type == "ARMATURE")
            raise TargetError(f"unknown armature {name!r} in scene {scene.name!r}; "
                              f"armatures: {', '.join(armatures) or '(none)'}")
        out.extend(c for c in candidates if c not in out)
    return out
