"""Mask ids per place: objects shared by target and non-target collection instances."""

from __future__ import annotations

import numpy as np

from blender_addon.core.mask_plan import (
    ID_COLOURS,
    OTHER_ID,
    SHARED_ID,
    TARGET_ID,
    Place,
    ids_from_colour,
    plan_mask,
    resolve_shared,
)


def test_one_instance_of_two_makes_its_objects_shared():
    places = [Place("PropA", None, True), Place("card", "PropA", True), Place("bolt", "PropA", True),
              Place("PropB", None, False), Place("card", "PropB", False), Place("bolt", "PropB", False),
              Place("floor", None, False), Place("hero", None, True)]
    plan = plan_mask(places)
    assert plan.target == {"PropA", "hero"}
    assert plan.shared == {"card", "bolt"}
    assert plan.hide_instancers == {"PropB"} and plan.direct_shared == set()
    assert [plan.id_of(o) for o in ("hero", "card", "floor", "unknown")] == [TARGET_ID, SHARED_ID, OTHER_ID, OTHER_ID]
    assert plan.needs_second_render


def test_targets_everywhere_need_one_render_and_a_direct_source_copy_is_shared():
    both = plan_mask([Place("card", "PropA", True), Place("card", "PropB", True)])
    assert both.target == {"card"} and not both.needs_second_render
    source = plan_mask([Place("card", None, False), Place("card", "PropA", True)])
    assert source.shared == {"card"} and source.direct_shared == {"card"} and source.hide_instancers == set()
    assert not plan_mask([Place("floor", None, False)])  # no target at all: falsy


def test_workbench_colours_decode_to_ids():
    colours = np.array([ID_COLOURS[i] for i in (OTHER_ID, TARGET_ID, SHARED_ID)] + [(1, 1, 1, 0)])
    ids = ids_from_colour(colours[:, 0], colours[:, 2], colours[:, 3])
    assert ids.tolist() == [OTHER_ID, TARGET_ID, SHARED_ID, OTHER_ID]  # alpha 0: background


def test_shared_pixels_count_only_where_the_second_render_shows_the_same_surface():
    # pixels: target | shared kept (same depth) | shared removed, target copy behind | shared removed, wall behind
    ids = np.array([TARGET_ID, SHARED_ID, SHARED_ID, SHARED_ID])
    depth = np.array([5.0, 5.0, 5.0, 5.0], dtype=np.float32)
    ids_without = np.array([TARGET_ID, SHARED_ID, SHARED_ID, OTHER_ID])
    depth_without = np.array([5.0, 5.0, 7.5, 9.0], dtype=np.float32)
    assert resolve_shared(ids, depth, ids_without, depth_without).tolist() == [True, True, False, False]
