"""The loop end to end on real parts: a bpy scene saved as a .blend -> `make-dataset` (a real process:
Cycles renders the targets, the add-on's exporter the canvases) -> `render-backend train` on the tiny
LTX-2 -> the LoRA served by a real `render-backend serve --lora` process, listed with its kind and
factor, offered by the add-on for its canvas, and changing the output."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.client.limits import server_limits  # noqa: E402
from blender_addon.core.bundle import read_bundle  # noqa: E402
from blender_addon.core.png import read_png  # noqa: E402
from render_backend.cli import main as backend  # noqa: E402
from render_backend.media import probe_mp4  # noqa: E402
from render_backend.proto import render_pb2 as pb  # noqa: E402
from render_backend.shot_bundle import read_shot, write_shot  # noqa: E402
from tests.blender import scenes  # noqa: E402
from tests.server.procs import ServeProcess  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
W, H, FRAMES = 128, 96, 17
BOX_COLOURS = ((0.8, 0.1, 0.1), (0.1, 0.2, 0.8), (0.9, 0.8, 0.1))


def _material(name, rgb):
    m = bpy.data.materials.new(name)
    m.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*rgb, 1)
    return m


def build_props_scene(path: Path) -> Path:
    """Three coloured boxes rising on a green floor before a wall, a sun, a blue world, a camera 6 m back."""
    sc = scenes.empty_scene(W, H)
    sc.frame_start, sc.frame_end = 1, 40
    props, set_coll = scenes.collection(sc, "Props"), scenes.collection(sc, "Set")
    scenes.plane(set_coll, "Floor", 20, 20).data.materials.append(_material("Floor", (0.1, 0.3, 0.1)))
    wall = scenes.plane(set_coll, "Wall", 20, 8, location=(0, 6, 4), rotation=(math.pi / 2, 0, 0))
    wall.data.materials.append(_material("Wall", (0.6, 0.55, 0.5)))
    for i, rgb in enumerate(BOX_COLOURS):
        box = scenes.box(props, f"Box{i}", 0.8 + 0.3 * i, location=(-1.2 + 1.35 * i, 1.0 * i, 0.4 + 0.15 * i))
        box.data.materials.append(_material(f"Box{i}", rgb))
        box.keyframe_insert("location", frame=1)
        box.location.z += 0.5
        box.keyframe_insert("location", frame=40)
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.data.energy, sun.rotation_euler = 3.0, (0.7, 0.2, 0.4)
    sc.collection.objects.link(sun)
    sc.world = bpy.data.worlds.new("World")
    sc.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.3, 0.4, 0.6, 1)
    cam = scenes.looking_along_y(sc, distance=6.0, lens=30.0, height=1.3)
    cam.rotation_euler = (math.radians(82), 0, 0)
    sc.frame_set(1)
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def make_dataset(blend: Path, out: Path, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "blender_addon.cli", "make-dataset", str(blend), "--out", str(out),
                           "--size", str(W), str(H), "--samples", "4", "--caption", "red blue yellow boxes",
                           "--targets", "Props", "--canvas-engine", "cycles", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _frames(mp4: Path) -> np.ndarray:
    import av

    with av.open(str(mp4)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def blend(tmp_path_factory) -> Path:
    return build_props_scene(tmp_path_factory.mktemp("scene") / "props.blend")


@pytest.fixture(scope="module")
def depth_dataset(blend, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("depth") / "dataset"
    return out, make_dataset(blend, out, "--kind", "depth", "--clips", "5", "--frames", str(FRAMES))


@pytest.fixture(scope="module")
def trained_depth(depth_dataset, tiny_model, tmp_path_factory) -> tuple[Path, dict, str]:
    dataset, _ = depth_dataset
    out = tmp_path_factory.mktemp("lora") / "blender_depth.safetensors"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert backend(["train", str(dataset), "--model", str(tiny_model), "--out", str(out), "--steps", "40",
                        "--rank", "8", "--learning-rate", "2e-3", "--validate-every", "20",
                        "--checkpoint-every", "20", "--validation-steps", "4"]) == 0
    summary = json.loads((out.parent / "blender_depth.training" / "summary.json").read_text())
    return out, summary, printed.getvalue()


def test_make_dataset_writes_bundles_targets_and_ltx_trainer_index(depth_dataset):
    dataset, printed = depth_dataset
    doc = json.loads((dataset / "dataset.json").read_text())
    assert doc["format"] == "ltx-blender-dataset/1" and doc["kind"] == "depth" and len(doc["clips"]) == 5
    kinds = [c["camera_path"]["kind"] for c in doc["clips"]]
    assert kinds[0] == "scene" and len(set(kinds[1:])) == 4, kinds  # the scene camera, then four different moves
    rows = _rows(dataset / "metadata.jsonl")
    assert rows == [{"video": c["video"], "reference_video": c["reference_video"], "caption": "red blue yellow boxes"}
                    for c in doc["clips"]]
    assert (dataset / "metadata.csv").read_text().splitlines()[0] == "video,reference_video,caption"
    for clip, row in zip(doc["clips"], rows, strict=True):
        video, reference = probe_mp4(dataset / row["video"]), probe_mp4(dataset / row["reference_video"])
        assert (video.frames, video.width, video.height) == (FRAMES, W, H)
        assert (reference.frames, reference.width, reference.height) == (FRAMES, W, H)
        bundle = read_bundle(dataset / clip["bundle"])
        assert bundle.shot.num_frames == FRAMES and bundle.shot.controls[0].kind == "depth"
        assert bundle.shot.frame_start == clip["frame_start"]
        # the lossless reference video holds the bundle's canvases to within YUV rounding
        assert np.abs(_frames(dataset / row["reference_video"]).astype(int) - bundle.canvas(0, 0)[None].astype(int)
                      )[0].max() <= 2
    assert "clip_0004" in printed


def test_each_target_is_rendered_from_the_camera_of_its_canvas(depth_dataset):
    """The boxes (the Props mask of the canvas export) are where the render shows saturated colour, frame by
    frame, on the moving-camera clips too."""
    dataset, _ = depth_dataset
    doc = json.loads((dataset / "dataset.json").read_text())
    for clip in doc["clips"]:
        bundle = read_bundle(dataset / clip["bundle"])
        for i in (0, FRAMES - 1):
            target = read_png(dataset / clip["target"] / f"{bundle.shot.frame_start + i:06d}.png")[..., :3]
            rgb = target.astype(float)
            saturation = rgb.max(axis=2) - rgb.min(axis=2)
            mask = bundle.mask(0, i)
            assert mask.mean() > 0.01, clip["name"]
            assert saturation[mask].mean() > 2.5 * saturation[~mask].mean(), (clip["name"], i)


def test_a_dolly_zoom_clip_keeps_the_subject_size_while_the_lens_changes(depth_dataset):
    dataset, _ = depth_dataset
    doc = json.loads((dataset / "dataset.json").read_text())
    clip = next(c for c in doc["clips"] if c["camera_path"]["kind"] == "dolly_zoom")
    bundle = read_bundle(dataset / clip["bundle"])
    lens = [f["lens_mm"] for f in bundle.shot.frames]
    assert lens[-1] / lens[0] == pytest.approx(clip["camera_path"]["amount"], rel=1e-4)
    widths = []
    for i in (0, FRAMES - 1):
        cols = np.flatnonzero(bundle.mask(0, i).any(axis=0))
        widths.append(cols[-1] - cols[0] + 1)
    # The subject (the boxes' centre) keeps its size; boxes nearer and farther change a little, the way a
    # dolly zoom warps depth, but far less than the same lens change alone would scale them.
    ratio = clip["camera_path"]["amount"]
    assert abs(widths[1] / widths[0] - 1) < 0.4 * abs(ratio - 1), (widths, ratio)


def test_training_lowers_the_held_out_loss_and_overfits_a_training_clip(trained_depth):
    out, summary, printed = trained_depth
    first, last = summary["heldout_loss_first"], summary["heldout_loss_last"]
    print(f"held-out loss {first:.4f} -> {last:.4f}; overfit clip {summary['overfit_clip']}: "
          f"LoRA {summary['overfit_lora_latent_mse']:.4f} vs base {summary['overfit_base_latent_mse']:.4f}")
    assert last < 0.85 * first
    assert summary["overfit_lora_latent_mse"] < 0.9 * summary["overfit_base_latent_mse"]
    assert "estimate:" in printed and "ETA" in printed and "held-out loss" in printed
    log = _rows(out.parent / "blender_depth.training" / "loss.jsonl")
    assert [e["step"] for e in log if "loss" in e] == list(range(1, 41))
    assert [e["step"] for e in log if "heldout_loss" in e] == [0, 20, 40]
    assert all(0.0 <= e["sigma"] <= 1.0 and e["grad_norm"] > 0 for e in log if "loss" in e)
    plot = out.parent / "blender_depth.training" / "loss.png"
    assert read_png(plot).shape == (450, 800, 3)
    video = probe_mp4(out.parent / "blender_depth.training" / "validation/step_000040.mp4")
    assert (video.frames, video.width, video.height) == (FRAMES, W, H)


def test_the_lora_file_says_what_it_is(trained_depth, depth_dataset):
    from render_backend.training.dataset import dataset_hash, read_dataset
    from render_backend.training.lora_file import read_lora

    out, summary, _ = trained_depth
    tensors, meta = read_lora(out)
    assert meta["ltx_blender_kind"] == "control" and meta["ltx_blender_canvas"] == "depth"
    assert meta["reference_downscale_factor"] == "1" and meta["ltx_blender_base"] == "ltx-2"
    assert meta["ltx_blender_steps"] == "40"
    assert meta["ltx_blender_dataset_sha256"] == dataset_hash(read_dataset(depth_dataset[0])) == summary["dataset_sha256"]
    assert all(k.startswith("diffusion_model.transformer_blocks.") and k.endswith((".lora_A.weight", ".lora_B.weight"))
               for k in tensors)
    assert not any(k.endswith(".alpha") for k in tensors)


@pytest.fixture(scope="module")
def trajectory(blend, tiny_model, tmp_path_factory) -> tuple[Path, Path]:
    dataset = tmp_path_factory.mktemp("trajectory") / "dataset"
    make_dataset(blend, dataset, "--kind", "camera-trajectory", "--clips", "3", "--frames", "9",
                 "--reference-downscale-factor", "1", "--paths", "dolly_zoom,orbit,pan")
    out = dataset.parent / "blender_camera.safetensors"
    assert backend(["train", str(dataset), "--model", str(tiny_model), "--out", str(out), "--steps", "6",
                    "--rank", "4", "--validate-every", "6", "--checkpoint-every", "6", "--validation-steps", "2"]) == 0
    return dataset, out


def test_a_camera_trajectory_dataset_trains_on_the_engines_own_canvas(trajectory):
    from render_backend.engine.camera_canvas import CANVAS_VERSION, trajectory_canvas
    from render_backend.engine.request import CameraFrame
    from render_backend.training.lora_file import read_lora

    dataset, out = trajectory
    doc = json.loads((dataset / "dataset.json").read_text())
    assert doc["kind"] == "camera-trajectory" and doc["ltx_trainer_metadata"] is None
    rows = _rows(dataset / "metadata.jsonl")  # written by the backend once it drew the canvases
    assert len(rows) == 3
    for clip, row in zip(doc["clips"], rows, strict=True):
        shot = read_shot(dataset / clip["bundle"])
        frames = [CameraFrame(f["intrinsics"]["fx"], f["intrinsics"]["fy"], f["intrinsics"]["cx"],
                              f["intrinsics"]["cy"], np.array(f["world_to_camera"])) for f in shot.frames]
        canvas = trajectory_canvas(frames, W, H, output_width=W, output_height=H)
        assert canvas[0, :, 1::2].max() == canvas[0, :, 1::2].min() == 128  # frame 0: zero moments
        assert not np.array_equal(canvas[0], canvas[-1])  # the camera moved
        decoded = _frames(dataset / row["reference_video"]).astype(int)
        assert np.abs(decoded - canvas.astype(int)).max() <= 2  # 4:4:4, CRF 0: YUV rounding only
    _, meta = read_lora(out)
    assert meta["ltx_blender_kind"] == "camera_trajectory" and meta["ltx_blender_canvas_spec"] == CANVAS_VERSION
    assert meta["reference_downscale_factor"] == "1"


def _submit(server: ServeProcess, bundle: Path, out: Path, lora: str) -> np.ndarray:
    from blender_addon.client.submit import submit_bundle

    copy = out / "bundle"
    import shutil

    shutil.copytree(bundle, copy)
    shot = read_shot(copy)
    shot.controls[0].lora, shot.seed = lora, 3
    write_shot(copy, shot)
    result = submit_bundle(copy, server=server.address, out_dir=out / "take", timeout_s=120)
    assert result.state == "done", result.message
    return _frames(result.files["video.mp4"]).astype(float)


def test_the_trained_loras_load_in_a_real_server_and_change_the_output(trained_depth, trajectory, depth_dataset,
                                                                       tiny_model, tmp_path):
    from render_backend.training.lora_file import read_lora, write_lora

    depth_lora, _, _ = trained_depth
    _, camera_lora = trajectory
    # The LoRA as it was before its first step (peft starts B at 0): the base model reading the same canvas.
    tensors, meta = read_lora(depth_lora)
    untrained = write_lora(tmp_path / "untrained.safetensors",
                           {k: v * 0 if k.endswith("lora_B.weight") else v for k, v in tensors.items()}, meta)
    with ServeProcess(tiny_model, tmp_path / "data", "--lora", f"blender_depth={depth_lora}", "--lora",
                      f"blender_camera={camera_lora}", "--lora", f"untrained={untrained}", "--upsampler",
                      "none") as server:
        caps = server.client.capabilities()
        listed = {lo.name: lo for lo in caps.loras}
        depth, camera = listed["blender_depth"], listed["blender_camera"]
        assert (depth.kind, depth.reference_downscale_factor, depth.canvas, depth.base_model) == \
            (pb.LORA_KIND_CONTROL, 1, "depth", "ltx-2")
        assert (camera.kind, camera.reference_downscale_factor) == (pb.LORA_KIND_CAMERA_TRAJECTORY, 1)
        limits = server_limits(caps)  # what the add-on offers after Test connection
        assert limits["controls"] == ["blender_depth", "untrained"]
        assert limits["canvases"]["blender_depth"] == "depth"
        assert limits["camera_trajectories"] == ["blender_camera"]

        heldout = depth_dataset[0] / "clips" / "clip_0004"
        trained = _submit(server, heldout, tmp_path / "trained", "blender_depth")
        before = _submit(server, heldout, tmp_path / "before", "untrained")
        assert trained.shape == (FRAMES, H, W, 3)
        difference = float(np.abs(trained - before).mean())
        print(f"mean |pixel difference|, trained LoRA vs the same LoRA before training: {difference:.2f} levels")
        assert difference > 2.0


def test_make_dataset_refuses_bad_input_saying_what_to_change(blend, tmp_path, capsys):
    from blender_addon.cli import main as addon

    def run(*args: str) -> str:
        assert addon(["--blender-log", "make-dataset", str(blend), "--out", str(tmp_path / "ds"), "--size", str(W),
                      str(H), *args]) == 2
        return capsys.readouterr().err

    assert "frames must be 8k+1 and at least 9 (got 50); try 49" in run("--kind", "depth", "--frames", "50")
    assert "a pose canvas needs --armatures" in run("--kind", "pose", "--frames", "9")
    assert "has no prompt to use as the caption" in run("--kind", "depth", "--frames", "9", "--clips", "1")
    assert "camera paths crane unknown" in run("--kind", "depth", "--paths", "dolly,crane")
    (tmp_path / "ds").mkdir(exist_ok=True)
    (tmp_path / "ds" / "mine.txt").write_text("not a dataset")
    message = run("--kind", "depth", "--frames", "9", "--caption", "x", "--overwrite")
    assert "not a dataset made by make-dataset" in message and (tmp_path / "ds" / "mine.txt").exists()
