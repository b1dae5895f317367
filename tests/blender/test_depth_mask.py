"""Depth + mask renders of a real bpy scene, and the user's settings coming back untouched."""

from __future__ import annotations

import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.core.camera_projection import intrinsics_from_blender  # noqa: E402
from blender_addon.gather import gl_probe  # noqa: E402
from blender_addon.gather.depth_mask import DepthMaskRenderer  # noqa: E402
from blender_addon.gather.export import iter_export_shot  # noqa: E402
from blender_addon.gather.gl_probe import ENGINE_ENV, choose_engine, workbench_available  # noqa: E402
from blender_addon.gather.targets import TargetError, resolve_targets  # noqa: E402

from . import scenes  # noqa: E402

pytestmark = pytest.mark.blender

W, H = 160, 96
CARD_W, CARD_H, CARD_Z = 1.0, 0.6, 5.0


@pytest.fixture(scope="module")
def scene():
    sc = scenes.empty_scene(W, H)
    targets = scenes.collection(sc, "Targets")
    backdrop = scenes.collection(sc, "Backdrop")
    scenes.plane(targets, "Card", CARD_W, CARD_H, location=(0, 0, -CARD_Z))
    wall = scenes.plane(backdrop, "Wall", 20, 20, location=(0, 0, -8))
    wall.pass_index = 1  # the user's own index: must not leak into the mask, must come back
    scenes.camera(sc)
    # Settings a user might have: all different from what the export needs.
    sc.render.engine = "BLENDER_EEVEE"
    sc.render.resolution_percentage = 50
    sc.render.image_settings.file_format = "JPEG"
    sc.render.image_settings.quality = 77
    sc.render.filepath = "//user_renders/shot_"
    sc.render.use_border = True
    sc.render.use_motion_blur = True
    sc.cycles.samples = 64
    sc.cycles.use_denoising = True
    sc.cycles.pixel_filter_type = "BLACKMAN_HARRIS"
    sc.cycles.filter_width = 1.5
    sc.cycles.max_bounces = 12
    sc.view_layers[0].use_pass_z = False
    sc.view_layers[0].use_pass_object_index = False
    sc.frame_set(4)
    return sc


def _expected_card_mask() -> tuple[np.ndarray, np.ndarray]:
    """Analytic silhouette at pixel centres, and each pixel's distance to the card edge in px."""
    k = intrinsics_from_blender(50, 36, 24, "AUTO", 0, 0, W, H, 100, 1, 1)
    u = np.arange(W) + 0.5
    v = np.arange(H) + 0.5
    x = (u[None, :] - k.cx) / k.fx * CARD_Z  # metres on the card plane
    y = (v[:, None] - k.cy) / k.fy * CARD_Z
    inside = (np.abs(x) < CARD_W / 2) & (np.abs(y) < CARD_H / 2)
    edge_px = np.minimum(np.abs(np.abs(x) - CARD_W / 2) * k.fx / CARD_Z,
                         np.abs(np.abs(y) - CARD_H / 2) * k.fy / CARD_Z)
    return inside, edge_px


def test_plane_depth_and_mask_match_the_analytic_card(scene):
    with DepthMaskRenderer(scene, resolve_targets(scene, ["Targets"]), W, H) as renderer:
        depth, mask = renderer.render()
    assert depth.shape == mask.shape == (H, W)
    expected, edge_px = _expected_card_mask()
    assert expected.sum() > 1000
    wrong = mask != expected
    assert wrong.sum() <= 4, f"{wrong.sum()} mask pixels differ from the analytic silhouette"
    assert np.all(edge_px[wrong] < 0.05)  # only pixels whose centre sits on the edge may differ
    np.testing.assert_allclose(depth[mask], CARD_Z, rtol=1e-4)
    np.testing.assert_allclose(depth[~expected & (edge_px > 0.05)], 8.0, rtol=1e-4)  # the wall behind


def _settings(scene) -> dict:
    """A long list of the user's settings: every plain RNA property of render, image format,
    Cycles, the view layer, plus pass indices, frame and active scene."""
    out = {}
    for label, owner in (("render", scene.render), ("image", scene.render.image_settings),
                         ("cycles", scene.cycles), ("layer", scene.view_layers[0]), ("display", scene.display),
                         ("shading", scene.display.shading), ("view", scene.view_settings)):
        for prop in owner.bl_rna.properties:
            if prop.type in {"POINTER", "COLLECTION"} or prop.identifier == "rna_type":
                continue
            value = getattr(owner, prop.identifier)
            out[f"{label}.{prop.identifier}"] = tuple(value) if hasattr(value, "__len__") and \
                not isinstance(value, str) else value
    for ob in bpy.data.objects:
        out[f"pass_index.{ob.name}"] = ob.pass_index
        out[f"color.{ob.name}"] = tuple(ob.color)
    out["frame"] = (scene.frame_current, scene.frame_subframe)
    out["active_scene"] = bpy.context.scene.name
    out["camera_lens"] = scene.camera.data.lens
    return out


def _export(scene, tmp_path, **kw):
    return iter_export_shot(scene, tmp_path / "bundle", frame_start=1, frame_end=9, targets=["Card"],
                            armatures=[], width=W, height=H, **{"engine": "cycles", **kw})


def _needs_workbench(engine):
    if engine == "workbench" and not workbench_available():
        pytest.skip("Workbench needs OpenGL/EGL, not available on this machine")


@pytest.mark.parametrize("engine", ["cycles", "workbench"])
def test_settings_are_exactly_restored_after_an_export(scene, tmp_path, engine):
    _needs_workbench(engine)
    before = _settings(scene)
    assert len(before) > 250
    steps = list(_export(scene, tmp_path, engine=engine))
    assert steps[-1] == (20, 20, "done")
    after = _settings(scene)
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert not changed
    assert (tmp_path / "bundle" / "shot.json").is_file()


def test_settings_are_restored_when_the_export_fails(scene, tmp_path):
    before = _settings(scene)

    def explode(done, total, stage):
        if done == 3:
            raise KeyboardInterrupt("user pressed Esc")

    with pytest.raises(KeyboardInterrupt):
        list(_export(scene, tmp_path, progress=explode))
    assert _settings(scene) == before
    assert not (tmp_path / "bundle" / "shot.json").exists()


def test_settings_are_restored_when_a_modal_export_is_abandoned(scene, tmp_path):
    before = _settings(scene)
    steps = _export(scene, tmp_path)
    assert next(steps) == (1, 20, "rendering depth and mask")
    assert scene.render.engine == "CYCLES"  # swapped while the export runs
    steps.close()  # the operator was cancelled between two frames
    assert _settings(scene) == before


def test_unknown_target_lists_what_the_scene_has(scene, tmp_path):
    with pytest.raises(TargetError, match=r"'Actors'.*collections: Backdrop, Targets; objects: Cam, Card, Wall"):
        list(iter_export_shot(scene, tmp_path, frame_start=1, frame_end=9, targets=["Actors"], armatures=[],
                              width=W, height=H))


@pytest.mark.parametrize("kw, match", [({"frame_end": 10}, r"8k\+1 and at least 9 \(got 10\); try 9 \(frame_end=9\)"),
                                       ({"frame_end": 5}, r"at least 9 \(got 5\); try 9 \(frame_end=9\)"),
                                       ({"width": 150}, r"multiples of 32 \(got 150x96\); try 160x96"),
                                       ({"canvas_size": (64, 64)}, "must have the output's aspect"),
                                       ({"strength": 1.5}, r"strength must be in \[0, 1\]")])
def test_bad_export_arguments_say_what_to_change(scene, tmp_path, kw, match):
    args = dict(frame_start=1, frame_end=9, targets=["Card"], armatures=[], width=W, height=H)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        next(iter_export_shot(scene, tmp_path, **args))


def test_workbench_depth_and_mask_match_cycles(scene):
    _needs_workbench("workbench")
    targets = resolve_targets(scene, ["Targets"])
    with DepthMaskRenderer(scene, targets, W, H, engine="cycles") as renderer:
        depth_c, mask_c = renderer.render()
    with DepthMaskRenderer(scene, targets, W, H, engine="workbench") as renderer:
        depth_w, mask_w = renderer.render()
    assert (mask_c != mask_w).sum() <= 4
    both = mask_c & mask_w
    np.testing.assert_allclose(depth_w[both], CARD_Z, rtol=1e-4)


@pytest.mark.parametrize("display", ["WIRE", "BOUNDS"])
def test_workbench_renders_wire_and_bounds_objects_as_surfaces(scene, display):
    """A target the artist shows as Wire or Bounds in the viewport still has a solid mask and
    depth, as in Cycles (Workbench's final render ignores the viewport display type: pinned here in
    case a Blender release changes that)."""
    _needs_workbench("workbench")
    card = scene.objects["Card"]
    card.display_type = display
    try:
        targets = resolve_targets(scene, ["Targets"])
        with DepthMaskRenderer(scene, targets, W, H, engine="cycles") as renderer:
            _, mask_c = renderer.render()
        with DepthMaskRenderer(scene, targets, W, H, engine="workbench") as renderer:
            depth_w, mask_w = renderer.render()
        assert mask_c.sum() > 100 and (mask_c != mask_w).sum() <= 4
        np.testing.assert_allclose(depth_w[mask_w], CARD_Z, rtol=1e-4)
        assert card.display_type == display
    finally:
        card.display_type = "TEXTURED"


def test_engine_choice_can_be_forced_and_is_checked(monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "cycles")
    assert choose_engine("auto") == "cycles"
    assert choose_engine("workbench") == "workbench"
    with pytest.raises(ValueError, match="engine must be 'auto', 'cycles' or 'workbench'"):
        choose_engine("eevee")


@pytest.mark.parametrize("child", ["import os; os.abort()",  # what a missing EGL does, in C
                                   "print('LTX_GL_PROBE_BAD_DEPTH 6.0 1e10')",  # rendered, wrong depth
                                   "import time; time.sleep(30)"])  # hangs
def test_a_failing_gl_probe_means_cycles_and_this_process_survives(monkeypatch, child, tmp_path):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    monkeypatch.setenv("LTX_RENDER_CACHE_DIR", str(tmp_path))  # no verdict of an earlier test
    monkeypatch.setattr(gl_probe, "_cached", None)
    monkeypatch.setattr(gl_probe, "PROBE_TIMEOUT_S", 2)
    monkeypatch.setattr(gl_probe, "_probe_command", lambda out: [sys.executable, "-c", child])
    assert bpy.app.background
    assert workbench_available() is False
    assert choose_engine("auto") == "cycles"
