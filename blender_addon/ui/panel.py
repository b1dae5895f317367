"""The 3D viewport sidebar tab "LTX Render" and the status bar line.

draw() only lays out properties and operators; every string it shows was computed and stored
by an operator, a property update or a handler (ui/handlers.py).
"""

from __future__ import annotations

import bpy

from .preferences import addon_preferences

MAX_JOBS_SHOWN = 6


class _SidebarPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "LTX Render"


class LTX_PT_render(_SidebarPanel, bpy.types.Panel):
    bl_idname = "LTX_PT_render"
    bl_label = "LTX Render"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.ltx_render
        prefs = addon_preferences(context)
        if prefs is not None:
            row = layout.row(align=True)
            row.prop_search(settings, "profile", prefs, "profiles", text="Server", icon="URL")
            row.operator("ltx_render.test_connection", text="", icon="PLUGIN")
            if prefs.connection_text:
                layout.label(text=prefs.connection_text, icon="CHECKMARK" if prefs.connection_ok else "ERROR")
        layout.prop(settings, "prompt", text="")
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("ltx_render.render_preview", icon="RENDER_ANIMATION")
        row.operator("ltx_render.render_animation", text="Animation", icon="SEQUENCE")
        layout.row().prop(settings, "quality", expand=True)
        if settings.render_note:
            layout.label(text=settings.render_note, icon="INFO")
        if settings.estimate_note:
            layout.label(text=settings.estimate_note, icon="TIME")
        if settings.busy or settings.status_text:
            box = layout.box()
            box.label(text=settings.status_text or "Starting", icon="TIME")
            box.prop(settings, "progress", text="", slider=True)
            row = box.row(align=True)
            row.operator("ltx_render.cancel", icon="CANCEL")
            row.operator("ltx_render.resume_jobs", icon="FILE_REFRESH")


class LTX_PT_shot(_SidebarPanel, bpy.types.Panel):
    bl_label = "Shot"
    bl_parent_id = "LTX_PT_render"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.ltx_render
        layout.prop(settings, "negative_prompt")
        col = layout.column(align=True)
        col.prop(settings, "width")
        col.prop(settings, "height")
        layout.label(text=settings.size_note, icon="FULLSCREEN_ENTER")
        layout.label(text=settings.frame_note, icon="TIME")
        layout.prop(settings, "seed")
        layout.prop(settings, "audio")


class LTX_PT_control(_SidebarPanel, bpy.types.Panel):
    bl_label = "Control"
    bl_parent_id = "LTX_PT_render"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.ltx_render
        for kind, items, label in (("TARGET", settings.targets, "Follow exactly"),
                                   ("ARMATURE", settings.armatures, "Pose from armatures")):
            row = layout.row()
            row.label(text=label)
            row.operator("ltx_render.target_add", text="", icon="ADD").kind = kind
            for index, item in enumerate(items):
                row = layout.row(align=True)
                if kind == "TARGET":
                    row.prop(item, "collection", text="")
                row.prop(item, "object", text="")
                op = row.operator("ltx_render.target_remove", text="", icon="X")
                op.kind, op.index = kind, index
        layout.prop(settings, "control_strength")
        row = layout.row(align=True)
        row.prop(settings, "use_background_strength", text="")
        sub = row.row()
        sub.active = settings.use_background_strength
        sub.prop(settings, "background_strength")
        layout.prop(settings, "control_lora")
        layout.prop(settings, "canvas_kind")
        kind = settings.canvas_kind
        if kind in ("auto", "depth"):
            layout.prop(settings, "depth_scope")
        if kind in ("auto", "pose"):
            row = layout.row(align=True)
            row.prop(settings, "pose_hands", toggle=True)
            row.prop(settings, "pose_face", toggle=True)
        if kind in ("auto", "playblast"):
            layout.prop(settings, "playblast_colour")
        layout.prop(settings, "reference_downscale_factor")
        layout.operator("ltx_render.preview_canvas", icon="IMAGE_DATA")
        if settings.canvas_image and settings.canvas_image.preview:
            layout.template_icon(icon_value=settings.canvas_image.preview.icon_id, scale=8.0)


class LTX_PT_camera(_SidebarPanel, bpy.types.Panel):
    bl_label = "Camera"
    bl_parent_id = "LTX_PT_render"

    def draw(self, context):
        settings = context.scene.ltx_render
        self.layout.prop(settings, "camera_mode")
        row = self.layout.row()
        row.active = settings.camera_mode == "preset"
        row.prop(settings, "camera_preset")
        row = self.layout.row()
        row.active = settings.camera_mode == "trajectory"
        row.prop(settings, "camera_trajectory")


class LTX_PT_takes(_SidebarPanel, bpy.types.Panel):
    bl_label = "Jobs and takes"
    bl_parent_id = "LTX_PT_render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.ltx_render
        for item in list(settings.jobs)[-MAX_JOBS_SHOWN:]:
            row = layout.row()
            row.label(text=item.shot)
            row.label(text=item.progress_text or item.state)
        layout.prop(settings, "take_dir")
        row = layout.row(align=True)
        row.operator("ltx_render.redo_take", icon="LOOP_BACK")
        row.operator("ltx_render.resume_jobs", icon="FILE_REFRESH")


def draw_status(self, context):
    """Status bar: the running shot's progress."""
    settings = getattr(context.scene, "ltx_render", None)
    if settings is None or not settings.busy:
        return
    if hasattr(self.layout, "progress"):
        self.layout.progress(factor=settings.progress, type="RING", text=settings.status_text)
    else:
        self.layout.label(text=settings.status_text)


CLASSES = (LTX_PT_render, LTX_PT_shot, LTX_PT_control, LTX_PT_camera, LTX_PT_takes)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
