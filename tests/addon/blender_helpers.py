"""Real bpy scenes with the add-on enabled, for the operator tests."""

from __future__ import annotations

import time
from pathlib import Path

import addon_utils
import bpy

from blender_addon.example_scene import build_example_scene

ADDON = "blender_addon"


def enable_addon():
    errors = []
    mod = addon_utils.enable(ADDON, default_set=True, handle_error=errors.append)
    assert mod is not None and not errors, errors
    return bpy.context.preferences.addons[ADDON].preferences


def fresh_shot(folder: Path, *, frames: int = 9, server_address: str = "", fps: int = 24,
               profile_kw: dict | None = None, server=None) -> bpy.types.Scene:
    """The example walker shot, small (256x160), saved as folder/shot.blend, with a profile
    "test" pointing at server_address (or at `server`, a conftest.LiveServer, with its token).
    Control LoRA "control" (the tiny model's). build_example_scene resets preferences, so the
    add-on is enabled after it."""
    if server is not None:
        server_address = server.address
        profile_kw = {"token": server.token, **(profile_kw or {})}
    build_example_scene(frames=frames, width=256, height=160, fps=fps)
    prefs = enable_addon()
    prefs.profiles.clear()
    scene = bpy.context.scene
    settings = scene.ltx_render
    settings.width, settings.height = 256, 160
    settings.prompt = "a man walks across a plaza"
    settings.seed = 3
    settings.control_lora = "control"
    settings.targets.add().collection = bpy.data.collections["Actors"]
    for obj in scene.objects:
        if obj.type == "ARMATURE":
            settings.armatures.add().object = obj
    if server_address:
        profile = prefs.profiles.add()
        profile.name, profile.address = "test", server_address
        for key, value in (profile_kw or {}).items():
            setattr(profile, key, value)
        settings.profile = "test"
    Path(folder).mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(Path(folder) / "shot.blend"))
    return bpy.context.scene


def strips(scene: bpy.types.Scene) -> list:
    editor = scene.sequence_editor
    return sorted(editor.strips_all, key=lambda s: (s.channel, s.name)) if editor else []


def tick_until(runner, predicate, timeout: float = 60.0, event: str = "TIMER"):
    """Feed fake modal events (the one thing that cannot exist headless) until predicate()."""
    from blender_addon.operators.modal import modal_step

    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = modal_step(runner, event)
        if predicate(result):
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out; last modal result {result}")
