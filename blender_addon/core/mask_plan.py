"""Per-place target masks when collection instances share objects (pure; gather/targets.py feeds it).

Cycles' Object Index and Workbench's object colour belong to the object data-block, and every
collection instance renders the same data-blocks (checked in Blender 5.0: the instancer empty's
pass_index does not reach its instances). A target, though, is a *place* in the scene: the
instance empty "PropA" must not mask its twin "PropB".

`plan_mask` sorts the rendered objects by where they are rendered:
- target: every place is a target -> TARGET_ID, decided by one render;
- shared: a target in one place, not in another -> SHARED_ID. A second render removes the
  non-target places (hide their instancers, exclude the collections holding the object); a
  shared pixel is a target when that render still shows a shared object at the same depth
  (removing geometry never brings a new surface forward at the same distance);
- anything else -> OTHER_ID.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

OTHER_ID, TARGET_ID, SHARED_ID = 0, 1, 2
# Workbench has no Object Index pass: the ids are drawn as flat object colours (RGBA).
ID_COLOURS = {OTHER_ID: (0.0, 0.0, 0.0, 1.0), TARGET_ID: (1.0, 1.0, 1.0, 1.0), SHARED_ID: (0.0, 0.0, 1.0, 1.0)}


@dataclass(frozen=True)
class Place:
    """One place an object is rendered: directly (instancer None) or by a collection instance
    whose top-level instancer (an object of the scene) is `instancer`."""

    obj: Hashable
    instancer: Hashable | None
    target: bool


@dataclass(frozen=True)
class MaskPlan:
    target: frozenset
    shared: frozenset
    hide_instancers: frozenset  # non-target instancers that render a shared object
    direct_shared: frozenset  # shared objects that are also rendered directly as non-targets

    def id_of(self, obj: Hashable) -> int:
        return TARGET_ID if obj in self.target else SHARED_ID if obj in self.shared else OTHER_ID

    def __bool__(self) -> bool:
        return bool(self.target or self.shared)

    @property
    def needs_second_render(self) -> bool:
        return bool(self.shared)


def plan_mask(places: Iterable[Place]) -> MaskPlan:
    """Sort objects into target / shared (see module docstring) from every place they render."""
    as_target: set = set()
    non_target: dict[Hashable, list[Place]] = {}
    for p in places:
        if p.target:
            as_target.add(p.obj)
        else:
            non_target.setdefault(p.obj, []).append(p)
    shared = {o for o in as_target if o in non_target}
    hide = {p.instancer for o in shared for p in non_target[o] if p.instancer is not None}
    direct = {o for o in shared if any(p.instancer is None for p in non_target[o])}
    return MaskPlan(frozenset(as_target - shared), frozenset(shared), frozenset(hide), frozenset(direct))


def ids_from_colour(red: np.ndarray, blue: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Workbench Combined pass -> ids (ID_COLOURS; background has alpha 0)."""
    drawn = alpha > 0.5
    ids = np.full(red.shape, OTHER_ID, dtype=np.int8)
    ids[drawn & (red > 0.5)] = TARGET_ID
    ids[drawn & (red <= 0.5) & (blue > 0.5)] = SHARED_ID
    return ids


def resolve_shared(ids: np.ndarray, depth: np.ndarray, ids_without: np.ndarray, depth_without: np.ndarray,
                   rtol: float = 1e-5) -> np.ndarray:
    """Target mask from the full render (ids, depth) and the render without the non-target
    places of shared objects (ids_without, depth_without)."""
    same_surface = np.abs(depth_without - depth) <= rtol * np.abs(depth)
    return (ids == TARGET_ID) | ((ids == SHARED_ID) & (ids_without == SHARED_ID) & same_surface)
