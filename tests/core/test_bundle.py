"""Shot bundle "ltx-shot/2": write, read back identical, nerfstudio cameras, old bundles, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blender_addon.core.bundle import BundleWriter, read_bundle
from blender_addon.core.png import read_png, write_png
from blender_addon.shot_bundle import BundleError, Camera, Control, Shot, Strength, read_shot, to_manifest


def _camera(frame: int, dolly: float = 0.1) -> dict:
    """Camera at (0, 0, -5 + dolly*frame) in world, looking down +Z (OpenCV world == camera axes)."""
    w2c = np.eye(4)
    w2c[2, 3] = 5.0 - dolly * frame  # world origin is 5 m in front, getting closer
    return {
        "frame": frame, "intrinsics": {"fx": 400.0 + frame, "fy": 400.0 + frame, "cx": 64.0, "cy": 48.0},
        "world_to_camera": w2c.tolist(), "lens_mm": 50.0 + frame, "sensor_width_mm": 36.0,
        "sensor_height_mm": 24.0, "sensor_fit": "AUTO", "clip_start": 0.1, "clip_end": 100.0,
    }  # fmt: skip


def _control(size=(128, 96), **kw) -> Control:
    cw, ch = size
    base = dict(kind="depth+pose", lora="control", folder="control", mask_folder="mask", width=cw, height=ch,
                strength=Strength(0.9, [0.8] * 9, 0.2), depth_range={"near": 1.5, "far": 9.0})
    base.update(kw)
    return Control(**base)


def _shot(frames=range(1, 10), controls=None) -> Shot:
    return Shot(name="shot_010", width=128, height=96, fps=24.0, frame_start=frames[0], frame_end=frames[-1],
                frames=[_camera(f) for f in frames], scene="Scene", prompt="a dancer", seed=7,
                controls=controls or [_control()], camera=Camera(mode="preset", preset_lora="camera_dolly_in"),
                targets=["Dancer"], armatures=["rig"])


def _write(root, frames=range(1, 10), control_size=(128, 96), finish=True, controls=None):
    controls = controls or [_control(control_size)]
    rng = np.random.default_rng(0)
    data = {}
    writer = BundleWriter(root, controls)
    for f in frames:
        canvases = [rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8) for c in controls]
        masks = [rng.random((c.height, c.width)) > 0.5 if c.mask_folder else None for c in controls]
        people = [rng.uniform(0, 90, (18, 3))]
        writer.write_frame(f, canvases, masks, people)
        data[f] = (canvases, masks, people)
    shot = _shot(frames, controls)
    if finish:
        writer.finish(shot)
    return shot, data


def test_bundle_round_trip_is_identical(tmp_path):
    shot, data = _write(tmp_path / "b")
    bundle = read_bundle(tmp_path / "b")
    assert bundle.shot == shot and bundle.shot.schema == "ltx-shot/2"
    assert len(bundle) == 9 and [f["frame"] for f in bundle.shot.frames] == list(range(1, 10))
    for i, f in enumerate(range(1, 10)):
        canvases, masks, people = data[f]
        assert bundle.canvas(0, i).dtype == np.uint8 and np.array_equal(bundle.canvas(0, i), canvases[0])
        assert bundle.mask(0, i).dtype == bool and np.array_equal(bundle.mask(0, i), masks[0])
        assert np.array_equal(bundle.pose(i)[0], people[0])
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"
    doc = json.loads((tmp_path / "b" / "shot.json").read_text())
    assert doc["controls"][0]["strength"] == {"global": 0.9, "per_frame": [0.8] * 9, "background": 0.2}


def test_two_controls_each_in_its_own_folder(tmp_path):
    controls = [_control(), _control((64, 48), kind="pose", lora="pose", folder="pose_canvas", mask_folder=None,
                                     reference_downscale_factor=2, depth_range=None)]
    _, data = _write(tmp_path / "b", controls=controls)
    bundle = read_bundle(tmp_path / "b")
    assert [(c.kind, c.folder, c.width) for c in bundle.shot.controls] == [("depth+pose", "control", 128),
                                                                          ("pose", "pose_canvas", 64)]
    assert np.array_equal(bundle.canvas(1, 3), data[4][0][1])
    m = to_manifest(bundle.shot, request_id="r1")
    assert [(c.kind, c.lora, c.width, c.height, c.num_frames, c.has_mask, c.reference_downscale_factor)
            for c in m.controls] == [("depth+pose", "control", 128, 96, 9, True, 0), ("pose", "pose", 64, 48, 9, False, 2)]
    assert m.controls[0].background_strength == pytest.approx(0.2) and not m.controls[1].HasField("background_strength")


def test_manifest_is_a_pure_function_of_the_bundle(tmp_path):
    _write(tmp_path / "b")
    first = to_manifest(read_shot(tmp_path / "b"), request_id="x").SerializeToString(deterministic=True)
    again = to_manifest(read_shot(tmp_path / "b"), request_id="x").SerializeToString(deterministic=True)
    assert first == again
    m = to_manifest(read_shot(tmp_path / "b"), request_id="x")
    assert list(m.controls[0].frame_strength) == pytest.approx([0.8] * 9) and m.audio
    assert m.camera.preset_lora == "camera_dolly_in" and len(m.camera.frames) == 9
    assert list(m.camera.frames[4].world_to_camera)[11] == pytest.approx(4.5)


def test_transforms_json_is_nerfstudio_opengl_with_control_intrinsics(tmp_path):
    _write(tmp_path / "b", control_size=(64, 48))
    doc = json.loads((tmp_path / "b" / "transforms.json").read_text())
    assert (doc["w"], doc["h"], doc["camera_model"]) == (64, 48, "OPENCV")
    first = doc["frames"][0]
    assert first["file_path"] == "control/000001.png" and first["mask_path"] == "mask/000001.png"
    assert first["fl_x"] == pytest.approx(401.0 / 2) and first["cx"] == pytest.approx(32.0)
    c2w = np.array(doc["frames"][4]["transform_matrix"])  # frame 5
    np.testing.assert_allclose(c2w[:3, 3], [0, 0, -4.5])  # camera position in world
    # OpenGL: camera looks down its -Z, which must be world +Z here; its +Y is world -Y (up)
    np.testing.assert_allclose(c2w[:3, :3] @ [0, 0, -1], [0, 0, 1])
    np.testing.assert_allclose(c2w[:3, :3] @ [0, 1, 0], [0, -1, 0])
    assert read_png(tmp_path / "b" / first["file_path"]).shape == (48, 64, 3)


def test_unfinished_export_is_reported(tmp_path):
    _write(tmp_path / "b", finish=False)
    with pytest.raises(BundleError, match="unfinished export"):
        read_bundle(tmp_path / "b")
    _write(tmp_path / "c")
    BundleWriter(tmp_path / "c", [_control()])  # a re-export starts: shot.json goes first
    with pytest.raises(BundleError, match="unfinished export"):
        read_bundle(tmp_path / "c")
    with pytest.raises(BundleError, match="no such folder"):
        read_bundle(tmp_path / "nope")


def _edit(root, **changes):
    path = root / "shot.json"
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


def test_schema_versions(tmp_path):
    _write(tmp_path / "b")
    _edit(tmp_path / "b", schema="ltx-shot/2.4")  # a newer minor version still reads
    assert read_bundle(tmp_path / "b").shot.name == "shot_010"
    _edit(tmp_path / "b", schema="ltx-shot/3")
    with pytest.raises(BundleError, match=r"'ltx-shot/3' is not supported \(this version reads ltx-shot/1, "
                                          r"ltx-shot/2\)"):
        read_bundle(tmp_path / "b")
    _edit(tmp_path / "b", schema="something-else")
    with pytest.raises(BundleError, match="not a shot bundle"):
        read_bundle(tmp_path / "b")


def test_a_version_1_bundle_still_reads_as_one_depth_pose_control(tmp_path):
    from tests.addon.bundles import write_bundle

    write_bundle(tmp_path / "v1", frames=9, width=64, height=32, schema=1)
    doc = json.loads((tmp_path / "v1" / "shot.json").read_text())
    assert doc["schema"] == "ltx-shot/1"
    bundle = read_bundle(tmp_path / "v1")
    (control,) = bundle.shot.controls
    assert (control.kind, control.lora, control.folder, control.mask_folder) == ("depth+pose", "control", "control",
                                                                               "mask")
    assert (control.width, control.height, control.strength.value, control.strength.background) == (64, 32, 0.8, 0.2)
    assert bundle.shot.audio and bundle.canvas(0, 2).shape == (32, 64, 3)


def test_missing_files_and_size_mismatch_are_named(tmp_path):
    _write(tmp_path / "b")
    (tmp_path / "b" / "mask" / "000004.png").unlink()
    with pytest.raises(BundleError, match="missing files: mask/000004.png"):
        read_bundle(tmp_path / "b")
    write_png(tmp_path / "b" / "mask" / "000004.png", np.zeros((96, 128), np.uint8))
    write_png(tmp_path / "b" / "control" / "000002.png", np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(BundleError, match=r"000002.png: is 64x48 with 3 channel.*expected 128x96"):
        read_bundle(tmp_path / "b")


@pytest.mark.parametrize("change, words", [
    ({"controls": [{"kind": "normals", "width": 8, "height": 8}]}, "controls[0].kind 'normals' is not a canvas kind"),
    ({"controls": [{"kind": "depth", "folder": "../elsewhere", "width": 8, "height": 8}]},
     "must be a plain folder name inside the bundle"),
    ({"fps": "fast"}, "fps must be a finite number"),
    ({"frame_end": 12}, "frames must list 1..12 in order (9 entries found)"),
    ({"camera": {"mode": "orbit"}}, "camera.mode 'orbit' is unknown"),
])
def test_bad_fields_are_named(tmp_path, change, words):
    _write(tmp_path / "b")
    _edit(tmp_path / "b", **change)
    with pytest.raises(BundleError) as err:
        read_shot(tmp_path / "b")
    assert words in str(err.value)


def test_writer_rejects_wrong_sizes_and_missing_frames(tmp_path):
    writer = BundleWriter(tmp_path / "b", [_control((64, 48))])
    with pytest.raises(BundleError, match=r"\(48, 64, 3\) uint8"):
        writer.write_frame(1, [np.zeros((96, 128, 3), np.uint8)], [np.zeros((96, 128), bool)], [])
    with pytest.raises(BundleError, match=r"mask must be \(48, 64\)"):
        writer.write_frame(1, [np.zeros((48, 64, 3), np.uint8)], [np.zeros((96, 128), bool)], [])
    writer.write_frame(1, [np.zeros((48, 64, 3), np.uint8)], [np.zeros((48, 64), bool)], [])
    with pytest.raises(BundleError, match="never written"):
        writer.finish(_shot(controls=[_control((64, 48))]))
    with pytest.raises(BundleError, match="at least one control"):
        BundleWriter(tmp_path / "c", [])


def test_blender_units_are_converted_to_metres():
    from blender_addon.core.bundle import depth_in_metres, frame_entry_in_metres

    entry = _camera(0)  # camera 5 units from the world origin
    entry["world_to_camera"][0][3] = 2.0
    cm = frame_entry_in_metres(entry, 0.01)  # a centimetre scene: Unit Scale 0.01
    w2c = np.array(cm["world_to_camera"])
    assert w2c[:3, 3].tolist() == pytest.approx([0.02, 0.0, 0.05])
    assert np.array_equal(w2c[:3, :3], np.eye(3))
    assert (cm["clip_start"], cm["clip_end"]) == pytest.approx((0.001, 1.0))
    assert cm["intrinsics"] == entry["intrinsics"] and cm["lens_mm"] == entry["lens_mm"]
    assert entry["world_to_camera"][2][3] == 5.0  # the input is not changed
    # A world point 5 units ahead, projected with the converted matrix, is 5 cm deep.
    assert (w2c @ [0.0, 0.0, 0.0, 1.0])[2] == pytest.approx(0.05)
    depth = np.array([[250.0, 1e10]], dtype=np.float32)
    assert depth_in_metres(depth, 0.01).tolist() == [[2.5, 1e10]]  # background stays "nothing hit"
    assert depth_in_metres(depth, 0.01).dtype == np.float32
    with pytest.raises(ValueError, match="Unit Scale"):
        frame_entry_in_metres(entry, 0.0)
