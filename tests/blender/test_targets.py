"""Target names: collections recursively, objects, collection instances (one instance, not its
twins), linked library objects; masks checked against the analytic silhouettes of the cards."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.core.camera_projection import intrinsics_from_blender  # noqa: E402
from blender_addon.gather.depth_mask import DepthMaskRenderer  # noqa: E402
from blender_addon.gather.gl_probe import workbench_available  # noqa: E402
from blender_addon.gather.targets import TargetError, resolve_armatures, resolve_targets  # noqa: E402

from . import scenes  # noqa: E402

pytestmark = pytest.mark.blender

W, H = 96, 64
Z, SIDE = 5.0, 0.5  # every card is 0.5 m square, 5 m in front of the camera
# Where each card's centre lands (x, y at z = -5), in a layout where no two cards overlap.
NESTED, PROP_A, PROP_B, PROP_SOURCE = (-1.0, 0.0), (0.3, 0.0), (1.2, 0.0), (0.0, 0.7)
LINKED_TARGET, LINKED_OTHER = (-1.0, -0.7), (0.3, -0.7)


def card(centre) -> np.ndarray:
    """Analytic silhouette (pixel centres) of a card facing the camera (at the origin, looking -Z)."""
    k = intrinsics_from_blender(50, 36, 24, "AUTO", 0, 0, W, H, 100, 1, 1)
    x = (np.arange(W) + 0.5 - k.cx) / k.fx * Z
    y = -(np.arange(H) + 0.5 - k.cy) / k.fy * Z  # image rows grow down, world y up
    return (np.abs(y[:, None] - centre[1]) < SIDE / 2) & (np.abs(x[None, :] - centre[0]) < SIDE / 2)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    sc = scenes.empty_scene(W, H)
    # Two linked cards from a library file: the target has pass_index 0 and a black colour, the
    # other one pass_index 1 and white, i.e. the opposite of what the mask needs.
    lib_coll = bpy.data.collections.new("LinkedSet")
    for name, (x, y), index, colour in (("LinkedTarget", LINKED_TARGET, 0, (0, 0, 0, 1)),
                                        ("LinkedOther", LINKED_OTHER, 1, (1, 1, 1, 1))):
        ob = scenes.plane(lib_coll, name, SIDE, SIDE, location=(x, y, -Z))
        ob.pass_index, ob.color = index, colour
    lib_path = tmp_path_factory.mktemp("lib") / "set.blend"
    bpy.data.libraries.write(str(lib_path), {lib_coll})
    for ob in list(lib_coll.objects):
        bpy.data.objects.remove(ob)
    bpy.data.collections.remove(lib_coll)
    with bpy.data.libraries.load(str(lib_path), link=True) as (_src, dst):
        dst.collections = ["LinkedSet"]
    sc.collection.children.link(dst.collections[0])
    assert bpy.data.objects["LinkedTarget"].library is not None

    outer = scenes.collection(sc, "Outer")
    inner = bpy.data.collections.new("Inner")
    outer.children.link(inner)
    scenes.plane(inner, "Nested", SIDE, SIDE, location=(*NESTED, -Z))
    # A prop collection seen once directly (the source) and placed twice by collection instances.
    props = scenes.collection(sc, "Props")
    scenes.plane(props, "PropCard", SIDE, SIDE, location=(*PROP_SOURCE, -Z))
    for name, (x, y) in (("PropA", PROP_A), ("PropB", PROP_B)):
        inst = bpy.data.objects.new(name, None)
        inst.instance_type = "COLLECTION"
        inst.instance_collection = props
        inst.location = (x - PROP_SOURCE[0], y - PROP_SOURCE[1], 0)
        sc.collection.objects.link(inst)
    scenes.camera(sc)
    return sc


def _names(objects) -> set[str]:
    return {o.name for o in objects}


def test_collection_targets_include_nested_collections(scene):
    assert _names(resolve_targets(scene, ["Outer"]).objects) == {"Nested"}


def test_an_instance_target_shares_its_objects_with_its_twin(scene):
    t = resolve_targets(scene, ["PropA"])
    assert _names(t.objects) == {"PropA"}
    assert _names(t.shared) == {"PropCard"}  # also rendered by PropB and directly in Props
    assert _names(t.plan.hide_instancers) == {"PropB"}
    assert {c.name for c in t.exclude_collections} == {"Props"}
    assert not t.warnings
    both = resolve_targets(scene, ["PropA", "PropB"])
    assert _names(both.plan.hide_instancers) == set() and {c.name for c in both.exclude_collections} == {"Props"}


def test_a_copy_in_the_top_collection_cannot_be_told_apart_and_says_so(scene):
    card_ob = bpy.data.objects["PropCard"]
    scene.collection.objects.link(card_ob)
    try:
        t = resolve_targets(scene, ["PropA"])
        with DepthMaskRenderer(scene, t, W, H, engine="cycles") as r:
            _, mask = r.render()
    finally:
        scene.collection.objects.unlink(card_ob)
    assert len(t.warnings) == 1
    assert "'PropCard'" in t.warnings[0] and "top collection" in t.warnings[0] and "move it" in t.warnings[0]
    # As the warning says: the source copy is masked too; the twin instance PropB still is not.
    assert np.array_equal(mask, card(PROP_A) | card(PROP_SOURCE))


@pytest.mark.parametrize("engine", ["cycles", "workbench"])
@pytest.mark.parametrize("names, cards", [
    (["PropA"], [PROP_A]),  # one instance: not its twin PropB, not the source card
    (["PropB"], [PROP_B]),
    (["PropA", "PropB"], [PROP_A, PROP_B]),
    (["Props"], [PROP_SOURCE]),  # the source collection: not the instances of it
    (["Outer"], [NESTED]),
    (["LinkedTarget"], [LINKED_TARGET]),  # linked: pass_index 0 / black in its library
])
def test_only_the_chosen_places_are_masked(scene, engine, names, cards):
    if engine == "workbench" and not workbench_available():
        pytest.skip("Workbench needs OpenGL/EGL, not available on this machine")
    linked_other = bpy.data.objects["LinkedOther"]
    with DepthMaskRenderer(scene, resolve_targets(scene, names), W, H, engine=engine) as r:
        depth, mask = r.render()
    expected = np.zeros((H, W), bool)
    for centre in cards:
        expected |= card(centre)
    assert 150 < card(PROP_A).sum() < 250
    assert np.array_equal(mask, expected), f"{(mask != expected).sum()} pixels differ"
    # Every card is still rendered (depth), masked or not; the linked one's values are back.
    every = [NESTED, PROP_A, PROP_B, PROP_SOURCE, LINKED_TARGET, LINKED_OTHER]
    np.testing.assert_allclose(depth[np.logical_or.reduce([card(c) for c in every])], Z, rtol=1e-4)
    assert linked_other.pass_index == 1 and tuple(linked_other.color) == (1, 1, 1, 1)
    assert not bpy.data.objects["PropB"].hide_render
    assert not scene.view_layers[0].layer_collection.children["Props"].exclude


def test_armature_names_are_checked(scene):
    with pytest.raises(TargetError, match=r"'Nested' is a mesh, not an armature"):
        resolve_armatures(scene, ["Nested"])
    with pytest.raises(TargetError, match=r"unknown armature 'Rig'.*armatures: \(none\)"):
        resolve_armatures(scene, ["Rig"])
