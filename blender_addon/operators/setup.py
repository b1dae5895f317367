"""Small operators: server profiles and "Test connection", target lists, canvas preview
and Redo take."""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..client.profiles import profile_problems
from ..core import takes
from ..core.png import write_png
from ..ui.preferences import addon_preferences, find_profile
from ..ui.properties import BLEND_RELATIVE
from . import records
from .shot import export_arguments

CANVAS_IMAGE = "LTX control canvas"
# The export_arguments that shape one frame's canvas (not the prompt, seed, strengths or camera).
CANVAS_ARGUMENTS = ("targets", "armatures", "width", "height", "canvas_size", "kind", "canvas_options")


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


CONNECTION_TIMEOUT_S = 30.0


def _poll_connection(key: str, deadline: float, address: str):
    """App timer while a connection test runs: show its result (or the timeout) in the preferences."""
    records.dispatch_events()
    if records.get_worker().busy(key) and time.monotonic() < deadline:
        return 0.2
    records.dispatch_events()
    _timed_out_unless_answered(address)
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            area.tag_redraw()
    return None


def _testing_text(address: str) -> str:
    return f"Testing {address}..."


def _timed_out_unless_answered(address: str, context=None) -> None:
    """No CONNECTION event replaced the "Testing" line: the server did not answer in time."""
    prefs = addon_preferences(context)
    if prefs is not None and prefs.connection_text == _testing_text(address):
        prefs.connection_ok = False
        prefs.connection_text = (f"no answer from {address} within {CONNECTION_TIMEOUT_S:.0f} s; check that "
                                 f"`render-backend serve` runs there and that the address and port are right")


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
        worker = records.get_worker()
        # Not ok until the server answered: the CONNECTION event sets both.
        prefs.connection_text, prefs.connection_ok = _testing_text(profile.address), False
        key = worker.test_connection(profile)
        deadline = time.monotonic() + CONNECTION_TIMEOUT_S
        if not (bpy.app.background or context.window is None):
            bpy.app.timers.register(functools.partial(_poll_connection, key, deadline, profile.address),
                                    first_interval=0.2)
            return {"FINISHED"}
        while worker.busy(key) and time.monotonic() < deadline:  # headless: timers never fire, wait here
            time.sleep(0.05)
        records.dispatch_events(worker, context)
        _timed_out_unless_answered(profile.address, context)
        self.report({"INFO"} if prefs.connection_ok else {"ERROR"}, prefs.connection_text)
        return {"FINISHED"} if prefs.connection_ok else {"CANCELLED"}


class LTX_OT_start_local_server(bpy.types.Operator):
    """Start `render-backend serve` on this machine for a localhost profile (a server already running
    there is reused), with the model folder from the add-on preferences"""

    bl_idname = "ltx_render.start_local_server"
    bl_label = "Start local server"

    profile: StringProperty(name="Profile", description="Profile name ('' = the scene's)")

    def execute(self, context):
        from ..client import local_server, processes
        from ..core.probe_cache import cache_dir

        prefs = addon_preferences(context)
        try:
            profile = find_profile(self.profile or context.scene.ltx_render.profile, context)
            server, message = local_server.start_for_address(
                profile.address, bpy.path.abspath(prefs.local_model).rstrip("/\\") if prefs.local_model else "",
                command=processes.split_command(prefs.local_command), state_path=cache_dir() / "local-server.json",
                log_path=cache_dir() / "local-server.log", idle_exit_s=60.0 * prefs.local_idle_minutes)
        except (LookupError, ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        prefs.connection_text, prefs.connection_ok = message, False  # ok once Test connection says SERVING
        self.report({"INFO"}, message)
        return {"FINISHED"}


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
    """Render the current frame's control canvas into the image shown in the panel"""

    bl_idname = "ltx_render.preview_canvas"
    bl_label = "Preview canvas"

    def execute(self, context):
        """One depth/mask render of the current frame only, at the size and control canvas size a
        render would use. Its depth range is the frame's own (gather.export.render_frame_canvas):
        the shot-wide range a render uses needs a render of every frame of the shot."""
        from ..gather.export import render_frame_canvas

        scene = context.scene
        frame = scene.frame_current
        try:
            args = export_arguments(scene, frame, frame, f"canvas_{frame:04d}", camera=False)
            canvas = render_frame_canvas(scene, frame, **{k: args[k] for k in CANVAS_ARGUMENTS},
                                         warn=lambda message: self.report({"WARNING"}, message))
            with tempfile.TemporaryDirectory(prefix="ltx_canvas_") as tmp:
                png = Path(tmp) / f"{frame:06d}.png"
                write_png(png, canvas)
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
        self.report({"INFO"}, f"canvas of frame {frame}: {image.size[0]}x{image.size[1]} "
                    f"(for a {args['width']}x{args['height']} render; depth range of this frame)")
        return {"FINISHED"}


class LTX_OT_redo_take(bpy.types.Operator):
    """Restore the settings a take was made with (from its take.json): prompt, seed, strengths,
    camera, LoRAs, size, frame range, targets and armatures"""

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
        targets, armatures = settings.pop("targets", None), settings.pop("armatures", None)
        props = scene.ltx_render
        for key, value in settings.items():
            setattr(props, key, value)
        if None not in frames:
            scene.use_preview_range = True
            scene.frame_preview_start, scene.frame_preview_end = frames
        missing = []
        if targets is not None:
            missing += restore_targets(props.targets, targets)
        if armatures is not None:
            missing += restore_targets(props.armatures, [{"object": name} for name in armatures], armature=True)
        name = Path(folder).name
        if missing:
            self.report({"WARNING"}, f"settings of {name} restored, but {', '.join(missing)} no longer "
                        f"exist(s) in this file; add the targets again before rendering")
        else:
            self.report({"INFO"}, f"settings of {name} restored; press Render Preview for a new take")
        return {"FINISHED"}


def restore_targets(items, stored: list, armature: bool = False) -> list[str]:
    """Refill a target list from take.json entries; returns what could not be found (described)."""
    items.clear()
    missing = []
    for entry in stored:
        if "collection" in entry:
            found = bpy.data.collections.get(entry["collection"])
            what = f"collection {entry['collection']!r}"
        else:
            found = bpy.data.objects.get(entry.get("object", ""))
            if armature and found is not None and found.type != "ARMATURE":
                found = None
            what = f"{'armature' if armature else 'object'} {entry.get('object', '')!r}"
        if found is None:
            missing.append(what)
            continue
        item = items.add()
        if "collection" in entry:
            item.collection = found
        else:
            item.object = found
    return missing


CLASSES = (LTX_OT_profile_add, LTX_OT_profile_remove, LTX_OT_test_connection, LTX_OT_start_local_server,
           LTX_OT_target_add, LTX_OT_target_remove, LTX_OT_preview_canvas, LTX_OT_redo_take)
