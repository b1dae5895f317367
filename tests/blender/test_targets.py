"""Target names: collections recursively, objects, collection instances."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.gather.depth_mask import DepthMaskRenderer  # noqa: E402
from blender_addon.gather.gl_probe import workbench_available  # noqa: E402
from blender_addon.gather.targets import TargetError, resolve_armatures, resolve_targets  # noqa: E402

from . import scenes  # noqa: E402

pytestmark = pytest.mark.blender

W, H = 96, 64


@pytest.fixture(scope="module")
def scene():
    sc = scenes.empty_scene(W, H)
    outer = scenes.collection(sc, "Outer")
    inner = bpy.data.collections.new("Inner")
    outer.children.link(inner)
    scenes.plane(inner, "Nested", 0.5, 0.5, location=(-1.0, 0, -5))
    # A prop library collection that is not in the scene, placed twice by collection instances.
    props = bpy.data.collections.new("Props")
    scenes.plane(props, "PropCard", 0.5, 0.5)
    for name, x in (("PropA", 0.3), ("PropB", 1.2)):
        inst = bpy.data.objects.new(name, None)
        inst.instance_type = "COLLECTION"
        inst.instance_collection = props
        inst.location = (x, 0, -5)
        sc.collection.objects.link(inst)
    scenes.camera(sc)
    return sc


def test_collection_targets_include_nested_collections(scene):
    assert {o.name for o in resolve_targets(scene, ["Outer"])} == {"Nested"}


def test_instance_target_includes_what_it_instances(scene):
    assert {o.name for o in resolve_targets(scene, ["PropA"])} == {"PropA", "PropCard"}


@pytest.mark.parametrize("engine", ["cycles", "workbench"])
def test_only_the_chosen_instance_is_masked(scene, engine):
    if engine == "workbench" and not workbench_available():
        pytest.skip("Workbench needs OpenGL/EGL, not available on this machine")
    with DepthMaskRenderer(scene, resolve_targets(scene, ["Outer"]), W, H, engine=engine) as r:
        _, nested = r.render()
    with DepthMaskRenderer(scene, resolve_targets(scene, ["PropA", "PropB"]), W, H, engine=engine) as r:
        _, both_props = r.render()
    # Each 0.5 m card at 5 m is ~ (50/36*96 * 0.5/5)^2 = 13.3^2 px.
    assert 150 < nested.sum() < 210
    assert 300 < both_props.sum() < 420
    assert not (nested & both_props).any()


def test_armature_names_are_checked(scene):
    with pytest.raises(TargetError, match=r"'Nested' is a mesh, not an armature"):
        resolve_armatures(scene, ["Nested"])
    with pytest.raises(TargetError, match=r"unknown armature 'Rig'.*armatures: \(none\)"):
        resolve_armatures(scene, ["Rig"])
