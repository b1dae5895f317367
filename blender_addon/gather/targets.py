"""Resolve the user's target and armature names to objects of one scene, and plan the mask ids.

Targets are places: a collection (everything in it, recursively, including what its collection
instances render), an object, or a collection-instance empty (what that one empty renders, not
the other instances of the same collection). See core/mask_plan.py for how shared objects are
told apart. Only collection instances are tracked; particle and geometry-node instances render
with the id of the object they instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import bpy

from ..core.mask_plan import MaskPlan, Place, plan_mask
from .depth_mask import export_view_layer


class TargetError(ValueError):
    """A target or armature name that the scene does not have; the message lists what it has."""


@dataclass(frozen=True)
class TargetSet:
    """The mask plan of an export, plus the collections to exclude for its second render."""

    names: tuple[str, ...]
    plan: MaskPlan
    exclude_collections: frozenset  # collections holding shared objects as non-targets
    warnings: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.plan)

    @property
    def objects(self) -> frozenset:
        """Objects masked wherever they render."""
        return self.plan.target

    @property
    def shared(self) -> frozenset:
        """Objects masked in some places only (a second render decides)."""
        return self.plan.shared


def _available(scene: bpy.types.Scene) -> str:
    collections = sorted(c.name for c in scene.collection.children_recursive)
    objects = sorted(o.name for o in scene.objects)
    return (f"collections: {', '.join(collections) or '(none)'}; "
            f"objects: {', '.join(objects[:40]) or '(none)'}{' ...' if len(objects) > 40 else ''}")


def _instanced(collection: bpy.types.Collection, seen: frozenset = frozenset()) -> Iterator[bpy.types.Object]:
    """Objects a collection instance of `collection` renders, nested instances included."""
    for ob in collection.all_objects:
        yield ob
        inner = ob.instance_collection if ob.instance_type == "COLLECTION" else None
        if inner is not None and inner not in seen and inner != collection:
            yield from _instanced(inner, seen | {collection})


def _layer_objects(view_layer: bpy.types.ViewLayer) -> Iterator[bpy.types.Object]:
    """Objects of the view layer's included, renderable collections (view_layer.objects can lag
    behind until the next depsgraph update)."""
    seen, todo = set(), [view_layer.layer_collection]
    while todo:
        lc = todo.pop()
        if lc.exclude or lc.collection.hide_render:
            continue
        todo.extend(lc.children)
        for ob in lc.collection.objects:
            if ob not in seen:
                seen.add(ob)
                yield ob


def _places(view_layer: bpy.types.ViewLayer, direct_targets: set) -> Iterator[Place]:
    for ob in _layer_objects(view_layer):
        if ob.hide_render:  # hidden everywhere, instances included
            continue
        is_target = ob in direct_targets
        yield Place(ob, None, is_target)
        if ob.instance_type == "COLLECTION" and ob.instance_collection is not None:
            for inner in _instanced(ob.instance_collection):
                if not inner.hide_render:
                    yield Place(inner, ob, is_target)


def resolve_targets(scene: bpy.types.Scene, names: Iterable[str]) -> TargetSet:
    """The mask plan for the target names: a collection (all its objects, recursively, and what
    its collection instances render) and/or an object of that name (an instance empty: what it renders).

    Raises TargetError naming the unknown names and listing the scene's collections and objects.
    """
    names = [n for n in names if n]
    scene_collections = {c.name: c for c in scene.collection.children_recursive}
    scene_collections[scene.collection.name] = scene.collection
    found: set[bpy.types.Object] = set()
    missing = []
    for name in names:
        hit = False
        if name in scene_collections:
            found.update(scene_collections[name].all_objects)
            hit = True
        ob = scene.objects.get(name)
        if ob is not None:
            found.add(ob)
            hit = True
        if not hit:
            missing.append(name)
    if missing:
        raise TargetError(f"unknown target(s) {', '.join(map(repr, missing))} in scene {scene.name!r}; "
                          f"use names of {_available(scene)}")
    plan = plan_mask(_places(export_view_layer(scene), found)) if names else plan_mask(())
    exclude, warnings = set(), []
    in_scene = set(scene.collection.children_recursive)
    # Excluding a collection must not remove a target instance of the same objects.
    keep = {ob for ob in found if ob.instance_type == "COLLECTION"}
    for ob in sorted(plan.direct_shared, key=lambda o: o.name):
        holders = [c for c in ob.users_collection if c in in_scene]
        blocked = [c for c in holders if keep.intersection(c.all_objects)]
        exclude.update(c for c in holders if c not in blocked)
        if blocked or any(c == scene.collection for c in ob.users_collection):
            where = f"collection {blocked[0].name!r}" if blocked else "the scene's top collection"
            warnings.append(
                f"object {ob.name!r} is rendered by a target instance and also directly in {where}, where it "
                f"cannot be told apart: that copy is masked too; move it into a collection of its own "
                f"(M > New Collection) to mask only the target instance")
    return TargetSet(tuple(names), plan, frozenset(exclude), tuple(warnings))


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
