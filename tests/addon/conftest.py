"""Leave no add-on behind: the Blender tests of other packages run in the same process, and a
registered `scene.ltx_render` would change what their exports record."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(scope="module", autouse=True)
def _disable_addon_after_module():
    yield
    if "bpy" not in sys.modules:
        return
    import addon_utils
    import bpy

    if "blender_addon" in bpy.context.preferences.addons:
        addon_utils.disable("blender_addon", default_set=True)
    from blender_addon.operators import session

    session.shutdown_worker()
    session.LIVE.clear()
