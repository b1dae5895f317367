"""A dolly-zoom shot exported end to end: in process and through the `export` CLI on a saved .blend."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.core.bundle import read_bundle  # noqa: E402
from blender_addon.gather.export import STRENGTH_PROPERTY, export_shot  # noqa: E402

from . import scenes  # noqa: E402

pytestmark = pytest.mark.blender

W, H = 192, 128
REPO = Path(__file__).resolve().parents[2]


def _build_dolly_zoom():
    """A 1 m wide card at the origin, a wall behind it; the camera pulls back from 4 m to 8 m while
    the lens grows from 25 mm to 50 mm (lens / distance constant)."""
    sc = scenes.empty_scene(W, H)
    subject = scenes.collection(sc, "Subject")
    scenes.plane(subject, "Card", 1.0, 1.4, location=(0, 0, 1.0), rotation=(math.pi / 2, 0, 0))
    backdrop = scenes.collection(sc, "Backdrop")
    scenes.plane(backdrop, "Wall", 30, 10, location=(0, 4, 1.0), rotation=(math.pi / 2, 0, 0))
    cam = scenes.looking_along_y(sc, distance=4.0, lens=25.0)
    cam.data.clip_start, cam.data.clip_end = 0.5, 60.0
    for frame in range(1, 10):
        d = 4.0 + 4.0 * (frame - 1) / 8
        cam.location.y = -d
        cam.data.lens = 25.0 * d / 4.0
        cam.keyframe_insert("location", frame=frame)
        cam.data.keyframe_insert("lens", frame=frame)
    # A keyframed control-strength curve (the custom property fallback of scene.ltx_render).
    for frame, value in ((1, 0.2), (9, 1.0)):
        sc[STRENGTH_PROPERTY] = value
        sc.keyframe_insert(f'["{STRENGTH_PROPERTY}"]', frame=frame)
    sc.frame_set(1)
    return sc


@pytest.fixture(scope="module")
def dolly(tmp_path_factory):
    root = tmp_path_factory.mktemp("dolly")
    sc = _build_dolly_zoom()
    blend = root / "dolly.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    out = export_shot(bpy.context.scene, root / "bundle", frame_start=1, frame_end=9, targets=["Subject"],
                      armatures=[], width=W, height=H, prompt="a card", seed=7, strength=0.9, engine="cycles")
    return blend, read_bundle(out), sc


def test_dolly_zoom_keeps_subject_width(dolly):
    _, b, _ = dolly
    widths = []
    for i in range(len(b)):
        cols = np.flatnonzero(b.mask(0, i).any(axis=0))
        widths.append(cols[-1] - cols[0] + 1)
    assert widths[0] == pytest.approx(1.0 * (25 / 36 * W) / 4.0, abs=1.0)  # fx * 1 m / 4 m
    assert max(widths) - min(widths) <= 1, widths


def test_camera_track_follows_the_dolly(dolly):
    _, b, _ = dolly
    lens = [f["lens_mm"] for f in b.shot.frames]
    fx = [f["intrinsics"]["fx"] for f in b.shot.frames]
    assert lens[0] == pytest.approx(25.0) and lens[-1] == pytest.approx(50.0)
    np.testing.assert_allclose(np.array(fx) / np.array(lens), W / 36.0)
    # Camera centre = -R^T t; it moves from y=-4 to y=-8.
    centres = [-np.array(f["world_to_camera"])[:3, :3].T @ np.array(f["world_to_camera"])[:3, 3] for f in b.shot.frames]
    assert centres[0] == pytest.approx([0, -4, 1], abs=1e-5) and centres[-1] == pytest.approx([0, -8, 1], abs=1e-5)
    assert b.shot.frames[0]["sensor_fit"] == "AUTO" and (b.shot.frames[0]["clip_start"], b.shot.frames[0]["clip_end"]) == (0.5, 60.0)


def test_depth_range_and_canvas_encode_the_card(dolly):
    _, b, _ = dolly
    near, far = b.shot.controls[0].depth_range["near"], b.shot.controls[0].depth_range["far"]
    # One range for the whole shot, spanning the card at 4 m (frame 1) and at 8 m (frame 9);
    # the padding policy is core.depth's, so only bracket it here.
    assert 3.5 < near < 4.0 and 8.0 < far < 12.0
    v = lambda z: (1 / z - 1 / far) / (1 / near - 1 / far)  # noqa: E731
    first, last = b.canvas(0, 0), b.canvas(0, 8)
    assert first[b.mask(0, 0)].min() == first[b.mask(0, 0)].max() == round(255 * v(4.0))
    assert last[b.mask(0, 8)].max() == round(255 * v(8.0))
    assert first[~b.mask(0, 0)].max() == 0  # the wall is not a target: black


def test_strength_curve_is_read_per_frame(dolly):
    _, b, _ = dolly
    s = b.shot.controls[0].strength
    assert s.value == 0.9 and s.background is None
    assert s.per_frame[0] == pytest.approx(0.2) and s.per_frame[-1] == pytest.approx(1.0)
    assert np.all(np.diff(s.per_frame) > 0) and len(s.per_frame) == len(b)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "blender_addon.cli", "export", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)


def test_cli_export_of_a_saved_blend_is_a_readable_bundle(dolly, tmp_path):
    blend, _, _ = dolly
    # 10 frames and 200x128 are snapped (to 9 and 192x128) with the reason printed.
    run = _cli(str(blend), "--out", str(tmp_path / "b"), "--frames", "1-10", "--targets", "Subject",
               "--width", "200", "--height", "128", "--reference-downscale-factor", "2", "--prompt", "a card on a wall", "--engine", "cycles")
    assert run.returncode == 0, run.stderr
    assert "frames must be 8k+1 (got 10)" in run.stdout and "using 192x128" in run.stdout
    b = read_bundle(tmp_path / "b")
    assert (b.shot.frame_start, b.shot.frame_end) == (1, 9)
    assert (b.shot.controls[0].width, b.shot.controls[0].height) == (96, 64)
    assert b.shot.prompt == "a card on a wall" and b.shot.targets == ["Subject"]
    assert b.canvas(0, 0).shape == (64, 96, 3) and b.mask(0, 0).sum() > 50


def test_cli_export_writes_the_camera_lora_into_the_manifest(dolly, tmp_path):
    blend, _, _ = dolly
    run = _cli(str(blend), "--out", str(tmp_path / "b"), "--targets", "Subject", "--camera-mode", "trajectory",
               "--camera-lora", "camera_trajectory", "--engine", "cycles", "--quiet")
    assert run.returncode == 0, run.stderr
    assert read_bundle(tmp_path / "b").shot.camera.to_json() == {
        "mode": "trajectory", "preset_lora": "", "trajectory_lora": "camera_trajectory", "weight": 1.0,
        "reference_downscale_factor": None}


@pytest.mark.parametrize("mode, name, preset, trajectory", [
    ("preset", "camera_dolly_in", "camera_dolly_in", ""),
    ("trajectory", " camera_trajectory ", "", "camera_trajectory"),
    ("auto", "", "", ""),
    ("off", "", "", ""),
])
def test_camera_lora_goes_to_the_modes_field(mode, name, preset, trajectory):
    from blender_addon.cli import camera_loras

    assert camera_loras(mode, name) == (preset, trajectory)


def test_cli_camera_lora_is_required_for_preset_and_trajectory_only(dolly, tmp_path):
    blend, _, _ = dolly
    for mode, words in (("preset", "--camera-mode preset needs --camera-lora NAME (the camera preset LoRA, "
                                   "e.g. camera_dolly_in;"),
                        ("trajectory", "--camera-mode trajectory needs --camera-lora NAME (the trajectory LoRA;")):
        run = _cli(str(blend), "--out", str(tmp_path / "b"), "--targets", "Subject", "--camera-mode", mode)
        assert run.returncode == 2 and words in run.stderr, run.stderr
    run = _cli(str(blend), "--out", str(tmp_path / "b"), "--targets", "Subject", "--camera-lora", "camera_dolly_in")
    assert run.returncode == 2 and "--camera-lora is used only with --camera-mode preset or trajectory (got auto)" \
        in run.stderr
    assert not (tmp_path / "b").exists()  # refused before the .blend was even opened


def test_cli_unknown_target_lists_the_scene(dolly, tmp_path):
    blend, _, _ = dolly
    run = _cli(str(blend), "--out", str(tmp_path / "b"), "--targets", "Hero")
    assert run.returncode == 2
    assert "unknown target(s) 'Hero'" in run.stderr and "collections: Backdrop, Subject" in run.stderr
    assert not (tmp_path / "b" / "shot.json").exists()


def test_exporting_a_scene_that_is_not_the_active_one_animates_it(dolly, tmp_path):
    _, _, _ = dolly
    active = bpy.context.scene
    other = bpy.data.scenes.new("Alternate")
    for coll in ("Subject", "Backdrop"):
        other.collection.children.link(bpy.data.collections[coll])
    other.collection.objects.link(active.camera)
    other.camera = active.camera
    other.render.resolution_x, other.render.resolution_y = W, H
    active.frame_set(3)
    out = export_shot(other, tmp_path / "alt", frame_start=1, frame_end=9, targets=["Subject"], armatures=[],
                      width=W, height=H, engine="cycles")
    b = read_bundle(out)
    assert [round(f["lens_mm"], 3) for f in b.shot.frames] == [25.0 * (4 + k / 2) / 4 for k in range(9)]
    assert b.shot.scene == "Alternate"
    assert bpy.context.scene == active and active.frame_current == 3
    assert active.camera.data.lens == pytest.approx(25.0 * 5 / 4)  # shared camera back at frame 3
    widths = [np.ptp(np.flatnonzero(b.mask(0, i).any(axis=0))) for i in range(9)]
    assert max(widths) - min(widths) <= 1


def test_a_scene_in_other_units_exports_metres(dolly, tmp_path):
    """Unit Scale 0.5: one Blender unit is half a metre, so every distance in the bundle halves."""
    _, b, sc = dolly
    sc.unit_settings.scale_length = 0.5
    try:
        half = read_bundle(export_shot(sc, tmp_path / "half", frame_start=1, frame_end=9, targets=["Subject"],
                                       armatures=[], width=W, height=H, engine="cycles"))
    finally:
        sc.unit_settings.scale_length = 1.0
    w2c = np.array(half.shot.frames[0]["world_to_camera"])
    assert -w2c[:3, :3].T @ w2c[:3, 3] == pytest.approx([0, -2.0, 0.5], abs=1e-6)  # camera at (0, -4, 1) units
    assert (half.shot.frames[0]["clip_start"], half.shot.frames[0]["clip_end"]) == pytest.approx((0.25, 30.0))
    assert half.shot.frames[0]["intrinsics"] == b.shot.frames[0]["intrinsics"]  # pixels do not change
    for key in ("near", "far"):
        assert half.shot.controls[0].depth_range[key] == pytest.approx(b.shot.controls[0].depth_range[key] / 2, rel=1e-5)
    # Inverse depth over the shot's own range does not depend on the unit.
    assert np.abs(half.canvas(0, 4).astype(int) - b.canvas(0, 4).astype(int)).max() <= 1


def test_the_farthest_target_stays_grey_and_the_background_black(dolly):
    """The card recedes from 4 m to 8 m: on the last frame it is the farthest target of the shot.
    It must encode at ~0.1 (26/255), not black, which means "masked out"; outside the mask is 0."""
    _, b, _ = dolly
    near, far = b.shot.controls[0].depth_range["near"], b.shot.controls[0].depth_range["far"]
    first, last = b.canvas(0, 0)[..., 0], b.canvas(0, len(b) - 1)[..., 0]
    inside_last = last[b.mask(0, len(b) - 1)]
    assert 24 <= int(np.median(inside_last)) <= 28, (near, far)
    assert 240 <= int(np.median(first[b.mask(0, 0)])) < 255  # nearest: just below white (2% pad)
    assert int(last[~b.mask(0, len(b) - 1)].max()) == 0


@pytest.mark.parametrize("kind, options", [
    ("depth", {"depth_scope": "everything"}),
    ("edges", {}),
    ("playblast", {"playblast_colour": "grey"}),
])
def test_each_canvas_kind_exports_into_the_bundle_with_its_options(dolly, tmp_path, kind, options):
    """The exporter draws the kind the control LoRA reads and says so in shot.json: here the dolly
    zoom's depth of EVERYTHING (the wall too, unlike the masked depth+pose), its edges, its playblast."""
    _, base, sc = dolly
    b = read_bundle(export_shot(sc, tmp_path / kind, frame_start=1, frame_end=9, targets=["Subject"], armatures=[],
                                width=W, height=H, canvas_size=(W // 2, H // 2), kind=kind, canvas_options=options,
                                control_lora="control", engine="cycles"))
    (control,) = b.shot.controls
    assert (control.kind, control.width, control.height, control.lora) == (kind, W // 2, H // 2, "control")
    assert all(control.options[k] == v for k, v in options.items())
    canvas = b.canvas(0, 0)
    assert canvas.shape == (H // 2, W // 2, 3) and canvas.dtype == np.uint8
    corner = canvas[2, 2]  # the wall, which depth+pose masks out to black
    if kind == "depth":
        assert base.canvas(0, 0)[0, 0].max() == 0 and corner.max() > 0
        assert canvas.max() == 255 and control.depth_range["near"] == pytest.approx(4.0, rel=0.05)
    elif kind == "edges":
        # Lines as Canny draws them at 512 px, downscaled: one grey level at 64 px (255 * 64 / 512 = 32).
        assert set(np.unique(canvas)) == {0, 32} and 0 < (canvas[..., 0] > 0).mean() < 0.2
    else:
        spread = canvas.astype(int).max(axis=2) - canvas.astype(int).min(axis=2)
        assert spread.max() <= 8 and 30 < corner[0] < 250  # grey (the studio light is barely tinted), shaded


def test_cli_exports_the_kind_it_is_asked_for(dolly, tmp_path):
    blend, _, _ = dolly
    run = _cli(str(blend), "--out", str(tmp_path / "b"), "--kind", "depth", "--engine", "cycles", "--quiet")
    assert run.returncode == 0, run.stderr  # depth of everything needs no targets
    assert read_bundle(tmp_path / "b").shot.controls[0].kind == "depth"
    run = _cli(str(blend), "--out", str(tmp_path / "c"), "--kind", "pose", "--targets", "Subject", "--quiet")
    assert run.returncode == 2 and "nothing to export for a pose canvas: give --armatures" in run.stderr
