"""Small operators: server profiles and "Test connection", target lists, canvas preview
and Redo take."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..client.profiles import profile_problems
from ..core import takes
from ..ui.preferences import addon_preferences, find_profile
from ..ui.properties import BLEND_RELATIVE
from . import session as ss

CANVAS_IMAGE = "LTX control canvas"


class LTX_OT_profile_add(bpy.types.Operator):
    """Add a render server profile"""

    bl_idname = "ltx_render.profile_add"
    bl_label = "Add server"

    def execute(self, context):
        prefs = addon_preferences(context)
        if prefs is None:
            self.report({"ERROR"}, "enable the LTX Render add-on first")
            return {"CANCELLED"}
        item = prefs.profiles.add()
        item.name = f"Server {len(prefs.profiles)}" if len(prefs.profiles) > 1 else "Local"
        return {"FINISHED"}


class LTX_OT_profile_remove(bpy.types.Operator):
    """Remove this server profile"""

    bl_idname = "ltx_render.profile_remove"
    bl_label = "Remove server"

    index: IntProperty()

    def execute(self, context):
        prefs = addon_preferences(context)
        if prefs is None or not 0 <= self.index < len(prefs.profiles):
            return {"CANCELLED"}
        prefs.profiles.remove(self.index)
        return {"FINISHED"}


def _poll_connection():
    """App timer while a connection test runs: show its result in the preferences."""
    ss.dispatch_events()
    if ss.get_worker().busy():
        return 0.2
    ss.dispatch_events()
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            area.tag_redraw()
    return None


class LTX_OT_test_connection(bpy.types.Operator):
    """Check the server: health, protocol version, model, LoRAs and limits"""

    bl_idname = "ltx_render.test_connection"
    bl_label = "Test connection"

    profile: StringProperty(name="Profile", description="Profile name ('' = the scene's)")

    def execute(self, context):
        try:
            profile = find_profile(self.profile or context.scene.ltx_render.profile, context)
        except LookupError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        problems = profile_problems(profile)
        prefs = addon_preferences(context)
        if problems:
            prefs.connection_text, prefs.connection_ok = "; ".join(problems), False
            self.report({"ERROR"}, prefs.connection_text)
            return {"CANCELLED"}
        worker = ss.get_worker()
        worker.test_connection(profile)
        prefs.connection_text, prefs.connection_ok = f"Testing {profile.address}...", True
        if not (bpy.app.background or context.window is None):
            bpy.app.timers.register(_poll_connection, first_interval=0.2)
            return {"FINISHED"}
        deadline = time.monotonic() + 30.0  # headless: timers never fire, wait here
        while worker.busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        ss.dispatch_events(worker, context)
        self.report({"INFO"} if prefs.connection_ok else {"ERROR"}, prefs.connection_text)
        return {"FINISHED"} if prefs.connection_ok else {"CANCELLED"}


class LTX_OT_target_add(bpy.types.Operator):
    """Add the active object's collection, or the active object, to the list"""

    bl_idname = "ltx_render.target_add"
    bl_label = "Add target"

    kind: EnumProperty(items=[("TARGET", "Target", ""), ("ARMATURE", "Armature", "")], default="TARGET")

    def execute(self, context):
        settings = context.scene.ltx_render
        item = (settings.armatures if self.kind == "ARMATURE" else settings.targets).add()
        obj = context.active_object
        if self.kind == "ARMATURE":
            item.object = obj if obj is not None and obj.type == "ARMATURE" else None
        elif obj is not None:
            item.object = obj
        return {"FINISHED"}


class LTX_OT_target_remove(bpy.types.Operator):
    """Remove this entry"""

    bl_idname = "ltx_render.target_remove"
    bl_label = "Remove"

    kind: EnumProperty(items=[("TARGET", "Target", ""), ("ARMATURE", "Armature", "")], default="TARGET")
    index: IntProperty()

    def execute(self, context):
        items = context.scene.ltx_render.armatures if self.kind == "ARMATURE" else context.scene.ltx_render.targets
        if 0 <= self.index < len(items):
            items.remove(self.index)
        return {"FINISHED"}


class LTX_OT_preview_canvas(bpy.types.Operator):
    """Export the current frame's control canvas into the image shown in the panel"""

    bl_idname = "ltx_render.preview_canvas"
    bl_label = "Preview canvas"

    def execute(self, context):
        from ..gather.export import export_shot

        scene = context.scene
        frame = scene.frame_current
        try:
            with tempfile.TemporaryDirectory(prefix="ltx_canvas_") as tmp:
                args = ss.export_arguments(scene, frame, frame, f"canvas_{frame:04d}")  # 1 frame = 8*0+1
                export_shot(scene, tmp, **args)
                png = Path(tmp) / "control" / f"{frame:06d}.png"
                old = bpy.data.images.get(CANVAS_IMAGE)
                if old is not None:
                    bpy.data.images.remove(old)
                image = bpy.data.images.load(str(png), check_existing=False)
                image.name = CANVAS_IMAGE
                image.pack()  # the temp folder goes away; the preview stays
        except (ValueError, OSError, RuntimeError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        image.preview_ensure()
        scene.ltx_render.canvas_image = image
        self.report({"INFO"}, f"canvas of frame {frame}: {image.size[0]}x{image.size[1]}")
        return {"FINISHED"}


class LTX_OT_redo_take(bpy.types.Operator):
    """Restore the settings a take was made with (from its take.json)"""

    bl_idname = "ltx_render.redo_take"
    bl_label = "Redo take"

    take_dir: StringProperty(name="Take folder", subtype="DIR_PATH", options=BLEND_RELATIVE)

    def execute(self, context):
        scene = context.scene
        folder = self.take_dir or scene.ltx_render.take_dir
        try:
            record = takes.read_take_record(bpy.path.abspath(folder))
        except (OSError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        settings = takes.redo_settings(record)
        frames = (settings.pop("frame_start", None), settings.pop("frame_end", None))
        for key, value in settings.items():
            setattr(scene.ltx_render, key, value)
        if None not in frames:
            scene.use_preview_range = True
            scene.frame_preview_start, scene.frame_preview_end = frames
        self.report({"INFO"}, f"settings of {Path(folder).name} restored; press Render Preview for a new take")
        return {"FINISHED"}


CLASSES = (LTX_OT_profile_add, LTX_OT_profile_remove, LTX_OT_test_connection, LTX_OT_target_add,
           LTX_OT_target_remove, LTX_OT_preview_canvas, LTX_OT_redo_take)
