"""Shot bundle "ltx-shot/1": write, read back identical, nerfstudio cameras, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blender_addon.core.bundle import BundleError, BundleWriter, new_manifest, read_bundle
from blender_addon.core.png import read_png, write_png


def _camera(frame: int, dolly: float = 0.1) -> dict:
    """Camera at (0, 0, -5 + dolly*frame) in world, looking down +Z (OpenCV world == camera axes)."""
    w2c = np.eye(4)
    w2c[2, 3] = 5.0 - dolly * frame  # world origin is 5 m in front, getting closer
    return {
        "frame": frame, "intrinsics": {"fx": 400.0 + frame, "fy": 400.0 + frame, "cx": 64.0, "cy": 48.0},
        "world_to_camera": w2c.tolist(), "lens_mm": 50.0 + frame, "sensor_width_mm": 36.0,
        "sensor_height_mm": 24.0, "sensor_fit": "AUTO", "clip_start": 0.1, "clip_end": 100.0, "strength": 0.8,
    }  # fmt: skip


def _write_shot(root, frames=range(1, 10), control_size=(128, 96), finish=True):
    cw, ch = control_size
    manifest = new_manifest(
        "shot_010", 128, 96, 24.0, frames[0], frames[-1], scene="Scene", prompt="a dancer", seed=7,
        control_width=cw, control_height=ch, depth_range={"near": 1.5, "far": 9.0}, targets=["Dancer"],
        strength={"global": 0.9, "per_frame": [0.8] * len(frames), "background": 0.2}, armatures=["rig"],
    )  # fmt: skip
    rng = np.random.default_rng(0)
    data = {}
    writer = BundleWriter(root, manifest)
    for f in frames:
        control = rng.integers(0, 256, (ch, cw, 3), dtype=np.uint8)
        mask = rng.random((ch, cw)) > 0.5
        people = [rng.uniform(0, 90, (18, 3))]
        writer.write_frame(f, control, mask, people)
        data[f] = (control, mask, people)
    if finish:
        writer.finish([_camera(f) for f in frames])
    return manifest, data


def test_bundle_round_trip_is_identical(tmp_path):
    manifest, data = _write_shot(tmp_path / "b")
    bundle = read_bundle(tmp_path / "b")
    expected = dict(manifest, frames=[_camera(f) for f in range(1, 10)])
    assert bundle.manifest == expected
    assert len(bundle) == 9 and [f["frame"] for f in bundle.frames] == list(range(1, 10))
    for i, f in enumerate(range(1, 10)):
        control, mask, people = data[f]
        assert bundle.control(i).dtype == np.uint8 and np.array_equal(bundle.control(i), control)
        assert bundle.mask(i).dtype == bool and np.array_equal(bundle.mask(i), mask)
        assert np.array_equal(bundle.pose(i)[0], people[0])
    assert bundle.control_paths[0].name == "000001.png"
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def test_transforms_json_is_nerfstudio_opengl_with_control_intrinsics(tmp_path):
    _write_shot(tmp_path / "b", control_size=(64, 48))
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
    _write_shot(tmp_path / "b", finish=False)
    with pytest.raises(BundleError, match="unfinished export"):
        read_bundle(tmp_path / "b")
    _write_shot(tmp_path / "c")
    BundleWriter(tmp_path / "c", new_manifest("x", 128, 96, 24.0, 1, 9))  # a re-export starts
    with pytest.raises(BundleError, match="unfinished export"):
        read_bundle(tmp_path / "c")
    with pytest.raises(BundleError, match="no such folder"):
        read_bundle(tmp_path / "nope")


def _edit_manifest(root, **changes):
    path = root / "shot.json"
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


def test_schema_versions(tmp_path):
    _write_shot(tmp_path / "b")
    _edit_manifest(tmp_path / "b", schema="ltx-shot/1.4")  # a newer minor version still reads
    assert read_bundle(tmp_path / "b").manifest["schema"] == "ltx-shot/1.4"
    _edit_manifest(tmp_path / "b", schema="ltx-shot/2")
    with pytest.raises(BundleError, match="'ltx-shot/2' is not supported"):
        read_bundle(tmp_path / "b")
    _edit_manifest(tmp_path / "b", schema="something-else")
    with pytest.raises(BundleError, match="not a shot bundle"):
        read_bundle(tmp_path / "b")


def test_missing_files_and_size_mismatch_are_named(tmp_path):
    _write_shot(tmp_path / "b")
    (tmp_path / "b" / "mask" / "000004.png").unlink()
    with pytest.raises(BundleError, match="missing files: mask/000004.png"):
        read_bundle(tmp_path / "b")
    write_png(tmp_path / "b" / "mask" / "000004.png", np.zeros((96, 128), np.uint8))
    write_png(tmp_path / "b" / "control" / "000002.png", np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(BundleError, match="000002.png: is 64x48 with 3 channel.*expected 128x96"):
        read_bundle(tmp_path / "b")


def test_frame_count_must_be_8k_plus_1(tmp_path):
    _write_shot(tmp_path / "b", frames=range(1, 11))  # 10 frames: writable, not renderable
    with pytest.raises(BundleError, match="8k\\+1 \\(got 10\\)"):
        read_bundle(tmp_path / "b")


def test_writer_rejects_wrong_sizes_and_missing_frames(tmp_path):
    writer = BundleWriter(tmp_path / "b", new_manifest("x", 128, 96, 24.0, 1, 9, control_width=64, control_height=48))
    with pytest.raises(BundleError, match="\\(48, 64, 3\\) uint8"):
        writer.write_frame(1, np.zeros((96, 128, 3), np.uint8), np.zeros((96, 128), bool), [])
    with pytest.raises(BundleError, match="mask must be \\(48, 64\\)"):
        writer.write_frame(1, np.zeros((48, 64, 3), np.uint8), np.zeros((96, 128), bool), [])
    writer.write_frame(1, np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64), bool), [])
    with pytest.raises(BundleError, match="never written"):
        writer.finish([_camera(f) for f in range(1, 10)])
    with pytest.raises(BundleError, match="1..9 in order"):
        writer.finish([_camera(f) for f in range(2, 10)])
    with pytest.raises(BundleError, match="lacks"):
        BundleWriter(tmp_path / "c", {"name": "x"})
    with pytest.raises(BundleError, match="unknown shot.json keys"):
        new_manifest("x", 128, 96, 24.0, 1, 9, colour="red")


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
